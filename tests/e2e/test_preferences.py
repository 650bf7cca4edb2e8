"""RLHF vs DPO tab in Chromium: the exact problem opens drawn, trains at two betas, and the
three methods' policies move as the formula says (smaller beta: further from pi_ref, more reward)."""

import re
import shutil

from demos.preferences import TAB
from tests.e2e.conftest import open_tab, shot


def set_slider(page, elem_id: str, value) -> None:
    box = page.locator(f"#{elem_id} input[type=number]")
    box.scroll_into_view_if_needed()
    box.fill(str(value))
    box.press("Enter")


def policy_rows(page) -> dict:
    """{policy: (E_pi[r], KL to pi_ref, KL to pi*)} from the summary table."""
    rows = page.locator("#pref-summary tbody tr")
    out = {}
    for i in range(rows.count()):
        cells = [rows.nth(i).locator("td").nth(j).inner_text() for j in range(4)]
        out[cells[0]] = tuple(float(re.sub(r"[^0-9.e-]", "", c)) for c in cells[1:])
    return out


def train_at(page, beta: float) -> dict:
    set_slider(page, "pref-beta", beta)
    page.locator("#pref-train").click()
    page.wait_for_function("t => document.querySelector('#pref-summary').innerText.includes(t)",
                           arg=f"β = {beta:g}, τ = 1", timeout=90_000, polling=250)
    page.wait_for_selector("#pref-curves .js-plotly-plot", timeout=30_000)
    return policy_rows(page)


def test_train_the_exact_problem_at_two_betas_and_compare(page):
    open_tab(page, TAB.title)
    page.wait_for_selector("#pref-policies .js-plotly-plot", timeout=30_000)
    page.wait_for_function("document.querySelector('#pref-summary').innerText.includes('β = 0.5')", timeout=30_000, polling=250)
    opening = policy_rows(page)
    assert set(opening) == {"reference π_ref", "optimum π*", "DPO", "RLHF"}
    assert "KL to the optimum" in page.locator("#pref-findings").inner_text()
    page.wait_for_selector("#pref-sweep .js-plotly-plot", timeout=30_000)  # the stored sweep, drawn on open
    assert "near-certain labels" in page.locator("#pref-sweep-note").inner_text()
    shot(page, "preferences_default")

    large = train_at(page, 2)
    policies_large = page.locator("#pref-policies .js-plotly-plot").inner_html()
    small = train_at(page, 0.1)
    path = shot(page, "preferences_beta_0.1")
    shutil.copy(path, "/tmp/preferences_beta_0.1.png")
    assert page.locator("#pref-policies .js-plotly-plot").inner_html() != policies_large
    for method in ("optimum π*", "DPO", "RLHF"):
        reward_large, kl_ref_large, _ = large[method]
        reward_small, kl_ref_small, _ = small[method]
        assert kl_ref_small > kl_ref_large, method  # a smaller beta lets the policy move further ...
        assert reward_small > reward_large, method  # ... for more true reward
    for rows in (large, small):  # the same pairs, a finite MLE: DPO and RLHF land together
        assert abs(rows["DPO"][2] - rows["RLHF"][2]) < 0.01
        assert rows["reference π_ref"][0] == opening["reference π_ref"][0]  # the same problem: same pi_ref
    assert "beats every other" in page.locator("#pref-findings").inner_text()


def sample_columns(page) -> list[str]:
    return [page.locator("#pref-lm-samples-table thead th").nth(j).inner_text() for j in range(4)]


def test_the_language_models_answer_side_by_side_and_the_frontier_is_drawn(page):
    open_tab(page, TAB.title)
    page.wait_for_selector("#pref-lm-frontier .js-plotly-plot", timeout=60_000)
    page.wait_for_selector("#pref-lm-curves .js-plotly-plot", timeout=30_000)
    assert "held-out pair accuracy" in page.locator("#pref-lm-setup").inner_text()
    assert "win rate vs SFT" in page.locator("#pref-lm-table").inner_text()
    page.wait_for_selector("#pref-lm-samples-table tbody tr", timeout=30_000)  # the stored default samples
    assert sample_columns(page)[1:] == ["SFT", "RLHF (PPO), β = 0.1", "DPO, β = 0.1 ◀"]

    instruction = page.locator("#pref-lm-instruction textarea")
    instruction.scroll_into_view_if_needed()
    instruction.fill("Reverse the words: cat red baker")
    page.locator("#pref-lm-beta").get_by_label("0.03", exact=True).check()
    page.locator("#pref-lm-method").get_by_label("rlhf", exact=True).check()
    page.locator("#pref-lm-sample").click()
    page.wait_for_function("document.querySelector('#pref-lm-samples-table').innerText.includes('cat red baker')",
                           timeout=90_000, polling=250)
    assert sample_columns(page)[1:] == ["SFT", "RLHF (PPO), β = 0.03 ◀", "DPO, β = 0.03"]
    rows = page.locator("#pref-lm-samples-table tbody tr")
    assert rows.count() == 5  # 4 samples and the mean
    assert "r*" in rows.nth(0).inner_text() and "log π/π_SFT" in rows.nth(0).inner_text()
    page.locator("#pref-lm-samples-table").scroll_into_view_if_needed()
    path = shot(page, "preferences_language_model")
    shutil.copy(path, "/tmp/preferences_language_model.png")

    instruction.fill("x" * 400)
    page.locator("#pref-lm-sample").click()
    page.get_by_text("at most 300").first.wait_for(timeout=30_000)
    assert "cat red baker" in page.locator("#pref-lm-samples-table").inner_text()  # the page keeps what it showed
