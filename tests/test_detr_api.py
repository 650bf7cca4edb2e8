"""The ``detect`` endpoint through gradio_client and raw HTTP, bad inputs included."""

import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from demos.detr import compute
from tests.conftest import call_raw
from tests.test_detr_compute import bomb_png


@pytest.fixture(scope="module")
def scene_2x(tmp_path_factory):
    """A held-out scene resized to 256 x 256, and its ground truth in those pixels."""
    image, truth = compute.random_scene(11)
    path = tmp_path_factory.mktemp("detr") / "scene_2x.png"
    Image.fromarray(image).resize((256, 256), Image.Resampling.BICUBIC).save(path)
    return str(path), truth


def test_detect_returns_image_and_detections_in_upload_pixels(client, scene_2x):
    path, truth = scene_2x
    annotated, result = client.predict(handle_file(path), 0.5, api_name="/detect")
    assert Image.open(annotated).size[0] >= 256
    assert set(result) == {"detections"}
    for det in result["detections"]:
        assert set(det) == {"label", "score", "box"}
        assert det["label"] in ("circle", "square", "triangle") and det["score"] >= 0.5
        assert all(0 <= v <= 256 for v in det["box"])
    # the same as calling compute directly on the file
    _, direct = compute.detect(path, 0.5)
    assert result == direct


def test_threshold_filters(client, scene_2x):
    path, _ = scene_2x
    _, everything = client.predict(handle_file(path), 0.0, api_name="/detect")
    _, strict = client.predict(handle_file(path), 0.99, api_name="/detect")
    assert len(everything["detections"]) == 12  # one per query
    assert len(strict["detections"]) <= len(everything["detections"])


@pytest.mark.parametrize("content,message", [
    (b"GIF89a not really", "not a readable image"),
    (bomb_png(), "megapixels"),
])
def test_bad_files_then_a_good_request(client, tmp_path, scene_2x, content, message):
    bad = tmp_path / "bad.png"
    bad.write_bytes(content)
    with pytest.raises(AppError, match=message):
        client.predict(handle_file(str(bad)), 0.5, api_name="/detect")
    _, result = client.predict(handle_file(scene_2x[0]), 0.5, api_name="/detect")
    assert "detections" in result


@pytest.mark.parametrize("mode,size", [("L", (128, 128)), ("RGBA", (128, 128)), ("RGB", (1, 1))])
def test_grayscale_rgba_and_one_pixel(client, tmp_path, mode, size):
    image, _ = compute.random_scene(12)
    path = tmp_path / f"{mode}.png"
    Image.fromarray(image).convert(mode).resize(size).save(path)
    _, result = client.predict(handle_file(str(path)), 0.5, api_name="/detect")
    assert isinstance(result["detections"], list)


def upload(app_url: str, path: str) -> dict:
    """Upload a file over plain HTTP; the FileData a raw call sends for it."""
    import httpx

    with open(path, "rb") as f:
        server_path = httpx.post(f"{app_url}/gradio_api/upload", files={"files": f}).json()[0]
    return {"path": server_path, "meta": {"_type": "gradio.FileData"}}


@pytest.mark.parametrize("threshold", [float("nan"), float("inf"), "0.5; rm -rf", None])
def test_bad_threshold_over_raw_http(app_url, client, scene_2x, threshold):
    event, payload = call_raw(app_url, "detect", [upload(app_url, scene_2x[0]), threshold])
    assert event == "error" and "threshold" in str(payload), payload
    _, result = client.predict(handle_file(scene_2x[0]), 0.5, api_name="/detect")
    assert "detections" in result
