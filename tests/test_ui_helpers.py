"""``Binding.event``: the tab's Params, then the values of extra components, then request/progress."""

from dataclasses import dataclass

import gradio as gr

from playground.ui_helpers import Binding


@dataclass
class P:
    n: int
    name: str


def make_binding():
    with gr.Blocks():
        n, name, image, state = gr.Number(1), gr.Textbox("a"), gr.Image(), gr.State()
    return Binding(P, n=n, name=name), image, state


def test_an_event_gets_the_params_then_each_extra_value_in_order():
    binding, image, state = make_binding()
    calls = []

    def detect(p, picture, memory, request=None):
        calls.append((p, picture, memory, request))
        return "done"

    on_detect = binding.event(detect, extra=[image, state])
    assert on_detect.__name__ == "on_detect"
    assert binding.event(detect, name="on_scene").__name__ == "on_scene"
    assert binding.inputs_with(image, state) == binding.inputs | {image, state}
    values = {**binding.values(P(3, "b")), state: {"kept": 1}, image: "x.png"}
    assert on_detect(values, request="req", progress=None) == "done"
    assert calls == [(P(3, "b"), "x.png", {"kept": 1}, "req")]


def test_an_event_without_extra_and_a_generator_event():
    binding, image, _ = make_binding()

    def plain(p):  # asks for neither request nor progress: gets neither
        return p.n * 2

    def stream(p, picture, progress=None):
        yield p.name
        yield picture, progress

    assert binding.event(plain)(binding.values(P(4, "c"))) == 8
    on_stream = binding.event(stream, extra=(image,))
    assert list(on_stream({**binding.values(P(1, "d")), image: "y"}, progress="prog")) == ["d", ("y", "prog")]


def test_a_user_error_in_an_event_is_a_warning_and_no_change():
    binding, image, _ = make_binding()

    def bad(p, picture):
        raise ValueError("no picture")

    outcome = binding.event(bad, extra=[image])({**binding.values(P(1, "e")), image: None})
    assert outcome == gr.skip()
