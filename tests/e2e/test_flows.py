"""Flows tab in Chromium: choose a target, train, scrub the layer slider; the views follow."""

from demos.flows import TAB
from tests.e2e.conftest import open_tab, shot

GRID_TITLE = "#flows-plot-0 .gtitle"


def title(page, selector: str = GRID_TITLE) -> str:
    return page.locator(selector).first.text_content()


def set_number(page, elem_id: str, value: int) -> None:
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(str(value))
    box.press("Enter")


def wait_title(page, text: str, selector: str = GRID_TITLE, timeout: int = 30_000) -> None:
    page.wait_for_function("([s, t]) => (document.querySelector(s)?.textContent || '').includes(t)",
                           arg=[selector, text], timeout=timeout, polling=250)


def test_choose_target_train_and_scrub_layers(page):
    open_tab(page, TAB.title)
    page.wait_for_selector(GRID_TITLE, timeout=30_000)
    assert "base Gaussian" in title(page)  # the default is drawn before any training
    shot(page, "flows_default")

    # 1. choose an analytic target: its true density appears next to the (untrained) flow
    page.get_by_label("Target data p(x)").click()
    page.get_by_role("option", name="2_gaussians", exact=True).click()
    wait_title(page, "True density p(x) (2_gaussians)", "#flows-plot-3 .gtitle")

    # 2. train a small RealNVP: the loss curve, the status and every view update
    set_number(page, "flows-layers", 4)
    set_number(page, "flows-steps", 200)
    density_before = page.locator("#flows-plot-1 .heatmaplayer").inner_html()
    page.get_by_role("button", name="Train", exact=True).click()
    page.wait_for_function("document.querySelector('#flows-status').innerText.includes('trained in')",
                           timeout=240_000, polling=250)
    wait_title(page, "after 4 of 4 layers")
    assert "held-out" in page.locator("#flows-status").inner_text()
    assert page.locator("#flows-plot-1 .heatmaplayer").inner_html() != density_before
    page.wait_for_timeout(500)
    shot(page, "flows_trained")

    # 3. scrub the layer slider back to the base Gaussian, then to layer 2
    slider = page.locator("#flows-layer input[type=range]")
    slider.focus()
    slider.press("Home")
    wait_title(page, "after 0 of 4 layers")
    slider.press("ArrowRight")
    slider.press("ArrowRight")
    wait_title(page, "after 2 of 4 layers")
    wait_title(page, "after 2 of 4 layers", "#flows-plot-1 .gtitle")
    page.wait_for_timeout(500)
    shot(page, "flows_layer2")
