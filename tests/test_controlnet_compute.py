"""ControlNet tab, compute: the condition image, the zero convolutions, the pipeline, bad input."""

import threading

import numpy as np
import pytest

from demos.common import shapes_world
from demos.controlnet import compute
from demos.controlnet.compute import ControlParams


def ring(size: int = 256, radius: float = 70, width: float = 3, ink: int = 0, paper: int = 255) -> np.ndarray:
    """A dark circle outline on light paper, grey (size, size) uint8."""
    y, x = np.mgrid[0:size, 0:size] + 0.5
    r = np.hypot(x - size / 2, y - size / 2) * 256 / size
    return np.where(np.abs(r - radius) <= width / 2, ink, paper).astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# Sketch -> condition


def test_condition_is_the_stretched_ink_map_of_shapes_world():
    """Reference: shapes_world's ink map 1 - grey/255, minus the paper level, over its maximum."""
    sample = shapes_world.sketch_sample(np.random.default_rng(3))
    reference = shapes_world.sketch_to_condition(sample.sketch)  # (64, 64) ink in [0, 1]
    reference = np.clip(reference - np.median(reference), 0, None)
    np.testing.assert_allclose(compute.sketch_to_condition(sample.sketch), reference / reference.max(), atol=1e-3)


def test_strokes_are_one_and_paper_is_zero():
    condition = compute.sketch_to_condition(ring())
    assert condition.shape == (64, 64) and condition.dtype == np.float32
    assert condition.max() == pytest.approx(1.0) and condition[32, 32] == 0 and condition[0, 0] == 0
    assert condition[32, 49] > 0.5  # on the ring: r = 70 / 4 = 17.5 px from the centre


def test_transparent_pixels_are_paper():
    rgba = np.zeros((256, 256, 4), dtype=np.uint8)  # fully transparent canvas ...
    rgba[..., 3] = 255 - ring()  # ... with opaque black strokes only
    np.testing.assert_allclose(compute.sketch_to_condition(rgba), compute.sketch_to_condition(ring()), atol=1e-6)
    sketchpad = {"background": None, "layers": [rgba], "composite": rgba}
    np.testing.assert_allclose(compute.sketch_to_condition(sketchpad), compute.sketch_to_condition(ring()), atol=1e-6)


def test_non_square_images_are_padded_with_paper():
    square = ring(256)
    wide = np.full((256, 384), 255, dtype=np.uint8)
    wide[:, 64:320] = square
    padded = np.full((384, 384), 255, dtype=np.uint8)
    padded[64:320] = wide
    np.testing.assert_allclose(compute.sketch_to_condition(wide), compute.sketch_to_condition(padded), atol=1e-6)


def test_huge_images_are_downscaled_to_the_same_condition():
    from PIL import Image, ImageDraw

    huge = Image.new("L", (4096, 4096), 255)
    ImageDraw.Draw(huge).ellipse([2048 - 1168, 2048 - 1168, 2048 + 1168, 2048 + 1168], outline=0, width=96)  # r 70±3 at 256
    small = compute.sketch_to_condition(ring(256, width=6))
    assert np.abs(compute.sketch_to_condition(np.asarray(huge)) - small).mean() < 0.02


def test_light_strokes_on_dark_paper_are_inverted():
    np.testing.assert_allclose(compute.sketch_to_condition(255 - ring()), compute.sketch_to_condition(ring()), atol=1e-6)


@pytest.mark.parametrize("blank", [np.full((256, 256), 255, np.uint8), np.zeros((256, 256, 4), np.uint8),
                                   np.full((100, 80, 3), 240, np.uint8), None, {"composite": None, "background": None}])
def test_an_empty_canvas_asks_for_an_outline(blank):
    with pytest.raises(ValueError, match="draw an outline first"):
        compute.sketch_to_condition(blank)


@pytest.mark.parametrize("bad, message", [
    (np.full((64, 64), np.nan), "NaN"), (np.full((64, 64, 3), np.inf), "NaN or infinite"),
    (np.zeros((4, 4, 7)), "shape"), (np.array([["a"]]), "image"), (np.zeros((0, 5)), "shape")])
def test_bad_arrays_get_a_message(bad, message):
    with pytest.raises(ValueError, match=message):
        compute.sketch_to_condition(bad)


def test_files_too_large_or_not_images_are_refused_before_decoding(tmp_path):
    from PIL import Image

    bomb = tmp_path / "bomb.png"
    Image.new("1", (12000, 6000), 1).save(bomb)  # 72 M pixels, a few kB on disk
    with pytest.raises(ValueError, match="too large"):
        compute.sketch_to_condition(str(bomb))
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    with pytest.raises(ValueError, match="could not be read as an image"):
        compute.sketch_to_condition(str(text))


def test_a_file_and_its_array_give_the_same_condition(tmp_path):
    from PIL import Image

    path = tmp_path / "ring.png"
    Image.fromarray(ring()).save(path)
    np.testing.assert_allclose(compute.sketch_to_condition(str(path)), compute.sketch_to_condition(ring()))


# ---------------------------------------------------------------------------------------------
# Params


@pytest.mark.parametrize("change, message", [
    ({"conditioning_scale": float("nan")}, "conditioning scale"), ({"conditioning_scale": 2.5}, "conditioning scale"),
    ({"guidance_scale": float("inf")}, "guidance scale"), ({"steps": 0}, "steps"), ({"steps": 2.5}, "steps"),
    ({"seed": -1}, "seed"), ({"control_start": 0.6, "control_end": 0.4}, "control end"),
    ({"model": "sdxl"}, "model"), ({"prompt": None}, "prompt"), ({"prompt": "x" * 600}, "too long")])
def test_bad_params_name_the_field(change, message):
    with pytest.raises(ValueError, match=message):
        compute.validate(ControlParams(**change))


def test_the_embedded_model_reports_unknown_words():
    with pytest.raises(ValueError, match="'dog'"):
        compute.check_prompt("a red dog", compute.EMBEDDED)
    compute.check_prompt("a red circle", compute.EMBEDDED)
    compute.check_prompt("a photo of a cat", compute.SD15_SCRIBBLE)  # real models take any text


# ---------------------------------------------------------------------------------------------
# The ControlNet itself, on a tiny random model


@pytest.fixture(scope="module")
def tiny():
    """A random Shapes World-sized pipeline and ControlNet whose zero convolutions are not zero."""
    import torch
    from diffusers import StableDiffusionPipeline

    from demos.controlnet import model
    from demos.common import shapes_ldm

    torch.manual_seed(0)
    tokenizer = shapes_ldm.build_tokenizer()
    base = StableDiffusionPipeline(vae=shapes_ldm.build_vae(), text_encoder=shapes_ldm.build_text_encoder(tokenizer),
                                   tokenizer=tokenizer, unet=shapes_ldm.build_unet(),
                                   scheduler=shapes_ldm.build_scheduler(), safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)
    controlnet = model.build_controlnet(base.unet)
    fresh = {k: v.clone() for k, v in controlnet.state_dict().items()}
    with torch.no_grad():
        for zero_conv in [*controlnet.controlnet_down_blocks, controlnet.controlnet_mid_block]:
            zero_conv.weight.normal_(0, 0.2)
    return base, fresh, model.controlnet_pipeline(base, controlnet)


def test_zero_convolutions_start_as_the_frozen_unet(tiny):
    """At initialisation every residual is exactly 0, so UNet + ControlNet == UNet."""
    import torch

    from demos.controlnet import model

    base, fresh, _ = tiny
    controlnet = model.build_controlnet(base.unet)
    controlnet.load_state_dict(fresh)
    z, t, c = torch.randn(2, 4, 8, 8), torch.tensor([10, 900]), torch.randn(2, 8, 64)
    c_f = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        down, mid = controlnet(z, t, c, controlnet_cond=c_f, return_dict=False)
        assert all(r.abs().max() == 0 for r in (*down, mid))
        controlled = base.unet(z, t, c, down_block_additional_residuals=down, mid_block_additional_residual=mid).sample
        assert torch.equal(controlled, base.unet(z, t, c).sample)


def test_scale_zero_is_the_base_pipeline_and_scale_one_is_not(tiny):
    """Reference: diffusers' StableDiffusionPipeline with the same DDIM scheduler and seed."""
    import torch
    from diffusers import DDIMScheduler, StableDiffusionPipeline

    from demos.controlnet import model

    base, _, pipe = tiny
    condition = compute.sketch_to_condition(ring())
    params = compute.validate(ControlParams(conditioning_scale=0.0, steps=5, seed=3))
    off, rms_off, _ = model.denoise(pipe, condition, params)
    reference = StableDiffusionPipeline(**{**base.components, "scheduler": DDIMScheduler.from_config(base.scheduler.config)})
    expected = reference("a red circle", num_inference_steps=5, guidance_scale=5.0, output_type="np",
                         generator=torch.Generator("cpu").manual_seed(3)).images[0]
    assert np.abs(off.astype(float) - np.round(expected * 255)).max() <= 1
    on, rms_on, _ = model.denoise(pipe, condition, compute.validate(ControlParams(steps=5, seed=3)))
    assert rms_off.max() == 0 and rms_on.min() > 0 and np.abs(on.astype(float) - off).mean() > 1


def test_control_window_and_residual_names(tiny):
    from demos.controlnet import model

    _, _, pipe = tiny
    condition = compute.sketch_to_condition(ring())
    params = compute.validate(ControlParams(steps=10, control_start=0.2, control_end=0.6))
    _, rms, _ = model.denoise(pipe, condition, params)
    names = model.residual_names(pipe.controlnet, 8)
    assert rms.shape == (10, len(names)) == (10, 7) and names[0].startswith("conv_in") and names[-1].startswith("mid")
    active = rms.max(axis=1) > 0  # step i is controlled iff 0.2 <= i/10 and (i+1)/10 <= 0.6
    assert active.tolist() == [0.2 <= i / 10 and (i + 1) / 10 <= 0.6 for i in range(10)]


def test_residuals_are_recorded_per_request_under_concurrency(tiny):
    from demos.controlnet import model

    _, _, pipe = tiny
    condition = compute.sketch_to_condition(ring())
    results = {}

    def run(scale):
        params = compute.validate(ControlParams(steps=6, conditioning_scale=scale))
        results[scale] = model.denoise(pipe, condition, params)[1]

    threads = [threading.Thread(target=run, args=(s,)) for s in (0.0, 1.0, 2.0)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert results[0.0].shape == results[1.0].shape == (6, 7) and results[0.0].max() == 0
    np.testing.assert_allclose(results[2.0][0], 2 * results[1.0][0], rtol=1e-4)  # step 0: linear in s


def test_real_checkpoints_load_through_the_same_code_from_local_folders(tiny, tmp_path, monkeypatch):
    """SD 1.5 + scribble via ``PLAYGROUND_MODEL_SD15`` / ``..._SD15_SCRIBBLE`` folders (tiny stand-ins)."""
    from playground import models

    base, _, pipe = tiny
    base.save_pretrained(tmp_path / "sd15", safe_serialization=True)
    pipe.controlnet.save_pretrained(tmp_path / "scribble", safe_serialization=True)
    monkeypatch.setenv("PLAYGROUND_MODEL_SD15", str(tmp_path / "sd15"))
    monkeypatch.setenv("PLAYGROUND_MODEL_SD15_SCRIBBLE", str(tmp_path / "scribble"))
    monkeypatch.setenv("PLAYGROUND_SD_SAFETY_CHECKER", "off")  # the stand-in has none; a private server
    monkeypatch.delenv("PLAYGROUND_PUBLIC", raising=False)
    try:
        params = ControlParams(prompt="any words at all", model=compute.SD15_SCRIBBLE, steps=1, guidance_scale=1.0)
        result = compute.generate(ring(), params)
        assert result.condition.shape == (512, 512) and result.image.shape == (512, 512, 3)
        assert models.REGISTRY.info()[[r["name"] for r in models.REGISTRY.info()].index("sd15-scribble")]["source"] == "local"
    finally:
        models.REGISTRY.unload(compute.SD15_SCRIBBLE)
        models.REGISTRY.unload("sd15")


def tiny_safety_checker():
    """A randomly initialised ``StableDiffusionSafetyChecker`` of a tiny CLIP, and its image processor."""
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
    from transformers import CLIPConfig, CLIPImageProcessor

    small = {"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 1, "num_attention_heads": 2}
    config = CLIPConfig(text_config=small, vision_config={**small, "image_size": 32, "patch_size": 8},
                        projection_dim=16)
    return StableDiffusionSafetyChecker(config).eval(), CLIPImageProcessor(size={"shortest_edge": 32},
                                                                           crop_size={"height": 32, "width": 32})


def test_sd15_keeps_its_safety_checker_and_one_without_is_refused_behind_a_public_link(tiny, tmp_path, monkeypatch):
    from diffusers import StableDiffusionPipeline

    from playground import models
    from playground.models import ModelUnavailable

    base, _, _ = tiny
    base.save_pretrained(tmp_path / "bare", safe_serialization=True)
    checker, processor = tiny_safety_checker()
    StableDiffusionPipeline(**{**base.components, "safety_checker": checker, "feature_extractor": processor}
                            ).save_pretrained(tmp_path / "checked", safe_serialization=True)
    monkeypatch.delenv("PLAYGROUND_SD_SAFETY_CHECKER", raising=False)
    monkeypatch.delenv("PLAYGROUND_PUBLIC", raising=False)

    def load(folder: str):
        models.REGISTRY.unload("sd15")
        monkeypatch.setenv("PLAYGROUND_MODEL_SD15", str(tmp_path / folder))
        return models.get("sd15").pipe

    try:
        with pytest.raises(ModelUnavailable, match="no safety checker"):
            load("bare")
        monkeypatch.setenv("PLAYGROUND_SD_SAFETY_CHECKER", "off")  # the owner of a private server opts out ...
        assert load("bare").safety_checker is None
        monkeypatch.setenv("PLAYGROUND_PUBLIC", "1")  # ... which a public link overrides
        with pytest.raises(ModelUnavailable, match="no safety checker"):
            load("bare")
        assert load("checked").safety_checker is not None
    finally:
        models.REGISTRY.unload("sd15")
