"""How long each tab's default page is, and whether anything spills sideways (issue 35, item 7).

Each tab is opened in Chromium on a fresh page (``?tab=<id>``), at 1280x800 and at 412x915, and
measured once it has drawn its opening views (nothing pending and its plots drawn, unchanged for a
second): the page's height in CSS pixels (``document.documentElement.scrollHeight``), in screens of
that size, and the elements that reach past the screen's right edge outside a horizontal scroller.

Targets: at most 3 screens at 1280x800 (2,400 px) and 6 at 412x915 (5,500 px); nothing sideways.

    python -m benchmarks.pages [--tabs sde_ode,flows] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os

from benchmarks.views import free_port

CHROMIUM = os.environ.get("PLAYGROUND_CHROMIUM", "/usr/bin/chromium")
SIZES = {"desk": ({"width": 1280, "height": 800}, 2400), "phone": ({"width": 412, "height": 915}, 5500)}

SPILL_JS = """
() => {
  const vw = document.documentElement.clientWidth, out = [];
  const scrolls = el => { for (let e = el.parentElement; e && e !== document.body; e = e.parentElement)
      if (['auto', 'scroll', 'hidden'].includes(getComputedStyle(e).overflowX)) return true; return false; };
  for (const el of document.querySelectorAll('body *')) {
    if (el.closest('svg, .js-plotly-plot, canvas, [aria-hidden=true]')) continue;
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0 || getComputedStyle(el).visibility === 'hidden') continue;
    if (r.right > vw + 1 && !scrolls(el))
      out.push(`<${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}> "${el.textContent.trim().slice(0, 30)}" to ${Math.round(r.right)} px`);
  }
  return {height: document.documentElement.scrollHeight, wide: document.documentElement.scrollWidth, spill: out.slice(0, 5)};
}
"""


def measure(tabs: list[str]) -> list[dict]:
    """Serve the app here; open each tab at each size and measure it once settled."""
    from playwright.sync_api import sync_playwright

    from playground.app import build_app, launch_kwargs
    from tests.e2e.conftest import CHROMIUM_ARGS, wait_until_settled

    demo = build_app()
    demo.launch(**launch_kwargs(port=free_port()), prevent_thread_lock=True, quiet=True)
    base, rows = demo.local_url.rstrip("/"), []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for size, (viewport, limit) in SIZES.items():
                context = browser.new_context(viewport=viewport, is_mobile=size == "phone", has_touch=size == "phone")
                page = context.new_page()
                for tab in tabs:
                    page.goto(f"{base}/?tab={tab}", wait_until="load")
                    page.wait_for_selector("button[role=tab]", timeout=60_000)
                    wait_until_settled(page, polls=5)
                    got = page.evaluate(SPILL_JS)
                    rows.append({"tab": tab, "size": size, "viewport": viewport, "limit": limit, **got})
                    print(json.dumps(rows[-1]), flush=True)
                context.close()
            browser.close()
    finally:
        demo.close()
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| tab | size | height (px) | screens | within | sideways |", "| --- | --- | ---: | ---: | :---: | --- |"]
    for r in rows:
        screens = r["height"] / r["viewport"]["height"]
        spill = "; ".join(r["spill"]) or ("page wider" if r["wide"] > r["viewport"]["width"] else "none")
        lines.append(f"| {r['tab']} | {r['viewport']['width']}x{r['viewport']['height']} | {r['height']:,} | "
                     f"{screens:.1f} | {'yes' if r['height'] <= r['limit'] else 'no'} | {spill} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    from playground.__main__ import configure_environment

    configure_environment()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tabs", default="", help="comma-separated tab ids (default: every tab)")
    parser.add_argument("--json", default="", help="also write the rows to this file")
    args = parser.parse_args(argv)
    from playground import tabs as playground_tabs

    rows = measure([t for t in args.tabs.split(",") if t] or list(playground_tabs.TAB_IDS))
    print(table(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
