"""Visit every tab of the app in headless Chromium; no console errors; a screenshot each."""

from playground.tabs import TAB_IDS as TABS, get as tab_spec
from tests.e2e.conftest import open_tab, shot, wait_until_settled


def test_every_tab_opens(page):
    assert "Generative Playground" in page.inner_text("body")
    shot(page, "home")
    for tab_id in TABS:
        title = tab_spec(tab_id).title
        open_tab(page, title)
        wait_until_settled(page)  # the tab's default plots are drawn
        shot(page, f"tab_{tab_id}")
    open_tab(page, "Home")
    page.get_by_text("Models", exact=True).first.click()
    page.wait_for_timeout(300)
    shot(page, "home_models")
