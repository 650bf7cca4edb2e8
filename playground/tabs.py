"""The tab contract and the one list of tabs.

Each tab is a package ``demos/<id>/`` whose ``__init__.py`` declares itself::

    TAB = Tab(id="flows", title="Flows", summary="One line for the Home card.",
              build="demos.flows.ui:build", models=(ModelSpec(...), ...))

and the shell finds it through ``TAB_IDS`` below: adding a tab touches its own package and one
line here. Declaring a tab imports nothing heavy: ``build`` is a ``"module:function"`` path,
imported only when the app is built (so a compute module, which imports its package first, never
pulls in gradio), and a model's ``load`` is a path too, imported on first use by
``playground.models``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

from playground import settings

# Tab ids in display order; each is a package under demos/.
TAB_IDS: tuple[str, ...] = ("sde_ode", "flows", "guidance", "controlnet", "attention", "detr", "rnn_transformer",
                            "hallucination", "instruction_tuning", "preferences")


@dataclass(frozen=True)
class ModelSpec:
    """One registered model.

    ``load`` is ``"module:function"``, imported only on first use and called as
    ``function(source: Source, device: torch.device, dtype: torch.dtype) -> model``.
    """

    name: str
    title: str
    load: str
    embedded_dir: str | None = None  # folder under assets/
    hub_id: str | None = None
    revision: str | None = None
    how_to_get: str = ""
    needs: tuple[str, ...] = ()  # other registered models it is built on (loaded through get)

    @property
    def override_var(self) -> str:
        return settings.model_override_var(self.name)


@dataclass(frozen=True)
class Tab:
    """What a tab declares about itself.

    ``build`` is ``"module:function"``; the function is called as ``build(demo)`` inside the tab's
    ``gr.Tab`` and returns the tab's ``ui_helpers.Binding`` (or a list of them, the first the tab's
    own, or ``None``). ``models`` are the models the tab loads (``playground.models.get(name)``);
    ``lessons`` are the tab's lesson files, relative to its package (``playground/lessons.py``).
    """

    id: str
    title: str
    summary: str
    build: str
    models: tuple[ModelSpec, ...] = ()
    lessons: tuple[str, ...] = ()

    def build_function(self) -> Callable:
        """Import the tab's UI module and return its ``build`` (cheap: UI modules import gradio, not torch)."""
        module_name, _, attr = self.build.partition(":")
        return getattr(importlib.import_module(module_name), attr)


def get(tab_id: str) -> Tab:
    """The ``TAB`` declared by ``demos/<tab_id>/__init__.py``."""
    if tab_id not in TAB_IDS:
        raise ValueError(f"unknown tab {tab_id!r}; available: {', '.join(TAB_IDS)}")
    tab = importlib.import_module(f"demos.{tab_id}").TAB
    if tab.id != tab_id:
        raise ValueError(f"demos/{tab_id}/__init__.py declares TAB.id={tab.id!r}; it must be {tab_id!r}")
    return tab


def model_specs() -> list[ModelSpec]:
    """Every tab's models, in tab order: the model registry's contents."""
    specs = [spec for tab_id in TAB_IDS for spec in get(tab_id).models]
    names = [spec.name for spec in specs]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"model name(s) declared by more than one tab: {', '.join(repeated)}")
    return specs
