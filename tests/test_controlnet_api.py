"""ControlNet tab: the ``controlnet`` endpoint (gradio_client and raw HTTP) and the trained model."""

import numpy as np
import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from benchmarks import shapes_checker
from benchmarks.controlnet import foreground, freehand, iou
from demos.controlnet import compute
from tests.conftest import ROOT, call_raw

EXAMPLES = ROOT / "assets" / "examples" / "controlnet"


def test_the_endpoint_fills_the_outline_in_the_prompts_colour(client, tmp_path):
    sketch, filled = freehand("square", np.random.default_rng([6, 1]))  # drawn independently of training
    path = tmp_path / "square.png"
    Image.fromarray(sketch).save(path)
    image_path, summary = client.predict(handle_file(str(path)), "a blue square", 1.0, 5.0, 25, 3,
                                         api_name="/controlnet")
    image = np.asarray(Image.open(image_path).convert("RGB"))
    assert image.shape == (64, 64, 3)
    assert summary["model"] == compute.EMBEDDED and summary["settings"]["conditioning_scale"] == 1.0
    assert summary["settings"]["steps"] == 25 and summary["settings"]["seed"] == 3
    assert {"condition", "denoise", "total"} <= set(summary["timings_s"])
    assert len(summary["residual_rms_mean"]) == 7 and min(summary["residual_rms_mean"].values()) > 0
    assert shapes_checker.check(image).colour == "blue" and iou(foreground(image), filled) > 0.5


def test_the_endpoint_is_reproducible_and_equals_compute(client):
    args = (handle_file(str(EXAMPLES / "triangle.png")), "a yellow triangle", 1.0, 5.0, 10, 11)
    first = np.asarray(Image.open(client.predict(*args, api_name="/controlnet")[0]))
    second = np.asarray(Image.open(client.predict(*args, api_name="/controlnet")[0]))
    params = compute.ControlParams(prompt="a yellow triangle", steps=10, seed=11)
    direct = compute.generate(str(EXAMPLES / "triangle.png"), params).image
    assert np.array_equal(first, second) and np.array_equal(first[..., :3], direct)


def test_the_trained_controlnet_follows_independent_outlines():
    """A few freehand outlines (not the training generator): the shape follows at s = 1, not at s = 0."""
    scores = {1.0: [], 0.0: []}
    for i, (kind, colour) in enumerate([("circle", "red"), ("square", "green"), ("triangle", "purple")]):
        sketch, filled = freehand(kind, np.random.default_rng([5, i]))
        for s in scores:
            params = compute.ControlParams(prompt=f"a {colour} {kind}", conditioning_scale=s, seed=i)
            scores[s].append(iou(foreground(compute.generate(sketch, params).image), filled))
    assert np.mean(scores[1.0]) > 0.55 and np.mean(scores[1.0]) > np.mean(scores[0.0]) + 0.15


def test_a_blank_canvas_asks_for_an_outline(client, tmp_path):
    blank = tmp_path / "blank.png"
    Image.new("RGBA", (256, 256), (0, 0, 0, 0)).save(blank)  # transparent = paper: nothing drawn
    with pytest.raises(AppError, match="draw an outline first"):
        client.predict(handle_file(str(blank)), "a red circle", 1.0, 5.0, 25, 0, api_name="/controlnet")


def test_a_non_square_rgba_sketch_works(client, tmp_path):
    sketch, _ = freehand("circle", np.random.default_rng(9))
    rgba = np.zeros((256, 400, 4), dtype=np.uint8)
    rgba[:, 72:328, 3] = 255 - sketch  # black strokes, transparent paper, wider than tall
    path = tmp_path / "wide.png"
    Image.fromarray(rgba).save(path)
    image_path, summary = client.predict(handle_file(str(path)), "a orange circle", 1.0, 5.0, 5, 0,
                                         api_name="/controlnet")
    assert np.asarray(Image.open(image_path)).shape[:2] == (64, 64) and summary["settings"]["steps"] == 5


@pytest.mark.parametrize("args, message", [
    (("a red dog", 1.0, 5.0, 25, 0), "does not know 'dog'"),
    (("a red circle", 3.0, 5.0, 25, 0), "conditioning scale must be in"),
    (("a red circle", 1.0, 5.0, 0, 0), "steps must be in"),
    (("a red circle", 1.0, 5.0, 25, -4), "seed must be in")])
def test_bad_settings_through_the_client(client, args, message):
    with pytest.raises(AppError, match=message):
        client.predict(handle_file(str(EXAMPLES / "circle.png")), *args, api_name="/controlnet")


@pytest.mark.parametrize("data, message", [
    ([None, "a red circle", float("nan"), 5.0, 25, 0], "conditioning scale must be a finite number"),
    ([None, "a red circle", 1.0, float("inf"), 25, 0], "guidance scale must be a finite number"),
    ([None, "a red circle", 1.0, 5.0, float("nan"), 0], "steps must be an integer"),
    ([None, "a red circle", 1.0, 5.0, 25, 0], "draw an outline first"),
    ([None, 12, 1.0, 5.0, 25, 0], "does not know '12'")])
def test_bad_values_over_raw_http(app_url, data, message):
    event, payload = call_raw(app_url, "controlnet", data)
    assert event == "error" and message in str(payload), payload


def test_missing_sd15_weights_give_a_clear_message():
    from playground.models import ModelUnavailable

    params = compute.ControlParams(prompt="a photo of a cat", model=compute.SD15_SCRIBBLE, steps=2)
    with pytest.raises(ModelUnavailable, match="lllyasviel/control_v11p_sd15_scribble"):
        compute.generate(str(EXAMPLES / "circle.png"), params)


def test_the_saved_default_view_is_what_the_model_gives_now():
    """The tab opens with a saved view; it must match the committed model (not a stale one)."""
    view = compute.load_default_view()
    assert view is not None
    result = compute.generate(str(compute.default_sketch_path()), compute.ControlParams())
    assert np.abs(view["image"].astype(int) - result.image).max() <= 2
    np.testing.assert_allclose(view["residual_rms"], result.residual_rms, rtol=1e-3, atol=1e-5)
