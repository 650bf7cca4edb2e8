"""The lesson player: one panel above the tabs that walks a student through a lesson.

Step k of n, its text, then (for a question) a labelled radio group or a number box, with the
lesson's tab below it covered (blurred and ``inert``) until the student answers or presses "Show me";
the reveal says right or not, the answer and why, in a live region a screen reader announces.
A goal step checks the tab's current settings. Back, Next, Exit; the last step shows the score and
the missed questions, each a link back to its step. The step's view is set on the tab's controls
and drawn by the tab's own link event (``sharing``): a step is a link.

One panel for the whole app, not one per tab: its few components are all a page load pays for
(one panel per tab doubled the page's first render). Its events write to the lesson's tab: one
event per button whose outputs are the panel, every lesson tab's controls and link triggers, and
the progress; the tabs a step is not about get ``gr.skip()``.

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
    cover(step) {
      live();  // the reveal is announced: a live region (the panel is only rendered once shown)
      document.querySelectorAll(`[${ATTR}]`).forEach(el => { el.removeAttribute("inert"); el.removeAttribute(ATTR); });
      if (step && step.lesson) {  // the URL is the step: a reload or a copied address opens it again
        const query = new URLSearchParams();
        for (const [key, value] of new URLSearchParams(window.location.search)) if (key.startsWith("__")) query.append(key, value);
        query.set("lesson", step.lesson); query.set("step", String(step.step));
        history.replaceState(history.state, "", window.location.pathname + "?" + query.toString() + window.location.hash);
      }
      const tab = step && step.covered ? document.getElementById(`tab-${step.tab}`) : null;
      if (!tab) return;
      for (const el of tab.children) { el.setAttribute("inert", ""); el.setAttribute(ATTR, ""); }
    },
  };
  live();
}
"""

@dataclass
class Panel:
    """The player's components (one set for the whole app)."""

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
    step: gr.JSON  # {"lesson", "tab", "step": k, "covered"} shown now (k = n + 1: the summary)
    state: gr.BrowserState | None = None  # the progress, in localStorage (set by ``wire``)

    def outputs(self) -> list:
        return [self.box, self.header, self.text, self.choice, self.number, self.check, self.show,
                self.reveal, self.goal, self.back, self.next, self.link, self.step]


# ----------------------------------------------------------------------------- layout
def panel() -> Panel:
    """The player, above the app's tabs; hidden until a lesson starts."""
    with gr.Column(visible=False, elem_classes=["gp-lesson"], elem_id="lesson") as box:
        header = gr.Markdown(elem_id="lesson-header")
        text = gr.Markdown(latex_delimiters=LATEX, elem_id="lesson-text")
        choice = gr.Radio([], label="Your prediction", visible=False, elem_id="lesson-choice")
        number = gr.Number(label="Your prediction", visible=False, elem_id="lesson-number")
        with gr.Row(elem_classes=["gp-lesson-nav"]):
            check = gr.Button("Check my answer", variant="primary", size="sm", visible=False, elem_id="lesson-check")
            show = gr.Button("Show me", size="sm", visible=False, elem_id="lesson-show")
            goal = gr.Button("Check my settings", variant="primary", size="sm", visible=False, elem_id="lesson-goal")
        reveal = gr.Markdown(latex_delimiters=LATEX, elem_classes=["gp-reveal"], elem_id="lesson-reveal")
        with gr.Row(elem_classes=["gp-lesson-nav"]):
            back = gr.Button("Back", size="sm", elem_id="lesson-back")
            nxt = gr.Button("Next", size="sm", variant="primary", elem_id="lesson-next")
            leave = gr.Button("Exit lesson", size="sm", elem_id="lesson-exit")
        link = gr.Textbox(label="Link to this step", interactive=False, max_lines=1, buttons=["copy"],
                          elem_id="lesson-link")
        step = gr.JSON(visible=False)
    return Panel(box, header, text, choice, number, check, show, reveal, goal, back, nxt, leave, link, step)


def start_button(tab_id: str) -> gr.Button:
    """A tab's "Lesson" button (in its Copy-link row)."""
    return gr.Button("Lesson", size="sm", variant="secondary", scale=0, min_width=90, elem_id=f"lesson-start-{tab_id}")


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
            {"lesson": lesson.id, "tab": lesson.tab, "step": k, "covered": q is not None}]


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
            {"lesson": lesson.id, "tab": lesson.tab, "step": len(lesson.steps) + 1, "covered": False}]


@dataclass
class Views:
    """Every lesson tab's controls and link triggers, in one list of outputs: a step writes to its
    own tab's slice and skips the rest."""

    shared: dict  # tab id -> sharing.Shared, the tabs that have lessons

    def outputs(self) -> list:
        return [c for s in self.shared.values() for c in view_outputs(s)]

    def updates(self, lesson: Lesson | None = None, k: int = 0) -> list:
        """Step ``k``'s view on its tab's controls and trigger; ``gr.skip()`` everywhere else."""
        out = []
        for tab_id, s in self.shared.items():
            if lesson is not None and tab_id == lesson.tab and k <= len(lesson.steps):
                out += view_updates(s, lesson, k)
            else:
                out += [gr.skip()] * len(view_outputs(s))
        return out


def view_updates(shared, lesson: Lesson, k: int) -> list:
    """The tab's controls set to step ``k``'s view, then the trigger that draws it (``sharing``)."""
    bindings = shared.bindings
    view = lesson.steps[k - 1].view
    params = lessons_lib.view_params(bindings, view, lesson.path)
    values = [v for b, p in zip(bindings, params) for v in b.values(p).values()]
    owner = lessons_lib.owner(bindings, view)
    nonce = random.getrandbits(32)  # the trigger fires on a change: the same step opened twice draws again
    search = f"?{lessons_lib.view_query(lesson.tab, view)}&__n={nonce}"
    return values + [search if i == owner else gr.skip() for i in sorted(shared.triggers)]


def view_outputs(shared) -> list:
    return [c for b in shared.bindings for c in b.components.values()] + [shared.triggers[i] for i in sorted(shared.triggers)]


def opened(progress: dict, lesson: Lesson, k: int) -> dict:
    return {**EMPTY, **(progress or {}), "lesson": lesson.id, "step": k}


COVER_JS = "(step) => { if (window.gpLesson) window.gpLesson.cover(step); }"
BASE_JS = "(link, ...rest) => [window.location.origin + window.location.pathname, ...rest]"


# ----------------------------------------------------------------------------- events
@dataclass
class Player:
    """What the events need: the panel, the lesson tabs' views, the lessons by id, the app's tabs."""

    panel: Panel
    views: Views
    found: dict  # lesson id -> Lesson
    tabs: gr.Tabs

    def outputs(self) -> list:
        return [self.tabs, *self.panel.outputs(), *self.views.outputs(), self.panel.state]

    def skip(self) -> list:
        return [gr.skip()] * len(self.outputs())

    def show_step(self, lesson: Lesson, k: int, base: str, progress: dict, view: bool = True) -> list:
        """Everything an opened step sets: its tab selected, the panel, the tab's controls and
        trigger (unless ``view`` is False: a reload on a link to other settings keeps them), the progress."""
        k = max(1, min(k, len(lesson.steps) + 1))
        progress = opened(progress, lesson, k)
        views = self.views.updates(lesson, k) if view else self.views.updates()
        return [gr.Tabs(selected=lesson.tab), *panel_updates(lesson, k, base, progress), *views, progress]

    def on(self, trigger, fn, inputs: list, js: str | None = BASE_JS):
        """``trigger(fn, inputs, every output)`` and then the cover drawn for the step shown."""
        return trigger(fn, inputs, self.outputs(), js=js, **PRIVATE).then(None, self.panel.step, None, js=COVER_JS)


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


def answer_events(pl: Player) -> None:
    """Check my answer and Show me: the reveal, the progress, the tab uncovered."""
    p = pl.panel

    def answered(step: dict, answer, progress: dict, shown: bool):
        lesson = pl.found[step["lesson"]]
        question = lesson.steps[step["step"] - 1].question
        text, progress = reveal(question, answer, progress or dict(EMPTY), lesson, step["step"], shown=shown)
        return text, {**step, "covered": False}, progress, gr.update(visible=False), gr.update(visible=False)

    @user_errors
    def on_check(step: dict, choice, number, progress: dict):
        question = pl.found[step["lesson"]].steps[step["step"] - 1].question
        answer = choice if question.options else number
        if answer is None:
            raise ValueError("Choose an option first" if question.options else "Type a number first")
        return answered(step, answer, progress, shown=False)

    @user_errors
    def on_show(step: dict, progress: dict):
        return answered(step, None, progress, shown=True)

    outputs = [p.reveal, p.step, p.state, p.check, p.show]
    p.check.click(on_check, [p.step, p.choice, p.number, p.state], outputs, **PRIVATE).then(
        None, p.step, None, js=COVER_JS)
    p.show.click(on_show, [p.step, p.state], outputs, **PRIVATE).then(None, p.step, None, js=COVER_JS)


def goal_event(pl: Player) -> None:
    """Check my settings: the goal's check on the lesson tab's current controls."""
    p, shared = pl.panel, pl.views.shared
    with_goals = {lesson.tab for lesson in pl.found.values() if any(s.goal for s in lesson.steps)}
    inputs = {p.step} | {c for tab_id in with_goals for b in shared[tab_id].bindings for c in b.components.values()}

    @user_errors
    def on_goal(values: dict):
        step = values[p.step]
        lesson = pl.found[step["lesson"]]
        found = lesson.steps[step["step"] - 1]
        bindings = shared[lesson.tab].bindings
        binding = bindings[lessons_lib.owner(bindings, found.view)]
        met = getattr(lessons_lib.measures(lesson), found.goal.check)(binding.params(values))
        return "**Goal met.** Press Next." if met else "**Not yet.** Change the settings below and check again."

    if with_goals:
        p.goal.click(on_goal, inputs, p.reveal, **PRIVATE)


def navigation_events(pl: Player) -> None:
    """Back, Next and Exit."""
    p = pl.panel

    def move(delta: int):
        @user_errors
        def on_move(base: str, step: dict, progress: dict):
            return pl.show_step(pl.found[step["lesson"]], step["step"] + delta, base, progress or dict(EMPTY))
        on_move.__name__ = f"lesson_{'next' if delta > 0 else 'back'}"
        return on_move

    def on_exit(progress: dict):
        return gr.update(visible=False), {"covered": False}, {**(progress or EMPTY), "lesson": None, "step": 0}

    for button, delta in ((p.next, 1), (p.back, -1)):
        pl.on(button.click, move(delta), [p.link, p.step, p.state])
    p.exit.click(on_exit, p.state, [p.box, p.step, p.state], **PRIVATE).then(None, p.step, None, js=COVER_JS)


def start_event(lessons: list[Lesson], pl: Player):
    """A tab's Lesson button or a Home card: resume the lesson where this browser left it, else
    its first step (a tab with two lessons starts the one last opened, else its first)."""
    @user_errors
    def on_start(base: str, progress: dict):
        progress = progress or dict(EMPTY)
        lesson = next((item for item in lessons if item.id == progress.get("lesson")), lessons[0])
        k = progress.get("step", 1) if progress.get("lesson") == lesson.id else 1
        return pl.show_step(lesson, k, base, progress)

    on_start.__name__ = f"lesson_start_{lessons[0].id}"
    return on_start


def page_event(pl: Player):
    """The page opened on ``?lesson=<id>&step=<k>``, or reloaded mid-lesson (progress in this
    browser: resumed, keeping a share link's settings if the page has one); a lesson or step that
    does not exist opens Home with a one-line note."""
    def on_page(base: str, progress: dict, request: gr.Request):
        query = dict(getattr(request, "query_params", {}) or {})
        if "lesson" in query:
            lesson, k = pl.found.get(query["lesson"]), lessons_lib.whole_number(query.get("step", 1))
            if lesson is None or k is None or not 1 <= k <= len(lesson.steps) + 1:
                return unknown_link(pl, query, lesson)
            return pl.show_step(lesson, k, base, progress or dict(EMPTY))
        lesson = pl.found.get((progress or {}).get("lesson"))
        if lesson is None or query.get("tab") not in (None, lesson.tab):
            return pl.skip()
        return pl.show_step(lesson, int(progress.get("step") or 1), base, progress, view="tab" not in query)

    return on_page


def unknown_link(pl: Player, query: dict, lesson: Lesson | None) -> list:
    what = (f"lesson {query['lesson'][:40]!r}" if lesson is None else f"step {query.get('step', '')[:10]!r} "
            f"in {lesson.id!r} (it has {len(lesson.steps)})")
    gr.Warning(html.escape(f"There is no {what}; lessons here: {', '.join(pl.found) or 'none'}."), duration=15)
    return [gr.Tabs(selected="home"), *[gr.skip()] * (len(pl.outputs()) - 1)]


def wire(demo, tabs: gr.Tabs, p: Panel, shared: list, cards: dict, found: list[Lesson]) -> None:
    """Connect the player, the tabs' Lesson buttons, the Home cards and the lesson links (inside
    the app's Blocks)."""
    if not found:
        return
    p.state = gr.BrowserState(dict(EMPTY), storage_key=STORAGE_KEY)
    demo.load(None, js=PLAYER_JS)
    tab_ids = [lesson.tab for lesson in found]
    pl = Player(p, Views({s.tab_id: s for s in shared if s.tab_id in tab_ids}), {x.id: x for x in found}, tabs)
    navigation_events(pl)
    answer_events(pl)
    goal_event(pl)
    pl.on(demo.load, user_errors(page_event(pl)), [p.link, p.state])
    for s in pl.views.shared.values():
        if s.start is not None:
            pl.on(s.start.click, start_event([x for x in found if x.tab == s.tab_id], pl), [p.link, p.state])
    for lesson in found:
        if lesson.id in cards:
            pl.on(cards[lesson.id].click, start_event([lesson], pl), [p.link, p.state])
