"""DETR tab compute: bad images, the embedded model end to end, the loss the tab shows."""

import io
import math
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from demos.detr import compute
from demos.detr.matching import CostWeights

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path, name, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


NOISY_PNG = png_bytes(Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)))


def bomb_png(width=20_000, height=20_000) -> bytes:
    """A ~KB PNG whose header says width x height (one grey channel, all zero rows)."""
    raw = zlib.compress(b"\x00" * (width + 1) * 64, 9)  # only a few rows of data; enough for the header check

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def test_ui_imports_no_torch_and_compute_no_gradio():
    code = ("import sys, demos.detr.ui; bad = [m for m in ('torch', 'transformers', 'diffusers') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
    code = "import sys, demos.detr.compute, demos.detr.model, demos.detr.figures; assert 'gradio' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


@pytest.mark.parametrize("data,message", [
    (b"this is not an image", "not a readable image"),
    (NOISY_PNG[: len(NOISY_PNG) // 2], "corrupt or truncated"),
    (bomb_png(), "megapixels"),
    (bomb_png(10_000, 5_000), "megapixels"),
])
def test_bad_files_get_a_clear_message(tmp_path, data, message):
    with pytest.raises(ValueError, match=message):
        compute.load_image(write(tmp_path, "upload.png", data))


def test_missing_or_empty_input():
    with pytest.raises(ValueError, match="No image"):
        compute.load_image(None)
    with pytest.raises(ValueError, match="not found"):
        compute.load_image("/no/such/file.png")


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "I;16", "LA", "CMYK"])
def test_modes_are_converted_to_rgb(tmp_path, mode):
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (20, 30, 3), dtype=np.uint8)).convert(mode)
    fmt = "JPEG" if mode == "CMYK" else "PNG"
    path = tmp_path / f"x.{fmt.lower()}"
    image.save(path, format=fmt)
    rgb = compute.load_image(str(path))
    assert rgb.shape == (20, 30, 3) and rgb.dtype == np.uint8


def test_transparent_pixels_become_white(tmp_path):
    image = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    path = tmp_path / "t.png"
    image.save(path)
    assert (compute.load_image(str(path)) == 255).all()


@pytest.mark.parametrize("threshold", [float("nan"), float("inf"), -0.1, 1.5, "abc", None])
def test_bad_threshold(threshold):
    image, _ = compute.random_scene(0)
    with pytest.raises(ValueError, match="threshold"):
        compute.detect(image, threshold)


def test_scene_detection_end_to_end():
    image, truth = compute.random_scene(5)
    annotated, found = compute.detect(image, 0.5)
    assert annotated.size[0] >= 128
    for det in found["detections"]:
        assert det["label"] in ("circle", "square", "triangle") and 0.5 <= det["score"] <= 1
        assert len(det["box"]) == 4 and all(0 <= v <= 128 for v in det["box"])


def test_resized_image_reports_boxes_in_its_own_pixels():
    image, _ = compute.random_scene(7)
    small = compute.run_detr(image)
    big = compute.run_detr(np.asarray(Image.fromarray(image).resize((256, 256), Image.Resampling.NEAREST)))
    # the model sees nearly the same 128 x 128 input, and reports boxes scaled by 2
    strong = small.queries.scores > 0.5
    np.testing.assert_allclose(big.queries.boxes[strong], 2 * small.queries.boxes[strong], atol=6.0)


@pytest.mark.parametrize("shape", [(1, 1, 3), (1, 1), (7, 5, 4), (128, 128)])
def test_tiny_grayscale_and_rgba_arrays(shape):
    array = np.full(shape, 200, dtype=np.uint8)
    annotated, found = compute.detect(array, 0.5)
    assert isinstance(found["detections"], list) and annotated.size[0] >= 1


def test_matching_and_loss_match_the_training_code():
    image, truth = compute.random_scene(3)
    result = compute.run_detr(image)
    matching = compute.match_scene(result, truth, CostWeights())
    assert sorted(matching.target_idx) == list(range(len(truth.labels)))
    loss = matching.loss
    assert loss["total"] == pytest.approx(loss["class"] + loss["L1"] + loss["GIoU"], rel=1e-5)
    assert all(math.isfinite(v) and v >= 0 for v in loss.values())
    # doubling w_L1 doubles the L1 term when the assignment stays the same
    doubled = compute.match_scene(result, truth, CostWeights(1, 10, 2))
    if list(doubled.query_idx) == list(matching.query_idx):
        assert doubled.loss["L1"] == pytest.approx(2 * loss["L1"], rel=1e-5)


def test_attention_and_rows():
    image, truth = compute.random_scene(4)
    result = compute.run_detr(image)
    n = len(result.logits)
    assert result.attention.shape[0] == n and np.isfinite(result.attention).all()
    np.testing.assert_allclose(result.attention.sum(axis=(1, 2)), 1.0, atol=1e-4)  # softmax over keys
    assert compute.attention_overlay(result, n - 1).size[0] >= 128
    with pytest.raises(ValueError, match="query"):
        compute.attention_overlay(result, n)
    header, rows = compute.query_rows(result, 0.5)
    assert len(rows) == n and len(header) == len(rows[0])


def test_missing_weights_message(monkeypatch, tmp_path):
    from playground.models import ModelRegistry, ModelUnavailable
    from playground import models

    monkeypatch.delenv("PLAYGROUND_MODEL_SHAPES_DETR", raising=False)
    monkeypatch.delenv("PLAYGROUND_MODEL_DETR_RESNET_50", raising=False)
    registry = ModelRegistry(models.MODELS, assets_dir=tmp_path)
    with pytest.raises(ModelUnavailable, match="shapes-detr.*demos.detr.train"):
        registry.get("shapes-detr")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(ModelUnavailable, match="detr-resnet-50.*facebook/detr-resnet-50"):
        registry.get("detr-resnet-50")


def test_numpy_loss_equals_the_training_loss():
    """The tab's loss terms (numpy) equal ``model.set_loss`` (torch, used by train.py)."""
    import torch

    from demos.detr.matching import softmax
    from demos.detr.model import set_loss

    rng = np.random.default_rng(0)
    image, truth = compute.random_scene(9)
    logits = rng.normal(0, 2, (12, 4))
    boxes = np.concatenate([rng.uniform(0.2, 0.8, (12, 2)), rng.uniform(0.05, 0.3, (12, 2))], 1)
    queries = compute.predict_queries(softmax(logits), boxes, 128, 128)
    result = compute.DetrResult(image, ("circle", "square", "triangle"), logits, boxes, np.zeros((12, 8, 8)),
                                0.4, queries, "shapes-detr")
    weights = CostWeights(1.5, 4.0, 3.0)
    matching = compute.match_scene(result, truth, weights)
    target = compute.xyxy_to_cxcywh(compute.normalize_boxes(truth.boxes, 128, 128))
    torch_loss = set_loss(torch.tensor(logits, dtype=torch.float32)[None], torch.tensor(boxes, dtype=torch.float32)[None],
                          [(truth.labels, target)], weights, eos_coef=0.4)
    assert list(torch_loss.matches[0][0]) == list(matching.query_idx)
    for name, value in [("class", torch_loss.cls), ("L1", torch_loss.l1), ("GIoU", torch_loss.giou)]:
        assert matching.loss[name] == pytest.approx(value.item(), rel=1e-4), name


def test_stored_default_outputs_match_the_model():
    """The outputs the tab opens with (no torch at start-up) are the embedded model's."""
    from demos.detr.ui import DEFAULT_OUTPUTS, P

    stored, truth = compute.result_from_json(DEFAULT_OUTPUTS.read_text())
    live = compute.run_detr(stored.image, "shapes-detr")
    np.testing.assert_allclose(stored.logits, live.logits, atol=1e-4)
    np.testing.assert_allclose(stored.boxes_cxcywh, live.boxes_cxcywh, atol=1e-5)
    np.testing.assert_allclose(stored.attention, live.attention, atol=1e-5)
    assert stored.image.shape == (128, 128, 3) and len(truth.labels) >= 1 and P.seed == 0


def test_the_opening_views_write_their_download_again_once_the_temp_sweeper_deleted_it():
    """The opening views are cached per process; their JSON download is a temp file, which the
    temp folder's sweeper deletes after hours: a page load then gets a fresh copy, not an error."""
    from demos.detr import ui

    views = ui.opening_views()
    first = Path(views[ui.DOWNLOAD])
    content = first.read_text()
    first.unlink()
    again = ui.opening_views()
    assert Path(again[ui.DOWNLOAD]).read_text() == content
    assert len(again) == len(views) and again[ui.DOWNLOAD - 1] is views[ui.DOWNLOAD - 1]


def test_a_local_folder_loads_through_the_same_loader(monkeypatch):
    """PLAYGROUND_MODEL_DETR_RESNET_50 may point at any DETR folder saved with save_pretrained."""
    from playground import models, settings
    from playground.models import ModelRegistry

    monkeypatch.setenv("PLAYGROUND_MODEL_DETR_RESNET_50", str(settings.ASSETS_DIR / "shapes_detr"))
    loaded = ModelRegistry(models.MODELS).get_loaded("detr-resnet-50")
    assert loaded.source.kind == "local" and loaded.model.class_names == ("circle", "square", "triangle")
    assert loaded.n_params > 100_000
