"""Guidance tab, "Inside the latent diffusion model": generate with attention recorded, move the
step slider, see the word maps change; the section at phone width and in the dark theme."""

from demos.guidance import TAB
from tests.conftest import ROOT
from tests.e2e.conftest import drag, open_tab, shot

EXAMPLE = ROOT / "assets" / "detr_examples" / "scene.png"  # any picture: a 128 x 128 scene of several shapes
WORDS = "#internals-words .js-plotly-plot"
SIGNATURE = """() => { const p = document.querySelector('#internals-words .js-plotly-plot');
  if (!p || !p.data || p.data.length < 2) return null;
  return JSON.stringify([p.layout.title && p.layout.title.text, p.data[1].z[32], p.data[3] && p.data[3].z[32]]); }"""


def signature(page):
    return page.evaluate(SIGNATURE)


def wait_changed(page, before, timeout=240_000):
    page.wait_for_function(f"b => ({SIGNATURE})() !== null && ({SIGNATURE})() !== b", arg=before, timeout=timeout, polling=250)


def test_generate_move_the_step_slider_see_the_word_maps_change(page):
    open_tab(page, TAB.title)
    page.wait_for_selector(WORDS, timeout=120_000)  # the precomputed opening view, drawn on load
    page.wait_for_selector("#internals-trip .js-plotly-plot", timeout=60_000)
    opening = signature(page)
    assert opening and "a red circle" in opening

    # 1. a new prompt, few steps (quick on a busy CPU): Look inside
    steps = page.locator("#internals-steps input[type=number]")
    steps.fill("8")
    steps.press("Tab")
    prompt = page.locator("#internals-prompt textarea")
    prompt.fill("a blue square")
    page.locator("#internals-look").click()
    page.wait_for_function("document.querySelector('#internals-status').innerText.includes('Generated')",
                           timeout=240_000, polling=250)
    wait_changed(page, opening)
    generated = signature(page)
    assert "a blue square" in generated and "of 8" in generated
    page.locator("#internals-words").scroll_into_view_if_needed()
    shot(page, "guidance_internals_generated")

    # 2. drag the step slider towards the first step: the maps are redrawn for that step
    drag(page, "#internals-step input[type=range]", 0.98, 0.05, steps=6)
    wait_changed(page, generated, timeout=60_000)
    slider = page.locator("#internals-step input[type=number]").input_value()
    assert slider != "8"
    page.wait_for_function(f"() => ({SIGNATURE})().includes('steps 1..{slider} summed')", timeout=60_000, polling=250)
    page.wait_for_timeout(300)
    page.locator("#internals-words").scroll_into_view_if_needed()
    shot(page, "guidance_internals_step_moved")

    # 3. the autoencoder on an uploaded picture: its PSNR and compression are reported
    page.locator("#internals-upload input[type=file]").set_input_files(str(EXAMPLE))
    page.wait_for_function("document.querySelector('#internals-trip-status').innerText.includes('your picture')",
                           timeout=120_000, polling=250)
    assert "48×" in page.locator("#internals-trip-status").inner_text()
    page.locator("#internals-trip").scroll_into_view_if_needed()
    shot(page, "guidance_internals_upload")


def test_the_section_at_phone_width_in_the_dark_theme(browser, app_url):
    context = browser.new_context(viewport={"width": 412, "height": 915})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{app_url}/?__theme=dark", wait_until="load")
    page.wait_for_selector("button[role=tab]", timeout=30_000)
    tab = page.get_by_role("tab", name=TAB.title, exact=True)
    if not tab.is_visible():
        page.locator("button[aria-label='More tabs']").click()
        page.locator(".overflow-dropdown").get_by_role("button", name=TAB.title, exact=True).click()
    else:
        tab.click()
    page.wait_for_selector(WORDS, timeout=120_000)
    page.locator("#internals-words").scroll_into_view_if_needed()
    width = page.evaluate("document.documentElement.scrollWidth")
    shot(page, "guidance_internals_phone_dark")
    context.close()
    assert width <= 412 + 2, f"the page scrolls sideways at 412 px: {width}"
    assert not errors, errors
