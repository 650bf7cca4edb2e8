"""Guidance: what the scale s does to a diffusion model's images.

Classifier-free guidance (Ho & Salimans 2022) mixes two predictions of one network,

    eps_hat = eps_theta(z_t, {}) + s * (eps_theta(z_t, c) - eps_theta(z_t, {}))

so s = 0 is the unconditional model, s = 1 the plain conditional model (guidance off), s > 1
extrapolates past it. Classifier guidance (Dhariwal & Nichol 2021) adds the gradient of a
noise-aware classifier instead: eps_hat = eps_theta(z_t, {}) - s * sqrt(1 - abar_t) *
grad_z log p_phi(y | z_t, t), i.e. it samples from p(z_t) p(y | z_t)^s.

This module validates inputs and returns plain data; the torch loop is in ``sampler.py``,
imported only when a model runs (``ui.py`` imports this module without torch).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from demos.common import ldm_prompts, shapes_world
from demos.common.ldm_prompts import prompt_words
from playground import settings
from playground.validate import check_choice, check_float, check_int

MODES = ("cfg", "classifier", "none")
MODE_LABELS = {"cfg": "classifier-free", "classifier": "classifier", "none": "none"}
SCHEDULER_NAMES = ("ddim", "dpm++", "euler")
SCHEDULER_LABELS = {"ddim": "DDIM", "dpm++": "DPM-Solver++", "euler": "Euler"}
EMBEDDED, SD15 = "shapes-ldm", "sd15"
MODEL_NAMES = (EMBEDDED, SD15)
SWEEP_SCALES = (0.0, 1.0, 3.0, 5.0, 7.5, 10.0, 15.0)
MAX_SCALE, MAX_IMAGES, MAX_STEPS, MAX_SEED = 20.0, 16, 100, 2**32 - 1
CURVE_FILE = "guidance_curve.json"  # adherence/diversity vs s, written by benchmarks/guidance.py


@dataclass(frozen=True)
class GuidanceParams:
    """One generation request (defaults = what the tab opens with)."""

    prompt: str = "a red circle"
    negative_prompt: str = ""
    mode: str = "cfg"  # cfg | classifier | none
    guidance_scale: float = 5.0  # s
    steps: int = 25
    scheduler: str = "ddim"
    seed: int = 0
    n_images: int = 4
    model: str = EMBEDDED


def validate(params: GuidanceParams) -> GuidanceParams:
    """Checked and normalised params; ``ValueError`` naming the field otherwise."""
    model = check_choice("model", params.model, MODEL_NAMES)
    prompt = check_prompt("prompt", params.prompt, model)
    negative = check_prompt("negative prompt", params.negative_prompt, model)
    mode = check_choice("mode", params.mode, MODES)
    if mode == "classifier" and model != EMBEDDED:
        raise ValueError("classifier guidance needs a noise-aware classifier p(y | z_t); only the "
                         "embedded Shapes World model has one. Use classifier-free guidance with SD 1.5.")
    return replace(params, prompt=prompt, negative_prompt=negative, mode=mode, model=model,
                   guidance_scale=check_float("guidance scale", params.guidance_scale, 0.0, MAX_SCALE),
                   steps=check_int("steps", params.steps, 1, MAX_STEPS),
                   scheduler=check_choice("scheduler", params.scheduler, SCHEDULER_NAMES),
                   seed=check_int("seed", params.seed, 0, MAX_SEED),
                   n_images=check_int("number of images", params.n_images, 1, MAX_IMAGES))


def check_prompt(name: str, text, model: str) -> str:
    """The prompt, normalised; for the embedded model every word must be in its vocabulary
    (``ldm_prompts.check_prompt``). An empty prompt means the unconditional model eps_theta(z_t, {})."""
    return ldm_prompts.check_prompt(name, text, closed_vocabulary=model == EMBEDDED)


def class_mask(prompt: str) -> list[bool] | None:
    """Which of the 18 (colour, shape) classes the prompt allows; None if it names neither."""
    words = set(prompt_words(prompt))
    colours = words & set(shapes_world.COLOURS) or set(shapes_world.COLOURS)
    shapes = words & set(shapes_world.SHAPES) or set(shapes_world.SHAPES)
    if not words & (set(shapes_world.COLOURS) | set(shapes_world.SHAPES)):
        return None
    return [c in colours and s in shapes for c in shapes_world.COLOURS for s in shapes_world.SHAPES]


# ---------------------------------------------------------------------------------------------
# Running the model


@dataclass
class Generation:
    """Images and everything needed to explain them."""

    images: np.ndarray  # (B, H, W, 3) uint8
    scales: list[float]  # s of each image
    settings: dict
    timings: dict
    records: list[dict]  # step view of image 0 (x0_hat, eps_cond, eps_uncond, direction)
    stopped_at: int | None
    nsfw: list[bool] | None


def get_model(name: str):
    """The loaded model from the registry (``ModelUnavailable`` with how-to-get if missing)."""
    from playground import models

    return models.get(name)


def model_status(name: str) -> str:
    """Where the model would load from and whether its weights are on this machine (loads nothing)."""
    from playground.models import REGISTRY

    name = check_choice("model", name, MODEL_NAMES)
    available = REGISTRY.availability(name)  # reads folders only, shows no server path
    if available.present:
        note = " Its safety checker stays on." if name == SD15 else ""
        return f"Model found: {available.where}. It loads on first use.{note}"
    return available.note()


def run(params: GuidanceParams, scales: list[float], same_noise: bool, record_steps=(),
        on_step=None, should_stop=None) -> Generation:
    """Sample one image per entry of ``scales`` (validated params; see ``sampler.sample``)."""
    from demos.guidance import sampler

    model = get_model(params.model)
    request = sampler.Request(params.prompt, params.negative_prompt, params.mode, list(scales), params.steps,
                              params.scheduler, params.seed, same_noise, tuple(record_steps),
                              class_mask(params.prompt))
    start = time.perf_counter()
    result = sampler.sample(model, request, on_step, should_stop)
    timings = {**result.timings, "seconds_per_step": round(result.timings["denoise_s"] / params.steps, 4),
               "wall_s": round(time.perf_counter() - start, 4)}
    settings_used = {**asdict(params), "scales": list(scales), "image_size": list(result.images.shape[1:3]),
                     "stopped_at_step": result.stopped_at}
    return Generation(result.images, list(scales), settings_used, timings, result.records,
                      result.stopped_at, result.nsfw)


def generate(params: GuidanceParams, record_steps=(), on_step=None, should_stop=None) -> Generation:
    """``n_images`` images for one prompt and scale, seeds fixed by ``params.seed``."""
    params = validate(params)
    record_steps = [check_int("step to show", s, 1, params.steps) for s in record_steps]
    return run(params, [params.guidance_scale] * params.n_images, False, record_steps, on_step, should_stop)


def sweep(params: GuidanceParams, scales=SWEEP_SCALES, on_step=None, should_stop=None) -> Generation:
    """The same seed (the first image's noise) at every scale of ``scales``, as ONE batched call."""
    params = validate(params)
    scales = [check_float("sweep scale", s, 0.0, MAX_SCALE) for s in scales]
    if not 1 <= len(scales) <= MAX_IMAGES:
        raise ValueError(f"a sweep takes 1..{MAX_IMAGES} scales, got {len(scales)}")
    return run(params, scales, True, (), on_step, should_stop)


def default_view_steps(steps: int) -> list[int]:
    """Four steps spread over the run: early, two middle, last (1-based)."""
    return sorted({1, max(1, round(steps * 0.3)), max(1, round(steps * 0.6)), steps})


def api_guidance(prompt: str, mode: str, guidance_scale: float, n_images: int, steps: int,
                 seed: int, on_step=None, should_stop=None) -> tuple[list[np.ndarray], dict]:
    """The ``guidance`` endpoint: images of the embedded model (DDIM) and the settings and timings."""
    params = GuidanceParams(prompt=prompt, mode=mode, guidance_scale=guidance_scale, n_images=n_images,
                            steps=steps, seed=seed)
    result = generate(params, (), on_step, should_stop)
    return list(result.images), {"settings": result.settings, "timings": result.timings}


# ---------------------------------------------------------------------------------------------
# The measured adherence / diversity curve (no model needed to show it)


def load_curve(path: Path | None = None) -> dict | None:
    """The precomputed curve (see ``benchmarks/guidance.py --write-curve``), or None if absent."""
    path = path or settings.ASSETS_DIR / CURVE_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def latent_to_rgb(latent: np.ndarray, limit: float = 3.0) -> np.ndarray:
    """A latent/noise map (C, h, w) -> uint8 RGB (h, w, 3) of its first 3 channels, [-limit, limit] -> [0, 255]."""
    channels = latent[:3] if latent.shape[0] >= 3 else np.repeat(latent[:1], 3, axis=0)
    return np.clip((channels.transpose(1, 2, 0) / limit + 1) * 127.5, 0, 255).astype(np.uint8)


def magnitude(latent: np.ndarray) -> np.ndarray:
    """Per-pixel norm over channels ||x||_2 of a map (C, h, w) -> (h, w)."""
    return np.sqrt((latent.astype(np.float64) ** 2).sum(axis=0))
