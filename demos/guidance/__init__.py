"""The Guidance tab."""

from playground.tabs import ModelSpec, Tab

TAB = Tab(
    id="guidance",
    title="Guidance",
    summary="Classifier and classifier-free guidance: what the scale s does to a diffusion model's images.",
    build="demos.guidance.ui:build",
    lessons=("lesson.md", "lesson_sd.md"),
    models=(
        ModelSpec("shapes-ldm", "Shapes World LDM (embedded)", "demos.guidance.sampler:load_embedded",
                  embedded_dir="shapes_ldm", how_to_get="Train it with `python -m demos.guidance.train`"),
        ModelSpec("sd15", "Stable Diffusion 1.5", "demos.guidance.sampler:load_sd15",
                  hub_id="stable-diffusion-v1-5/stable-diffusion-v1-5",
                  how_to_get="Stable Diffusion 1.5 is about 4 GB; a GPU is recommended"),
    ),
)
