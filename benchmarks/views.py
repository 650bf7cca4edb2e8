"""How fast a link opens its view (issue 35, item 6), in Chromium, for every tab.

For each tab, a link to a view that is not the tab's default (the settings of its lesson's first
step that differ from the tab's defaults: ``?tab=<id>&<key>=<value>...``) is opened in a fresh
browser context. A script installed before the page's own (every 20 ms) records, in milliseconds
from navigation start:

- **first paint** (``first-contentful-paint``);
- **rendered**: the tab buttons are on the page, and which tab is selected then;
- **values held**: every control the link sets shows the link's value in the page (its input's
  value, or the label of its checked option; numbers compared as numbers). The page is served
  with the link's values in its config (``playground/first_page.py``), so this is at first render;
- **result shown**: after that, Gradio's progress indicators have come and gone (or none came
  within 2 s) and nothing has been pending for 0.5 s.

Target (idle): values held within 1 s of first paint. Run idle, then with ``--busy 4`` other
clients each asking the Guidance tab for 4 images of 25 steps in a loop. The app is built and
served in this process, as the tests serve it, so the probe knows its controls' page ids.

    python -m benchmarks.views [--tabs sde_ode,flows] [--busy 0] [--runs 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import threading
import time
import urllib.parse
from pathlib import Path

CHROMIUM = os.environ.get("PLAYGROUND_CHROMIUM", "/usr/bin/chromium")
TARGET_MS = 1000

# Installed before the page's own scripts (``window.__gpExpect`` is set just before it).
PROBE_JS = """
(() => {
  const s = window.__gpProbe = {paint: null, rendered: null, selected: null, held: null, shown: null};
  let busySeen = false, idleSince = null;
  const same = (a, b) => a === b || (a !== "" && b !== "" && !isNaN(+a) && !isNaN(+b) && +a === +b);
  const find = ({dom, tab, label}) => dom ? document.getElementById(dom) :
    ([...document.querySelectorAll(`#tab-${tab} [data-testid=block-info]`)].find(e => e.innerText.trim() === label) || {closest: () => null})
      .closest('.block');
  const shows = (want) => {
    const el = find(want), text = want.text;
    if (!el) return false;
    const texts = [...el.querySelectorAll('input:not([type=radio]):not([type=checkbox]), textarea')].map(i => i.value)
      .concat([...el.querySelectorAll('input[type=radio]:checked')].map(i => ((i.closest('label') || {}).innerText || i.value).trim()))
      .concat([...el.querySelectorAll('input[type=checkbox]')].map(i => String(i.checked)));
    return texts.some(t => same(t, text));
  };
  const tick = () => {
    const now = performance.now();
    const paint = performance.getEntriesByName('first-contentful-paint')[0];
    if (paint) s.paint = paint.startTime;
    const tabs = [...document.querySelectorAll('button[role=tab]')];
    if (s.rendered === null && tabs.length) {
      s.rendered = now;
      s.selected = ((tabs.find(b => b.getAttribute('aria-selected') === 'true') || {}).innerText || '').trim();
    }
    if (s.held === null && tabs.length && window.__gpExpect.every(shows)) s.held = now;
    if (s.held !== null && s.shown === null) {
      const busy = [...document.querySelectorAll('.wrap.pending, .wrap.generating, .progress-text')]
        .some(e => e.getBoundingClientRect().width > 0);
      if (busy) { busySeen = true; idleSince = null; } else if (idleSince === null) idleSince = now;
      if (idleSince !== null && now - idleSince >= 500 && (busySeen || now - s.held >= 2000)) s.shown = idleSince;
    }
    if (s.shown === null) setTimeout(tick, 20);
  };
  tick();
})();
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _same(a: list[str] | None, b: list[str]) -> bool:
    """Two link values alike, numbers compared as numbers ("4" and "4.0")."""
    if a is None:
        return False
    try:
        return float(a[0]) == float(b[0])
    except ValueError:
        return a == b


def link_of(lesson, bindings: list) -> dict[str, str]:
    """The settings of the lesson's first step that differ from its tab's defaults, as a link's values."""
    from playground import lessons

    binding = bindings[0]
    defaults = lessons.view_fields({k: getattr(binding.defaults(), k) for k in binding.components})
    for step in lesson.steps:
        changed = {k: v[0] for k, v in lessons.view_fields(step.view).items()
                   if k in binding.components and not _same(defaults.get(k), v)}
        if changed:
            return changed
    return {}


def shown_text(component, value) -> str:
    """What the page shows for ``value`` in ``component``: a choice's label, else the value."""
    for choice in getattr(component, "choices", None) or []:
        if isinstance(choice, (tuple, list)) and choice[1] == value:
            return str(choice[0])
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def expectations(tab: str, bindings: list, values: dict[str, str]) -> list[dict]:
    """Per control the link sets: how to find it in the page (its element id, else its label in
    the tab) and the text it should show."""
    from playground import sharing

    kept, _ = sharing.tab_values(bindings, {k: [v] for k, v in values.items()})
    return [{"dom": b.components[name].elem_id, "tab": tab, "label": b.components[name].label,
             "text": shown_text(b.components[name], value)}
            for b, mine in zip(bindings, kept) for name, value in mine.items()]


def open_view(browser, base: str, tab: str, values: dict[str, str], expect: list[dict], timeout_s: float = 120) -> dict:
    """The moments (ms from navigation) for one fresh page on the link."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = context.new_page()
        page.add_init_script(f"window.__gpExpect = {json.dumps(expect)};\n{PROBE_JS}")
        page.goto(f"{base}/?{urllib.parse.urlencode({'tab': tab, **values})}", wait_until="commit")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            got = page.evaluate("window.__gpProbe || {}")
            if got.get("shown") is not None:
                return got
            time.sleep(0.2)
        return {"paint": None, "rendered": None, "selected": None, "held": None, "shown": None,
                **page.evaluate("window.__gpProbe || {}")}
    finally:
        context.close()


def busy_clients(base: str, n: int, stop: threading.Event) -> None:
    """``n`` clients computing in a loop: the Guidance tab's 4 images, 25 steps (its default run)."""
    def work():
        from gradio_client import Client

        client = Client(base, verbose=False)
        while not stop.is_set():
            try:
                client.predict("a red circle", "cfg", 3.0, 4, 25, 0, api_name="/guidance")
            except Exception:  # noqa: BLE001 - a busy client only loads the server
                time.sleep(0.5)

    for _ in range(n):
        threading.Thread(target=work, daemon=True).start()


def measure(tabs: list[str], busy: int, runs: int) -> list[dict]:
    """Serve the app here, then open each tab's link ``runs`` times (after one warm-up page)."""
    from playwright.sync_api import sync_playwright

    from playground.app import build_app, launch_kwargs

    demo = build_app()
    demo.launch(**launch_kwargs(port=free_port()), prevent_thread_lock=True, quiet=True)
    base, stop, rows = demo.local_url.rstrip("/"), threading.Event(), []
    page = demo.link_page
    links = {lesson.tab: link_of(lesson, page.bindings[lesson.tab]) for lesson in reversed(page.lessons.values())}
    try:
        busy_clients(base, busy, stop)
        time.sleep(5 if busy else 0)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"])
            tab = tabs[0]
            open_view(browser, base, tab, links[tab], expectations(tab, page.bindings[tab], links[tab]))  # warm-up
            for _ in range(runs):
                for tab in tabs:
                    got = open_view(browser, base, tab, links[tab], expectations(tab, page.bindings[tab], links[tab]))
                    rows.append({"tab": tab, "busy": busy, **got})
            browser.close()
    finally:
        stop.set()
        demo.close()
    return rows


def table(rows: list[dict], titles: dict[str, str]) -> str:
    """Markdown: per view, ms from navigation to first paint, then from first paint to each moment."""
    lines = ["| tab | other clients | first paint | rendered | link's tab at render | values held | result | values within 1 s |",
             "| --- | ---: | ---: | ---: | :---: | ---: | ---: | :---: |"]
    for r in rows:
        paint = r["paint"] or 0.0

        def after(key: str) -> str:
            return "timed out" if r.get(key) is None else f"{r[key] - paint:,.0f}"

        at_render = "yes" if r.get("selected") == titles.get(r["tab"]) else "no"
        ok = r.get("held") is not None and r["held"] - paint <= TARGET_MS
        lines.append(f"| {r['tab']} | {r['busy']} | {paint:,.0f} | {after('rendered')} | {at_render} | "
                     f"{after('held')} | {after('shown')} | {'yes' if ok else 'no'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    from playground.__main__ import configure_environment

    configure_environment()  # as the CLI sets up the server process, before gradio or torch loads
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tabs", default="", help="comma-separated tab ids (default: every tab with a lesson)")
    parser.add_argument("--busy", type=int, default=0, help="other clients computing meanwhile")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--json", default="", help="also write the rows to this file")
    args = parser.parse_args(argv)
    from playground import tabs as playground_tabs

    tabs = [t for t in args.tabs.split(",") if t] or [t for t in playground_tabs.TAB_IDS]
    rows = measure(tabs, args.busy, args.runs)
    print(table(rows, {t: playground_tabs.get(t).title for t in tabs}))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
