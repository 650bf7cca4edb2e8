"""The dark theme (issue 14, item 3): on every tab, at ``?__theme=dark`` (and in the light theme),
a plot's own words (titles, ticks, axis titles, legends, colour bars, annotations) contrast at least
4.5:1 (WCAG AA) with what is behind them: the figure's paper colour (``layout.paper_bgcolor``)
over the page's background there. Screenshots: ``dark_<tab>.png``."""

import pytest

from playground.tabs import TAB_IDS as TABS, get as tab_spec
from tests.e2e.test_phone import tap_to_tab
from tests.e2e.conftest import open_app, shot, wait_until_settled

# For each drawn plotly figure: the colour behind it (the first opaque background among its
# ancestors, with the figure's paper colour composited over it), then every text of the figure
# that is not drawn by a trace or a hover label, with its computed fill and contrast.
CONTRAST_JS = """
() => {
  const rgba = text => { const m = text.match(/rgba?\\(([^)]+)\\)/); if (!m) return null;
    const [r, g, b, a = 1] = m[1].split(',').map(Number); return [r, g, b, a]; };
  const over = (top, under) => top.slice(0, 3).map((c, i) => c * top[3] + under[i] * (1 - top[3])).concat(1);
  const lum = c => { const [r, g, b] = c.slice(0, 3).map(v => { v /= 255;
    return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; }); return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
  const contrast = (a, b) => { const [l1, l2] = [lum(a), lum(b)].sort((x, y) => y - x); return (l1 + 0.05) / (l2 + 0.05); };
  const behind = el => { let layers = [];
    for (let e = el; e; e = e.parentElement) { const c = rgba(getComputedStyle(e).backgroundColor);
      if (c && c[3] > 0) { layers.push(c); if (c[3] === 1) break; } }
    if (!layers.length || layers[layers.length - 1][3] < 1) layers.push([255, 255, 255, 1]);
    return layers.reverse().reduce((under, top) => over(top, under)); };
  const failures = [], checked = [0];
  for (const plot of document.querySelectorAll('.js-plotly-plot')) {
    if (!plot.getBoundingClientRect().width || !plot._fullLayout) continue;
    const paper = rgba(plot._fullLayout.paper_bgcolor) || [0, 0, 0, 0];
    const background = over(paper, behind(plot.parentElement));
    for (const text of plot.querySelectorAll('.main-svg text')) {
      if (text.closest('.trace, .hoverlayer') || !text.textContent.trim() || !text.getBoundingClientRect().width) continue;
      const fill = rgba(getComputedStyle(text).fill);
      if (!fill) continue;
      const ratio = contrast(over(fill, background), background);
      checked[0] += 1;
      if (ratio < 4.5) failures.push(`"${text.textContent.trim().slice(0, 30)}" ${getComputedStyle(text).fill} on `
                                     + `rgb(${background.slice(0, 3).map(Math.round)}): ${ratio.toFixed(2)}:1`);
    }
  }
  return {checked: checked[0], failures};
}
"""


@pytest.fixture(scope="module", params=["dark", "light"])
def themed(request, browser, app_url):
    """One page per theme, opened once: each test shows one tab on it."""
    context, page, errors = open_app(browser, f"{app_url}/?__theme={request.param}")
    yield request.param, page, errors
    context.close()


@pytest.mark.parametrize("tab_id", TABS)
def test_plot_text_is_readable_in_both_themes(themed, tab_id):
    theme, page, errors = themed
    errors.clear()
    tap_to_tab(page, tab_spec(tab_id).title)
    wait_until_settled(page)  # the tab's opening plots are drawn
    if theme == "dark":
        assert page.evaluate("document.body.classList.contains('dark')")
        shot(page, f"dark_{tab_id}")
    result = page.evaluate(CONTRAST_JS)
    assert result["failures"] == [], f"{tab_id} ({theme}): " + "\n".join(result["failures"][:15])
    assert not errors, errors
