"""A minimal example tab (docs/adding-a-tab.md): temperature reshapes a softmax."""

from playground.tabs import Tab

TAB = Tab(id="temperature", title="Temperature", summary="How T reshapes softmax(z / T).",
          build="docs.example_tab.ui:build")
