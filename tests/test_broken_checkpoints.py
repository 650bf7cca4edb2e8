"""A missing or corrupt checkpoint breaks only the tab that needs it, with a clear message
(issue 9, item 5): through the running app, and for a fresh machine with no assets at all."""

import json
import shutil

import pytest
from gradio_client import Client, handle_file

from benchmarks.load import start_server
from playground import models, settings
from tests.conftest import ROOT, free_port

SKETCH = str(ROOT / "assets" / "examples" / "controlnet" / "circle.png")
SCENE = str(ROOT / "assets" / "detr_examples" / "scene.png")
QUICK_CALLS = {  # endpoint -> arguments of a quick valid call
    "guidance": ["a red circle", "cfg", 5.0, 1, 2, 0],
    "controlnet": [SKETCH, "a red circle", 1.0, 5.0, 2, 0],
    "detect": [SCENE, 0.5],
    "flow": ["2_gaussians", "realnvp", 2, 20, 0],
    "sde_ode": ["8_gaussians", "VP", "exact", 50, 10, 0],
    "kv_cache": ["Llama-2-7B", 4096, 1, "fp16"],
}
NEEDS = {"shapes-ldm": "guidance", "shapes-controlnet": "controlnet", "shapes-detr": "detect"}


def call(client: Client, endpoint: str):
    args = [handle_file(a) if isinstance(a, str) and a.endswith(".png") else a for a in QUICK_CALLS[endpoint]]
    return client.predict(*args, api_name=f"/{endpoint}")


def damaged_copy(model: str, damage: str, tmp_path):
    """A folder standing in for the model's checkpoint: absent, or with truncated weights."""
    folder = tmp_path / f"{model}-{damage}"
    if damage == "corrupt":
        shutil.copytree(settings.ASSETS_DIR / models.REGISTRY.spec(model).embedded_dir, folder)
        for weights in folder.rglob("*.safetensors"):
            weights.write_bytes(weights.read_bytes()[:1000])  # an interrupted download
    return folder


@pytest.mark.parametrize("damage", ["missing", "corrupt"])
@pytest.mark.parametrize("model", sorted(NEEDS))
def test_a_broken_checkpoint_breaks_only_its_tab_with_a_clear_message(client, monkeypatch, tmp_path,
                                                                       model, damage):
    spec = models.REGISTRY.spec(model)
    monkeypatch.setenv(spec.override_var, str(damaged_copy(model, damage, tmp_path)))
    models.REGISTRY.unload(model)
    try:
        with pytest.raises(Exception) as failure:
            call(client, NEEDS[model])
        message = str(failure.value)
        assert f"Model '{model}' is not available" in message
        assert ("folder not found" if damage == "missing" else "Looked in") in message
        assert spec.override_var in message  # ... and how to get it
        for endpoint in QUICK_CALLS.keys() - {NEEDS[model]}:
            assert call(client, endpoint) is not None, f"{endpoint} broke with {model}"
    finally:
        monkeypatch.undo()
        models.REGISTRY.unload(model)
    assert call(client, NEEDS[model]) is not None  # the real checkpoint loads again


def test_without_any_assets_the_app_starts_and_only_model_tabs_say_what_is_missing(tmp_path):
    port = free_port()
    server = start_server(port, {"PLAYGROUND_ASSETS": str(tmp_path / "no-assets")})
    try:
        client = Client(f"http://127.0.0.1:{port}", verbose=False)
        for endpoint in ("flow", "sde_ode", "kv_cache"):
            assert call(client, endpoint) is not None
        for model, endpoint in NEEDS.items():
            with pytest.raises(Exception, match=f"Model '{model}' is not available.*folder not found"):
                call(client, endpoint)
        rows = client.predict(api_name="/models")
        rows = json.loads(rows) if isinstance(rows, str) else rows
        assert {row["name"] for row in rows["models"]} >= set(NEEDS)
    finally:
        server.terminate()
        server.wait(timeout=30)
