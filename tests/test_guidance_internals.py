"""Inside the latent diffusion model (issue 20): recording cross-attention, word maps, the autoencoder."""

import threading

import numpy as np
import pytest

from demos.common import shapes_world
from demos.guidance import compute, internals, internals_defaults

STEPS = 6


@pytest.fixture(scope="module")
def model():
    return compute.get_model(compute.EMBEDDED)


@pytest.fixture(scope="module")
def recorded():
    return internals.generate(internals.InternalsParams(prompt="a blue square", steps=STEPS, seed=3), keep_raw=True)


def test_recording_does_not_change_the_image(recorded):
    plain = compute.generate(compute.GuidanceParams(prompt="a blue square", steps=STEPS, seed=3, n_images=1))
    assert np.array_equal(plain.images[0], recorded.image)


def test_a_concurrent_plain_run_is_neither_recorded_nor_changed(model):
    """The recorder lives in a ContextVar: another thread sampling at the same time on the same
    model is not recorded into it, and both images equal their runs alone."""
    from demos.guidance import cross_attention, sampler

    alone = {p: compute.generate(compute.GuidanceParams(prompt=p, steps=STEPS, n_images=1)).images[0]
             for p in ("a red circle", "a green triangle")}
    images, recorders, start = {}, {}, threading.Barrier(2)

    def plain():
        start.wait()
        images["plain"] = compute.generate(compute.GuidanceParams(prompt="a green triangle", steps=STEPS,
                                                                  n_images=1)).images[0]

    def recording():
        recorder = recorders["r"] = cross_attention.Recorder(STEPS, 8, 64, (8, 8), row=1)
        request = sampler.Request("a red circle", "", "cfg", [5.0], STEPS, "ddim", 0)
        start.wait()
        with cross_attention.recording(recorder):
            images["recorded"] = sampler.sample(model, request,
                                                lambda i, n: setattr(recorder, "step", min(i, n - 1))).images[0]

    threads = [threading.Thread(target=plain), threading.Thread(target=recording)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert np.array_equal(images["plain"], alone["a green triangle"])
    assert np.array_equal(images["recorded"], alone["a red circle"])
    assert recorders["r"].calls == STEPS * 11  # eleven cross-attention layers per UNet call, no more


def test_attention_probabilities_over_tokens_sum_to_one_at_every_position(recorded):
    assert len(recorded.raw) == STEPS * 11
    positions = []
    for call in recorded.raw:
        probs = call["probs"].numpy()  # (heads, N, L)
        assert probs.shape[0] == 4 and probs.shape[2] == 8 and (probs >= 0).all()
        np.testing.assert_allclose(probs.sum(axis=-1), 1.0, atol=1e-5)
        positions.append(probs.shape[1])
    # per UNet call: 2 + 3 layers at 8 x 8 (64 positions), 2 + 1 + 3 at 4 x 4 (16 positions)
    assert positions.count(64) == STEPS * 5 and positions.count(16) == STEPS * 6
    assert sorted({c["step"] for c in recorded.raw}) == list(range(STEPS))


def test_the_recorded_probabilities_are_the_layers_own_attention(model):
    """softmax(q k^T / sqrt(d)) from the recorder, times V, equals the attention output the
    layer computed (scaled_dot_product_attention inside diffusers' processor)."""
    import torch
    import torch.nn.functional as F

    from demos.guidance import cross_attention

    attn = model.pipe.unet.mid_block.attentions[0].transformer_blocks[0].attn2
    hidden = torch.randn(2, 16, attn.to_q.in_features, generator=torch.Generator().manual_seed(0))
    context = torch.randn(2, 8, attn.to_k.in_features, generator=torch.Generator().manual_seed(1))
    probs = cross_attention.attention_probs(attn, hidden, context)  # (B * heads, N, L)
    value = attn.head_to_batch_dim(attn.to_v(context))
    mine = attn.batch_to_head_dim(torch.bmm(probs, value))
    q, k, v = (attn.head_to_batch_dim(x, out_dim=4) for x in (attn.to_q(hidden), attn.to_k(context), attn.to_v(context)))
    reference = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).flatten(2)
    torch.testing.assert_close(mine, reference, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("side", [8, 4])
def test_the_recorders_upsampling_matrix_is_bicubic_interpolation_then_clamp(side):
    """DAAM's step (each head's map upsampled bicubically, clamped at 0, summed over heads) done
    with the recorder's matrix equals doing it with F.interpolate."""
    import torch
    import torch.nn.functional as F

    from demos.guidance import cross_attention

    recorder = cross_attention.Recorder(1, 8, 64, (8, 8), row=0)
    probs = (30 * torch.rand(4, side * side, 8, generator=torch.Generator().manual_seed(side))).softmax(-1)  # (heads, N, L), peaked
    recorder.add("layer", probs)
    maps = probs.permute(0, 2, 1).reshape(4, 8, side, side)
    expected = F.interpolate(maps, size=(64, 64), mode="bicubic", align_corners=False).clamp(min=0).sum(0)
    torch.testing.assert_close(recorder.maps[0], expected, atol=1e-5, rtol=1e-5)
    assert (F.interpolate(maps, size=(64, 64), mode="bicubic", align_corners=False) < 0).any()  # the clamp matters


def test_word_heatmaps_are_one_per_word_non_negative_and_finite(recorded):
    maps = recorded.heatmaps()
    assert list(maps) == ["a", "blue", "square"]
    for word, heat in maps.items():
        assert heat.shape == (64, 64) and np.isfinite(heat).all() and (heat >= 0).all() and heat.max() > 0, word
    assert recorded.tokens == ["<start>", "a", "blue", "square", "<end>", "<pad>", "<pad>", "<pad>"]
    assert recorded.step_maps.shape == (STEPS, 8, 64, 64)
    np.testing.assert_allclose(sum(recorded.attention_share()), 1.0)


def test_every_step_has_its_latent_and_decodings(recorded):
    assert recorded.latents.shape == (STEPS, 4, 8, 8) and np.isfinite(recorded.latents).all()
    assert recorded.latent_images.shape == recorded.x0_images.shape == (STEPS, 64, 64, 3)
    assert recorded.round_trip.latent.shape == (4, 8, 8) and recorded.round_trip.compression == 48


def test_same_inputs_same_maps():
    a = internals.api_sd_internals("a red triangle", 3, 5)
    b = internals.api_sd_internals("a red triangle", 3, 5)
    assert np.array_equal(a[0], b[0]) and a[1] == b[1]
    assert set(a[1]) == {"tokens", "heatmaps", "latent_shape", "psnr_db"}
    assert a[1]["latent_shape"] == [4, 8, 8] and set(a[1]["heatmaps"]) == {"a", "red", "triangle"}


@pytest.mark.parametrize("prompt", ["a red circle", "a purple square", "a blue triangle"])
def test_the_committed_model_puts_the_shape_word_on_the_shape_and_a_off_it(prompt):
    """The benchmark's measure on one image (25 steps, seed 0): the shape word's map, thresholded
    at its mean, overlaps the shape's pixel mask (``shapes_checker``, not the training geometry)
    far more than the map of ``a``. Purple is here because before the grounded 8x8 fine-tune its
    shape word sat on the background (IoU ~0)."""
    from benchmarks import shapes_checker
    from benchmarks.sd_internals import iou

    result = internals.generate(internals.InternalsParams(prompt=prompt, steps=25, seed=0), with_steps=False)
    mask = shapes_checker.foreground_mask(result.image)
    summed = result.step_maps.sum(axis=0)  # (L, 64, 64)
    shape_iou = iou(summed[result.word_tokens[result.words[2]]].sum(0), mask)
    a_iou = iou(summed[result.word_tokens["a"]].sum(0), mask)
    assert shape_iou >= 0.4 and shape_iou >= a_iou + 0.3, (shape_iou, a_iou)


def test_round_trip_psnr_on_shapes_world_images_keeps_the_benchmarks_level(model):
    """``python -m benchmarks.sd_internals`` measured 28.1 dB on 256 held-out images; 2 dB margin."""
    rng = np.random.default_rng([2026, 12, 1, 20])
    values = [internals.round_trip(model, shapes_world.generation_sample(rng)[0]).psnr_db for _ in range(32)]
    assert np.mean(values) >= 26.0, values


def test_a_picture_of_any_size_is_squared_and_resized(tmp_path):
    from PIL import Image

    path = tmp_path / "wide.png"
    Image.fromarray(np.full((90, 200, 3), 240, dtype=np.uint8)).save(path)
    trip = internals.autoencode(str(path))
    assert trip.image.shape == trip.reconstruction.shape == (64, 64, 3) and trip.error.shape == (64, 64)
    assert np.isfinite(trip.psnr_db) and trip.error.min() >= 0


@pytest.mark.parametrize("content,message", [
    (b"not an image at all", "not a readable image"),
    (None, "corrupt or truncated"),
])
def test_corrupt_uploads_get_a_clear_message(tmp_path, content, message):
    path = tmp_path / "bad.png"
    if content is None:  # a PNG cut in half
        from PIL import Image

        Image.fromarray(shapes_world.generation_batch(1, 0)[0][0]).save(path)
        content = path.read_bytes()[: path.stat().st_size // 2]
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message):
        internals.autoencode(str(path))


@pytest.mark.parametrize("params,message", [
    (dict(prompt="a pink elephant"), "does not know 'pink', 'elephant'"),
    (dict(prompt="  "), "at least one word"),
    (dict(steps=0), "steps must be in 1..100"),
    (dict(steps=float("nan")), "steps must be an integer"),
    (dict(seed=-1), "seed must be in"),
    (dict(guidance_scale=float("inf")), "guidance scale must be a finite number"),
])
def test_bad_input_names_the_field(params, message):
    with pytest.raises(ValueError, match=message):
        internals.validate(internals.InternalsParams(**params))


def test_the_stored_opening_view_loads_without_a_model():
    result, trip = internals_defaults.load()
    assert result.step_maps.shape[:2] == (25, 8) and (result.step_maps >= 0).all()
    assert result.latents.shape == (25, 4, 8, 8) and trip.latent.shape == (4, 8, 8)
    assert result.words == ["a", "red", "circle"] and trip.psnr_db > 20


def test_a_huge_upload_is_refused_from_its_header(tmp_path):
    from tests.test_hardening_inputs import solid_png

    path = solid_png(tmp_path / "huge.png", 12_000, 12_000)  # a few kB that would decode to 144 MP
    with pytest.raises(ValueError, match="megapixels"):
        internals.autoencode(str(path))


def test_a_stopped_run_keeps_the_maps_and_latents_of_the_steps_it_did():
    done = []
    result = internals.generate(internals.InternalsParams(steps=10), on_step=lambda i, n: done.append(i),
                                should_stop=lambda: len(done) >= 3)
    assert result.settings["steps_done"] == 3 and result.step_maps.shape[0] == 3
    assert result.latents.shape[0] == 3 and result.step_maps[-1].max() > 0
