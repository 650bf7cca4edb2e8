"""The Home tab: what the playground is, one card per tab, and the Models panel."""

from __future__ import annotations

import gradio as gr

from playground.models import REGISTRY
from playground.tabs import Tab

INTRO = """
# Generative Playground
Learn how modern generative models and transformers work by *touching* them. Every tab runs
real models and real math live: drag a slider, draw a sketch, upload a photo, and watch what
changes. It runs on a laptop with no GPU and no network (the model tabs ship tiny checkpoints
the project trains itself) and loads full Hugging Face checkpoints when you have them and a GPU.
"""

MODEL_COLUMNS = ["name", "title", "state", "source", "location", "device", "dtype", "parameters", "memory"]
MODEL_COLUMN_WIDTHS = ["13%", "18%", "11%", "8%", "22%", "6%", "6%", "9%", "7%"]  # every column shown at 1280 px


def models_table() -> list[list]:
    """The Models panel's rows (never loads a model)."""
    rows = []
    for row in REGISTRY.info():
        row = {**row, "memory": _human_bytes(row["memory_bytes"]),
               "parameters": f"{row['parameters']:,}" if row["parameters"] is not None else ""}
        rows.append([row[c] for c in MODEL_COLUMNS])
    return rows


def missing_models_note() -> str:
    """How to get each model that is not on this machine (Markdown; no server path)."""
    missing = [a for a in (REGISTRY.availability(name) for name in REGISTRY.names) if not a.usable]
    if not missing:
        return "Every registered model is on this machine."
    return "**Not on this machine** (the tabs offer only the models that are here):\n\n" + "\n".join(
        f"- `{a.name}`: {a.how_to_get}" for a in missing)


def models_panel() -> tuple[list[list], str]:
    return models_table(), missing_models_note()


def _human_bytes(n: int | None) -> str:
    if n is None:
        return ""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def models_info() -> dict:
    """Every registered model with its source, device, dtype and whether it is loaded."""
    return {"models": REGISTRY.info()}


def _card(title: str, summary: str, opens: bool = False) -> str:
    link = "<p class='gp-open'>Open →</p>" if opens else ""  # only a card that opens a tab looks like a link
    return f"<div class='gp-card'><h3>{title}</h3><p>{summary}</p>{link}</div>"


def go_to(tab_id: str):
    """A card's click: show its tab."""
    def go():
        return gr.Tabs(selected=tab_id)

    go.__name__ = f"open_{tab_id}"
    return go


def build(demo: gr.Blocks, live_tabs: list[Tab], tabs: gr.Tabs | None = None) -> None:
    """Lay out the Home tab: a card for each tab of the app (``playground.tabs.Tab``); a click on
    a card shows its tab in ``tabs``."""
    gr.Markdown(INTRO)
    opens = tabs is not None
    for start in range(0, len(live_tabs), 3):
        with gr.Row(equal_height=True, elem_classes="gp-cards"):
            for tab in live_tabs[start:start + 3]:
                card = gr.HTML(_card(tab.title, tab.summary, opens), elem_classes="gp-live" if opens else None,
                               elem_id=f"home-card-{tab.id}")
                if opens:
                    card.click(go_to(tab.id), outputs=tabs, queue=False, api_visibility="private")
    with gr.Accordion("Models", open=False):
        gr.Markdown("Every model the tabs can use. Models load on first use, on the device chosen "
                    "with `--device`; set `PLAYGROUND_MODEL_<NAME>` to a local folder or a Hugging "
                    "Face id to swap one.")
        table = gr.Dataframe(value=models_table(), headers=MODEL_COLUMNS, interactive=False, wrap=True,
                             elem_id="home-models", column_widths=MODEL_COLUMN_WIDTHS)
        missing = gr.Markdown(missing_models_note(), elem_id="home-models-missing")
        refresh = gr.Button("Refresh", size="sm")
        refresh.click(models_panel, outputs=[table, missing], api_visibility="private")
    gr.api(models_info, api_name="models")
