"""Browser fixtures: Debian's Chromium driven by Playwright, failing on console errors.

Screenshots go to ``artifacts/screenshots/`` (``shot(page, name)``).
"""

import os
from pathlib import Path

import pytest

SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
CHROMIUM = os.environ.get("PLAYGROUND_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


DESK = {"width": 1280, "height": 800}


def open_app(browser, url: str, **context_options):
    """A new page on the app at ``url`` (1280x800 unless ``context_options`` say otherwise: a phone's
    viewport, touch), and the list its browser errors go to."""
    context = browser.new_context(**({"viewport": DESK} | context_options))
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(f"console.{msg.type}: {msg.text}")
            if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    # Not "networkidle": tabs holding gr.State keep a heartbeat connection open for good.
    page.goto(url, wait_until="load")
    page.wait_for_selector("button[role=tab]", timeout=30_000)
    page.wait_for_timeout(500)
    return context, page, errors


@pytest.fixture
def page(browser, app_url):
    """A fresh 1280x800 page on the app; the test fails if the browser logs any error."""
    context, page, errors = open_app(browser, app_url)
    yield page
    context.close()
    assert not errors, "browser console errors:\n" + "\n".join(errors)


@pytest.fixture(scope="module")
def module_page(browser, app_url):
    context, page, errors = open_app(browser, app_url)
    yield page, errors
    context.close()


@pytest.fixture
def shared_page(module_page):
    """One 1280x800 page that a module's tests visit tabs on in turn (a page load of the whole app
    costs seconds); each test gets it with an empty error list and fails on any browser error."""
    page, errors = module_page
    errors.clear()
    page.evaluate("window.scrollTo(0, 0)")
    yield page
    assert not errors, "browser console errors:\n" + "\n".join(errors)


def open_tab(page, title: str) -> None:
    """Click the tab whose button reads ``title`` and wait for it to show; a tab that does not fit
    the row is in Gradio's overflow menu (``More tabs``), as a plain button."""
    tab = page.get_by_role("tab", name=title, exact=True)
    if tab.count() and tab.is_visible():
        tab.click()
    else:
        page.locator("button[aria-label='More tabs']").first.click()  # the app's row (a tab may hold tabs too)
        page.get_by_role("button", name=title, exact=True).click()
    page.wait_for_timeout(300)


def drag(page, selector: str, start: float, end: float, steps: int = 8) -> None:
    """Drag with the mouse across the element at ``selector`` from ``start`` to ``end``
    (fractions of its width), as a user moves a slider."""
    target = page.locator(selector)
    target.scroll_into_view_if_needed()
    box = target.bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * start, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * end, y, steps=steps)
    page.mouse.up()


# True once the page has looked the same for ``n`` polls in a row: no output of any event still pending
# (Gradio's status trackers), and the same number of visible plots, all drawn by plotly.
SETTLED_JS = """
(n) => {
  const plots = [...document.querySelectorAll('.js-plotly-plot')].filter(p => p.getBoundingClientRect().width > 0);
  const busy = [...document.querySelectorAll('.wrap.pending, .wrap.generating, .progress-text')]
    .some(e => e.getBoundingClientRect().width > 0);
  const key = busy || !plots.every(p => p._fullLayout && p.querySelector('.main-svg')) ? null : String(plots.length);
  const s = window.__settled || (window.__settled = {key: null, same: 0});
  if (key !== null && key === s.key) s.same += 1; else { s.key = key; s.same = 0; }
  return s.same >= n;
}
"""


def wait_until_settled(page, polls: int = 5, every_ms: int = 200) -> None:
    """Wait, on events the page shows rather than a fixed time, until the tab shown has drawn its
    opening views: nothing pending and its plots drawn, unchanged for ``polls`` polls in a row."""
    page.evaluate("() => { window.__settled = null; }")
    page.wait_for_function(SETTLED_JS, arg=polls, polling=every_ms, timeout=60_000)


def shot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
