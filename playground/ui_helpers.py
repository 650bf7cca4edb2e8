"""Small pieces every tab's UI uses: error translation, step-wise runs, explanations,
model-event settings."""

from __future__ import annotations

import contextvars
import dataclasses
import functools
import html
import inspect
import logging
import queue
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import gradio as gr

from playground import settings
from playground.models import DeviceUnavailable, ModelUnavailable, OutOfMemory, memory_guard

log = logging.getLogger("playground")

USER_ERRORS = (ValueError, ModelUnavailable, DeviceUnavailable, OutOfMemory)


def user_errors(fn):
    """For a UI event: a user error (bad input, a missing model, out of memory) is shown as a
    warning and the page keeps what it showed; a failed Gradio event would mark every output
    "Error" and blank it. Anything else is logged and reported as a short error."""
    return _guarded(fn, keep_page=True)


def api_errors(fn):
    """For an API endpoint: a user error comes back as the call's error message."""
    return _guarded(fn, keep_page=False)


def _guarded(fn, keep_page: bool):
    """``fn`` with the compute layer's ``ValueError`` / ``ModelUnavailable`` / ``OutOfMemory``
    turned into a message for the user (``gr.Warning`` and no change, or ``gr.Error``).

    Gradio shows only ``gr.Error`` text to the user (``show_error=False``); anything else
    is logged here with its traceback and reported as a short generic message. An
    out-of-memory error anywhere in the callback frees memory first (``memory_guard``), so
    the next request starts clean.
    """
    if inspect.isgeneratorfunction(fn):  # streaming callbacks: errors surface while iterating

        @functools.wraps(fn)
        def generator_wrapper(*args, **kwargs):
            try:
                with memory_guard():
                    yield from fn(*args, **kwargs)
            except gr.Error:
                raise
            except Exception as err:  # noqa: BLE001 - never a stack trace to the user
                yield _outcome(fn, err, keep_page)

        return generator_wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            with memory_guard():
                return fn(*args, **kwargs)
        except gr.Error:
            raise
        except Exception as err:  # noqa: BLE001 - never a stack trace to the user
            return _outcome(fn, err, keep_page)

    return wrapper


def _outcome(fn, err: Exception, keep_page: bool):
    """What a guarded ``fn`` returns for ``err`` (a user error on a page: a warning and no change),
    or raises: the ``gr.Error`` the caller sees."""
    if isinstance(err, USER_ERRORS):
        if keep_page:  # a toast renders (sanitised) HTML: the message is text
            gr.Warning(html.escape(str(err), quote=False))
            return gr.skip()
        raise gr.Error(str(err), print_exception=False) from err
    log.exception("unexpected error in %s", fn.__name__)
    raise gr.Error(f"Something went wrong ({type(err).__name__}); the error was logged.",
                   print_exception=False) from err


@dataclass(frozen=True)
class Step:
    """Progress of a step-wise run: step ``index`` of ``total`` is done."""

    index: int
    total: int


def stepwise(work: Callable[[Callable[[int, int], None], Callable[[], bool]], Any],
             stop: threading.Event | None = None) -> Iterator[Any]:
    """Run ``work(on_step, should_stop)`` in a worker thread: yield a ``Step`` after each of
    its steps, then its return value.

    Gradio stops a generator between two yields (a client's ``/cancel``, a closed browser
    tab) and frees its concurrency slot; a plain function runs to its end and keeps the slot.
    Here the worker waits after each step until the next value is asked for, and
    ``should_stop``, which ``work`` checks before each step, turns true once this generator
    is closed or ``stop`` (a ``StopButtons`` flag) is set: a stopped run does no further
    step. An error inside ``work`` is raised here.
    """
    handover: queue.SimpleQueue = queue.SimpleQueue()
    resume, closed = threading.Semaphore(0), threading.Event()
    worker = _start_worker(work, stop, handover, resume, closed)
    try:
        while True:
            kind, value = handover.get()
            if kind == "error":
                raise value
            yield value
            if kind == "done":
                return
            resume.release()
    finally:
        closed.set()
        worker.join()


def _start_worker(work, stop: threading.Event | None, handover: queue.SimpleQueue, resume: threading.Semaphore,
                  closed: threading.Event) -> threading.Thread:
    """The thread of a ``stepwise`` run: it puts ``("step", Step)`` after each step and waits for
    ``resume`` (or ``closed``), then ``("done", result)`` or ``("error", exception)``."""
    def on_step(index: int, total: int) -> None:  # in the worker
        handover.put(("step", Step(index, total)))
        while not (resume.acquire(timeout=0.05) or closed.is_set()):
            pass

    def should_stop() -> bool:
        return closed.is_set() or (stop is not None and stop.is_set())

    def run() -> None:
        try:
            handover.put(("done", work(on_step, should_stop)))
        except BaseException as err:  # noqa: BLE001 - re-raised in the consumer
            handover.put(("error", err))

    worker = threading.Thread(target=contextvars.copy_context().run, args=(run,), daemon=True,
                              name="playground-stepwise")
    worker.start()
    return worker


class Cancelled(Exception):
    """Raised inside a ``stepwise`` run once it is stopped: nobody waits for its result."""


def progress_steps(on_step: Callable[[int, int], None], should_stop: Callable[[], bool], progress=None):
    """A compute layer's ``progress(fraction, desc)`` that is also a step of a ``stepwise`` run:
    it reports to ``progress`` (a ``gr.Progress``), hands the step over, and raises ``Cancelled``
    once the run is stopped. For computations that report progress but have no stop flag."""

    def report(fraction: float, desc: str | None = None) -> None:
        if progress is not None:
            progress(fraction, desc=desc)
        on_step(round(1000 * fraction), 1000)  # returns when the next value is asked for, or stopped
        if should_stop():
            raise Cancelled

    return report


class StopButtons:
    """A tab's Stop button: one stop flag per browser session, so the button's event can reach
    the run it stops (a ``gr.State`` cannot be read while a run is going). Bounded and
    lock-protected; each tab has its own, as every tab of a page shares the session.

    A run takes its (cleared) flag with ``start(request)`` and checks it every step; the Stop
    button's event calls ``press(request)``.
    Stopping this way ends the run normally, so the page keeps what it showed (Gradio's
    ``cancels=`` can mark every output "Error" and blank it).
    """

    def __init__(self, capacity: int = 256):
        self._flags: OrderedDict[str, threading.Event] = OrderedDict()
        self._lock, self._capacity = threading.Lock(), capacity

    def start(self, request: gr.Request | None) -> threading.Event:
        session = getattr(request, "session_hash", None)
        if not session:
            return threading.Event()  # no session, no Stop button to press
        with self._lock:
            flag = self._flags.pop(session, None) or threading.Event()
            flag.clear()
            self._flags[session] = flag
            while len(self._flags) > self._capacity:
                self._flags.popitem(last=False)
            return flag

    def press(self, request: gr.Request = None) -> None:
        with self._lock:
            flag = self._flags.get(getattr(request, "session_hash", None) or "")
        if flag is not None:
            flag.set()

    def wire(self, button: gr.Button) -> None:
        """Make ``button`` press this Stop, at once: outside the model slots, which the run holds."""
        button.click(self.press, None, None, api_visibility="private", concurrency_limit=None)


def model_event() -> dict:
    """Keyword arguments for an event that runs a model: one shared pool of slots."""
    return {"concurrency_id": settings.MODEL_CONCURRENCY_ID,
            "concurrency_limit": settings.MODEL_CONCURRENCY_LIMIT}


def explanation(markdown: str, title: str = "What am I looking at?", open: bool = False) -> gr.Accordion:
    """A collapsible explanation block (math in $...$ is rendered)."""
    with gr.Accordion(title, open=open) as accordion:
        gr.Markdown(markdown, latex_delimiters=[{"left": "$$", "right": "$$", "display": True},
                                                {"left": "$", "right": "$", "display": False}])
    return accordion


class Binding:
    """One declaration mapping each field of a tab's Params dataclass to its component.

    ``Binding(BuilderParams, n_pairs=slider, seed=number)``; an event takes ``binding.inputs``
    (a set of components, so Gradio passes one ``{component: value}`` dict) and builds the
    parameters by name with ``binding.params(values)``: no positional input lists.

    A tab's ``build`` returns its Binding; the app then gives the tab, from the Binding alone, a
    URL that carries every bound field, a "Copy link to this view" button and a "Reproduce in
    Python" panel (``playground/sharing.py``). Keyword options (not fields):

    - ``check``: ``params -> anything``, raising ``ValueError``: the validation the controls get;
      values read from a link go through it (and the components' own bounds and choices);
    - ``api``: an ``Api``: the tab's endpoint call for the current settings;
    - ``note``: a line beside the Copy-link button (what a link cannot carry: uploads, drawings);
    - ``dynamic``: fields whose control's bounds follow other fields (a link's value for them is
      checked by ``check`` alone, not by the bounds the control was built with);
    - ``prefix``: put before the field names in a URL, for a tab's second Binding (a tab's
      ``build`` may return a list of Bindings: the first is the tab's own).

    ``binding.on_open(opening, show, outputs)`` says what opening a link to the tab shows.
    """

    def __init__(self, params_type: type, *, check: Callable[[Any], Any] | None = None,
                 api: "Api | None" = None, note: str = "", dynamic: tuple[str, ...] = (), prefix: str = "",
                 **components: gr.components.Component):
        names = [f.name for f in dataclasses.fields(params_type)]
        if sorted(names) != sorted(components):
            raise TypeError(f"{params_type.__name__} has fields {names}; bound: {sorted(components)}")
        self.params_type, self.components = params_type, {n: components[n] for n in names}
        self.check, self.api, self.note, self.dynamic, self.prefix = check, api, note, tuple(dynamic), prefix
        self.opening = self.show = None
        self.show_outputs: list = []
        self.show_kwargs: dict = {}

    @property
    def inputs(self) -> set:
        return set(self.components.values())

    def params(self, values: dict) -> Any:
        """The Params object of the values an event received (``{component: value}``)."""
        return self.params_type(**{name: values[c] for name, c in self.components.items()})

    def values(self, params: Any) -> dict:
        """``{component: value}`` of a Params object: what an event of ``inputs`` receives."""
        return {c: getattr(params, name) for name, c in self.components.items()}

    def defaults(self) -> Any:
        """The Params object of the values the controls open with."""
        return self.params_type(**{name: c.value for name, c in self.components.items()})

    def event(self, fn: Callable, extra: list | tuple = (), name: str | None = None) -> Callable:
        """``fn`` as an event of ``inputs`` and ``extra`` (other components), called as
        ``fn(params, *values of extra, request=..., progress=...)``: the Params object, then the
        value of each ``extra`` component in its order, and ``request`` and ``progress`` only if
        ``fn`` has those parameters. User errors become warnings (``user_errors``). The callback
        is named ``name``, by default ``on_<fn's name>`` (Gradio names a private event after it).

        Register it with ``self.inputs_with(*extra)`` (or ``inputs`` when there is no ``extra``)::

            on_detect = binding.event(detect, extra=[image, state])  # detect(params, image, state)
            button.click(on_detect, binding.inputs_with(image, state), outputs)
        """
        wanted, extra = inspect.signature(fn).parameters, tuple(extra)

        def arguments(values: dict, request, progress) -> tuple[list, dict]:
            keywords = {k: v for k, v in (("request", request), ("progress", progress)) if k in wanted}
            return [self.params(values), *(values[c] for c in extra)], keywords

        if inspect.isgeneratorfunction(fn):
            def callback(values: dict, request: gr.Request = None, progress=gr.Progress()):
                args, keywords = arguments(values, request, progress)
                return (yield from fn(*args, **keywords))
        else:
            def callback(values: dict, request: gr.Request = None, progress=gr.Progress()):
                args, keywords = arguments(values, request, progress)
                return fn(*args, **keywords)
        callback.__name__ = callback.__qualname__ = name or f"on_{fn.__name__}"
        return user_errors(callback)

    def inputs_with(self, *extra: gr.components.Component) -> set:
        """``inputs`` and the ``extra`` components: the inputs of ``event(fn, extra)``."""
        return self.inputs | set(extra)

    def on_open(self, opening: "Opening | None" = None, show: Callable | None = None, outputs: list | tuple = (),
                **event_kwargs) -> None:
        """Opening the page: ``opening`` (the tab's default view, see ``Opening``) is sent with the
        page's one load event, with the link's values for the controls; when those differ from the
        defaults, ``show`` then runs: one of the tab's events, called as ``show(values, request=,
        progress=)`` with ``values`` as ``inputs`` would give them, returning (or yielding) the values
        of ``outputs``. ``event_kwargs`` go to that event (``model_event()`` when ``show`` runs a model)."""
        if opening is not None and not isinstance(opening, Opening):
            raise TypeError(f"on_open takes an Opening (a function and its outputs), not {type(opening).__name__}")
        self.opening, self.show, self.show_outputs, self.show_kwargs = opening, show, list(outputs), event_kwargs


@dataclass(frozen=True)
class Opening:
    """A tab's opening views: ``fn()`` gives the values of ``outputs`` for the default view (results
    cached per process or read from disk: it runs on every page load, with no model slot).

    A tab does not call ``demo.load`` for it: the shell sends every tab's opening, and every link's
    values, in the page's one load event (``playground/sharing.py``). Gradio's page does work in
    proportion to the whole app for each status message of each pending event (it looks every
    tracked output up in the component tree): 27 load events made each page open ~2.5 s slower than
    none (7.1 s against 4.6 s to the tab buttons, idle, in Chromium; a CPU profile showed where)."""

    fn: Callable[[], Any]
    outputs: list

    def values(self) -> list:
        """``fn()`` as a list, one value per output (for a lone output, a lone value or a 1-tuple)."""
        got = self.fn()
        if len(self.outputs) == 1:
            return [got[0] if isinstance(got, tuple) and len(got) == 1 else got]
        return list(got)


@dataclass(frozen=True)
class File:
    """An argument of an ``Api`` call that is a file: ``handle_file(path)`` in the snippet."""

    path: str


@dataclass(frozen=True)
class Api:
    """A tab's endpoint, for its "Reproduce in Python" panel: ``args(params)`` gives the endpoint's
    inputs by name, in the endpoint's order, for the tab's current settings (``File`` for a file);
    ``note`` says what of the tab the endpoint does not take."""

    name: str
    args: Callable[[Any], dict]
    note: str = ""


def run_steps(work: Callable[[Callable[[int, int], None], Callable[[], bool]], Any],
              stop: threading.Event | None = None, each: Callable[[Step], Any] | None = None):
    """Consume a ``stepwise`` run inside a generator callback: ``result = yield from run_steps(work, stop, each)``.

    After each step it yields ``each(step)`` (by default ``gr.skip()``: the page stays as it is, and
    Gradio can stop the generator there); it returns the run's result. An error inside ``work``
    (``Cancelled`` included) is raised at the ``yield from``.
    """
    steps = stepwise(work, stop)
    try:
        for item in steps:
            if not isinstance(item, Step):
                return item
            yield gr.skip() if each is None else each(item)
    finally:
        steps.close()
