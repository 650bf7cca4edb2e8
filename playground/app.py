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

from playground import first_page, gradio_fixes, home, lesson_player, lessons, serving, settings, sharing, tempfiles
from playground import tabs as playground_tabs
from playground.theme import CSS, HEAD, THEME


def build_app(tabs: list[str | playground_tabs.Tab] | None = None) -> gr.Blocks:
    """The Blocks app with the Home tab and the chosen tabs: ids of ``playground.tabs.TAB_IDS`` (all
    of them by default) or ``Tab`` objects (a tab outside the list, such as the docs' example)."""
    settings.limit_image_pixels()
    gradio_fixes.install()
    chosen = [playground_tabs.get(t) if isinstance(t, str) else t
              for t in (playground_tabs.TAB_IDS if tabs is None else tabs)]
    found = lessons.load_for(chosen)  # read and checked here; against the controls once built
    with gradio_fixes.building():  # the server app and the page's config are made once, by launch
        with gr.Blocks(title="Generative Playground", analytics_enabled=False) as demo:
            player = lesson_player.panel()  # one, above the tabs, hidden until a lesson starts
            with gr.Tabs() as tabs:
                with gr.Tab("Home", id="home") as home_tab:
                    home.build(demo, chosen, tabs)
                    cards = lesson_player.home_row(found, {spec.id: spec.title for spec in chosen})
                shared = build_tabs(demo, chosen, {lesson.tab for lesson in found})
            sharing.wire(demo, tabs, home_tab, shared)
            lessons.check_all(found, shared)  # a broken lesson stops the start here
            lessons.wire(found)
            lesson_player.wire(demo, tabs, player, shared, cards, found)
        # a link's view in the page's first render (first_page.LinkFirstPage reads it per request)
        demo.link_page = first_page.LinkPage(tabs._id, {s.tab_id: s.bindings for s in shared if s.bindings},
                                             {lesson.id: lesson for lesson in found})
        demo.queue(max_size=settings.QUEUE_MAX_SIZE,
                   default_concurrency_limit=settings.DEFAULT_CONCURRENCY_LIMIT)
    return demo


def build_tabs(demo: gr.Blocks, chosen: list, with_lessons: set[str]) -> list:
    """Each tab: its Copy-link row (with a Lesson button if it has a lesson), its own content, its
    Python panel; their sharing pieces."""
    shared = []
    for spec in chosen:
        with gr.Tab(spec.title, id=spec.id, elem_id=f"tab-{spec.id}") as tab:
            view = sharing.Shared(spec.id, tab)
            sharing.link_row(view, lesson_player.start_button if spec.id in with_lessons else None)
            view.binding = spec.build_function()(demo)  # a tab's build returns its Binding (or None)
            sharing.python_panel(view)
        shared.append(view)
    return shared


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
        "app_kwargs": {"middleware": [Middleware(RefuseRemoteFiles), Middleware(serving.Serving, lifecycle=lifecycle),
                                      Middleware(first_page.LinkFirstPage)]},
    }
