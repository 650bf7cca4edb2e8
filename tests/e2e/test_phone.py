"""Phones are a first-class width (issue 14, item 2): every tab at 412 x 915 in Chromium, reached in
at most two taps, with no horizontal overflow, no text wider than its box or cut off at the screen's
edge (tables scroll instead), and plots one per row. Screenshots: ``phone_<tab>.png``."""

import pytest

from playground.tabs import TAB_IDS as TABS, get as tab_spec
from tests.e2e.conftest import open_app, shot, wait_until_settled

PHONE = {"width": 412, "height": 915}

# Every visible element holding text: its content is not wider than its box, and it is not past the
# screen's edges unless a horizontal scroller holds it (a table). Plots and hidden parts are skipped.
LAYOUT_PROBLEMS_JS = """
() => {
  const vw = document.documentElement.clientWidth, problems = [];
  if (document.documentElement.scrollWidth > window.innerWidth)
    problems.push(`the page is ${document.documentElement.scrollWidth} px wide on a ${window.innerWidth} px screen`);
  const scrolls = el => { for (let e = el.parentElement; e && e !== document.body; e = e.parentElement)
      if (['auto', 'scroll'].includes(getComputedStyle(e).overflowX)) return true; return false; };
  for (const el of document.querySelectorAll('body *')) {
    if (el.closest('svg, .js-plotly-plot, canvas, [aria-hidden=true], .visually-hidden')) continue;
    const r = el.getBoundingClientRect(), s = getComputedStyle(el);
    if (r.width === 0 || r.height === 0 || s.visibility === 'hidden') continue;
    if (![...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim())) continue;
    const what = `<${el.tagName.toLowerCase()}> "${el.textContent.trim().slice(0, 40)}"`;
    if (s.overflowX === 'visible' && s.display !== 'inline' && el.clientWidth > 0 && el.scrollWidth > el.clientWidth + 2)
      problems.push(`${what}: text ${el.scrollWidth} px wide in a ${el.clientWidth} px box`);
    if ((r.right > vw + 1 || r.left < -1) && !scrolls(el))
      problems.push(`${what}: from ${Math.round(r.left)} to ${Math.round(r.right)} px on a ${vw} px screen`);
  }
  for (const plot of document.querySelectorAll('.js-plotly-plot')) {
    const w = plot.getBoundingClientRect().width;
    if (w > 0 && w < 0.75 * vw) problems.push(`a plot ${Math.round(w)} px wide: plots take a row each on a phone`);
    const titles = [...plot.querySelectorAll('.gtitle, .annotation-text')].filter(t => t.textContent.trim())
      .map(t => [t.textContent.trim().slice(0, 30), t.getBoundingClientRect()]).filter(([, r]) => r.width > 0);
    for (let i = 0; i < titles.length; i++) for (let j = i + 1; j < titles.length; j++) {
      const [[a, p], [b, q]] = [titles[i], titles[j]];
      if (p.left < q.right - 2 && q.left < p.right - 2 && p.top < q.bottom - 2 && q.top < p.bottom - 2)
        problems.push(`plot titles overlap: "${a}" and "${b}"`);
    }
  }
  return problems;
}
"""


def tap_to_tab(page, title: str) -> int:
    """Open the tab ``title`` as a thumb would: its tab button, or "More tabs" then its entry.
    Returns the taps it took."""
    button = page.get_by_role("tab", name=title, exact=True)
    if button.count() and button.first.is_visible():
        button.first.click()
        return 1
    page.locator("button[aria-label='More tabs']").first.click()  # the app's row (a tab may hold tabs too)
    page.locator(".overflow-dropdown button, [role=menu] button").filter(has_text=title).first.click()
    return 2


@pytest.fixture
def phone(browser, app_url):
    context, page, errors = open_app(browser, app_url, viewport=PHONE, is_mobile=True, has_touch=True)
    yield page
    context.close()
    # page errors only: Gradio's API page asks for a resource that is not there (a console 404)
    assert not [e for e in errors if e.startswith("pageerror")], errors


@pytest.fixture(scope="module")
def phone_page(browser, app_url):
    """One phone page for the module's tour of the tabs, opened once."""
    context, page, errors = open_app(browser, app_url, viewport=PHONE, is_mobile=True, has_touch=True)
    yield page, errors
    context.close()


# Subplot titles written for a desk-wide figure that overlap at 412 px: the figure must wrap or
# shorten them (server side; CSS cannot move plotly's annotations). Known, not yet fixed:
TITLES_OVERLAP_ON_PHONES: dict[str, str] = {}  # tab id -> a known overlap still to fix (none now)


@pytest.mark.parametrize("tab_id", ["home", *TABS])
def test_every_tab_fits_a_phone(phone_page, tab_id):
    phone, errors = phone_page
    errors.clear()
    assert tap_to_tab(phone, "Home" if tab_id == "home" else tab_spec(tab_id).title) <= 2
    wait_until_settled(phone)  # the tab's opening views render
    assert not errors, errors
    shot(phone, f"phone_{tab_id}")
    problems = phone.evaluate(LAYOUT_PROBLEMS_JS)
    overlaps = [p for p in problems if p.startswith("plot titles overlap")]
    others = [p for p in problems if p not in overlaps]
    assert others == [], f"{tab_id} at 412 px:\n" + "\n".join(others[:20])
    if overlaps and tab_id in TITLES_OVERLAP_ON_PHONES:
        pytest.xfail(f"known: {TITLES_OVERLAP_ON_PHONES[tab_id]}: " + "; ".join(overlaps[:3]))
    assert overlaps == [], f"{tab_id} at 412 px:\n" + "\n".join(overlaps[:20])


def test_the_api_link_is_on_a_phone_and_opens_the_api_page(phone):
    """Gradio hides "Use via API" under 640 px (issue 14: "The API link is gone on phones")."""
    link = phone.locator("footer .show-api").first
    link.scroll_into_view_if_needed()
    assert link.is_visible()
    box = link.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    link.click()
    phone.get_by_text("API documentation", exact=False).first.wait_for(state="visible", timeout=30_000)
    phone.wait_for_timeout(500)
    shot(phone, "phone_api")
    problems = phone.evaluate("""() => [...document.querySelectorAll('.api-docs .banner-wrap *')]
        .filter(e => { const r = e.getBoundingClientRect(); return r.width > 0 && (r.right > window.innerWidth + 1 || r.left < -1); })
        .map(e => `<${e.tagName.toLowerCase()}> "${(e.innerText || '').trim().slice(0, 30)}"`)""")
    assert not problems, f"past the screen's edge in the API page's header: {problems}"
