"""The SDE vs ODE tab."""

from playground.tabs import Tab

TAB = Tab(
    id="sde_ode",
    title="SDE vs ODE",
    summary="Reverse-time SDE and probability-flow ODE run from the same noise: same clouds, different paths.",
    build="demos.sde_ode.ui:build",
    lessons=("lesson.md",),
)
