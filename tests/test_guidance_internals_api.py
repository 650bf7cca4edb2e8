"""The ``sd_internals`` endpoint (issue 20) through gradio_client and raw HTTP."""

import numpy as np
import pytest
from gradio_client.exceptions import AppError
from PIL import Image

from tests.conftest import call_raw


def test_sd_internals_returns_the_image_and_one_map_per_word(client):
    image, data = client.predict("a green triangle", 4, 2, api_name="/sd_internals")
    pixels = np.asarray(Image.open(image).convert("RGB"))
    assert pixels.shape == (64, 64, 3)
    assert data["tokens"] == ["<start>", "a", "green", "triangle", "<end>", "<pad>", "<pad>", "<pad>"]
    assert list(data["heatmaps"]) == ["a", "green", "triangle"]
    for word, heat in data["heatmaps"].items():
        heat = np.array(heat)
        assert heat.shape == (64, 64) and np.isfinite(heat).all() and (heat >= 0).all(), word
    assert data["latent_shape"] == [4, 8, 8] and 15 < data["psnr_db"] < 60
    again_image, again = client.predict("a green triangle", 4, 2, api_name="/sd_internals")
    assert np.array_equal(pixels, np.asarray(Image.open(again_image).convert("RGB"))) and again == data


def test_sd_internals_image_is_the_guidance_endpoints_image(client):
    """Recording changes nothing: the same prompt, steps and seed through /guidance (CFG, s = 5)."""
    image, _ = client.predict("a red square", 3, 7, api_name="/sd_internals")
    gallery, _ = client.predict("a red square", "cfg", 5.0, 1, 3, 7, api_name="/guidance")
    same = [np.asarray(Image.open(p).convert("RGB")) for p in (image, gallery[0]["image"])]
    assert np.array_equal(*same)


def test_sd_internals_names_unknown_words(client):
    with pytest.raises(AppError) as err:
        client.predict("a pink elephant", 4, 0, api_name="/sd_internals")
    assert "'pink', 'elephant'" in str(err.value)


@pytest.mark.parametrize("data,message", [
    (["a red circle", 0, 0], "steps must be in 1..100"),
    (["a red circle", 101, 0], "steps must be in 1..100"),
    (["a red circle", float("nan"), 0], "steps must be an integer"),
    (["a red circle", 4, float("inf")], "seed must be an integer"),
    (["a red circle", 4, -3], "seed must be in"),
    (["", 4, 0], "at least one word"),
])
def test_sd_internals_bad_input_over_raw_http(app_url, data, message):
    event, payload = call_raw(app_url, "sd_internals", data)
    assert event == "error" and message in str(payload), payload
