"""A whole lesson in the browser (issue 35): at 412x915, light and dark, answering right and wrong,
with the keyboard for one answer; the result stays covered until the answer; a reload resumes the
step; the end shows the score with the missed question linking back; a bad link opens Home."""

import pytest

from demos.attention import TAB
from playground import lessons
from tests.e2e.conftest import open_app, open_tab, shot

PHONE = {"viewport": {"width": 412, "height": 915}, "is_mobile": True, "has_touch": True}
LESSON = "attention"
COVERED = "document.querySelectorAll('#tab-attention [data-gp-covered]').length"


def open_lesson(browser, url: str, **context_options):
    """A page opened on a lesson link (the app's tab row may hide Home behind "More tabs" on a phone
    once the lesson's tab is selected, so this waits for the player instead), and its error list."""
    context = browser.new_context(**context_options)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(f"console.{msg.type}: {msg.text}") if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.goto(url, wait_until="load")
    return context, page, errors


def lesson():
    return next(item for item in lessons.all_lessons() if item.id == LESSON)


def wait_step(page, k: int, n: int) -> None:
    page.wait_for_function(f"() => (document.querySelector('#lesson-header') || {{}}).innerText"
                           f"?.includes('step {k} of {n}')", polling=200, timeout=60_000)


def answer(page, step, right: bool, keyboard: bool = False) -> None:
    q = step.question
    if q.options:
        option = q.answer if right else next(o for o in q.options if o != q.answer)
        radio = page.locator("#lesson-choice").get_by_label(option, exact=True)
        if keyboard:
            radio.focus()
            page.keyboard.press("Space")
        else:
            radio.check()
    else:
        value = q.answer if right else q.answer + 10 * (q.tolerance + 1)
        page.locator("#lesson-number input").fill(f"{value:g}")
    button = page.get_by_role("button", name="Check my answer")
    if keyboard:
        button.focus()
        page.keyboard.press("Enter")
    else:
        button.click()
    reveal = page.locator("#lesson-reveal")
    reveal.get_by_text("Right." if right else "Not quite.").wait_for(timeout=30_000)
    assert reveal.get_attribute("aria-live") == "polite" and reveal.get_attribute("role") == "status"


def no_sideways_spill(page) -> None:
    width = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1] + 1, f"the page spills sideways: {width}"


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_a_whole_lesson_on_a_phone(browser, app_url, scheme):
    item = lesson()
    n = len(item.steps)
    url = f"{app_url}/?lesson={LESSON}&step=1" + ("&__theme=dark" if scheme == "dark" else "")
    context, page, errors = open_lesson(browser, url, color_scheme=scheme, **PHONE)
    try:
        wait_step(page, 1, n)
        asked, missed = 0, []
        for k, step in enumerate(item.steps, start=1):
            wait_step(page, k, n)
            if step.question:
                assert page.evaluate(COVERED) > 0, "the result shows before the answer"
                right = asked % 2 == 0  # right, wrong, right, ...
                answer(page, step, right, keyboard=(k == 1))
                page.wait_for_function(f"() => {COVERED} === 0", polling=200, timeout=30_000)
                asked += 1
                missed += [] if right else [k]
            if k == 2:  # a reload comes back to the same step
                page.reload()
                wait_step(page, 2, n)
            no_sideways_spill(page)
            if k == 1:
                shot(page, f"lesson_phone_{scheme}_step1")
            page.locator("#lesson-next").click()
        header = page.locator("#lesson-header")
        header.get_by_text("done").wait_for(timeout=30_000)
        text = page.locator("#lesson-text")
        assert f"{asked - len(missed)} of {asked}" in text.inner_text()
        for k in missed:
            assert text.locator(f"a[href*='lesson={LESSON}&step={k}']").count() == 1
        shot(page, f"lesson_phone_{scheme}_done")
    finally:
        context.close()
    assert not errors, "browser console errors:\n" + "\n".join(errors)


def test_a_home_card_and_a_tab_s_button_start_a_lesson_and_exit_uncovers(browser, app_url):
    context, page, errors = open_app(browser, app_url)
    try:
        page.locator(f"#home-lesson-{LESSON}").click()
        wait_step(page, 1, len(lesson().steps))
        assert page.evaluate(COVERED) > 0
        page.locator("#lesson-exit").click()
        page.wait_for_function(f"() => {COVERED} === 0", polling=200, timeout=30_000)
        assert not page.locator("#lesson").is_visible()
        open_tab(page, TAB.title)  # the tab's own Lesson button starts it again, from step 1
        page.locator(f"#lesson-start-{LESSON}").click()
        wait_step(page, 1, len(lesson().steps))
        assert page.evaluate(COVERED) > 0
    finally:
        context.close()
    assert not errors, "browser console errors:\n" + "\n".join(errors)


def test_an_unknown_lesson_link_opens_home_with_a_note(browser, app_url):
    context, page, errors = open_lesson(browser, f"{app_url}/?lesson=no_such_lesson&step=1",
                                        viewport={"width": 1280, "height": 800})
    try:
        page.get_by_text("There is no lesson 'no_such_lesson'").wait_for(timeout=30_000)
        assert page.get_by_role("tab", name="Home", exact=True).get_attribute("aria-selected") == "true"
    finally:
        context.close()
