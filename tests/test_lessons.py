"""Lessons (playground/lessons.py): the format and its checks, the answers through the API, and
every stated answer measured on the shipped models."""

import json
import subprocess
import sys

import pytest
from gradio_client.exceptions import AppError

from playground import lessons, tabs
from playground.lessons import LessonError
from tests.conftest import free_port

HEAD = "---\nid: demo\ntitle: A lesson\nminutes: 5\n---\nSummary.\n"
STEP = "---\nview: {}\n---\nSome text.\n"
QUESTION = ("---\nview: {}\nquestion:\n  prompt: Which?\n  options: [a, b]\n  answer: a\n  why: Because.\n"
            "  measure: m\n---\nAsk.\n")
GOAL = "---\nview: {}\ngoal:\n  text: Do it.\n  check: c\n  solution: {x: 1}\n---\nYour turn.\n"


def lesson_text(*steps: str) -> str:
    return HEAD + "".join(steps)


def good() -> str:
    return lesson_text(QUESTION, QUESTION, QUESTION, GOAL, STEP)


def test_a_well_formed_lesson_parses():
    lesson = lessons.parse(good(), "attention", "x/lesson.md")
    assert (lesson.id, lesson.title, lesson.minutes, lesson.summary) == ("demo", "A lesson", 5, "Summary.")
    assert len(lesson.steps) == 5 and lesson.n_questions == 3
    assert lesson.steps[0].question.options == ("a", "b") and lesson.steps[3].goal.solution == {"x": 1}


@pytest.mark.parametrize("text,message", [
    (lesson_text(QUESTION, QUESTION, QUESTION, STEP), "x/lesson.md: has 4 steps; a lesson has 5-8; has no 'your turn'"),
    (lesson_text(QUESTION, QUESTION, STEP, GOAL, STEP), "has 2 questions; at least 3"),
    (lesson_text(QUESTION, QUESTION.replace("answer: a", "answer: c"), QUESTION, GOAL, STEP),
     "x/lesson.md, step 2: exactly one option must be the answer"),
    (lesson_text(QUESTION, QUESTION.replace("[a, b]", "[a, a]"), QUESTION, GOAL, STEP), "step 2: two options are the same"),
    (lesson_text(QUESTION, QUESTION.replace("[a, b]", "[a]"), QUESTION, GOAL, STEP), "step 2: a question has 2-5 options"),
    (lesson_text(QUESTION, STEP.replace("view: {}", "view: {}\nsurprise: 1"), QUESTION, QUESTION, GOAL),
     "step 2: a step has unknown key(s) surprise"),
    (lesson_text(STEP.replace("Some text.", "word " * 121), QUESTION, QUESTION, QUESTION, GOAL), "step 1: the text has 121 words"),
    (lesson_text(QUESTION.replace("options: [a, b]\n  answer: a", "answer: many"), QUESTION, QUESTION, GOAL, STEP),
     "step 1: a question without options needs a number"),
    (lesson_text(QUESTION, GOAL.replace("  solution: {x: 1}\n", ""), QUESTION, QUESTION, STEP), "step 2: goal needs a solution"),
    (HEAD.replace("minutes: 5", "minutes: lots") + good()[len(HEAD):], "x/lesson.md: minutes must be a whole number"),
    (HEAD.replace("id: demo", "id: Not An Id") + good()[len(HEAD):], "x/lesson.md: id must be lower-case"),
    ("no front matter\n" + good(), "x/lesson.md: must start with a '---' line"),
    (lesson_text(QUESTION, "---\nview: [1, 2\n---\nText.\n", QUESTION, QUESTION, GOAL), "x/lesson.md, step 2:"),
])
def test_a_broken_lesson_is_one_line_naming_the_file_and_step(text, message):
    with pytest.raises(LessonError) as err:
        lessons.parse(text, "attention", "x/lesson.md")
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_number_question_is_right_within_its_tolerance_and_an_answer_of_the_wrong_kind_is_refused():
    q = lessons.Question("How many?", (), 2.25, "Why.", "m", tolerance=0.1)
    assert lessons.is_right(q, "2.3") and lessons.is_right(q, 2.15) and not lessons.is_right(q, 2.4)
    with pytest.raises(ValueError, match="answer must be a number"):
        lessons.is_right(q, "two")
    with pytest.raises(ValueError, match="finite"):
        lessons.is_right(q, "nan")
    choice = lessons.Question("Which?", ("a", "b"), "b", "Why.", "m")
    assert lessons.is_right(choice, "b") and not lessons.is_right(choice, "a")
    with pytest.raises(ValueError, match="answer must be one of: a | b"):
        lessons.is_right(choice, "c")


@pytest.fixture(scope="module")
def shipped():
    return lessons.all_lessons()


def test_every_tab_has_a_lesson_and_ids_are_unique(shipped):
    ids = [lesson.id for lesson in shipped]
    assert len(ids) == len(set(ids))
    assert {lesson.tab for lesson in shipped} <= set(tabs.TAB_IDS)


@pytest.mark.parametrize("lesson_id", [lesson.id for lesson in lessons.all_lessons()])
def test_every_stated_answer_is_what_the_shipped_model_computes(lesson_id):
    """The model is the authority: each question's view through the tab's compute gives the stated
    answer; each goal is unmet at its step's view and met at its solution."""
    lesson = next(lesson for lesson in lessons.all_lessons() if lesson.id == lesson_id)
    bindings = lessons.build_bindings(lesson.tab)
    lessons.check_views(lesson, bindings)
    rows = lessons.measured(lesson, bindings)
    assert rows and all(row["ok"] for row in rows), [row for row in rows if not row["ok"]]


def test_the_api_lists_lessons_without_answers_and_checks_an_answer(client, shipped):
    listed = client.predict(api_name="/lessons")
    assert [item["id"] for item in listed] == [lesson.id for lesson in shipped]
    text = json.dumps(listed)
    for lesson in shipped:
        for step in lesson.steps:
            if step.question:
                assert step.question.why not in text
    lesson = next(lesson for lesson in shipped if lesson.id == "attention")
    k, step = next((k, s) for k, s in enumerate(lesson.steps, 1) if s.question and s.question.options)
    wrong = next(o for o in step.question.options if o != step.question.answer)
    right = client.predict("attention", k, step.question.answer, api_name="/lesson_check")
    assert right == {"correct": True, "answer": step.question.answer, "why": step.question.why}
    assert client.predict("attention", k, wrong, api_name="/lesson_check")["correct"] is False


@pytest.mark.parametrize("args,message", [
    (("nope", 1, "a"), "unknown lesson 'nope'"),
    (("attention", 99, "a"), "step must be a whole number in 1.."),
    (("attention", 1, "not a number"), "answer must be a number"),
    (("attention", 2, "9x smaller"), "answer must be one of"),
])
def test_a_bad_lesson_check_is_a_clear_message(client, args, message):
    with pytest.raises(AppError, match=message):
        client.predict(*args, api_name="/lesson_check")


def test_a_broken_lesson_file_stops_the_start_with_one_line(tmp_path):
    """The CLI builds the app; a lesson whose view names an unknown setting stops it (exit 2)."""
    code = ("import sys; from playground import lessons, tabs;"
            "lessons.load = lambda t, r: lessons.parse(open(sys.argv[1]).read(), t, 'demos/attention/lesson.md');"
            "from playground.__main__ import main; main(['--tabs', 'attention', '--port', sys.argv[2]])")
    broken = good().replace("view: {}", "view: {warp_speed: 9}", 1).replace("measure: m", "measure: cache_gb")
    path = tmp_path / "lesson.md"
    path.write_text(broken)
    done = subprocess.run([sys.executable, "-c", code, str(path), str(free_port())], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        "error: lesson: demos/attention/lesson.md, step 1: unknown setting 'warp_speed'")
