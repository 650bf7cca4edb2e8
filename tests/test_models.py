"""The model registry with a tiny model saved by the test itself."""

import sys
import threading
import time
from pathlib import Path

import pytest

from playground import models
from playground.models import ModelRegistry, ModelSpec, ModelUnavailable, Source

LOADS: list[str] = []  # records every call of the test loader


def load_tiny_clip(source: Source, device: str, dtype):
    """Loader under test: a transformers model from a folder, safetensors only."""
    from transformers import CLIPTextModel

    LOADS.append(source.location)
    time.sleep(0.2)  # widen the window in which concurrent callers could double-load
    return CLIPTextModel.from_pretrained(source.location, **source.pretrained_kwargs()).to(device, dtype)


@pytest.fixture(scope="module")
def tiny_clip_dir(tmp_path_factory):
    from transformers import CLIPTextConfig, CLIPTextModel

    folder = tmp_path_factory.mktemp("assets") / "tiny_clip"
    config = CLIPTextConfig(vocab_size=20, hidden_size=8, intermediate_size=16, num_hidden_layers=1,
                            num_attention_heads=2, max_position_embeddings=8,
                            bos_token_id=0, eos_token_id=1, pad_token_id=2)
    model = CLIPTextModel(config)
    model.save_pretrained(folder, safe_serialization=True)
    return folder, sum(p.numel() for p in model.parameters())


def make_registry(assets_dir, **spec_kwargs) -> ModelRegistry:
    spec = ModelSpec("tiny-clip", "Tiny CLIP", f"{__name__}:load_tiny_clip", **spec_kwargs)
    return ModelRegistry([spec], assets_dir=assets_dir)


def test_lazy_cached_and_counted(tiny_clip_dir):
    folder, n_params = tiny_clip_dir
    registry = make_registry(folder.parent, embedded_dir=folder.name)
    LOADS.clear()
    assert not registry.is_loaded("tiny-clip") and LOADS == []
    row = registry.info()[0]
    assert row["source"] == "embedded" and row["loaded"] is False and row["parameters"] is None
    first = registry.get("tiny-clip")
    assert registry.get("tiny-clip") is first and len(LOADS) == 1
    row = registry.info()[0]
    assert row["loaded"] and row["device"] == "cpu" and row["dtype"] == "float32"
    assert row["parameters"] == n_params and row["memory_bytes"] >= 4 * n_params


def test_concurrent_get_loads_once(tiny_clip_dir):
    folder, _ = tiny_clip_dir
    registry = make_registry(folder.parent, embedded_dir=folder.name)
    LOADS.clear()
    results = []
    threads = [threading.Thread(target=lambda: results.append(registry.get("tiny-clip"))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(LOADS) == 1 and all(r is results[0] for r in results)


def test_override_with_local_folder(tiny_clip_dir, tmp_path, monkeypatch):
    folder, _ = tiny_clip_dir
    registry = make_registry(tmp_path, embedded_dir="missing")
    monkeypatch.setenv("PLAYGROUND_MODEL_TINY_CLIP", str(folder))
    assert registry.resolve_source("tiny-clip") == Source("local", str(folder))
    assert registry.get("tiny-clip") is not None


def test_missing_embedded_names_model_place_and_remedy(tmp_path):
    registry = make_registry(tmp_path, embedded_dir="nothing_here", how_to_get="Run `train.py`")
    with pytest.raises(ModelUnavailable) as info:
        registry.get("tiny-clip")
    message = str(info.value)
    assert "tiny-clip" in message and "assets/nothing_here" in message
    assert str(tmp_path) not in message  # no server path for a visitor (issue 14)
    assert "Run `train.py`" in message and "PLAYGROUND_MODEL_TINY_CLIP" in message


def refuse_connections(monkeypatch) -> list:
    """Every network connection this process tries from now on is refused and recorded."""
    import socket

    tried = []

    def connect(sock, address):
        tried.append(address)
        raise OSError(f"test: no network ({address})")

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect)
    return tried


def test_hub_id_not_in_cache_fails_offline_without_touching_the_network(tmp_path, monkeypatch):
    """Fast because it never tries (counted), not because a clock said so (issue 14)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    registry = make_registry(tmp_path, hub_id="nobody/not-a-real-model-xyz")
    tried = refuse_connections(monkeypatch)
    with pytest.raises(ModelUnavailable) as info:
        registry.get("tiny-clip")
    assert tried == []
    assert "nobody/not-a-real-model-xyz" in str(info.value) and "huggingface-cli download" in str(info.value)
    assert registry.info()[0]["source"] == "hub"


# ---------------------------------------------------------------------------------------------
# Availability (issue 14, item 5): decided from folders, without loading, libraries or network


def fake_hub_snapshot(cache, repo_id: str, revision: str = "main", commit: str = "abc123") -> Path:
    """The Hugging Face cache's layout for one downloaded repo (one file in its snapshot)."""
    folder = cache / ("models--" + repo_id.replace("/", "--"))
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / revision).write_text(commit)
    (folder / "snapshots" / commit).mkdir(parents=True)
    (folder / "snapshots" / commit / "config.json").write_text("{}")
    return folder / "snapshots" / commit


def test_availability_of_embedded_local_and_hub_models(tiny_clip_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.delenv("PLAYGROUND_ALLOW_DOWNLOADS", raising=False)
    folder, _ = tiny_clip_dir
    tried = refuse_connections(monkeypatch)
    assert make_registry(folder.parent, embedded_dir=folder.name).availability("tiny-clip").present
    missing = make_registry(tmp_path, embedded_dir="nothing_here").availability("tiny-clip")
    assert not missing.usable and missing.state == "not on this machine"
    assert "assets/nothing_here" in missing.note() and "How to get it" in missing.note()

    hub = make_registry(tmp_path, hub_id="someone/detr", revision="no_timm")
    assert not hub.availability("tiny-clip").present
    assert "--revision no_timm" in hub.availability("tiny-clip").how_to_get
    fake_hub_snapshot(tmp_path / "hub", "someone/detr", revision="main")
    assert not hub.availability("tiny-clip").present  # another revision is not this one
    fake_hub_snapshot(tmp_path / "hub", "someone/other", revision="no_timm")
    assert not hub.availability("tiny-clip").present
    (tmp_path / "hub" / "models--someone--detr" / "refs" / "no_timm").write_text("abc123")
    assert hub.availability("tiny-clip").present

    monkeypatch.setenv("PLAYGROUND_MODEL_TINY_CLIP", str(tmp_path / "my_weights"))
    local = hub.availability("tiny-clip")
    assert not local.present and local.where == "the local folder set in PLAYGROUND_MODEL_TINY_CLIP"
    assert str(tmp_path) not in local.note()
    assert tried == []


def test_a_model_built_on_another_is_here_only_when_both_are(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    specs = [ModelSpec("base", "Base", f"{__name__}:load_tiny_clip", hub_id="org/base"),
             ModelSpec("addon", "Add-on", f"{__name__}:load_tiny_clip", hub_id="org/addon", needs=("base",))]
    registry = ModelRegistry(specs, assets_dir=tmp_path)
    fake_hub_snapshot(tmp_path / "hub", "org/addon")
    addon = registry.availability("addon")
    assert not addon.present and "It needs Base" in addon.how_to_get
    fake_hub_snapshot(tmp_path / "hub", "org/base")
    assert registry.availability("addon").present


def test_downloads_only_when_the_owner_opts_in(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    registry = make_registry(tmp_path, hub_id="org/big")
    monkeypatch.setenv("PLAYGROUND_ALLOW_DOWNLOADS", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # offline wins
    assert not registry.availability("tiny-clip").usable
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    assert registry.availability("tiny-clip").state == "downloads on first use"


def test_a_dropdown_offers_only_the_models_that_are_here(tiny_clip_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    folder, _ = tiny_clip_dir
    specs = [ModelSpec("small", "Small", f"{__name__}:load_tiny_clip", embedded_dir=folder.name),
             ModelSpec("big", "Big model", f"{__name__}:load_tiny_clip", hub_id="org/big")]
    registry = ModelRegistry(specs, assets_dir=folder.parent)
    choices, note = registry.usable_choices([("Small one", "small"), ("Big one", "big")])
    assert choices == [("Small one", "small")]
    assert "<b>Big model</b>: not on this machine (how to get it)" in note
    assert "huggingface-cli download org/big" in note
    assert registry.usable_choices(["small"]) == (["small"], "")
    assert registry.usable_choices(["big", "small"])[0] == ["big", "small"]  # the default always stays
    rows = {row["name"]: row for row in registry.info()}
    assert rows["big"]["state"] == "not on this machine" and "org/big" in rows["big"]["how_to_get"]
    assert rows["small"]["state"] == "on this machine" and rows["small"]["how_to_get"] == ""
    assert str(folder) not in str(rows)


def test_server_folders_are_never_in_a_model_message(monkeypatch):
    from playground import settings

    cause = f"OSError: {settings.ASSETS_DIR}/shapes_detr/config.json is corrupt; see {Path.home()}/x"
    message = str(ModelUnavailable("shapes-detr", "embedded folder assets/shapes_detr", "Retrain it.", cause))
    assert str(settings.REPO_ROOT) not in message and str(Path.home()) not in message
    assert "assets/shapes_detr/config.json is corrupt" in message
    assert not any(str(settings.REPO_ROOT) in str(row) for row in models.REGISTRY.info())


def test_the_app_is_offline_unless_downloads_are_allowed():
    """Set by the command line's ``configure_environment`` (before the hub library reads it; importing
    ``playground`` alone sets nothing); availability of every registered model imports neither torch
    nor huggingface_hub."""
    import os
    import subprocess

    code = ("import os, sys; from playground.__main__ import configure_environment; configure_environment()\n"
            "from playground import models\n"
            "[models.REGISTRY.availability(n) for n in models.REGISTRY.names]\n"
            "print(os.environ.get('HF_HUB_OFFLINE'), 'torch' in sys.modules, 'huggingface_hub' in sys.modules)")
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "PLAYGROUND_ALLOW_DOWNLOADS")}
    run = lambda extra: subprocess.run([sys.executable, "-c", code], env={**env, **extra}, capture_output=True,
                                       text=True, cwd=str(Path(__file__).resolve().parent.parent)).stdout.split()
    assert run({}) == ["1", "False", "False"]
    assert run({"HF_HUB_OFFLINE": "0"}) == ["1", "False", "False"]  # only the playground's own switch opens it
    assert run({"PLAYGROUND_ALLOW_DOWNLOADS": "1"}) == ["None", "False", "False"]


def test_pickle_weights_are_refused(tiny_clip_dir, tmp_path):
    """``use_safetensors=True``: a folder holding only pickle weights does not load."""
    import torch
    from transformers import CLIPTextModel

    folder, _ = tiny_clip_dir
    pickled = tmp_path / "pickled"
    CLIPTextModel.from_pretrained(folder).save_pretrained(pickled, safe_serialization=False)
    if not list(pickled.glob("*.bin")):  # this transformers always writes safetensors: make a .bin
        (pickled / "model.safetensors").unlink()
        torch.save(CLIPTextModel.from_pretrained(folder).state_dict(), pickled / "pytorch_model.bin")
    registry = make_registry(tmp_path, embedded_dir="pickled")
    with pytest.raises(ModelUnavailable):
        registry.get("tiny-clip")


def test_corrupt_checkpoint_is_a_clear_error(tiny_clip_dir, tmp_path):
    import shutil

    folder, _ = tiny_clip_dir
    broken = tmp_path / "broken"
    shutil.copytree(folder, broken)
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    registry = make_registry(tmp_path, embedded_dir="broken")
    with pytest.raises(ModelUnavailable) as info:
        registry.get("tiny-clip")
    assert "tiny-clip" in str(info.value) and not registry.is_loaded("tiny-clip")


def test_device_policy(monkeypatch):
    import torch

    assert models.resolve_device("cpu") == "cpu"
    assert models.dtype_for("cuda") == torch.float16 and models.dtype_for("cpu") == torch.float32
    if not torch.cuda.is_available():
        with pytest.raises(models.DeviceUnavailable, match="CUDA is not available"):
            models.resolve_device("cuda")
    monkeypatch.setenv("PLAYGROUND_DEVICE", "tpu")
    with pytest.raises(ValueError, match="PLAYGROUND_DEVICE"):
        models.resolve_device()


def test_unknown_model_name():
    with pytest.raises(KeyError, match="unknown model"):
        make_registry(None).get("nope")


def test_importing_models_is_light():
    """The registry module itself imports no torch (checked in a fresh interpreter)."""
    import subprocess

    code = "import playground.models, sys; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_memory_guard_turns_out_of_memory_into_a_clear_error():
    import torch

    with pytest.raises(models.OutOfMemory, match="ran out of memory.*freed"):
        with models.memory_guard("Generating 16 images"):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    with pytest.raises(ZeroDivisionError):  # other errors pass through unchanged
        with models.memory_guard("x"):
            1 / 0
