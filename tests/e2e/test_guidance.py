"""Guidance tab in Chromium: type a prompt, move the scale, see the images change."""

from demos.guidance import TAB
from tests.e2e.conftest import drag, open_tab, shot

IMAGES = "#guidance-gallery img"


def gallery_sources(page) -> list[str]:
    return page.eval_on_selector_all(IMAGES, "els => els.map(e => e.src)")


def test_type_prompt_move_scale_see_images(page):
    open_tab(page, TAB.title)
    page.wait_for_selector(IMAGES, timeout=240_000)  # the default images are drawn on load
    page.wait_for_selector("#guidance-steps .js-plotly-plot", timeout=60_000)
    shot(page, "guidance_default")
    before = gallery_sources(page)

    # 0. few steps and images, so the test is quick on a busy CPU
    for elem_id, value in (("guidance-n-steps", "5"), ("guidance-n-images", "2")):
        box = page.locator(f"#{elem_id} input[type=number]")
        box.fill(value)
        box.press("Tab")

    # 1. type a prompt and press Enter
    prompt = page.locator("#guidance-prompt textarea")
    prompt.fill("a blue triangle")
    prompt.press("Enter")
    page.wait_for_function("s => { const e = [...document.querySelectorAll('#guidance-gallery img')];"
                           " return e.length > 0 && e[0].src !== s[0]; }", arg=before, timeout=240_000, polling=250)
    typed = gallery_sources(page)
    assert typed != before

    # 2. drag the guidance-scale slider: new images for the new s
    drag(page, "#guidance-scale input[type=range]", 0.25, 0.02, steps=6)
    page.wait_for_function("s => { const e = [...document.querySelectorAll('#guidance-gallery img')];"
                           " return e.length > 0 && e[0].src !== s[0]; }", arg=typed, timeout=240_000, polling=250)
    assert "s = 0" in page.locator("#guidance-gallery").inner_text() or gallery_sources(page) != typed
    shot(page, "guidance_blue_triangle_scale_moved")

    # 3. the sweep row: seven scales from one seed
    sweep_before = page.eval_on_selector_all("#guidance-sweep img", "els => els.map(e => e.src)")
    page.get_by_role("button", name="Sweep s = 0, 1, 3, 5, 7.5, 10, 15 (same seed, one batch)").click()
    page.wait_for_function("s => { const e = [...document.querySelectorAll('#guidance-sweep img')];"
                           " return e.length >= 7 && e[0].src !== s[0]; }", arg=sweep_before, timeout=240_000, polling=250)
    page.wait_for_function("document.querySelector('#guidance-status').innerText.includes('Sweep')",
                           timeout=60_000, polling=250)
    page.wait_for_timeout(500)
    shot(page, "guidance_sweep")
