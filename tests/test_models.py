"""The model registry with a tiny model saved by the test itself."""

import sys
import threading
import time

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
    assert "tiny-clip" in message and str(tmp_path / "nothing_here") in message
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
