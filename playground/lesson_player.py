"""The lesson player: a panel at the top of each tab that walks a student through a lesson.

Step k of n, its text, then (for a question) a labelled radio group or a number box, with the tab's
result below it covered (blurred and ``inert``) until the student answers or presses "Show me";
the reveal says right or not, the answer and why, in a live region a screen reader announces.
A goal step checks the tab's current settings. Back, Next, Exit; the last step shows the score and
the missed questions, each a link back to its step. The step's view is set on the tab's controls
and drawn by the tab's own link event (``sharing``): a step is a link.

Entry: the Home tab's Lessons row, the "Lesson" button of each tab, and ``?lesson=<id>&step=<k>``.
Progress lives in the browser (``gr.BrowserState``: localStorage), never in the server: a reload
returns to the same step.
"""

from __future__ import annotations

import html
import random
import urllib.parse
from dataclasses import dataclass

import gradio as gr

from playground import lessons as lessons_lib
from playground.lessons import Lesson
from playground.ui_helpers import user_errors

STORAGE_KEY = "gp-lesson-progress"
EMPTY = {"lesson": None, "step": 0, "answers": {}}
PRIVATE = {"api_visibility": "private"}
LATEX = [{"left": "$$", "right": "$$", "display": True}, {"left": "$", "right": "$", "display": False}]

PLAYER_JS = """
() => {
  const ATTR = "data-gp-covered";
  const live = () => document.querySelectorAll(".gp-reveal").forEach(e => {
    e.setAttribute("role", "status"); e.setAttribute("aria-live", "polite"); });
  window.gpLesson = {
    cover(tabId, on) {
      live();  // the reveal is announced: a live region (the panel is only rendered once shown)
      const panel = document.querySelector(`#tab-${tabId} .gp-lesson`);
      if (!panel) return;
      let el = panel.nextElementSibling;
      while (el) {
        if (on) { el.setAttribute("inert", ""); el.setAttribute(ATTR, ""); }
        else { el.removeAttribute("inert"); el.removeAttribute(ATTR); }
        el = el.nextElementSibling;
      }
    },
  };
  live();
}
"""

@dataclass
class Panel:
    """One tab's player components."""

    tab_id: str
    lessons: list[Lesson]
    start: gr.Button
    box: gr.Column
    header: gr.Markdown
    text: gr.Markdown
    choice: gr.Radio
    number: gr.Number
    check: gr.Button
    show: gr.Button
    reveal: gr.Markdown
    goal: gr.Button
    back: gr.Button
    next: gr.Button
    exit: gr.Button
    link: gr.Textbox
    step: gr.JSON  # {"lesson": id, "step": k, "covered": bool} shown now (k = n + 1: the summary)
    state: gr.BrowserState | None = None  # the progress, in localStorage (set by ``wire``)

    def outputs(self) -> list:
        return [self.box, self.header, self.text, self.choice, self.number, self.check, self.show,
                self.reveal, self.goal, self.back, self.next, self.link, self.step]


# ----------------------------------------------------------------------------- layout
def panel(tab_id: str, tab_lessons: list[Lesson]) -> Panel | None:
    """The player of one tab (inside its ``gr.Tab``, above the tab's own content)."""
    if not tab_lessons:
        return None
    with gr.Row():
        start = gr.Button("Start the lesson" if len(tab_lessons) == 1 else "Start the lessons",
                          size="sm", variant="secondary", elem_id=f"lesson-{tab_id}-start", scale=0, min_width=160)
    with gr.Column(visible=False, elem_classes=["gp-lesson"], elem_id=f"lesson-{tab_id}") as box:
        header = gr.Markdown(elem_id=f"lesson-{tab_id}-header")
        text = gr.Markdown(latex_delimiters=LATEX, elem_id=f"lesson-{tab_id}-text")
        choice = gr.Radio([], label="Your prediction", visible=False, elem_id=f"lesson-{tab_id}-choice")
        number = gr.Number(label="Your prediction", visible=False, elem_id=f"lesson-{tab_id}-number")
        with gr.Row(elem_classes=["gp-lesson-nav"]):
            check = gr.Button("Check my answer", variant="primary", size="sm", visible=False)
            show = gr.Button("Show me", size="sm", visible=False)
            goal = gr.Button("Check my settings", variant="primary", size="sm", visible=False)
        reveal = gr.Markdown(latex_delimiters=LATEX, elem_classes=["gp-reveal"], elem_id=f"lesson-{tab_id}-reveal")
        with gr.Row(elem_classes=["gp-lesson-nav"]):
            back = gr.Button("Back", size="sm", elem_id=f"lesson-{tab_id}-back")
            nxt = gr.Button("Next", size="sm", variant="primary", elem_id=f"lesson-{tab_id}-next")
            leave = gr.Button("Exit lesson", size="sm", elem_id=f"lesson-{tab_id}-exit")
        link = gr.Textbox(label="Link to this step", interactive=False, max_lines=1, buttons=["copy"],
                          elem_id=f"lesson-{tab_id}-link")
        step = gr.JSON(visible=False)
    return Panel(tab_id, tab_lessons, start, box, header, text, choice, number, check, show, reveal, goal,
                 back, nxt, leave, link, step)


def home_row(found: list[Lesson], titles: dict[str, str]) -> dict[str, gr.HTML]:
    """The Home tab's Lessons row: a card per lesson (title, tab, minutes, questions)."""
    cards = {}
    if not found:
        return cards
    gr.Markdown("## Lessons\nA guided path through one tab: predict, then see what the model does.")
    for start in range(0, len(found), 3):
        with gr.Row(equal_height=True, elem_classes="gp-cards"):
            for lesson in found[start:start + 3]:
                body = (f"<div class='gp-lesson-card' role='button' tabindex='0'><h3>{html.escape(lesson.title)}</h3>"
                        f"<p>{html.escape(titles.get(lesson.tab, lesson.tab))} · {lesson.minutes} min · "
                        f"{lesson.n_questions} questions</p></div>")
                cards[lesson.id] = gr.HTML(body, elem_id=f"home-lesson-{lesson.id}")
    return cards


# ----------------------------------------------------------------------------- what a step shows
def step_link(base: str, lesson: Lesson, k: int) -> str:
    return f"{base}?{urllib.parse.urlencode({'lesson': lesson.id, 'step': k})}"


def panel_updates(lesson: Lesson, k: int, base: str, progress: dict) -> list:
    """``Panel.outputs()`` for step ``k`` of ``lesson`` (``k = n + 1``: the summary)."""
    n = len(lesson.steps)
    if k > n:
        return summary_updates(lesson, base, progress)
    step = lesson.steps[k - 1]
    q, hidden = step.question, gr.update(visible=False)
    choice = gr.update(choices=list(q.options), value=None, label=q.prompt, visible=True) if q and q.options else hidden
    number = gr.update(value=None, label=q.prompt, visible=True) if q and not q.options else hidden
    return [gr.update(visible=True), f"**{lesson.title}** · step {k} of {n}", step.text, choice, number,
            gr.update(visible=q is not None), gr.update(visible=q is not None), "",
            gr.update(visible=step.goal is not None), gr.update(interactive=k > 1),
            gr.update(value="Finish" if k == n else "Next", visible=True), step_link(base, lesson, k),
            {"lesson": lesson.id, "step": k, "covered": q is not None}]


def summary_updates(lesson: Lesson, base: str, progress: dict) -> list:
    """The last screen: the score and the missed questions, each linking back to its step."""
    answers = progress.get("answers", {}).get(lesson.id, {})
    asked = [k for k, s in enumerate(lesson.steps, 1) if s.question]
    right = [k for k in asked if answers.get(str(k)) is True]
    missed = "\n".join(f"- [Step {k}: {lesson.steps[k - 1].question.prompt}]({step_link(base, lesson, k)})"
                       for k in asked if k not in right)
    text = f"You answered **{len(right)} of {len(asked)}** questions right." + (
        f"\n\nTo look at again:\n{missed}" if missed else " Every prediction matched the model.")
    hidden = gr.update(visible=False)
    return [gr.update(visible=True), f"**{lesson.title}** · done", text, hidden, hidden, hidden, hidden, "",
            hidden, gr.update(interactive=True), hidden, step_link(base, lesson, len(lesson.steps) + 1),
            {"lesson": lesson.id, "step": len(lesson.steps) + 1, "covered": False}]


def view_updates(shared, lesson: Lesson, k: int) -> list:
    """The tab's controls set to step ``k``'s view, then the trigger that draws it (``sharing``)."""
    bindings = shared.bindings
    view = lesson.steps[k - 1].view if k <= len(lesson.steps) else {}
    if k > len(lesson.steps):
        return [gr.skip()] * (sum(len(b.components) for b in bindings) + len(shared.triggers))
    params = lessons_lib.view_params(bindings, view, lesson.path)
    values = [v for b, p in zip(bindings, params) for v in b.values(p).values()]
    owner = lessons_lib.owner(bindings, view)
    nonce = random.getrandbits(32)  # the trigger fires on a change: the same step opened twice draws again
    search = "?" + urllib.parse.urlencode({"tab": lesson.tab, **{key: fields[0] for key, fields in
                                           lessons_lib.view_fields(view).items()}, "__n": nonce})
    return values + [search if i == owner else gr.skip() for i in sorted(shared.triggers)]


def view_outputs(shared) -> list:
    return [c for b in shared.bindings for c in b.components.values()] + [shared.triggers[i] for i in sorted(shared.triggers)]


def opened(progress: dict, lesson: Lesson, k: int) -> dict:
    return {**EMPTY, **(progress or {}), "lesson": lesson.id, "step": k}


def cover_js(tab_id: str) -> str:
    return f"(step) => {{ if (window.gpLesson) window.gpLesson.cover('{tab_id}', !!(step && step.covered)); }}"


BASE_JS = "(link, ...rest) => [window.location.origin + window.location.pathname, ...rest]"


# ----------------------------------------------------------------------------- events
def find(p: Panel, lesson_id) -> Lesson | None:
    return next((lesson for lesson in p.lessons if lesson.id == lesson_id), None)


def show_step(p: Panel, shared, lesson: Lesson, k: int, base: str, progress: dict, view: bool = True) -> list:
    """Everything an opened step sets: the panel, the tab's controls and trigger (unless ``view`` is
    False: a reload on a link to other settings keeps them), the progress."""
    k = max(1, min(k, len(lesson.steps) + 1))
    progress = opened(progress, lesson, k)
    views = view_updates(shared, lesson, k) if view else [gr.skip()] * len(view_outputs(shared))
    return panel_updates(lesson, k, base, progress) + views + [progress]


def reveal(question, answer, progress: dict, lesson: Lesson, k: int, shown: bool) -> tuple[str, dict]:
    """The reveal's text and the progress with this answer recorded (a "Show me" counts as missed)."""
    if shown:
        right = None
        head = "**The model says:**"
    else:
        right = lessons_lib.is_right(question, answer)
        head = "**Right.**" if right else "**Not quite.**"
    shown_answer = question.answer if question.options else f"{question.answer:g}"
    answers = {**progress.get("answers", {})}
    mine = {**answers.get(lesson.id, {})}
    mine.setdefault(str(k), bool(right))
    answers[lesson.id] = mine
    return f"{head} {html.escape(str(shown_answer))}. {question.why}", {**progress, "answers": answers}


def answer_events(p: Panel, found: dict) -> None:
    """Check my answer and Show me: the reveal, the progress, the result uncovered."""
    @user_errors
    def on_check(step: dict, choice, number, progress: dict):
        lesson = found[step["lesson"]]
        question = lesson.steps[step["step"] - 1].question
        answer = choice if question.options else number
        if answer is None:
            raise ValueError("Choose an option first" if question.options else "Type a number first")
        text, progress = reveal(question, answer, progress, lesson, step["step"], shown=False)
        return text, {**step, "covered": False}, progress, gr.update(visible=False), gr.update(visible=False)

    @user_errors
    def on_show(step: dict, progress: dict):
        lesson = found[step["lesson"]]
        question = lesson.steps[step["step"] - 1].question
        text, progress = reveal(question, None, progress, lesson, step["step"], shown=True)
        return text, {**step, "covered": False}, progress, gr.update(visible=False), gr.update(visible=False)

    outputs = [p.reveal, p.step, p.state, p.check, p.show]
    p.check.click(on_check, [p.step, p.choice, p.number, p.state], outputs, **PRIVATE).then(
        None, p.step, None, js=cover_js(p.tab_id))
    p.show.click(on_show, [p.step, p.state], outputs, **PRIVATE).then(None, p.step, None, js=cover_js(p.tab_id))


def goal_event(p: Panel, shared, found: dict) -> None:
    """Check my settings: the goal's check on the tab's current controls."""
    inputs = {p.step} | {c for b in shared.bindings for c in b.components.values()}

    @user_errors
    def on_goal(values: dict):
        step = values[p.step]
        lesson = found[step["lesson"]]
        view = lesson.steps[step["step"] - 1].view
        binding = shared.bindings[lessons_lib.owner(shared.bindings, view)]
        met = getattr(lessons_lib.measures(lesson), lesson.steps[step["step"] - 1].goal.check)(binding.params(values))
        return "**Goal met.** Press Next." if met else "**Not yet.** Change the settings above and check again."

    p.goal.click(on_goal, inputs, p.reveal, **PRIVATE)


def navigation_events(p: Panel, shared, found: dict) -> None:
    """Lesson (start or resume), Back, Next and Exit."""
    outputs = p.outputs() + view_outputs(shared) + [p.state]

    @user_errors
    def on_start(base: str, progress: dict):
        lesson = find(p, (progress or {}).get("lesson")) or p.lessons[0]
        k = progress.get("step", 1) if progress and progress.get("lesson") == lesson.id else 1
        return show_step(p, shared, lesson, k, base, progress or dict(EMPTY))

    def move(delta: int):
        @user_errors
        def on_move(base: str, step: dict, progress: dict):
            return show_step(p, shared, found[step["lesson"]], step["step"] + delta, base, progress)
        on_move.__name__ = f"lesson_{'next' if delta > 0 else 'back'}_{p.tab_id}"
        return on_move

    def on_exit(progress: dict):
        return gr.update(visible=False), {"covered": False}, {**(progress or EMPTY), "lesson": None, "step": 0}

    p.start.click(on_start, [p.link, p.state], outputs, js=BASE_JS, **PRIVATE).then(
        None, p.step, None, js=cover_js(p.tab_id))
    for button, delta in ((p.next, 1), (p.back, -1)):
        button.click(move(delta), [p.link, p.step, p.state], outputs, js=BASE_JS, **PRIVATE).then(
            None, p.step, None, js=cover_js(p.tab_id))
    p.exit.click(on_exit, p.state, [p.box, p.step, p.state], **PRIVATE).then(None, p.step, None, js=cover_js(p.tab_id))


def entry_events(demo, tabs: gr.Tabs, p: Panel, shared, card_of: dict) -> None:
    """The page opened on ``?lesson=<id>&step=<k>`` (or reloaded mid-lesson), and the Home cards."""
    outputs = [tabs] + p.outputs() + view_outputs(shared) + [p.state]
    skip = [gr.skip()] * len(outputs)

    def on_page(base: str, progress: dict, request: gr.Request):
        """A lesson link opens its step; a reload mid-lesson (progress in this browser) resumes it,
        keeping the settings of a link to this tab if the page has one."""
        query = dict(getattr(request, "query_params", {}) or {})
        lesson, k = find(p, query.get("lesson")), lessons_lib.whole_number(query.get("step", 1))
        resumed = lesson is None and "lesson" not in query and query.get("tab") in (None, p.tab_id) and progress
        if resumed:
            lesson, k = find(p, progress.get("lesson")), progress.get("step", 1)
        if lesson is None or k is None or not 1 <= k <= len(lesson.steps) + 1:
            return skip
        return [gr.Tabs(selected=p.tab_id)] + show_step(p, shared, lesson, k, base, progress or dict(EMPTY),
                                                        view=not (resumed and "tab" in query))

    on_page.__name__ = f"lesson_link_{p.tab_id}"
    demo.load(on_page, [p.link, p.state], outputs, js=BASE_JS, **PRIVATE).then(
        None, p.step, None, js=cover_js(p.tab_id))
    for lesson in p.lessons:
        if lesson.id in card_of:
            card_of[lesson.id].click(card_event(p, shared, lesson), [p.link, p.state], outputs, js=BASE_JS,
                                     **PRIVATE).then(None, p.step, None, js=cover_js(p.tab_id))


def card_event(p: Panel, shared, lesson: Lesson):
    @user_errors
    def on_card(base: str, progress: dict):
        k = progress.get("step", 1) if progress and progress.get("lesson") == lesson.id else 1
        return [gr.Tabs(selected=p.tab_id)] + show_step(p, shared, lesson, k, base, progress or dict(EMPTY))

    on_card.__name__ = f"lesson_card_{lesson.id}"
    return on_card


def unknown_link_event(demo, tabs: gr.Tabs, found: dict) -> None:
    """``?lesson=`` naming no lesson here, or a step it does not have: Home, with a one-line note."""
    @user_errors
    def on_page(request: gr.Request):
        query = dict(getattr(request, "query_params", {}) or {})
        if "lesson" not in query:
            return gr.skip()
        lesson, k = found.get(query["lesson"]), lessons_lib.whole_number(query.get("step", 1))
        if lesson is not None and k is not None and 1 <= k <= len(lesson.steps) + 1:
            return gr.skip()
        what = (f"lesson {query['lesson'][:40]!r}" if lesson is None else f"step {query.get('step', '')[:10]!r} "
                f"in {lesson.id!r} (it has {len(lesson.steps)})")
        gr.Warning(html.escape(f"There is no {what}; lessons here: {', '.join(found) or 'none'}."), duration=15)
        return gr.Tabs(selected="home")

    demo.load(on_page, None, tabs, **PRIVATE)


def wire(demo, tabs: gr.Tabs, shared: list, panels: dict[str, Panel], cards: dict, found: list[Lesson]) -> None:
    """Connect every tab's player, the Home cards and the lesson links (inside the app's Blocks)."""
    state = gr.BrowserState(dict(EMPTY), storage_key=STORAGE_KEY)
    demo.load(None, js=PLAYER_JS)
    by_id, by_tab = {lesson.id: lesson for lesson in found}, {s.tab_id: s for s in shared}
    unknown_link_event(demo, tabs, by_id)
    for tab_id, p in panels.items():
        p.state = state
        navigation_events(p, by_tab[tab_id], by_id)
        answer_events(p, by_id)
        if any(lesson.steps[k].goal for lesson in p.lessons for k in range(len(lesson.steps))):
            goal_event(p, by_tab[tab_id], by_id)
        entry_events(demo, tabs, p, by_tab[tab_id], cards)
