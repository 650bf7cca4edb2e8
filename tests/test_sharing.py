"""Sharing a view (issue 13): reading a link as the controls would, and the Reproduce-in-Python
snippet of every tab run against the live app."""

import importlib

import gradio as gr
import pytest

from playground import sharing
from playground.tabs import TAB_IDS as TABS

SHARED = ["sde_ode", "flows", "guidance", "controlnet", "attention", "detr", "rnn_transformer", "hallucination",
          "instruction_tuning", "preferences"]  # a new tab that returns its Binding from build: add it here


def bindings_of(tab_id: str) -> list:
    with gr.Blocks() as demo:
        built = importlib.import_module(f"demos.{tab_id}.ui").build(demo)
    return list(built) if isinstance(built, (list, tuple)) else [built]


def binding_of(tab_id: str):
    """The tab's own Binding (the first, when its build returns several)."""
    return bindings_of(tab_id)[0]


@pytest.fixture(scope="module")
def bindings():
    return {tab_id: binding_of(tab_id) for tab_id in SHARED}


def read(binding, query: str, tab_id: str):
    tab, fields, problems = sharing.read_link(sharing.search_items(query), [tab_id])
    kept, more = sharing.link_values(binding, fields) if tab else ({}, [])
    return tab, kept, problems + more


def test_every_tab_declares_a_binding_with_an_endpoint(bindings):
    for tab_id, binding in bindings.items():
        assert tab_id in TABS
        assert binding is not None and binding.api is not None, tab_id
        assert binding.check is not None, tab_id
        binding.check(binding.defaults())  # the opening values pass the tab's own validation


def test_good_values_are_typed_as_their_fields(bindings):
    tab, kept, problems = read(bindings["guidance"], "?tab=guidance&guidance_scale=7.5&steps=12&prompt=a+blue+square",
                               "guidance")
    assert tab == "guidance" and not problems
    assert kept == {"guidance_scale": 7.5, "steps": 12, "prompt": "a blue square"}
    _, kept, problems = read(bindings["controlnet"], "?tab=controlnet&show_overlay=false&control_end=0.5", "controlnet")
    assert kept == {"show_overlay": False, "control_end": 0.5} and not problems


@pytest.mark.parametrize("query,dropped", [
    ("steps=NaN", "steps: must be a finite number"),
    ("steps=inf", "steps: must be a finite number"),
    ("steps=1e400", "steps: must be a finite number"),
    ("steps=99999999999999999999", "steps: must be a whole number"),
    ("steps=2.5", "steps: must be a whole number"),
    ("steps=0", "steps: must be in [1, 100]"),
    ("guidance_scale=-1", "guidance_scale: must be in [0, 20]"),
    ("mode=<script>alert(1)</script>", "mode: must be one of cfg, classifier, none"),
    ("model=%22%3E%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E", "model: must be one of"),
    ("prompt=<script>alert(1)</script>", "prompt:"),  # not the embedded model's words: its own check
    ("seed=1&seed=2", "seed was given 2 times"),
    ("%3Cb%3Ebold%3C%2Fb%3E=1", "unknown setting '?b?bold??b?'"),
    ("steps=" + "9" * 5000, "steps: longer than 4,000 characters"),
])
def test_a_bad_value_is_dropped_with_a_reason_and_the_rest_applies(bindings, query, dropped):
    tab, kept, problems = read(bindings["guidance"], f"?tab=guidance&n_images=2&{query}", "guidance")
    assert tab == "guidance" and kept == {"n_images": 2}, kept
    assert any(dropped in p for p in problems), problems


def test_values_that_conflict_keep_the_first():
    binding = binding_of("controlnet")
    _, kept, problems = read(binding, "?tab=controlnet&control_start=0.6&control_end=0.4", "controlnet")
    assert kept == {"control_start": 0.6}
    assert any("control end must be larger than control start" in p for p in problems), problems


def test_bounds_that_follow_other_fields_are_left_to_the_tab_check(bindings):
    binding = bindings["rnn_transformer"]
    _, kept, problems = read(binding, "?tab=rnn_transformer&n_pairs=6&query=5&distance=40", "rnn_transformer")
    assert kept == {"n_pairs": 6, "query": 5, "distance": 40} and not problems
    _, kept, problems = read(binding, "?tab=rnn_transformer&n_pairs=3&query=5", "rnn_transformer")
    assert kept == {"n_pairs": 3} and any("query" in p for p in problems)


@pytest.mark.parametrize("query,problem", [
    ("?tab=nope&seed=1", "there is no tab 'nope' here"),
    ("?tab=%3Cscript%3E", "there is no tab '?script?' here"),
    ("?tab=guidance&tab=detr", "more than one tab"),
    ("?seed=1", "names no tab"),
])
def test_a_link_to_no_tab_applies_nothing(query, problem):
    tab, fields, problems = sharing.read_link(sharing.search_items(query), SHARED)
    assert tab is None and fields == {} and any(problem in p for p in problems), problems


def test_gradio_keys_and_an_empty_query_say_nothing():
    assert sharing.read_link(sharing.search_items("?__theme=dark&view=api"), SHARED) == (None, {}, [])
    assert sharing.read_link(sharing.search_items(""), SHARED) == (None, {}, [])


def test_the_warning_is_text_never_html():
    text = sharing.message(["mode: must be one of cfg; got '<img src=x onerror=alert(1)>'", "x" * 500])
    assert "<" not in text and "&lt;img" in text and "…" in text


def test_snippet_quotes_every_value_as_python():
    binding = binding_of("guidance")
    params = binding.params_type(**{**binding.defaults().__dict__, "prompt": "a 'red' \"circle\"\n"})
    code = sharing.snippet(binding, params, "http://host:1/sub/")
    compile(code, "snippet", "exec")
    assert "Client('http://host:1/sub/')" in code and "api_name='/guidance'" in code
    assert sharing.page_url("javascript:alert(1)") == sharing.PLACEHOLDER_URL
    assert sharing.page_url("http://a/'); import os; ('") == sharing.PLACEHOLDER_URL


# Settings small enough to run quickly, one changed setting per tab beside the defaults.
SNIPPET_SETTINGS = {
    "sde_ode": {"n_samples": 200, "n_steps": 40, "sde": "VE"},
    "flows": {"n_layers": 2, "train_steps": 100, "data": "ring"},
    "guidance": {"n_images": 1, "steps": 4, "guidance_scale": 7.5},
    "controlnet": {"steps": 4, "conditioning_scale": 0.5},
    "attention": {"preset": "Custom", "attention": "GQA", "n_kv_heads": 4, "seq_len": 4096},
    "detr": {"threshold": 0.3},
    "rnn_transformer": {"distance": 30, "seed": 3},
    "hallucination": {"n_samples": 4, "temperature": 0.5, "seed": 2},
    "instruction_tuning": {"threshold": 0.5, "n_candidates": 40, "seed": 2},
    "preferences": {"n_pairs": 500, "beta": 1.0},
}


def comparable(result):
    """What to compare of an endpoint's output: its JSON (images are files with fresh names)."""
    if isinstance(result, (list, tuple)):
        result = [r for r in result if isinstance(r, dict)]
        return [{k: v for k, v in r.items() if k not in ("timings", "timings_s")} for r in result]
    return result


@pytest.mark.parametrize("tab_id", SHARED)
def test_the_python_snippet_runs_and_gives_the_endpoint_s_answer(tab_id, app_url, client, monkeypatch):
    import dataclasses

    from playground.ui_helpers import File
    from playground.settings import REPO_ROOT as ROOT_DIR

    binding = binding_of(tab_id)
    params = dataclasses.replace(binding.defaults(), **SNIPPET_SETTINGS[tab_id])
    code = sharing.snippet(binding, params, app_url + "/")
    assert f"api_name='/{binding.api.name}'" in code
    monkeypatch.chdir(ROOT_DIR)  # the snippet's example files are paths in the repository
    namespace = {"print": lambda *a, **k: None}
    exec(compile(code, f"snippet_{tab_id}", "exec"), namespace)  # noqa: S102 - our own generated code
    from gradio_client import handle_file
    args = [handle_file(str(ROOT_DIR / v.path)) if isinstance(v, File) else v for v in binding.api.args(params).values()]
    direct = client.predict(*args, api_name=f"/{binding.api.name}")
    assert comparable(namespace["result"]) == comparable(direct)


def test_the_query_is_read_with_its_repeated_keys():
    assert sharing.search_items("?a=1&a=2&b=") == [("a", "1"), ("a", "2"), ("b", "")]


def test_a_second_binding_reads_its_prefixed_fields():
    """Guidance's 'Inside the latent diffusion model' section: inside_... in a link."""
    bindings = bindings_of("guidance")
    assert [b.prefix for b in bindings] == ["", "inside_"]
    _, fields, _ = sharing.read_link(sharing.search_items(
        "?tab=guidance&steps=12&inside_steps=7&inside_prompt=a+blue+square&inside_seed=NaN&inside_x=1"), ["guidance"])
    kept, problems = sharing.tab_values(bindings, fields)
    assert kept == [{"steps": 12}, {"steps": 7, "prompt": "a blue square"}]
    assert "inside_seed: must be a finite number" in problems and "unknown setting 'inside_x'" in problems


def test_the_inside_snippet_runs(app_url, client):
    binding = bindings_of("guidance")[1]
    params = binding.params_type(prompt="a green circle", steps=3, seed=1)
    namespace = {"print": lambda *a, **k: None}
    exec(compile(sharing.snippet(binding, params, app_url + "/"), "snippet", "exec"), namespace)  # noqa: S102
    assert comparable(namespace["result"]) == comparable(client.predict("a green circle", 3, 1,
                                                                        api_name="/sd_internals"))


def test_the_page_load_parts_merge_into_one_event_where_a_later_value_wins_unless_it_is_a_skip():
    with gr.Blocks():
        a, b, c = gr.Textbox(), gr.Textbox(), gr.Textbox()
    parts = [sharing.Part("opening", lambda search: ["a0", "b0"], [a, b]),
             sharing.Part("link", lambda search: [gr.skip(), gr.update(value=search), "c1"], [a, b, c]),
             sharing.Part("nothing", lambda search: gr.skip(), [c])]
    outputs, fn = sharing.merged(parts)
    assert outputs == [a, b, c]  # each component once, in order of first appearance
    assert fn("?x=1") == ["a0", gr.update(value="?x=1"), "c1"]


def test_a_failing_part_leaves_its_outputs_and_the_others_still_open(caplog):
    with gr.Blocks():
        a, b = gr.Textbox(), gr.Textbox()

    def broken(search):
        raise RuntimeError("checkpoint missing")

    outputs, fn = sharing.merged([sharing.Part("opening of x", broken, [a]),
                                  sharing.Part("opening of y", lambda search: ["fine"], [b])])
    with pytest.warns(UserWarning, match="opening of x could not be shown"):
        assert fn("") == [gr.skip(), "fine"]
    assert "opening of x failed" in caplog.text and "checkpoint missing" in caplog.text


def test_the_whole_app_has_one_page_load_event_that_reaches_the_server_for_its_tabs():
    from playground.app import build_app

    config = build_app().get_config_file()
    loads = [d for d in config["dependencies"] if any(event == "load" for _, event in d["targets"])]
    backend = [d for d in loads if d["backend_fn"]]
    assert len(backend) == 2, [d["api_name"] for d in backend]  # the tabs' one, the lesson player's
