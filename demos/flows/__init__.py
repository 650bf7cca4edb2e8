"""The Flows tab."""

from playground.tabs import Tab

TAB = Tab(
    id="flows",
    title="Flows",
    summary="Normalizing and continuous flows bend a Gaussian into a target density, layer by layer.",
    build="demos.flows.ui:build",
    lessons=("lesson.md",),
)
