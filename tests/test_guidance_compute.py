"""Guidance compute: formulas against diffusers' own pipeline, sweep = single calls, bad input."""

import threading

import numpy as np
import pytest

from demos.guidance import compute
from demos.guidance.compute import GuidanceParams

FAST = {"steps": 5, "n_images": 2}


def gen(**kwargs):
    return compute.generate(GuidanceParams(**{**FAST, **kwargs}))


@pytest.fixture(scope="module")
def model():
    return compute.get_model(compute.EMBEDDED)


def test_cfg_matches_diffusers_stable_diffusion_pipeline(model):
    """Our loop at s = 5 equals StableDiffusionPipeline.__call__ from the same z_T (trusted reference)."""
    import torch

    from demos.guidance import sampler

    params = GuidanceParams(prompt="a blue square", steps=6, n_images=2, seed=7)
    ours = compute.generate(params).images
    request = sampler.Request("a blue square", "", "cfg", [5.0, 5.0], 6, "ddim", 7)
    latents = sampler.initial_noise(model.pipe, request, 2)
    reference = model.pipe(["a blue square"] * 2, num_inference_steps=6, guidance_scale=5.0, latents=latents,
                           height=ours.shape[1], width=ours.shape[2], output_type="np").images
    reference = (np.clip(reference, 0, 1) * 255).round()
    assert np.abs(reference - ours.astype(float)).max() <= 2
    assert isinstance(latents, torch.Tensor)


def test_scale_one_is_the_conditional_model_and_zero_the_unconditional():
    cfg_one, plain = gen(guidance_scale=1.0), gen(mode="none", guidance_scale=7.0)
    assert np.abs(cfg_one.images.astype(int) - plain.images).max() <= 1  # eps_u + 1 (eps_c - eps_u) = eps_c
    cfg_zero, uncond = gen(guidance_scale=0.0), gen(prompt="", mode="none")
    assert np.abs(cfg_zero.images.astype(int) - uncond.images).max() <= 1
    classifier_zero = gen(mode="classifier", guidance_scale=0.0)
    assert np.abs(classifier_zero.images.astype(int) - uncond.images).max() <= 1


def test_empty_prompt_is_unconditional_at_any_scale():
    empty, uncond = gen(prompt="", guidance_scale=9.0), gen(prompt="", mode="none")
    assert np.abs(empty.images.astype(int) - uncond.images).max() <= 1


def test_classifier_direction_is_the_scaled_log_probability_gradient(model):
    import torch

    from demos.guidance import sampler

    torch.manual_seed(0)
    z = torch.randn(3, 4, 8, 8)
    mask = torch.zeros(3, 18, dtype=torch.bool)
    mask[:, 4] = True
    abar = torch.tensor(0.3)
    d = sampler.classifier_direction(model.classifier, z, 500, mask, abar)
    delta = torch.zeros_like(z)
    delta[1, 2, 3, 4] = 1e-2

    def log_p(x):
        return torch.log_softmax(model.classifier(x, torch.full((3,), 500.0)), 1)[:, 4]

    with torch.no_grad():
        finite = (log_p(z + delta) - log_p(z - delta))[1] / 2e-2
    assert float(d[1, 2, 3, 4]) == pytest.approx(-float((1 - abar).sqrt() * finite), rel=0.05, abs=1e-4)


def test_sweep_is_one_batch_equal_to_single_calls():
    params = GuidanceParams(prompt="a green triangle", steps=4, seed=11)
    sweep = compute.sweep(params)
    assert sweep.images.shape[0] == len(compute.SWEEP_SCALES) and sweep.scales == list(compute.SWEEP_SCALES)
    for index in (0, 3, 6):
        single = compute.generate(GuidanceParams(prompt="a green triangle", steps=4, seed=11, n_images=1,
                                                 guidance_scale=compute.SWEEP_SCALES[index]))
        assert np.abs(single.images[0].astype(int) - sweep.images[index]).max() <= 1


def test_same_inputs_same_images_and_seed_matters():
    a, b, c = gen(seed=3), gen(seed=3), gen(seed=4)
    assert np.array_equal(a.images, b.images) and not np.array_equal(a.images, c.images)
    assert a.images.shape == (2, 64, 64, 3) and a.images.dtype == np.uint8


@pytest.mark.parametrize("scheduler,mode", zip(compute.SCHEDULER_NAMES, ("classifier", "none", "cfg")))
def test_every_scheduler_and_mode_gives_images(scheduler, mode):
    result = compute.generate(GuidanceParams(mode=mode, scheduler=scheduler, steps=4, n_images=1))
    assert result.images.shape == (1, 64, 64, 3) and result.images.std() > 1  # not blank


def test_step_view_records_and_final_prediction():
    result = compute.generate(GuidanceParams(steps=6, n_images=1), record_steps=[1, 3, 6])
    assert [r["step"] for r in result.records] == [1, 3, 6]
    record = result.records[-1]
    assert record["x0_image"].shape == (64, 64, 3) and record["eps_uncond"].shape == (4, 8, 8)
    np.testing.assert_allclose(record["eps_cond"] - record["eps_uncond"], record["direction"], atol=1e-5)
    # at the last step x0_hat is (almost) the final image
    assert np.abs(record["x0_image"].astype(int) - result.images[0]).mean() < 8


def test_stop_halts_within_one_step():
    calls = []
    result = compute.generate(GuidanceParams(steps=20, n_images=1), on_step=lambda i, n: calls.append(i),
                              should_stop=lambda: len(calls) >= 4)
    assert result.stopped_at == 4 and calls == [1, 2, 3, 4]
    assert result.settings["stopped_at_step"] == 4 and result.images.shape == (1, 64, 64, 3)


def test_two_requests_at_once_equal_one_after_the_other():
    requests = [GuidanceParams(prompt="a red circle", seed=1, **FAST),
                GuidanceParams(prompt="a purple square", seed=2, mode="classifier", scheduler="euler", **FAST)]
    sequential = [compute.generate(p).images for p in requests]
    results = [None, None]
    barrier = threading.Barrier(2)

    def worker(i):
        barrier.wait()
        results[i] = compute.generate(requests[i]).images

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for seq, par in zip(sequential, results):
        assert np.array_equal(seq, par)


@pytest.mark.parametrize("kwargs,message", [
    ({"prompt": "a pink hexagon"}, "does not know 'pink', 'hexagon'"),
    ({"prompt": "a pink circle"}, "knows only these words: a, red, green, blue"),
    ({"negative_prompt": "dog"}, "negative prompt: the embedded model does not know 'dog'"),
    ({"guidance_scale": float("nan")}, "guidance scale must be a finite number"),
    ({"guidance_scale": float("inf")}, "guidance scale must be a finite number"),
    ({"guidance_scale": 25}, "guidance scale must be in [0.0, 20.0]"),
    ({"n_images": 17}, "number of images must be in 1..16"),
    ({"steps": 101}, "steps must be in 1..100"),
    ({"steps": 0}, "steps must be in 1..100"),
    ({"seed": -1}, "seed must be in"),
    ({"mode": "cgf"}, "mode must be one of cfg, classifier, none"),
    ({"scheduler": "pndm"}, "scheduler must be one of ddim, dpm++, euler"),
    ({"model": "sd15", "mode": "classifier"}, "only the embedded Shapes World model has one"),
    ({"prompt": 3}, "prompt must be text"),
])
def test_bad_input_is_a_clear_message(kwargs, message):
    with pytest.raises(ValueError) as err:
        compute.validate(GuidanceParams(**kwargs))
    assert message in str(err.value)


def test_prompt_is_normalised_and_class_mask():
    assert compute.validate(GuidanceParams(prompt="  A Red, CIRCLE. ")).prompt == "a red circle"
    mask = compute.class_mask("a red")
    assert sum(mask) == 3 and compute.class_mask("a red circle").count(True) == 1
    assert compute.class_mask("") is None and compute.class_mask("a") is None


def test_sd15_without_weights_says_how_to_get_it(monkeypatch, tmp_path):
    from playground.models import ModelUnavailable

    monkeypatch.setenv("PLAYGROUND_MODEL_SD15", str(tmp_path / "missing"))
    status = compute.model_status(compute.SD15)
    assert "not on this machine" in status and "huggingface-cli download" in status
    with pytest.raises(ModelUnavailable, match="sd15"):
        compute.get_model(compute.SD15)
    assert "found" in compute.model_status(compute.EMBEDDED)


def test_tokenizer_has_one_token_per_word():
    from demos.common import shapes_ldm
    from demos.common.shapes_world import VOCABULARY

    tokenizer = shapes_ldm.build_tokenizer()
    ids = [tokenizer(word).input_ids[1] for word in VOCABULARY]
    assert len(set(ids)) == len(VOCABULARY) and tokenizer.unk_token_id not in ids
    assert tokenizer("a red circle", padding="max_length").input_ids[:5] == [
        tokenizer.bos_token_id, ids[0], ids[1], ids[VOCABULARY.index("circle")], tokenizer.eos_token_id]
