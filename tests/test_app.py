"""The app shell: startup imports, launch settings, and a call through gradio_client."""

import subprocess
import sys

from playground import settings
from playground.app import TABS, build_app, launch_kwargs
from tests.conftest import ROOT

HEAVY = ("torch", "diffusers", "transformers")


def test_building_the_app_imports_no_model_library():
    code = ("import sys; from playground.app import build_app; build_app(); "
            f"print([m for m in {HEAVY!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_compute_modules_do_not_import_gradio():
    modules = [f"demos.{tab}.compute" for tab in TABS] + ["playground.models", "playground.validate",
                                                        "demos.toy_data"]
    code = f"import importlib, sys; [importlib.import_module(m) for m in {modules!r}]; print('gradio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_launch_settings_fit_a_public_link():
    kwargs = launch_kwargs()
    assert kwargs["show_error"] is False and kwargs["ssr_mode"] is False
    assert kwargs["max_file_size"] == "10mb" and kwargs["server_name"] == "127.0.0.1"
    demo = build_app(tabs=[])
    assert demo._queue.max_size == settings.QUEUE_MAX_SIZE


def test_model_events_share_one_concurrency_id():
    demo = build_app()
    model_fns = [fn for fn in demo.fns.values() if fn.concurrency_id == settings.MODEL_CONCURRENCY_ID]
    named = {fn.api_name for fn in model_fns}
    assert {"guidance", "controlnet", "flow"} <= named  # the model-backed endpoints use the shared pool
    assert {fn.concurrency_limit for fn in model_fns} == {settings.MODEL_CONCURRENCY_LIMIT}


def test_models_endpoint_through_gradio_client(client):
    result = client.predict(api_name="/models")
    assert isinstance(result["models"], list)
    for row in result["models"]:
        assert {"name", "source", "location", "loaded", "device", "dtype", "parameters"} <= set(row)


def test_internal_events_are_hidden_from_the_api(client):
    names = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert "/models" in names
    assert not any(n.startswith("/lambda") or n == "/models_table" for n in names)


def test_every_callback_that_asks_for_the_request_gets_it():
    """Gradio injects ``gr.Request`` only into a parameter before any ``*args`` (a Stop button
    that needs the session silently did nothing when the request came after ``*inputs``)."""
    import inspect

    from gradio.helpers import special_args

    asking = 0
    for block_fn in build_app().fns.values():
        fn = block_fn.fn
        if fn is None or "request" not in inspect.signature(fn).parameters:
            continue
        asking += 1
        n_inputs = len(block_fn.inputs)
        marker = object()
        inputs, *_ = special_args(fn, [None] * n_inputs, request=marker)
        assert marker in inputs, f"{fn.__name__} never receives its gr.Request"
    assert asking >= 3  # Guidance's generate, sweep and stop
