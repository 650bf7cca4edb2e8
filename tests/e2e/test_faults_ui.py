"""Faults as a user meets them in Chromium (issue 9): Stop ends a long run and the tab keeps
working; a tab whose model is missing says so, and the other tabs work."""

import re

import pytest

from benchmarks.load import start_server
from demos.guidance import TAB as GUIDANCE_TAB
from demos.sde_ode import TAB as SDE_ODE_TAB
from tests.conftest import free_port
from tests.e2e.conftest import open_tab, shot


def set_number(page, elem_id: str, value: str) -> None:
    """Type into a slider's number box, as a user does for an exact value."""
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(value)
    box.press("Tab")


STOP_WHEN_RUNNING = """([statusId, stopId, running, minStep]) => {
    // Press Stop from inside the page the moment the status first shows the run going: no round
    // trip through the test process, so even a fast run (a warm server) is still running then.
    window.__stopPressed = false;
    const status = document.querySelector('#' + statusId);
    const observer = new MutationObserver(() => {
        const at = status.innerText.indexOf(running);
        const step = at < 0 ? NaN : parseInt(status.innerText.slice(at + running.length).trim(), 10);
        if (!window.__stopPressed && step >= minStep) {
            window.__stopPressed = true;
            observer.disconnect();
            const stop = document.querySelector('#' + stopId);
            (stop.tagName === 'BUTTON' ? stop : stop.querySelector('button')).click();
        }
    });
    observer.observe(status, {subtree: true, childList: true, characterData: true});
}"""


def start_then_stop(page, start: str, status_id: str, running: str, min_step: int = 1) -> int:
    """Press the ``start`` button; the moment the status shows ``running`` followed by a step
    number at least ``min_step``, the tab's Stop button is pressed (from inside the page); wait for
    "Stopped at step k": returns k."""
    tab = status_id.split("-")[0]
    page.evaluate(STOP_WHEN_RUNNING, [status_id, f"{tab}-stop", running, min_step])
    page.get_by_role("button", name=start, exact=True).click()
    page.wait_for_function("window.__stopPressed === true", timeout=120_000, polling=250)  # hang guard only
    page.wait_for_function(f"document.querySelector('#{status_id}').innerText.includes('Stopped at step')",
                           timeout=120_000, polling=250)  # a hang guard: the stop lands within a step
    return int(re.search(r"Stopped at step (\d+)", page.locator(f"#{status_id}").inner_text()).group(1))


def test_stop_ends_a_long_guidance_run_within_a_step_and_shows_where(page):
    open_tab(page, GUIDANCE_TAB.title)
    page.wait_for_selector("#guidance-gallery img", timeout=240_000)
    set_number(page, "guidance-n-steps", "100")
    set_number(page, "guidance-n-images", "16")  # 16 x 100 steps: many seconds here
    stopped_at = start_then_stop(page, "Generate", "guidance-status", "Denoising… step")
    assert 1 <= stopped_at < 100
    assert page.locator("#guidance-gallery img").count() == 16  # the partial images are shown
    shot(page, "guidance_stopped")


def test_stop_cancels_an_sde_run_and_the_next_run_works(page):
    open_tab(page, SDE_ODE_TAB.title)
    page.wait_for_function("document.querySelector('#sde-ode-compare-text').innerText.includes('SDE vs ODE')",
                           timeout=120_000, polling=250)
    page.get_by_label("VE", exact=True).check()
    set_number(page, "sde-ode-n-samples", "10000")
    set_number(page, "sde-ode-n-steps", "2000")  # the largest run: many seconds
    before = page.locator("#sde-ode-compare-text").inner_text()
    page.locator("#sde-ode-run").click()
    page.wait_for_selector("#sde-ode-stats .progress-text, #sde-ode-stats .eta-bar", timeout=30_000)  # progress on the table
    page.locator("#sde-ode-stop").click()
    page.locator(".toast-body").filter(has_text="Stopped").first.wait_for(timeout=30_000)
    page.wait_for_selector("#sde-ode-stats .eta-bar", state="detached", timeout=30_000)
    assert page.locator("#sde-ode-compare-text").inner_text() == before  # the last finished run stays
    assert page.locator("#sde-ode-anim .js-plotly-plot").count() == 1
    shot(page, "sde_ode_stopped")

    set_number(page, "sde-ode-n-steps", "50")
    set_number(page, "sde-ode-n-samples", "300")  # a small run: that the next run works is what is tested
    page.locator("#sde-ode-run").click()
    page.wait_for_function("s => document.querySelector('#sde-ode-compare-text').innerText !== s",
                           arg=before, timeout=120_000, polling=250)
    assert "VE" in page.locator("#sde-ode-compare-text").inner_text() or "SDE vs ODE" in \
        page.locator("#sde-ode-compare-text").inner_text()


@pytest.fixture(scope="module")
def bare_app_url(tmp_path_factory):
    """The app on a machine without ``assets/`` (no embedded checkpoints, no examples)."""
    port = free_port()
    server = start_server(port, {"PLAYGROUND_ASSETS": str(tmp_path_factory.mktemp("no-assets"))})
    yield f"http://127.0.0.1:{port}"
    server.terminate()
    server.wait(timeout=30)


def test_a_tab_without_its_model_says_so_and_the_others_work(browser, bare_app_url):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(bare_app_url, wait_until="load")
    page.wait_for_selector("button[role=tab]", timeout=30_000)

    open_tab(page, GUIDANCE_TAB.title)  # the tab says it before anyone clicks, and again on Generate
    page.get_by_text("not on this machine").locator("visible=true").first.wait_for(timeout=30_000)
    page.get_by_role("button", name="Generate", exact=True).click()
    toast = page.locator(".toast-body").filter(has_text="Model 'shapes-ldm' is not available")
    toast.first.wait_for(timeout=60_000)
    assert "python -m demos.guidance.train" in toast.first.inner_text()
    shot(page, "guidance_without_its_model")

    open_tab(page, SDE_ODE_TAB.title)  # a tab without a model: unaffected
    page.locator("#sde-ode-run").click()
    page.wait_for_function("document.querySelector('#sde-ode-compare-text').innerText.includes('SDE vs ODE')",
                           timeout=120_000, polling=250)
    context.close()
    assert not errors, errors


def test_stop_ends_a_long_flow_training_and_says_where(page):
    from demos.flows import TAB as FLOWS_TAB

    open_tab(page, FLOWS_TAB.title)
    page.wait_for_selector("#flows-plot-0 .js-plotly-plot", timeout=60_000)
    set_number(page, "flows-layers", "12")
    set_number(page, "flows-steps", "5000")  # 12 layers x 5000 steps: far longer than this test
    assert start_then_stop(page, "Train", "flows-status", "Training… step") < 5000
    shot(page, "flows_stopped")


def test_a_bad_input_is_a_warning_and_the_page_keeps_its_images(page):
    open_tab(page, GUIDANCE_TAB.title)
    page.wait_for_selector("#guidance-gallery img", timeout=240_000)
    images = "els => els.map(e => e.src)"
    before = page.eval_on_selector_all("#guidance-gallery img", images)
    prompt = page.locator("#guidance-prompt textarea")
    prompt.fill("a pink elephant")
    prompt.press("Enter")
    page.locator(".toast-body").filter(has_text="does not know 'pink', 'elephant'").first.wait_for(timeout=60_000)
    page.wait_for_timeout(500)
    assert page.eval_on_selector_all("#guidance-gallery img", images) == before  # not blanked
    assert "Error" not in page.locator("#guidance-gallery").inner_text()
    shot(page, "guidance_bad_prompt")
