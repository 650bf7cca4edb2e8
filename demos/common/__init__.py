"""What several tabs share, once each: Text World and its oracle, the language-model toolkit,
the Self-Instruct program teacher, Shapes World and its latent diffusion model, toy data, image
helpers. A module here imports only ``playground``, ``demos.common`` and libraries, never a tab."""
