"""The ``guidance`` endpoint through gradio_client and raw HTTP; the UI module imports no torch."""

import subprocess
import sys

import numpy as np
import pytest
from gradio_client.exceptions import AppError
from PIL import Image

from tests.conftest import call_raw


def images_of(gallery) -> list[np.ndarray]:
    return [np.asarray(Image.open(item["image"]).convert("RGB")) for item in gallery]


def test_guidance_endpoint_returns_images_and_settings(client):
    gallery, info = client.predict("a red circle", "cfg", 5.0, 3, 5, 1, api_name="/guidance")
    images = images_of(gallery)
    assert len(images) == 3 and all(image.shape == (64, 64, 3) for image in images)
    settings = info["settings"]
    assert settings["prompt"] == "a red circle" and settings["mode"] == "cfg"
    assert settings["guidance_scale"] == 5.0 and settings["n_images"] == 3 and settings["steps"] == 5
    assert settings["seed"] == 1 and info["timings"]["total_s"] > 0
    again, _ = client.predict("a red circle", "cfg", 5.0, 3, 5, 1, api_name="/guidance")
    assert all(np.array_equal(a, b) for a, b in zip(images, images_of(again)))  # same inputs, same images


def test_guidance_endpoint_names_unknown_words(client):
    with pytest.raises(AppError) as err:
        client.predict("a pink elephant", "cfg", 5.0, 1, 5, 0, api_name="/guidance")
    assert "'pink', 'elephant'" in str(err.value) and "a, red, green, blue" in str(err.value)


@pytest.mark.parametrize("data,message", [
    (["a red circle", "cfg", float("nan"), 1, 5, 0], "guidance scale must be a finite number"),
    (["a red circle", "cfg", float("inf"), 1, 5, 0], "guidance scale must be a finite number"),
    (["a red circle", "cfg", 5.0, 17, 5, 0], "number of images must be in 1..16"),
    (["a red circle", "cfg", 5.0, 1, 101, 0], "steps must be in 1..100"),
    (["a red circle", "magic", 5.0, 1, 5, 0], "mode must be one of cfg, classifier, none"),
    (["a red circle", "cfg", 5.0, 2.5, 5, 0], "number of images must be an integer"),
])
def test_guidance_bad_input_over_raw_http(app_url, data, message):
    event, payload = call_raw(app_url, "guidance", data)
    assert event == "error" and message in str(payload), payload


def test_ui_and_compute_import_no_torch():
    code = ("import sys, gradio as gr; from demos.guidance import ui\n"
            "with gr.Blocks() as demo: ui.build(demo)\n"
            "assert 'torch' not in sys.modules and 'diffusers' not in sys.modules, 'heavy import'\n"
            "from demos.guidance import compute; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr[-2000:]
    code = "import sys; from demos.guidance import compute; assert 'gradio' not in sys.modules; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]


def test_ui_events_stop_and_step_view():
    from demos.guidance import ui

    class Request:
        session_hash = "test-session"

    calls = []

    def progress(value, desc=None):
        calls.append(value)
        if len(calls) == 3:
            ui.STOP.press(Request())

    controls = ui.Controls(model="shapes-ldm", prompt="a blue square", negative_prompt="", mode="cfg",
                           guidance_scale=5.0, steps=30, scheduler="ddim", seed=0, n_images=2, view_steps="1, 2")
    *updates, (gallery, info, figure, status, files) = ui.generate(controls, request=Request(), progress=progress)
    assert [u[3] for u in updates] == [f"Denoising… step {i} of 30" for i in (1, 2, 3)]  # one per step
    assert info["settings"]["stopped_at_step"] == 3 and "Stopped at step 3" in status
    assert len(gallery) == 2 and len(figure.data) == 2 * 4  # two recorded steps, four panels each
    assert files[0].endswith(".png") and files[1].endswith(".json")
