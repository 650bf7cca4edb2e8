"""ControlNet tab: draw an outline, a ControlNet steers the diffusion model to fill it."""
