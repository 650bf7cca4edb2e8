"""ControlNet tab in Chromium: draw an outline with the mouse, generate, see the image change."""

import re

from demos.controlnet import TAB
from tests.e2e.conftest import open_tab, shot


def image_src(page, elem_id: str) -> str:
    images = page.locator(f"#{elem_id} img")
    return (images.first.get_attribute("src") or "") if images.count() else ""


def draw_square(page) -> None:
    """Press, drag around a square, release: no tool to pick first (the brush is ready)."""
    box = page.locator("#controlnet-sketch canvas").first.bounding_box()
    cx, cy, half = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, min(box["width"], box["height"]) * 0.25
    corners = [(cx - half, cy - half), (cx + half, cy - half), (cx + half, cy + half), (cx - half, cy + half)]
    page.mouse.move(*corners[0])
    page.mouse.down()
    for corner in corners[1:] + corners[:1]:
        page.mouse.move(*corner, steps=12)
    page.mouse.up()


def test_draw_an_outline_and_generate(page):
    open_tab(page, TAB.title)
    page.get_by_role("tab", name="Draw", exact=True).click()  # it opens on the example in Upload (issue 14)
    page.locator("#controlnet-sketch canvas").first.wait_for(state="visible", timeout=30_000)
    page.wait_for_timeout(1000)  # the canvas initialises and the brush gets selected
    shot(page, "controlnet_default")
    before_condition = image_src(page, "controlnet-condition")
    before_result = image_src(page, "controlnet-result")

    draw_square(page)
    page.wait_for_function("() => document.querySelector('input[type=radio][value=Canvas]').checked", timeout=10_000, polling=250)
    page.get_by_label("Prompt").fill("a blue square")
    steps = page.locator("#controlnet-steps input[type=number]")  # fewer steps: the drawing is what is tested
    steps.fill("6")
    steps.press("Tab")
    page.get_by_role("button", name="Generate").click()
    page.wait_for_function(
        "(before) => { const img = document.querySelector('#controlnet-result img');"
        " return img && img.getAttribute('src') && img.getAttribute('src') !== before; }",
        arg=before_result, timeout=120_000, polling=250)
    page.wait_for_timeout(500)
    assert image_src(page, "controlnet-condition") != before_condition
    page.get_by_text("Settings and timings (JSON)").click()
    page.wait_for_function("() => (document.querySelector('#controlnet-details') || {}).innerText?.includes('blue square')",
                           timeout=60_000, polling=250)  # the run's settings come with its last step
    details = page.locator("#controlnet-details").inner_text()
    assert "blue square" in details and re.search(r'steps"?\s*:\s*6\b', details), details
    shot(page, "controlnet_drawn_square")
