"""The app shell: a Home tab plus one ``gr.Tab`` per tab of ``playground.tabs``, and launch settings.

A tab is a package ``demos/<id>/`` whose ``__init__.py`` declares ``TAB`` (``playground/tabs.py``);
its ``build(demo)`` is called inside that tab's ``gr.Tab`` and returns the tab's
``ui_helpers.Binding`` (or a list of them, or None): from it alone the tab gets its shareable URL,
a "Copy link to this view" row and a "Reproduce in Python" panel (``playground/sharing.py``).
"""

from __future__ import annotations

import re

import gradio as gr
from starlette.middleware import Middleware
from starlette.responses import PlainTextResponse

from playground import gradio_fixes, home, lessons, plots, serving, settings, sharing, tempfiles
from playground import tabs as playground_tabs

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
"""


def build_app(tabs: list[str | playground_tabs.Tab] | None = None) -> gr.Blocks:
    """The Blocks app with the Home tab and the chosen tabs: ids of ``playground.tabs.TAB_IDS`` (all
    of them by default) or ``Tab`` objects (a tab outside the list, such as the docs' example)."""
    settings.limit_image_pixels()
    gradio_fixes.install()
    chosen = [playground_tabs.get(t) if isinstance(t, str) else t
              for t in (playground_tabs.TAB_IDS if tabs is None else tabs)]
    with gradio_fixes.building():  # the server app and the page's config are made once, by launch
        with gr.Blocks(title="Generative Playground", analytics_enabled=False) as demo:
            shared = []  # tab id -> its Binding, for the URL, Copy link and Reproduce in Python
            with gr.Tabs() as tabs:
                with gr.Tab("Home", id="home") as home_tab:
                    home.build(demo, chosen, tabs)
                for spec in chosen:
                    with gr.Tab(spec.title, id=spec.id, elem_id=f"tab-{spec.id}") as tab:
                        view = sharing.Shared(spec.id, tab)
                        sharing.link_row(view)
                        view.binding = spec.build_function()(demo)  # a tab's build returns its Binding (or None)
                        sharing.python_panel(view)
                    shared.append(view)
            sharing.wire(demo, tabs, home_tab, shared)
            lessons.wire(lessons.for_tabs(shared))  # a broken lesson stops the start here
        demo.queue(max_size=settings.QUEUE_MAX_SIZE,
                   default_concurrency_limit=settings.DEFAULT_CONCURRENCY_LIMIT)
    return demo


class RefuseRemoteFiles:
    """ASGI middleware: a file route given a URL (``/gradio_api/file=https://...``) gets 403.

    Gradio fetches such a URL itself and serves the bytes from this app's origin, which would
    make a shared playground a proxy for any public page (HTML and scripts included). The app
    only ever serves its own outputs, so no file path may be a URL.
    """

    REMOTE = re.compile(r"/file[=/]+\s*([a-z][a-z0-9+.-]*:|//)", re.IGNORECASE)

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and self.REMOTE.search(scope.get("path", "")):
            return await PlainTextResponse("File not allowed: URLs are not served.", 403)(scope, receive, send)
        return await self.app(scope, receive, send)


# Gradio's own footer and API page on phones (issue 14: "the API link is gone on phones"). In the page's
# head, not in CSS: Gradio scopes the rules of ``css`` inside @media to the page's content, which the
# footer and the API page are not part of.
HEAD = """<style>
@media (max-width: 640px) {
  footer .show-api {display: flex !important;}  /* Gradio hides "Use via API" under 640 px */
  .api-docs .banner-wrap .counts {display: none !important;}  /* the API Recorder ran past the screen, under the close button */
}
</style>"""


def launch_kwargs(host: str = settings.DEFAULT_HOST, port: int = settings.DEFAULT_PORT,
                  share: bool = False, root_path: str = "", lifecycle: serving.Lifecycle | None = None) -> dict:
    """Launch settings fit for a public link. ``root_path``: the sub-path a reverse proxy serves
    the app under (``/playground``); ``lifecycle``: the health, readiness and drain state
    (``playground/serving.py``; a fresh one for every tab by default)."""
    lifecycle = lifecycle or serving.Lifecycle(playground_tabs.TAB_IDS)
    return {
        **({"root_path": root_path} if root_path else {}),
        "server_name": host, "server_port": port, "share": share,
        "max_file_size": settings.MAX_FILE_SIZE, "show_error": False, "ssr_mode": False,
        "state_session_capacity": settings.SESSION_CAPACITY,
        # Gradio's run history can write runs to a Hugging Face bucket with the caller's token or,
        # for a browser on this machine (which a --share tunnel also is), the host's own: off.
        "run_history": False,
        "theme": THEME, "css": CSS, "head": HEAD, "footer_links": ["api"],
        # the tabs' downloads (tempfiles.output_folder): outside the system temp folder once the
        # server process has pointed ``tempfile`` at its own tmp/ (tempfiles.configure_process)
        "allowed_paths": [str(tempfiles.root() / "outputs")],
        "app_kwargs": {"middleware": [Middleware(RefuseRemoteFiles), Middleware(serving.Serving, lifecycle=lifecycle)]},
    }
