"""RNN vs Transformer tab in Chromium: build a sequence, move the distance slider, see every
model's answer change; a bad typed sequence warns and the page keeps what it showed."""

from demos.rnn_transformer import compute
from demos.rnn_transformer import TAB
from tests.e2e.conftest import open_tab, shot


def answers(page) -> str:
    return page.locator("#recall-answers").inner_text()


def set_slider(page, elem_id: str, value: int) -> None:
    """Type a value into a slider's number box and commit it, as a user can."""
    box = page.locator(f"#{elem_id} input[type=number]")
    box.scroll_into_view_if_needed()
    box.fill(str(value))
    box.press("Enter")


def model_rows(page) -> dict:
    """{model title: its answer row} from the answers table."""
    rows = page.locator("#recall-answers tbody tr")
    return {rows.nth(i).locator("td").nth(0).inner_text(): rows.nth(i).inner_text() for i in range(rows.count())}


def test_build_a_sequence_and_move_the_distance(page):
    open_tab(page, TAB.title)
    page.wait_for_selector("#recall-saliency .js-plotly-plot", timeout=30_000)
    page.wait_for_selector("#recall-accuracy .js-plotly-plot", timeout=30_000)
    assert "distance d = 24" in answers(page)  # the opening view, drawn without running a model
    shot(page, "rnn_transformer_default")

    # 1. four pairs, the first asked, 2 filler tokens: every model answers a short recall
    first = compute.built_sequence(compute.BuilderParams(n_pairs=4, query=1, distance=24, seed=0))
    set_slider(page, "recall-query", 1)  # wait for this event to finish before the next one
    page.wait_for_function("t => document.querySelector('#recall-answers').innerText.includes(t)",
                           arg=f"Asked: key {first.key}, whose value is {first.target}; distance d = 24", timeout=30_000, polling=250)
    set_slider(page, "recall-distance", 6)
    page.wait_for_function("document.querySelector('#recall-answers').innerText.includes('d = 6')", timeout=30_000, polling=250)
    near = model_rows(page)
    assert set(near) == {"tanh RNN", "LSTM", "GRU", "Transformer"}
    saliency_near = page.locator("#recall-saliency .js-plotly-plot").inner_html()

    # 2. the distance slider to 134: more filler, and every model's row (answer or probability) changes
    set_slider(page, "recall-distance", 134)
    page.wait_for_function("document.querySelector('#recall-answers').innerText.includes('d = 134')", timeout=30_000, polling=250)
    far = model_rows(page)
    for model in near:
        assert far[model] != near[model], model
    assert page.locator("#recall-saliency .js-plotly-plot").inner_html() != saliency_near
    assert page.locator("#recall-sequence textarea").input_value().count(".") == 128
    shot(page, "rnn_transformer_far")


def test_a_bad_typed_sequence_warns_and_keeps_the_view(page):
    open_tab(page, TAB.title)
    page.wait_for_selector("#recall-saliency .js-plotly-plot", timeout=30_000)
    before = answers(page)
    box = page.locator("#recall-sequence textarea")
    box.fill("a 3 b 4 ? z")
    page.locator("#recall-answer").click()
    page.get_by_text("the query key 'z' is not among the pairs").first.wait_for(timeout=30_000)
    assert answers(page) == before
    page.locator("#recall-saliency .js-plotly-plot").wait_for()
    shot(page, "rnn_transformer_bad_input")


def test_train_live_draws_its_curve_and_stops(page):
    from tests.e2e.test_faults_ui import start_then_stop

    open_tab(page, TAB.title)
    page.get_by_text("Train one live: the embedded models' learning curves").click()  # a closed section
    page.wait_for_selector("#recall-curves .js-plotly-plot", timeout=30_000)
    before = page.locator("#recall-curves .js-plotly-plot").inner_html()
    stopped_at = start_then_stop(page, "Train", "recall-status", "Training the Transformer… step", min_step=20)
    assert stopped_at >= 20
    page.wait_for_function(
        "document.querySelector('#recall-accuracy').innerText.includes('trained live')", timeout=60_000, polling=250)
    assert "trained live" in page.locator("#recall-curves").inner_text()
    assert page.locator("#recall-curves .js-plotly-plot").inner_html() != before
    shot(page, "rnn_transformer_trained_live")
