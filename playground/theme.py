"""The page's look, shared by the app (``playground/app.py``) and a tab launched on its own
(``python -m demos.<id>.ui``): the theme, the CSS the tabs' classes (``gp-card``,
``gp-primary-row``, ``gp-scroll``) rely on, and the page head."""

from __future__ import annotations

import gradio as gr

from playground import plots

THEME = gr.themes.Soft(primary_hue="indigo")
CSS = """
.gp-card {border: 1px solid var(--border-color-primary); border-radius: 10px; padding: 12px 14px;}
.gp-live .gp-card {cursor: pointer;}
.gp-live .gp-card:hover {border-color: var(--color-accent); background: var(--background-fill-secondary);}
.gp-card .gp-open {color: var(--color-accent); margin: 4px 0 0 0;}
.gp-card h3 {margin: 0 0 4px 0;}
.gp-scroll table {display: block; overflow-x: auto; max-width: 100%;}
.gp-scroll th, .gp-scroll td {white-space: nowrap;}
""" + plots.PLOT_TEXT_CSS + """
/* A tab's main button (Run, Train, Generate) at the end of a long column of controls stays in
   view at the screen's bottom while that column is on screen (issue 14: below the fold at 1280x800). */
.gradio-container {overflow: clip !important;}  /* Gradio's overflow: hidden would disable any sticky */
.gp-primary-row {position: sticky !important; bottom: 0; z-index: 1000 !important; padding: 8px 0 !important;
  background: var(--body-background-fill) !important; box-shadow: 0 -6px 8px -6px rgba(0,0,0,0.25);
  flex-wrap: nowrap !important;}
.gp-primary-row > button {min-width: 0 !important;}
/* A plot's Gradio label sits above the figure, not over its titles. */
.block:has(.js-plotly-plot) [data-testid="block-label"] {position: static !important; margin-bottom: 4px;}
/* Tables scroll sideways instead of breaking words letter by letter (issue 14). */
table th, table td {overflow-wrap: normal; word-break: normal;}
/* Phones (issue 14): Home cards, plots, images and galleries take a whole row each. */
@media (max-width: 640px) {
  .gp-cards > .block, .gp-cards > .column,
  .row > .block:has(.js-plotly-plot), .row > .block:has(> .plot-container),
  .row > .column:has(.js-plotly-plot), .row > .block:has(.image-container), .row > .block:has(.gallery-container) {
    min-width: 100% !important; flex-basis: 100% !important;
  }
  .grid-container {grid-template-columns: repeat(2, minmax(0, 1fr)) !important;}  /* galleries: 2 across, none cut off */
  .js-plotly-plot .modebar-container {display: none !important;}  /* the toolbar sat over the plot titles */
}
/* The lesson player (playground/lesson_player.py) and the Home tab's lesson cards. */
.gp-lesson {border: 2px solid var(--color-accent); border-radius: 10px; padding: 10px 14px !important;}
.gp-lesson .gp-lesson-nav {flex-wrap: wrap !important;}
.gp-lesson .gp-lesson-nav > button {min-width: 0 !important; flex: 1 1 30% !important;}
[data-gp-covered] {filter: blur(7px); opacity: 0.55; pointer-events: none; user-select: none;}
.gp-lesson-card {border: 1px solid var(--border-color-primary); border-radius: 10px; padding: 10px 14px; cursor: pointer;}
.gp-lesson-card:hover {border-color: var(--color-accent); background: var(--background-fill-secondary);}
.gp-lesson-card h3 {margin: 0 0 4px 0;}
"""



# Gradio's own footer and API page on phones (issue 14: "the API link is gone on phones"). In the page's
# head, not in CSS: Gradio scopes the rules of ``css`` inside @media to the page's content, which the
# footer and the API page are not part of.
HEAD = """<style>
@media (max-width: 640px) {
  footer .show-api {display: flex !important;}  /* Gradio hides "Use via API" under 640 px */
  .api-docs .banner-wrap .counts {display: none !important;}  /* the API Recorder ran past the screen, under the close button */
}
</style>"""


def launch_kwargs() -> dict:
    """The look's launch settings (``theme``, ``css``, ``head``), for a tab launched on its own."""
    return {"theme": THEME, "css": CSS, "head": HEAD}
