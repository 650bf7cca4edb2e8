"""Instruction tuning tab in Chromium: run a Self-Instruct round, move the threshold, and ask the
base model and the fine-tunes one instruction."""

import re

from demos.instruction_tuning import TAB
from tests.e2e.conftest import drag, open_tab, shot


def summary(page) -> str:
    return page.locator("#instruct-summary").inner_text()


def kept(text: str) -> int:
    return int(re.search(r"(\d+) kept", text).group(1))


def test_a_round_the_threshold_and_two_models(page):
    open_tab(page, TAB.title)
    page.wait_for_function("() => (document.querySelector('#instruct-summary') || {}).innerText?.includes('kept')",
                           timeout=60_000, polling=250)
    opening = summary(page)
    assert "threshold 0.70" in opening
    seed = page.locator("#instruct-seed input")
    seed.fill("3")
    page.locator("#instruct-run").click()
    page.wait_for_function("s => document.querySelector('#instruct-summary').innerText !== s", arg=opening,
                           timeout=60_000, polling=250)
    after_run = summary(page)
    assert "candidates in 8 rounds" in after_run
    page.locator("#instruct-threshold input[type=range]").scroll_into_view_if_needed()
    drag(page, "#instruct-threshold input[type=range]", 0.58, 0.2)
    page.wait_for_function("() => !document.querySelector('#instruct-summary').innerText.includes('threshold 0.70')",
                           timeout=30_000, polling=250)  # the re-filtered candidates, at the new threshold
    moved = summary(page)
    threshold = float(re.search(r"threshold (\d\.\d\d)", moved).group(1))
    assert threshold < 0.7 and kept(moved) < kept(after_run)
    assert page.locator("#instruct-rejected").inner_text().count("\n") > 3
    box = page.locator("#instruct-ask-box textarea")
    box.fill("Sort the words: nurse arbor goat")
    page.locator("#instruct-ask").click()
    page.wait_for_function("() => document.querySelector('#instruct-note').innerText.includes('arbor goat nurse')",
                           timeout=60_000, polling=250)
    page.wait_for_function("() => document.querySelector('#instruct-compare').innerText.includes('n8000-noisy')",
                           timeout=60_000, polling=250)
    table = page.locator("#instruct-compare").inner_text()
    assert "base" in table and "n8000" in table and ("right" in table or "wrong" in table)
    shot(page, "instruction_tuning")
