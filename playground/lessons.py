"""Lessons: a guided path through one tab, read from a Markdown file beside the tab.

A lesson file is a run of blocks, each a YAML front matter between two ``---`` lines followed by
Markdown. The first block is the lesson (``id``, ``title``, ``minutes``; its Markdown is the
lesson's one-paragraph summary); every further block is one step::

    ---
    id: sde_ode
    title: Same noise, two samplers
    minutes: 10
    ---
    What the lesson is about, in a sentence or two.
    ---
    view: {sde: VE, n_steps: 50}          # the tab's settings: the keys a share link uses
    question:                              # optional: asked before the view's result is shown
      prompt: Which sampler ends nearer the data?
      options: [The SDE, The ODE, Neither]   # 2-5 options; or no options and a number answer
      answer: The ODE                        # an option's text, or a number (with tolerance)
      why: The reveal, at most 80 words.
      measure: nearer_sampler                # demos/<tab>/lesson.py: what the model computes
    goal:                                  # optional: a "your turn" step
      text: Move T until the cache fits in 24 GB.
      check: fits_24gb                       # demos/<tab>/lesson.py: Params -> bool
      solution: {seq_len: 4096}              # a view that meets it (tests check both)
    ---
    The step's text, at most 120 words, math in $...$.

``measure`` and ``check`` name functions of the tab's ``lesson`` module (compute side: no gradio);
each takes the tab's Params object for the step's view (the Binding's type) and returns the option's
text or the number (``measure``) or whether the goal is met (``check``). A test runs every question's
view through them, so a stated answer is what the shipped model computes.

This module reads and checks lessons (``load``, ``check_views``) and answers (``check_answer``);
it knows no tab.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from playground import settings

MAX_STEP_WORDS = 120
MAX_WHY_WORDS = 80
STEPS = (5, 8)  # a lesson has this many steps, inclusive
MIN_QUESTIONS = 3
OPTIONS = (2, 5)
ID = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
FENCE = re.compile(r"^---[ \t]*$", re.MULTILINE)


class LessonError(ValueError):
    """A lesson file that cannot be used: ``str(err)`` is one line naming the file and the step."""


@dataclass(frozen=True)
class Question:
    prompt: str
    options: tuple[str, ...]  # () for a number
    answer: str | float
    why: str
    measure: str
    tolerance: float = 0.0

    @property
    def is_number(self) -> bool:
        return not self.options


@dataclass(frozen=True)
class Goal:
    text: str
    check: str
    solution: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Step:
    text: str
    view: dict[str, Any]
    question: Question | None = None
    goal: Goal | None = None


@dataclass(frozen=True)
class Lesson:
    id: str
    tab: str
    title: str
    minutes: int
    summary: str
    steps: tuple[Step, ...]
    path: str  # relative to the repository, for messages

    @property
    def n_questions(self) -> int:
        return sum(s.question is not None for s in self.steps)


# ----------------------------------------------------------------------------- reading
def blocks(text: str) -> list[tuple[str, str]]:
    """(front matter, Markdown) pairs: the file split at its ``---`` lines."""
    parts = FENCE.split(text)
    if parts[0].strip():
        raise ValueError("must start with a '---' line")
    parts = parts[1:]
    if len(parts) % 2:
        parts.append("")
    return [(parts[i], parts[i + 1].strip()) for i in range(0, len(parts), 2)]


def words(text: str) -> int:
    return len(re.findall(r"[^\s$\\{}^_]+", re.sub(r"\$[^$]*\$", " x ", text)))


def _mapping(front: str) -> dict:
    data = yaml.safe_load(front) or {}
    if not isinstance(data, dict):
        raise ValueError("its front matter is not a mapping of keys to values")
    return data


def _only(data: dict, allowed: set[str], what: str) -> None:
    extra = sorted(set(data) - allowed)
    if extra:
        raise ValueError(f"{what} has unknown key(s) {', '.join(map(str, extra))}; allowed: {', '.join(sorted(allowed))}")


def parse_question(data: Any) -> Question | None:
    if data is None:
        return None
    if not isinstance(data, dict):
        raise ValueError("question must be a mapping (prompt, options, answer, why, measure)")
    _only(data, {"prompt", "options", "answer", "why", "measure", "tolerance"}, "question")
    missing = [k for k in ("prompt", "answer", "why", "measure") if k not in data]
    if missing:
        raise ValueError(f"question lacks {', '.join(missing)}")
    options = tuple(str(o) for o in data.get("options") or ())
    answer = data["answer"]
    if options:
        check_options(options, answer)
        answer = str(answer)
    elif not isinstance(answer, (int, float)) or isinstance(answer, bool) or not math.isfinite(answer):
        raise ValueError("a question without options needs a number as its answer")
    tolerance = float(data.get("tolerance", 0.0))
    if tolerance < 0 or not math.isfinite(tolerance):
        raise ValueError("tolerance must be a finite number >= 0")
    if words(str(data["why"])) > MAX_WHY_WORDS:
        raise ValueError(f"the reveal (why) has {words(str(data['why']))} words; at most {MAX_WHY_WORDS}")
    return Question(str(data["prompt"]), options, answer if options else float(answer), str(data["why"]),
                    str(data["measure"]), tolerance)


def check_options(options: tuple[str, ...], answer: Any) -> None:
    """2-5 distinct options of which exactly one is the answer."""
    if not OPTIONS[0] <= len(options) <= OPTIONS[1]:
        raise ValueError(f"a question has {OPTIONS[0]}-{OPTIONS[1]} options, this one {len(options)}")
    if len(set(options)) != len(options):
        raise ValueError("two options are the same")
    right = [o for o in options if o == str(answer)]
    if len(right) != 1:
        raise ValueError(f"exactly one option must be the answer; {str(answer)!r} is not one of them")


def parse_goal(data: Any) -> Goal | None:
    if data is None:
        return None
    if not isinstance(data, dict) or "text" not in data or "check" not in data:
        raise ValueError("goal must be a mapping with text and check (and a solution view)")
    _only(data, {"text", "check", "solution"}, "goal")
    solution = data.get("solution") or {}
    if not isinstance(solution, dict) or not solution:
        raise ValueError("goal needs a solution: a view that meets it")
    return Goal(str(data["text"]), str(data["check"]), dict(solution))


def parse_step(front: str, text: str) -> Step:
    data = _mapping(front)
    _only(data, {"view", "question", "goal"}, "a step")
    view = data.get("view") or {}
    if not isinstance(view, dict):
        raise ValueError("view must be a mapping of the tab's settings")
    if not text:
        raise ValueError("a step needs text after its front matter")
    if words(text) > MAX_STEP_WORDS:
        raise ValueError(f"the text has {words(text)} words; at most {MAX_STEP_WORDS}")
    return Step(text, dict(view), parse_question(data.get("question")), parse_goal(data.get("goal")))


def parse(text: str, tab: str, path: str) -> Lesson:
    """A lesson file's text as a ``Lesson``; ``LessonError`` naming the file and step otherwise."""
    try:
        found = blocks(text)
        head = _mapping(found[0][0]) if found else {}
        _only(head, {"id", "title", "minutes"}, "the lesson's front matter")
        lesson_id, minutes = str(head.get("id", "")), head.get("minutes")
        if not ID.match(lesson_id):
            raise ValueError("id must be lower-case letters, digits and _ (at most 40)")
        if not isinstance(minutes, int) or not 1 <= minutes <= 60:
            raise ValueError("minutes must be a whole number in 1..60")
        if not head.get("title"):
            raise ValueError("the lesson needs a title")
    except (ValueError, yaml.YAMLError) as err:
        raise LessonError(f"{path}: {_one_line(err)}") from None
    steps = []
    for k, (front, body) in enumerate(found[1:], start=1):
        try:
            steps.append(parse_step(front, body))
        except (ValueError, yaml.YAMLError) as err:
            raise LessonError(f"{path}, step {k}: {_one_line(err)}") from None
    lesson = Lesson(lesson_id, tab, str(head["title"]), minutes, found[0][1], tuple(steps), path)
    check_shape(lesson)
    return lesson


def check_shape(lesson: Lesson) -> None:
    """5-8 steps, at least 3 questions and one "your turn" step."""
    problems = []
    if not STEPS[0] <= len(lesson.steps) <= STEPS[1]:
        problems.append(f"has {len(lesson.steps)} steps; a lesson has {STEPS[0]}-{STEPS[1]}")
    if lesson.n_questions < MIN_QUESTIONS:
        problems.append(f"has {lesson.n_questions} questions; at least {MIN_QUESTIONS}")
    if not any(s.goal for s in lesson.steps):
        problems.append("has no 'your turn' step (a goal)")
    if problems:
        raise LessonError(f"{lesson.path}: {'; '.join(problems)}")


def _one_line(err: Exception) -> str:
    return " ".join(str(err).split())


def load(tab_id: str, relative: str) -> Lesson:
    """The lesson ``demos/<tab_id>/<relative>``, parsed and checked (not yet against the tab's controls)."""
    path = settings.REPO_ROOT / "demos" / tab_id / relative
    shown = str(path.relative_to(settings.REPO_ROOT))
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise LessonError(f"{shown}: cannot be read ({err.strerror})") from None
    return parse(text, tab_id, shown)


def all_lessons() -> list[Lesson]:
    """Every tab's lessons in tab order; ids are unique."""
    from playground import tabs

    return load_for([tabs.get(t) for t in tabs.TAB_IDS])


# ----------------------------------------------------------------------------- against the tab
def measures(lesson: Lesson):
    """The tab's ``lesson`` module (``demos/<tab>/lesson.py``), which holds measures and goal checks."""
    return importlib.import_module(f"demos.{lesson.tab}.lesson")


def view_fields(view: dict[str, Any]) -> dict[str, list[str]]:
    """A view as a link's fields: the values as a URL would carry them."""
    def text(value: Any) -> str:
        return ("true" if value else "false") if isinstance(value, bool) else str(value)

    return {str(k): [text(v)] for k, v in view.items()}


def view_query(tab_id: str, view: dict[str, Any]) -> str:
    """A step's view as a share link's query (``tab=<tab>&<key>=<value>...``, URL-encoded)."""
    import urllib.parse

    return urllib.parse.urlencode([("tab", tab_id), *[(k, v[0]) for k, v in view_fields(view).items()]])


def view_params(bindings: list, view: dict[str, Any], where: str) -> list:
    """The Params object of each of the tab's Bindings for ``view`` (over the controls' defaults),
    checked as a link's values are; ``LessonError`` naming ``where`` on any problem."""
    from playground import sharing

    kept, problems = sharing.tab_values(bindings, view_fields(view))
    if problems:
        raise LessonError(f"{where}: {'; '.join(problems)}")
    return [dataclasses.replace(b.defaults(), **values) for b, values in zip(bindings, kept)]


def check_views(lesson: Lesson, bindings: list) -> None:
    """Every step's view (and goal solution) is valid for the tab's controls, and every measure and
    goal check exists: what the app checks at start-up."""
    module = measures(lesson)
    for k, step in enumerate(lesson.steps, start=1):
        where = f"{lesson.path}, step {k}"
        view_params(bindings, step.view, where)
        names = [step.question.measure] if step.question else []
        if step.goal:
            view_params(bindings, {**step.view, **step.goal.solution}, f"{where} (goal solution)")
            names.append(step.goal.check)
        for name in names:
            if not callable(getattr(module, name, None)):
                raise LessonError(f"{where}: demos/{lesson.tab}/lesson.py has no function {name!r}")


# ----------------------------------------------------------------------------- answers
def public(lesson: Lesson) -> dict:
    """The lesson as the ``lessons`` endpoint sends it: no right answers, no reveals."""
    def question(q: Question | None):
        return None if q is None else {"prompt": q.prompt, "options": list(q.options)}

    return {"id": lesson.id, "tab": lesson.tab, "title": lesson.title, "minutes": lesson.minutes,
            "steps": [{"text": s.text, "view": dict(s.view), "question": question(s.question),
                       "goal": s.goal.text if s.goal else None} for s in lesson.steps]}


def find_step(lessons: list[Lesson], lesson_id: Any, step: Any) -> tuple[Lesson, Step]:
    """The lesson and its step ``step`` (from 1); ``ValueError`` saying which exist."""
    by_id = {lesson.id: lesson for lesson in lessons}
    if str(lesson_id) not in by_id:
        raise ValueError(f"unknown lesson {str(lesson_id)[:40]!r}; lessons: {', '.join(by_id)}")
    lesson = by_id[str(lesson_id)]
    k = whole_number(step)
    if k is None or not 1 <= k <= len(lesson.steps):
        raise ValueError(f"step must be a whole number in 1..{len(lesson.steps)}, got {str(step)[:20]!r}")
    return lesson, lesson.steps[k - 1]


def whole_number(value: Any) -> int | None:
    """``value`` (an int, an integral float or digits) as an int, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    text = str(value).strip()
    return int(text) if re.fullmatch(r"[0-9]{1,4}", text) else None


def is_right(question: Question, answer: Any) -> bool:
    """Whether ``answer`` (an option's text, or a number) is the question's answer; ``ValueError``
    for an answer of the wrong kind."""
    if not question.is_number:
        if str(answer) not in question.options:
            raise ValueError(f"answer must be one of: {' | '.join(question.options)}")
        return str(answer) == question.answer
    try:
        number = float(answer)
    except (TypeError, ValueError):
        raise ValueError("answer must be a number") from None
    if not math.isfinite(number):
        raise ValueError("answer must be a finite number")
    slack = 1e-9 * max(1.0, abs(float(question.answer)))  # 2.25 - 2.15 is 0.10000000000000009
    return abs(number - float(question.answer)) <= question.tolerance + slack


def check_answer(lessons: list[Lesson], lesson_id: Any, step: Any, answer: Any) -> dict:
    """``{"correct", "answer", "why"}`` for a student's answer to step ``step`` of a lesson."""
    lesson, found = find_step(lessons, lesson_id, step)
    if found.question is None:
        raise ValueError(f"step {step} of {lesson.id!r} asks no question")
    q = found.question
    shown = q.answer if not q.is_number else (f"{q.answer:g} (± {q.tolerance:g})" if q.tolerance else f"{q.answer:g}")
    return {"correct": is_right(q, answer), "answer": shown, "why": q.why}


# ----------------------------------------------------------------------------- in the app
def load_for(chosen: list) -> list[Lesson]:
    """The lessons of the tabs in the app (``playground.tabs.Tab`` objects), read and checked;
    ids unique. A broken lesson raises ``LessonError``."""
    found = [load(tab.id, relative) for tab in chosen for relative in tab.lessons]
    ids = [lesson.id for lesson in found]
    for lesson in found:
        if ids.count(lesson.id) > 1:
            raise LessonError(f"{lesson.path}: the id {lesson.id!r} is used by another lesson too")
    return found


def check_all(found: list[Lesson], shared: list) -> None:
    """Every lesson against its tab's Bindings (``shared``: the app's ``sharing.Shared`` per tab)."""
    by_tab = {view.tab_id: view for view in shared}
    for lesson in found:
        check_views(lesson, by_tab[lesson.tab].bindings)


def wire(found: list[Lesson]) -> None:
    """The ``lessons`` and ``lesson_check`` endpoints (inside the app's Blocks)."""
    import gradio as gr

    from playground.ui_helpers import api_errors

    @api_errors
    def lessons_list() -> list:
        """Every lesson with its steps, views, questions and goals; never the right answers."""
        return [public(lesson) for lesson in found]

    @api_errors
    def lesson_check(lesson_id: str, step: int, answer: str) -> dict:
        """A student's answer (an option's text, or a number) to step ``step`` (from 1) of a lesson:
        ``{"correct", "answer", "why"}``."""
        return check_answer(found, lesson_id, step, answer)

    gr.api(lessons_list, api_name="lessons")
    gr.api(lesson_check, api_name="lesson_check")


# ----------------------------------------------------------------------------- truth
def owner(bindings: list, view: dict[str, Any]) -> int:
    """Which of the tab's Bindings a view is about: the one whose prefix its keys carry (default the first)."""
    for i, binding in enumerate(bindings):
        if binding.prefix and any(str(k).startswith(binding.prefix) for k in view):
            return i
    return 0


def measured(lesson: Lesson, bindings: list) -> list[dict]:
    """For every question and goal: what the model computes at the step's view, beside what the
    lesson states. ``ok`` is False where they disagree (a retrained model changed the answer)."""
    module, rows = measures(lesson), []
    for k, step in enumerate(lesson.steps, start=1):
        where = f"{lesson.path}, step {k}"
        params = view_params(bindings, step.view, where)[owner(bindings, step.view)]
        if step.question:
            value = getattr(module, step.question.measure)(params)
            ok = is_right(step.question, value) if step.question.is_number else value == step.question.answer
            rows.append({"step": k, "kind": "question", "stated": step.question.answer, "measured": value, "ok": ok})
        if step.goal:
            check = getattr(module, step.goal.check)
            solved_view = {**step.view, **step.goal.solution}
            solved = view_params(bindings, solved_view, where)[owner(bindings, solved_view)]
            start, end = bool(check(params)), bool(check(solved))
            rows.append({"step": k, "kind": "goal", "stated": "not met at the view, met at the solution",
                         "measured": f"view: {start}, solution: {end}", "ok": (not start) and end})
    return rows


def build_bindings(tab_id: str) -> list:
    """The tab's Bindings, from its UI built on its own (what ``check_views`` and ``measured`` need)."""
    import gradio as gr

    from playground import tabs

    with gr.Blocks() as demo:
        built = tabs.get(tab_id).build_function()(demo)
    return list(built) if isinstance(built, (list, tuple)) else [built]


def main(argv: list[str] | None = None) -> None:
    """``python -m playground.lessons [lesson id ...]``: check each lesson against its tab and the
    shipped models, and print stated against measured answers."""
    import sys

    wanted = set(argv if argv is not None else sys.argv[1:])
    failed = 0
    for lesson in all_lessons():
        if wanted and lesson.id not in wanted:
            continue
        bindings = build_bindings(lesson.tab)
        check_views(lesson, bindings)
        for row in measured(lesson, bindings):
            failed += not row["ok"]
            print(f"{lesson.id} step {row['step']} {row['kind']}: stated {row['stated']!r}, "
                  f"measured {row['measured']!r} {'ok' if row['ok'] else 'DIFFERENT'}")
    raise SystemExit(1 if failed else 0)


if __name__ == "__main__":
    main()
