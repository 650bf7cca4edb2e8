"""The DETR tab."""

from playground.tabs import ModelSpec, Tab

TAB = Tab(
    id="detr",
    title="DETR",
    summary="Object queries and Hungarian matching: detection as set prediction, made visible.",
    build="demos.detr.ui:build",
    lessons=("lesson.md",),
    models=(
        ModelSpec("shapes-detr", "Shapes World DETR (embedded)", "demos.detr.model:load_detr",
                  embedded_dir="shapes_detr", how_to_get="Train it with `python -m demos.detr.train`"),
        ModelSpec("detr-resnet-50", "DETR ResNet-50 (COCO)", "demos.detr.model:load_detr",
                  hub_id="facebook/detr-resnet-50", revision="no_timm",
                  how_to_get="DETR-R50 is about 170 MB"),
    ),
)
