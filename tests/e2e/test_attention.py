"""Attention cache tab in Chromium: choose a preset, drag the context slider, see plot and table change."""

from demos.attention import TAB
from tests.e2e.conftest import drag, open_tab, shot


def plot_svg(page, index: int = 0) -> str:
    return page.locator("#attention-memory .js-plotly-plot").nth(index).inner_html()


def sizes_text(page) -> str:
    return page.locator("#attention-sizes").inner_text()


def test_preset_and_context_slider(page):
    open_tab(page, TAB.title)
    page.wait_for_selector("#attention-memory .js-plotly-plot", timeout=30_000)
    assert "DeepSeek-V2" in page.locator("#attention-summary").inner_text()
    shot(page, "attention_default")

    # 1. choose a preset: the shape controls, the summary, the table and the plot follow
    before_plot, before_table = plot_svg(page), sizes_text(page)
    page.get_by_label("model (preset)").click()
    page.get_by_role("option", name="Llama-2-70B", exact=True).click()
    page.wait_for_function("document.querySelector('#attention-summary').innerText.includes('Llama-2-70B')",
                           timeout=15_000, polling=250)
    page.wait_for_timeout(500)
    after_plot, after_table = plot_svg(page), sizes_text(page)
    assert after_plot != before_plot and after_table != before_table
    assert "163,840" in after_table                 # 2·8·128·80 elements per token

    # 2. drag the context slider: the summary, the cache column and the plot's T marker move
    summary = page.locator("#attention-summary").inner_text()
    drag(page, "#attention-seq-len input[type=range]", 0.25, 0.8)
    page.wait_for_function(
        "s => document.querySelector('#attention-summary').innerText !== s", arg=summary, timeout=15_000, polling=250)
    page.wait_for_timeout(500)
    assert plot_svg(page) != after_plot
    assert sizes_text(page) != after_table
    shot(page, "attention_llama70b_dragged")


def test_real_run_shows_measured_cache_and_decode_times(page):
    open_tab(page, TAB.title)
    page.get_by_text("Run it: MHA, GQA, MQA and MLA in torch").click()  # a closed section: the page stays short
    page.get_by_label("longest context timed (max_context)").click()
    page.get_by_role("option", name="1024", exact=True).click()
    page.get_by_role("button", name="Run the attention modules (torch, CPU)").click()
    table = page.locator("#attention-run-table")
    table.wait_for(state="visible", timeout=120_000)
    text = table.inner_text()
    for variant in ("MHA", "GQA", "MQA", "MLA (absorbed)"):
        assert variant in text
    assert "NO" not in text.split()                   # measured bytes equal the formula everywhere
    page.locator("#attention-run-plot .js-plotly-plot").wait_for(timeout=30_000)
    page.locator("#attention-run-table").scroll_into_view_if_needed()
    shot(page, "attention_run")
