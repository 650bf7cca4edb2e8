"""ControlNet tab: draw an outline, a ControlNet steers the diffusion model to fill it."""

from playground.tabs import ModelSpec, Tab

TAB = Tab(
    id="controlnet",
    title="ControlNet",
    summary="Draw an outline; a ControlNet steers the diffusion model to fill it.",
    build="demos.controlnet.ui:build",
    lessons=("lesson.md",),
    models=(
        ModelSpec("shapes-controlnet", "Shapes World ControlNet (embedded, on shapes-ldm)",
                  "demos.controlnet.model:load_embedded", embedded_dir="shapes_controlnet",
                  how_to_get="Train it with `python -m demos.controlnet.train`"),
        ModelSpec("sd15-scribble", "SD 1.5 + ControlNet scribble", "demos.controlnet.model:load_sd15_scribble",
                  hub_id="lllyasviel/control_v11p_sd15_scribble", needs=("sd15",),
                  how_to_get="It runs on Stable Diffusion 1.5 (model `sd15`), which must be here too"),
    ),
)
