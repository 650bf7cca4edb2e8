"""The app shell: startup imports, launch settings, and a call through gradio_client."""

import subprocess
import sys

from playground import settings
from playground import tabs
from playground.app import build_app, launch_kwargs
from playground.tabs import TAB_IDS as TABS
from tests.conftest import ROOT, free_port

HEAVY = ("scipy", "torch", "transformers", "diffusers")  # seconds to import: never at start-up (issue 21)


def test_importing_every_tab_and_building_the_app_imports_no_heavy_library():
    """In a fresh process (a clean ``sys.modules``): every ``demos/<tab>/ui.py`` of ``TABS`` and
    ``build_app()`` import none of scipy, torch, transformers, diffusers; they load on first use."""
    code = ("import importlib, sys; from playground.tabs import TAB_IDS as TABS; from playground.app import build_app; "
            "[importlib.import_module(f'demos.{tab}.ui') for tab in TABS]; build_app(); "
            f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_the_app_and_its_config_are_made_by_launch_only(monkeypatch):
    """Gradio builds a FastAPI app and the page's config in ``Blocks.__init__``, ``__exit__``
    and ``queue()`` and again in ``launch`` (the config twice); inside ``build_app`` it makes none
    (``gradio_fixes.building``): ``launch`` makes each once, and later configs are fresh."""
    from gradio.blocks import BlocksConfig
    from gradio.routes import App

    counts = {"apps": 0, "configs": 0}
    setup, get_config = App.setup_mcp_server, BlocksConfig.get_config  # run by every real create_app / config

    def counting(key, fn):
        def wrapper(*args, **kwargs):
            counts[key] += 1
            return fn(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(App, "setup_mcp_server", staticmethod(counting("apps", setup)))
    monkeypatch.setattr(BlocksConfig, "get_config", counting("configs", get_config))
    demo = build_app(tabs=["attention"])
    assert counts == {"apps": 0, "configs": 0} and demo.app is None and demo.config is None
    demo.launch(**launch_kwargs(port=free_port()), prevent_thread_lock=True, quiet=True)
    try:
        assert counts == {"apps": 1, "configs": 1} and demo.app is not None and demo.config["components"]
        assert demo.get_config_file() is not demo.config and counts["configs"] == 2
    finally:
        demo.close()


def test_compute_modules_do_not_import_gradio():
    modules = [f"demos.{tab}.compute" for tab in TABS] + ["playground.models", "playground.validate",
                                                        "demos.common.toy_data"]
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


def test_model_menus_offer_only_the_models_on_this_machine_and_the_page_shows_no_server_path(app_url):
    """Issue 14: SD 1.5, its scribble ControlNet and DETR-R50 were offered to every visitor and
    waited on the network when picked; the Models panel showed the server's folders."""
    import json
    import urllib.request

    from playground import models

    config = json.loads(urllib.request.urlopen(f"{app_url}/config", timeout=60).read())
    menus = {c["props"]["elem_id"]: c["props"] for c in config["components"]
             if c["props"].get("elem_id") in ("guidance-model", "controlnet-model", "detr-model")}
    assert set(menus) == {"guidance-model", "controlnet-model", "detr-model"}
    notes = " ".join(str(c["props"].get("value", "")) for c in config["components"]
                     if "gp-missing-model" in (c["props"].get("elem_classes") or []))
    for elem_id, props in menus.items():
        names = [choice[1] for choice in props["choices"]]
        default, others = names[0], names[1:]
        assert default == props["value"] and all(models.REGISTRY.availability(n).usable for n in others)
    for name in ("sd15", "sd15-scribble", "detr-resnet-50"):
        available = models.REGISTRY.availability(name)
        offered = any(name in [c[1] for c in p["choices"]] for p in menus.values())
        assert offered == available.usable
        if not available.usable:
            assert f"<b>{available.title}</b>: not on this machine (how to get it)" in notes
    shown = [str(c["props"].get("value", "")) for c in config["components"]
             if c.get("type") in ("markdown", "dataframe", "html", "textbox")]
    assert not any(str(settings.REPO_ROOT) in text for text in shown)


def test_every_tab_has_one_home_card_and_no_coming_card_is_a_tab_under_another_name():
    """The Home page offered "DPO vs RLHF (coming)" beside the live "RLHF vs DPO" tab (its catalog
    entry had another id). The cards now come from the tabs themselves: one per tab, distinct titles."""
    ids = [tabs.get(t).id for t in TABS]
    assert ids == list(TABS)
    titles = [frozenset(tabs.get(t).title.lower().split()) for t in TABS]
    assert len(titles) == len(set(titles))