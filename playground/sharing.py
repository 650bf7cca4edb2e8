"""Share exactly this view (issue 13): what a tab gets from its ``Binding`` alone.

- **The URL is the view.** The page's URL carries the tab and every bound field whose value
  differs from the one the control opens with (``?tab=guidance&guidance_scale=7.5``); the browser
  rewrites it (``history.replaceState``, no reload) when a tab is chosen or a setting changes. Only
  the query changes, so it works under ``--root-path`` and on a ``--share`` link alike.
- **Opening such a URL** selects the tab, checks every value as the controls would (the
  components' bounds and choices, then the Binding's ``check``), drops what fails with one visible
  warning, sets the rest on the controls and shows that view (the Binding's ``on_open``). A value
  from a URL is only ever a control's value: never HTML, never script.
- **"Copy link to this view"** at the top of every tab (the link also shown as text), and a
  **"Reproduce in Python"** panel at its bottom: the ``gradio_client`` call of the tab's endpoint for
  the current settings (the Binding's ``Api``).

``playground/app.py`` calls ``link_row`` and ``python_panel`` inside each tab and ``wire`` once.
"""

from __future__ import annotations

import dataclasses
import html
import inspect
import json
import logging
import math
import re
import textwrap
import typing
import urllib.parse
from dataclasses import dataclass
from typing import Any, Callable

import gradio as gr

from playground.ui_helpers import Binding, File, Opening, user_errors

log = logging.getLogger(__name__)

TAB_KEY = "tab"
MAX_CHARS = 4000  # a longer text is left out of a URL, and refused in one
MAX_SEARCH = 65_536  # of a query string, the part read
PLACEHOLDER_URL = "http://127.0.0.1:7860/"
SILENT_KEYS = {"view", "deep_link", "lesson", "step"}  # Gradio's own, a lesson's; keys starting with "__" too (``__theme``)


@dataclass
class Shared:
    """One tab's sharing pieces (made by ``link_row`` and ``python_panel``)."""

    tab_id: str
    tab: gr.Tab
    binding: Binding | list[Binding] | None = None  # what the tab's build returned

    @property
    def bindings(self) -> list[Binding]:
        if self.binding is None:
            return []
        return list(self.binding) if isinstance(self.binding, (list, tuple)) else [self.binding]
    row: gr.Column | None = None
    copy: gr.Button | None = None
    link: gr.Textbox | None = None
    note: gr.Markdown | None = None
    panel: gr.Accordion | None = None
    code: gr.Code | None = None
    start: gr.Button | None = None  # the tab's "Lesson" button (playground/lesson_player.py), if it has one
    triggers: dict = dataclasses.field(default_factory=dict)  # Binding index -> the textbox whose link ``show`` draws


# ----------------------------------------------------------------------------- layout
def link_row(shared: Shared, start: Callable[[str], gr.Button] | None = None) -> None:
    """The tab's "Copy link to this view" row (at its top; filled in by ``wire``), and ``start(tab id)``
    (the tab's Lesson button) at its head when given."""
    with gr.Column(variant="compact") as shared.row:
        with gr.Row(equal_height=False):
            if start is not None:
                shared.start = start(shared.tab_id)
            shared.copy = gr.Button("Copy link to this view", size="sm", scale=0, min_width=190,
                                    elem_id=f"share-{shared.tab_id}-copy", elem_classes=["gp-share-copy"])
            shared.link = gr.Textbox(show_label=False, placeholder="the link to these settings appears here",
                                     interactive=False, max_lines=1, lines=1, scale=3, min_width=200, container=False,
                                     elem_id=f"share-{shared.tab_id}-link", buttons=["copy"])
        shared.note = gr.Markdown("", visible=False, elem_id=f"share-{shared.tab_id}-note")


def python_panel(shared: Shared) -> None:
    """The tab's "Reproduce in Python" accordion (at its bottom)."""
    with gr.Accordion("Reproduce in Python", open=False, elem_id=f"share-{shared.tab_id}-python") as shared.panel:
        gr.Markdown("The same numbers from a script: the tab's endpoint called with "
                    "[`gradio_client`](https://www.gradio.app/guides/getting-started-with-the-python-client) "
                    "for the settings above (it follows them as they change).")
        shared.code = gr.Code(language="python", interactive=False, label="gradio_client",
                              elem_id=f"share-{shared.tab_id}-code")


# ----------------------------------------------------------------------------- reading a link
def search_items(search: Any) -> list[tuple[str, str]]:
    """A query string (``location.search`` as the page opened) as (key, value) pairs."""
    text = str(search or "")[:MAX_SEARCH].lstrip("?")
    return urllib.parse.parse_qsl(text, keep_blank_values=True)


def _name(key: str) -> str:
    """A key from a URL, safe and short enough to name in a message."""
    return re.sub(r"[^A-Za-z0-9_.-]", "?", key)[:40] or "''"


def read_link(items: list[tuple[str, str]], tab_ids: list[str]) -> tuple[str | None, dict[str, list[str]], list[str]]:
    """(tab id or None, the other keys' values, problems): a query split into its parts."""
    problems: list[str] = []
    fields: dict[str, list[str]] = {}
    tabs = [v for k, v in items if k == TAB_KEY]
    for key, value in items:
        if key != TAB_KEY and not key.startswith("__") and key not in SILENT_KEYS:
            fields.setdefault(key, []).append(value)
    if not tabs:
        if fields:
            problems.append("the link names no tab (tab=...), so its settings were ignored")
        return None, {}, problems
    if len(set(tabs)) > 1:
        problems.append("the link names more than one tab, so it was ignored")
        return None, {}, problems
    if tabs[0] not in tab_ids:
        problems.append(f"there is no tab {_name(tabs[0])!r} here (tabs: {', '.join(tab_ids)})")
        return None, {}, problems
    return tabs[0], fields, problems


def _kind(binding: Binding, name: str) -> type:
    hint = typing.get_type_hints(binding.params_type).get(name, str)
    return hint if hint in (bool, int, float) else str


def _coerce(text: str, kind: type) -> Any:
    """A URL's text as the field's type; ``ValueError`` saying why not."""
    if len(text) > MAX_CHARS:
        raise ValueError(f"longer than {MAX_CHARS:,} characters")
    if kind is str:
        return text
    if kind is bool:
        if text.lower() in ("true", "1"):
            return True
        if text.lower() in ("false", "0"):
            return False
        raise ValueError("must be true or false")
    try:
        number = float(text)
    except ValueError:
        raise ValueError("must be a number") from None
    if not math.isfinite(number):
        raise ValueError("must be a finite number")
    if kind is int:
        if number != int(number) or abs(number) > 2**53:
            raise ValueError("must be a whole number")
        return int(number)
    return number


def _options(component) -> list:
    return [c[1] if isinstance(c, (tuple, list)) else c for c in (getattr(component, "choices", None) or [])]


def _fits_component(component, value: Any, dynamic: bool) -> None:
    """The control's own limits: a dropdown's or radio's choices, a slider's or number's bounds
    (``dynamic``: bounds that follow other fields, left to the Binding's check)."""
    if isinstance(component, (gr.Dropdown, gr.Radio)):
        options = _options(component)
        if value not in options:
            raise ValueError(f"must be one of {', '.join(map(str, options))}")
    elif isinstance(component, (gr.Slider, gr.Number)) and not dynamic:
        low, high = getattr(component, "minimum", None), getattr(component, "maximum", None)
        if (low is not None and value < low) or (high is not None and value > high):
            raise ValueError(f"must be in [{'' if low is None else f'{low:g}'}, {'' if high is None else f'{high:g}'}]")


def link_values(binding: Binding, fields: dict[str, list[str]]) -> tuple[dict[str, Any], list[str]]:
    """The values a link sets on ``binding``'s controls, and what was dropped and why.

    Each value is read as its field's type, checked against its control's limits, then, with the
    values kept so far over the defaults, by the Binding's ``check``: the validation the controls
    get. A field given twice, an unknown field and a value that fails are dropped; the rest apply.
    """
    defaults, kept, problems = binding.defaults(), {}, []
    for key, given in fields.items():
        if key not in binding.components:
            problems.append(f"unknown setting {_name(key)!r}")
            continue
        if len(given) > 1:
            problems.append(f"{key} was given {len(given)} times")
            continue
        try:
            value = _coerce(given[0], _kind(binding, key))
            _fits_component(binding.components[key], value, key in binding.dynamic)
            if binding.check is not None:
                binding.check(dataclasses.replace(defaults, **kept, **{key: value}))
        except (ValueError, TypeError) as err:  # a check meeting a value it never sees from its control
            problems.append(f"{key}: {err}")
        else:
            kept[key] = value
    return kept, problems


def claim(bindings: list[Binding], fields: dict[str, list[str]]) -> tuple[list[dict[str, list[str]]], list[str]]:
    """A tab's link fields split by Binding (``prefix`` + field name), and the keys none of them has."""
    owned: list[dict[str, list[str]]] = [{} for _ in bindings]
    problems = []
    for key, given in fields.items():
        for i, binding in enumerate(bindings):
            name = key[len(binding.prefix):] if key.startswith(binding.prefix) else None
            if name in binding.components:
                owned[i][name] = given
                break
        else:
            problems.append(f"unknown setting {_name(key)!r}")
    return owned, problems


def tab_values(bindings: list[Binding], fields: dict[str, list[str]]) -> tuple[list[dict[str, Any]], list[str]]:
    """``link_values`` for each of a tab's Bindings: the values kept per Binding, and every problem."""
    owned, problems = claim(bindings, fields)
    kept = []
    for binding, mine in zip(bindings, owned):
        values, more = link_values(binding, mine)
        kept.append(values)
        problems += [f"{binding.prefix}{p}" for p in more]
    return kept, problems


def message(problems: list[str]) -> str:
    """One warning for a link's problems, as text (a toast renders HTML: every part is escaped)."""
    shown = [html.escape(p if len(p) <= 200 else p[:200] + "…", quote=False) for p in problems[:8]]
    more = f"; and {len(problems) - 8} more" if len(problems) > 8 else ""
    return "Some of this link's settings were not applied: " + "; ".join(shown) + more + "."


# ----------------------------------------------------------------------------- the Python snippet
def _literal(value: Any) -> str:
    if isinstance(value, File):
        return f"handle_file({value.path!r})"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return repr(int(value))
    return repr(value)


def snippet(binding: Binding, params: Any, url: str) -> str:
    """The ``gradio_client`` call of the tab's endpoint for ``params`` (a script that runs as is)."""
    api = binding.api
    try:
        args = api.args(params)
    except ValueError as err:
        return f"# These settings are not valid yet: {err}".replace("\n", " ")
    files = any(isinstance(v, File) for v in args.values())
    lines = [f"# {line}" for line in textwrap.wrap(api.note, 96)] if api.note else []
    lines += [f"from gradio_client import Client{', handle_file' if files else ''}", "",
              f"client = Client({url!r})", "result = client.predict("]
    lines += [f"    {_literal(value)},  # {name}" for name, value in args.items()]
    lines += [f"    api_name={'/' + api.name!r},", ")", "print(result)"]
    return "\n".join(lines)


def page_url(text: Any) -> str:
    """The app's address as the browser sees it (``location.origin + pathname``), or a placeholder."""
    text = str(text or "")
    return text if re.fullmatch(r"https?://[^\s'\"\\]{1,500}", text) else PLACEHOLDER_URL


# ----------------------------------------------------------------------------- browser side
VIEW_JS = """
() => {
  if (window.gpView) return;
  window.gpView = {
    initial: window.location.search,  // the link the page was opened with (read by the tabs' link events)
    // Rewrite the URL's query for one tab's values (defaults left out); returns the page's address.
    write(config, values) {
      const here = new URLSearchParams(window.location.search);
      if (!config.force && here.get("tab") !== config.tab) return window.location.href;
      const query = new URLSearchParams();
      for (const [key, value] of here) if (key.startsWith("__")) query.append(key, value);
      if (config.tab !== null) query.set("tab", config.tab);
      config.names.forEach((name, i) => {
        const value = values[i], start = config.defaults[i];
        if (value === null || value === undefined || typeof value === "object") return;
        if (JSON.stringify(value) === JSON.stringify(start) || (value === "" && start === null)) return;
        const text = String(value);
        if (text.length <= config.max) query.set(name, text);
      });
      const search = query.toString();
      history.replaceState(history.state, "", window.location.pathname + (search ? "?" + search : "") + window.location.hash);
      return window.location.href;
    },
    copy(config, values) {
      const url = window.gpView.write(config, values);
      try { navigator.clipboard.writeText(url).catch(() => {}); } catch (e) { /* not a secure context */ }
      return url;
    },
    base() { return window.location.origin + window.location.pathname; },
  };
}
"""


def _config(tab_id: str | None, bindings: list[Binding], force: bool) -> str:
    names = [b.prefix + name for b in bindings for name in b.components]
    defaults = [_json_safe(c.value) for b in bindings for c in b.components.values()]
    return json.dumps({"tab": tab_id, "names": names, "defaults": defaults, "force": force, "max": MAX_CHARS})


def _json_safe(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool)) or value is None else None


def write_all_js(tabs: list[tuple[str, list[Binding]]]) -> str:
    """``write_js(tab, bindings, force=False)`` for every tab at once, on all their controls' values
    in order: the URL written for the tab it names, if any."""
    configs = ", ".join(_config(tab_id, bindings, False) for tab_id, bindings in tabs)
    sizes = [sum(len(b.components) for b in bindings) for _, bindings in tabs]
    return (f"(...values) => {{ if (!window.gpView) return []; let at = 0; const sizes = {json.dumps(sizes)};"
            f" [{configs}].forEach((config, i) => {{ window.gpView.write(config, values.slice(at, at + sizes[i]));"
            f" at += sizes[i]; }}); return []; }}")


def write_js(tab_id: str | None, bindings: list[Binding], force: bool) -> str:
    return f"(...values) => {{ if (window.gpView) window.gpView.write({_config(tab_id, bindings, force)}, values); return []; }}"


# ----------------------------------------------------------------------------- wiring
def wire(demo: gr.Blocks, tabs: gr.Tabs, home: gr.Tab, shared: list[Shared]) -> None:
    """Connect every tab's Binding to the URL, its Copy-link row and its Python panel."""
    private = {"api_visibility": "private"}
    by_id = {s.tab_id: s for s in shared if s.bindings}
    demo.load(None, js=VIEW_JS)
    home.select(None, js=write_js(None, [], force=True))

    @user_errors
    def on_tab(search: str):
        """A link's tab selected, and one warning for whatever of it is not applied."""
        tab_id, fields, problems = read_link(search_items(search), list(by_id))
        if tab_id is not None:
            problems += tab_values(by_id[tab_id].bindings, fields)[1]
        if problems:
            gr.Warning(message(problems), duration=30)  # long enough to read a list
        return [gr.Tabs(selected=tab_id) if tab_id is not None else gr.skip()]

    parts = [Part("link", on_tab, [tabs])]
    for s in shared:
        if not s.bindings:
            s.row.visible = False
            continue
        parts += _wire_tab(demo, s, list(by_id), private)
    _wire_page(demo, shared, parts, private)


@dataclass(frozen=True)
class Part:
    """One piece of the page's load event: ``fn(search)`` (the page's query string) gives the values
    of ``outputs`` (``gr.skip()`` for those it leaves, or a lone ``gr.skip()`` for all)."""

    name: str
    fn: Callable[[str], Any]
    outputs: list


def opening_part(tab_id: str, opening: Opening) -> Part:
    return Part(f"opening of {tab_id}", lambda search: opening.values(), opening.outputs)


def merged(parts: list[Part]) -> tuple[list, Callable[[str], list]]:
    """(outputs, fn): every part's outputs once (in order of first appearance) and ``fn(search)``
    running each part in order, a later part's value for a component over an earlier one's unless
    it is ``gr.skip()``. A part that fails is logged and leaves its outputs as they are: one tab's
    missing checkpoint does not blank the others."""
    outputs = list({c._id: c for p in parts for c in p.outputs}.values())
    slot = {c._id: i for i, c in enumerate(outputs)}

    def fn(search: str) -> list:
        values = [SKIP] * len(outputs)
        for part in parts:
            got = _run_part(part, search)
            for component, value in zip(part.outputs, got):
                if not is_skip(value):
                    values[slot[component._id]] = value
        return values

    return outputs, fn


SKIP = gr.skip()


def is_skip(value: Any) -> bool:
    return isinstance(value, dict) and value.keys() == SKIP.keys() and value["__type__"] == SKIP["__type__"]


def _run_part(part: Part, search: str) -> list:
    try:
        got = part.fn(search)
    except gr.Error as err:
        gr.Warning(html.escape(f"{part.name}: {err.message}", quote=False))
        return [SKIP] * len(part.outputs)
    except Exception:  # noqa: BLE001 - logged; the other parts still open
        log.exception("page load: %s failed", part.name)
        gr.Warning(html.escape(f"{part.name} could not be shown; the error was logged.", quote=False))
        return [SKIP] * len(part.outputs)
    return [SKIP] * len(part.outputs) if is_skip(got) else list(got)


def _wire_page(demo: gr.Blocks, shared: list[Shared], parts: list[Part], private: dict) -> None:
    """The page's one load event: the link's tab, every tab's opening views and every Binding's link
    values (and its trigger, which draws a link's view); then the URL rewritten for the link's tab
    (browser side). One event, not one per tab: see ``ui_helpers.Opening``."""
    outputs, fn = merged(parts)
    query = gr.Textbox(visible=False)  # the page's query string, as the js below gives it

    def on_page(search: str):
        return fn(str(search or ""))

    loaded = demo.load(on_page, query, outputs, js="() => [window.gpView ? window.gpView.initial : window.location.search]",
                       show_progress="hidden", concurrency_limit=None, **private)
    with_bindings = [s for s in shared if s.bindings]
    controls = [c for s in with_bindings for b in s.bindings for c in b.components.values()]
    loaded.then(None, controls, js=write_all_js([(s.tab_id, s.bindings) for s in with_bindings]))


def _wire_tab(demo: gr.Blocks, s: Shared, tab_ids: list[str], private: dict) -> None:
    bindings = s.bindings
    controls = [c for b in bindings for c in b.components.values()]  # in _config's order
    s.tab.select(None, controls, js=write_js(s.tab_id, bindings, force=True))
    gr.on([c.change for c in controls], None, controls, js=write_js(s.tab_id, bindings, force=False),
          show_progress="hidden", **private)
    s.copy.click(None, controls, s.link, js=f"(...values) => window.gpView.copy({_config(s.tab_id, bindings, True)}, values)")
    notes = [b.note for b in bindings if b.note]
    if notes:
        s.note.value, s.note.visible = " ".join(notes), True
    parts = []
    for index in range(len(bindings)):
        parts += _wire_link(s, index, tab_ids, private)
    with_api = [b for b in bindings if b.api is not None]
    if with_api and s.code is not None:
        _wire_code(s, controls, private)
    elif s.panel is not None:
        s.panel.visible = False
    return parts


def _wire_link(s: Shared, index: int, tab_ids: list[str], private: dict) -> list[Part]:
    """A page opened on a link: the binding's opening views, then the link's values on
    ``s.bindings[index]``'s controls (parts of the page's load event), then its view."""
    bindings, binding = s.bindings, s.bindings[index]
    trigger = gr.Textbox(visible=False)  # set only when the link asks for a view other than the default
    s.triggers[index] = trigger  # a lesson step draws its view through it too (playground/lesson_player.py)
    on_values, outputs, on_show = link_event(s.tab_id, bindings, index, tab_ids)
    # 1. the link's values on the controls at once, in the page's load event: no model slot (every
    # page load runs it, and it used to wait behind other users' runs: once past 60 s in a full CI
    # run). The link as the page opened: by then, choosing the tab has rewritten the URL.
    parts = [opening_part(s.tab_id, binding.opening)] if binding.opening is not None else []
    parts.append(Part(f"link of {s.tab_id}", on_values, [*binding.components.values(), trigger]))
    # 2. that view, drawn by the tab's own event (a model slot where it runs a model), only when asked
    if on_show is not None:
        trigger.change(on_show, trigger, outputs, show_progress="full", **private, **binding.show_kwargs)
    return parts


def _wire_code(s: Shared, controls: list, private: dict) -> None:
    """The "Reproduce in Python" panel: the endpoint calls for the tab's current settings."""
    bindings = s.bindings

    def on_code(url: str, *values):
        values = list(values)
        parts = []
        for binding in bindings:
            mine, values = values[:len(binding.components)], values[len(binding.components):]
            if binding.api is not None:
                parts.append(snippet(binding, binding.params_type(**dict(zip(binding.components, mine))), page_url(url)))
        return "\n\n".join(parts)

    on_code.__name__ = f"python_snippet_{s.tab_id}"
    gr.on([s.panel.expand, *[c.change for c in controls]], on_code, [s.link, *controls], s.code,
          js="(...values) => [window.gpView ? window.gpView.base() : '', ...values.slice(1)]",
          trigger_mode="always_last", show_progress="hidden", **private)


def link_event(tab_id: str, bindings: list[Binding], index: int, tab_ids: list[str]):
    """(on_values, outputs, on_show) for a page opened on a link to ``tab_id``: ``on_values(search)``
    gives the link's values for ``bindings[index]``'s controls and, last, the trigger's value: the
    link itself when its values differ from the defaults and the binding has a ``show``, else
    nothing. ``on_show(link)`` (None without a ``show``) runs ``show`` with those values into
    ``outputs``."""
    binding = bindings[index]
    controls = list(binding.components.values())

    def kept_values(search: str) -> dict:
        link_tab, fields, _ = read_link(search_items(search), tab_ids)
        return tab_values(bindings, fields)[0][index] if link_tab == tab_id else {}

    @user_errors
    def on_values(search: str):
        kept = kept_values(search)
        if not kept:
            return [gr.skip()] * (len(controls) + 1)
        shows = binding.show is not None and dataclasses.replace(binding.defaults(), **kept) != binding.defaults()
        return [gr.update(value=kept[name]) if name in kept else gr.skip() for name in binding.components] \
            + [str(search) if shows else gr.skip()]

    suffix = binding.prefix.rstrip("_") and "_" + binding.prefix.rstrip("_")
    on_values.__name__ = f"open_link_{tab_id}{suffix}"
    if binding.show is None:
        return on_values, [], None
    on_show = _show_event(binding, kept_values)
    on_show.__name__ = f"show_link_{tab_id}{suffix}"
    return on_values, list(binding.show_outputs), on_show


def _show_event(binding: Binding, kept_values: Callable[[str], dict]):
    """``on_show(link)``: the binding's ``show`` run with the link's values (the defaults for the rest)."""

    @user_errors
    def on_show(search: str, request: gr.Request = None, progress=gr.Progress()):
        params = dataclasses.replace(binding.defaults(), **kept_values(search))
        wanted = inspect.signature(binding.show).parameters
        extras = {k: v for k, v in (("request", request), ("progress", progress)) if k in wanted}
        result = binding.show(binding.values(params), **extras)
        if inspect.isgenerator(result):
            yield from result
        else:
            yield result

    return on_show
