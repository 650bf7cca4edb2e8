"""SDE vs ODE in Chromium: pick a dataset, run, scrub the time sliders, see the views change."""

import pytest

from demos.sde_ode import TAB
from tests.e2e.conftest import drag, open_tab, shot


def text(page, selector: str) -> str:
    return page.locator(selector).inner_text()


def anim_time(page) -> str:
    return page.locator("#sde-ode-anim .slider-container text.slider-label").first.text_content()


FIRST_SDE_POINT = ("(() => { const d = document.querySelector('#sde-ode-anim .js-plotly-plot')._fullData[1];"
                   " return [Number(d.x[0]), Number(d.y[0])]; })()")


def first_sde_point(page) -> list:
    """The first SDE particle drawn in the animation (changes with the time shown)."""
    return page.evaluate(FIRST_SDE_POINT)


def test_pick_dataset_run_and_scrub(page):
    open_tab(page, TAB.title)
    page.wait_for_selector("#sde-ode-anim .js-plotly-plot", timeout=120_000)
    page.wait_for_function("document.querySelector('#sde-ode-compare-text').innerText.includes('SDE vs ODE')",
                           timeout=120_000, polling=250)
    shot(page, "sde_ode_default")
    default_text = text(page, "#sde-ode-compare-text")
    default_point = first_sde_point(page)

    # 1. pick a dataset and run both samplers
    page.get_by_label("Data p_data").click()
    page.get_by_role("option", name="8_gaussians", exact=True).click()
    samples = page.locator("#sde-ode-n-samples input[type=number]")  # fewer particles to draw; as many steps
    samples.fill("400")
    samples.press("Tab")
    page.locator("#sde-ode-run").click()
    page.wait_for_function("s => document.querySelector('#sde-ode-compare-text').innerText !== s",
                           arg=default_text, timeout=180_000, polling=250)
    page.wait_for_function(f"() => {FIRST_SDE_POINT}[0] !== {default_point[0]}", timeout=60_000, polling=250)  # redrawn
    assert "SDE vs ODE" in text(page, "#sde-ode-compare-text")
    stats = text(page, "#sde-ode-stats")
    assert "Euler-Maruyama" in stats and "Heun" in stats

    # 2. scrub the animation's time slider (plotly, client side): the frame shown changes
    assert anim_time(page) == "t = 0.00"
    before = first_sde_point(page)
    page.evaluate("document.querySelector('#sde-ode-anim').scrollIntoView({block: 'center'})")
    page.wait_for_timeout(300)
    rail = page.locator("#sde-ode-anim rect.slider-rail-rect").bounding_box()
    page.mouse.click(rail["x"] + 0.3 * rail["width"], rail["y"] + rail["height"] / 2)
    page.wait_for_timeout(500)
    first = anim_time(page)
    drag(page, "#sde-ode-anim rect.slider-grip-rect", 0.5, 0.5 + 0.25 * rail["width"] / 21)
    page.wait_for_timeout(800)
    assert first != "t = 0.00" and anim_time(page) not in (first, "t = 0.00"), (first, anim_time(page))
    assert first_sde_point(page) != before  # the particles moved to the chosen time
    shot(page, "sde_ode_scrubbed")
    page.get_by_role("button", name="▶ Play", exact=False).click()  # walks t from 1 to eps
    page.wait_for_function("() => document.querySelector('#sde-ode-anim .slider-container text.slider-label')"
                           ".textContent === 't = 0.00'", timeout=30_000, polling=250)
    assert first_sde_point(page) == pytest.approx(before, abs=1e-3)  # back at t = eps

    # 3. scrub the comparison slider (server side): the marginal comparison is redrawn at the new t
    assert "t = 0.500" in text(page, "#sde-ode-compare-text")
    page.locator("#sde-ode-t").scroll_into_view_if_needed()
    drag(page, "#sde-ode-t input[type=range]", 0.5, 0.1)
    page.wait_for_function("() => { const s = document.querySelector('#sde-ode-compare-text').innerText;"
                           " return s.includes('Wasserstein') && !s.includes('t = 0.500'); }", timeout=60_000, polling=250)
    assert any(f"t = 0.{d}" in text(page, "#sde-ode-compare-text") for d in "01")
    page.locator("#sde-ode-compare").scroll_into_view_if_needed()
    shot(page, "sde_ode_compare")

    # 4. the adaptive ODE adds its row (with its own NFE) to the table
    page.get_by_role("button", name="Add the adaptive ODE (RK45) to the table").click()
    page.wait_for_function("document.querySelector('#sde-ode-stats').innerText.includes('RK45')", timeout=120_000, polling=250)
