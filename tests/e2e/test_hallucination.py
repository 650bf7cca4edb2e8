"""Hallucination tab in Chromium: ask about a frequent and a never-seen person and see the difference."""

from demos.common import text_world as tw
from demos.hallucination import compute
from demos.hallucination import TAB
from tests.e2e.conftest import open_tab, shot


def ask(page, question: str, expect: str) -> str:
    """Ask ``question`` and wait until the answer panel shows ``expect`` (a text only the new answer
    has: the panel keeps the old answer under a progress timer while the model runs)."""
    page.locator("#hallucination-question textarea").fill(question)
    page.locator("#hallucination-ask").click()
    page.wait_for_function("e => document.querySelector('#hallucination-answer').innerText.includes(e)", arg=expect,
                           timeout=60_000, polling=250)
    return page.locator("#hallucination-answer").inner_text()


def test_a_frequent_and_a_never_seen_person(page):
    open_tab(page, TAB.title)
    page.wait_for_selector("#hallucination-frequency .js-plotly-plot", timeout=30_000)
    assert "stated 32 times" in page.locator("#hallucination-answer").inner_text()  # the opening view
    unseen = next(p for p in compute.oracle().people.values() if p.split == "unseen")
    ask(page, tw.question(unseen.name, "city"), "never seen in training")
    shot(page, "hallucination_unseen")
    frequent = next(p for p in compute.oracle().people.values() if p.split == "bio_only" and p.f == 32
                    and p.job != unseen.city)
    text = ask(page, tw.question(frequent.name, "job"), f"The world says {frequent.job}")
    assert "stated 32 times" in text and "the answer is right" in text
    ask(page, "Tell me about Zorbat Quenlip.", "cannot be checked")
    page.get_by_text("Download the last answer and the stored evaluation (JSON)").click()
    page.wait_for_function("() => document.querySelector('#hallucination-download').innerText.includes('KB')",
                           timeout=30_000, polling=250)  # what the panel shows, as files (the label alone has no size)
    shot(page, "hallucination_frequent")


def test_bad_input_warns_and_the_page_keeps_its_answer(page):
    open_tab(page, TAB.title)
    page.wait_for_selector("#hallucination-candidates .js-plotly-plot", timeout=30_000)
    before = page.locator("#hallucination-answer").inner_text()
    page.locator("#hallucination-question textarea").fill("")
    page.locator("#hallucination-ask").click()
    page.get_by_text("question must be a non-empty text").first.wait_for(timeout=30_000)
    assert page.locator("#hallucination-answer").inner_text() == before
