"""A link's view in the page's first render (issue 35, item 6).

A share link (``?tab=guidance&guidance_scale=0``) or a lesson link (``?lesson=attention&step=2``)
used to open on the tab's defaults: the link's values reached the controls only once the page had
rendered and its load events had run (2.7-3.7 s after the controls appeared here). Now the page is
served with them: the config Gradio inlines into the page (``window.gradio_config``) is rewritten
for the request, the link's tab selected and the link's values set as the controls' values, read
and checked exactly as the load event reads them (``sharing.tab_values``). The load events still
run (they warn about what was dropped and draw the view); they set the same values again.

Only a page (a ``text/html`` response carrying the config) whose query names a tab or a lesson is
touched; everything else streams through unchanged.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from playground import lessons, sharing

CONFIG = re.compile(rb"(<script>window\.gradio_config = )(.*?)(;</script>)", re.DOTALL)
ASKS = re.compile(rb"(^|&)(tab|lesson)=")


@dataclass
class LinkPage:
    """What a page's first render needs to show a link: the app's ``gr.Tabs`` id, each tab's
    Bindings, and the lessons (``playground.lessons.Lesson``) by id."""

    tabs_id: int
    bindings: dict[str, list] = field(default_factory=dict)
    lessons: dict[str, Any] = field(default_factory=dict)

    def link(self, query: str) -> tuple[str | None, dict[int, Any]]:
        """(the tab to select, ``{component id: value}``) for a page's query; (None, {}) when it
        asks for nothing this app has."""
        items = sharing.search_items(query)
        lesson = self._lesson_view(dict(items))
        if lesson is not None:
            return lesson
        tab_id, fields, _ = sharing.read_link(items, list(self.bindings))
        if tab_id is None:
            return None, {}
        kept, _ = sharing.tab_values(self.bindings[tab_id], fields)
        return tab_id, {b.components[name]._id: value for b, values in zip(self.bindings[tab_id], kept)
                        for name, value in values.items()}

    def _lesson_view(self, query: dict) -> tuple[str, dict[int, Any]] | None:
        """A lesson link's step: its tab and view (the same keys as a share link)."""
        lesson = self.lessons.get(query.get("lesson"))
        k = lessons.whole_number(query.get("step", 1))
        if lesson is None or lesson.tab not in self.bindings or k is None or not 1 <= k <= len(lesson.steps):
            return None
        return self.link(lessons.view_query(lesson.tab, lesson.steps[k - 1].view))


def rewrite(config: dict, tabs_id: int, tab_id: str, values: dict[int, Any]) -> dict:
    """``config`` (Gradio's page config) with ``tab_id`` selected and ``values`` on their components."""
    for component in config.get("components", []):
        if component.get("id") in values:
            component.setdefault("props", {})["value"] = values[component["id"]]
        elif component.get("id") == tabs_id:
            component.setdefault("props", {})["selected"] = tab_id
    return config


def to_page_json(config: dict) -> bytes:
    """JSON safe inside a ``<script>``, escaped as Gradio's own template escapes it."""
    text = json.dumps(config, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("'", "\\u0027").encode())


def rewrite_page(body: bytes, page: LinkPage, query: str) -> bytes:
    """The page's HTML with its inlined config showing the link; unchanged if there is nothing to show."""
    tab_id, values = page.link(query)
    match = CONFIG.search(body)
    if tab_id is None or match is None:
        return body
    try:
        config = json.loads(match.group(2))
        fresh = to_page_json(rewrite(config, page.tabs_id, tab_id, values))
    except ValueError:  # not the config we know: serve the page as Gradio made it
        return body
    return body[:match.start(2)] + fresh + body[match.end(2):]


class LinkFirstPage:
    """ASGI middleware: a page opened on a link is served with the link's view (``rewrite_page``).
    The app's ``LinkPage`` is the Blocks' ``link_page`` attribute (set by ``build_app``)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        query = scope.get("query_string", b"") if scope["type"] == "http" else b""
        page = getattr(_blocks(scope), "link_page", None)
        if scope["type"] != "http" or scope.get("method") != "GET" or page is None or not ASKS.search(query):
            return await self.app(scope, receive, send)
        held: dict = {}
        chunks: list[bytes] = []

        async def buffered(message):
            if message["type"] == "http.response.start":
                if not _is_html(message):
                    held["pass"] = True
                    return await send(message)
                held["start"] = message
                return None
            if held.get("pass") or message["type"] != "http.response.body":
                return await send(message)
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return None
            body = rewrite_page(b"".join(chunks), page, query.decode("latin-1"))
            await send(_with_length(held["start"], len(body)))
            return await send({"type": "http.response.body", "body": body})

        return await self.app(scope, receive, buffered)


def _blocks(scope):
    app = scope.get("app")
    return app.get_blocks() if hasattr(app, "get_blocks") else None


def _is_html(message: dict) -> bool:
    return any(k.lower() == b"content-type" and v.startswith(b"text/html") for k, v in message.get("headers", []))


def _with_length(start: dict, length: int) -> dict:
    headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
    return {**start, "headers": [*headers, (b"content-length", str(length).encode())]}
