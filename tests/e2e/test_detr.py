"""DETR tab in Chromium: new random scene, move the threshold, select a query; screenshots."""

from demos.detr import TAB
from tests.e2e.conftest import drag, open_tab, shot


def image_src(page, elem_id: str) -> str:
    return page.locator(f"#{elem_id} img").first.get_attribute("src") or ""


def plot_html(page, elem_id: str) -> str:
    return page.locator(f"#{elem_id} .js-plotly-plot").first.inner_html()


def wait_changed(page, elem_id: str, before: str, timeout: int = 180_000) -> None:
    page.wait_for_function(
        "([id, before]) => { const img = document.querySelector('#' + id + ' img');"
        " return img && img.getAttribute('src') && img.getAttribute('src') !== before; }",
        arg=[elem_id, before], timeout=timeout, polling=250)


def drag_slider(page, elem_id: str, start: float, end: float) -> None:
    drag(page, f"#{elem_id} input[type=range]", start, end)


def test_scene_threshold_and_query(page):
    open_tab(page, TAB.title)
    # the default scene is detected on load: annotated image, queries plot, cost matrix
    page.wait_for_selector("#detr-annotated img", timeout=60_000)
    page.wait_for_selector("#detr-queries .js-plotly-plot", timeout=60_000)
    page.wait_for_selector("#detr-cost .js-plotly-plot", timeout=60_000)
    shot(page, "detr_default")

    # 1. a new random scene (the first run loads the model): the detections and the cost matrix change
    annotated, cost = image_src(page, "detr-annotated"), plot_html(page, "detr-cost")
    page.locator("#detr-seed input").fill("44")
    page.locator("#detr-new-scene").click()
    wait_changed(page, "detr-annotated", annotated)
    page.wait_for_timeout(800)
    assert plot_html(page, "detr-cost") != cost

    # 2. move the threshold to ~0.05: more queries are drawn, the plot's tau line moves
    annotated, queries = image_src(page, "detr-annotated"), plot_html(page, "detr-queries")
    drag_slider(page, "detr-threshold", 0.5, 0.03)
    wait_changed(page, "detr-annotated", annotated)
    page.wait_for_timeout(500)
    assert plot_html(page, "detr-queries") != queries
    threshold = float(page.locator("#detr-threshold input[type=number]").input_value())
    assert threshold < 0.2

    # 3. select another query: its cross-attention map changes
    attention = image_src(page, "detr-attention")
    drag_slider(page, "detr-query", 0.0, 0.75)
    wait_changed(page, "detr-attention", attention)
    page.wait_for_timeout(500)
    assert int(float(page.locator("#detr-query input[type=number]").input_value())) > 0
    shot(page, "detr_scene_threshold_query")
