"""The torch side of the ControlNet tab: build, load and run ``StableDiffusionControlNetPipeline``.

Two models go through the same code (registered in ``playground/models.py``):

* ``shapes-controlnet``: ``ControlNetModel.from_unet(unet)`` of the Guidance tab's embedded
  Shapes World UNet (``shapes-ldm``), trained by ``demos/controlnet/train.py``; 64 x 64 images;
* ``sd15-scribble``: ``lllyasviel/control_v11p_sd15_scribble`` on the registry's Stable Diffusion
  1.5 (``sd15``, safety checker kept on); 512 x 512.

Residual magnitudes are recorded by a forward hook on the ControlNet that writes only into the
list held by the *current request's* context variable, so concurrent requests never see each
other's numbers and the shared model is never changed after loading.

Import this module lazily (it imports torch and diffusers).
"""

from __future__ import annotations

import contextvars
import time
from typing import Callable

import numpy as np
import torch
from diffusers import ControlNetModel, StableDiffusionControlNetPipeline

from demos.common.ldm_pipeline import encode_prompts, make_scheduler

CONDITIONING_CHANNELS = (16, 32, 64, 128)  # E: 64x64 condition -> 8x8, three stride-2 convs

# The residual RMS per step of the request running in this context (None: not recording).
_RESIDUALS: contextvars.ContextVar[list | None] = contextvars.ContextVar("controlnet_residuals", default=None)


def build_controlnet(unet) -> ControlNetModel:
    """``ControlNetModel.from_unet``: the UNet's encoder + middle block copied, zero convs at 0."""
    return ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=CONDITIONING_CHANNELS)


def residual_names(controlnet: ControlNetModel, latent_size: int) -> list[str]:
    """One name per ControlNet output, in the order the UNet adds them (skips, then middle)."""
    config = controlnet.config
    n_blocks = len(config.block_out_channels)
    names = [f"conv_in {latent_size}x{latent_size}"]
    for i in range(n_blocks):
        side = latent_size // 2**i
        names += [f"down{i}.resnet{j} {side}x{side}" for j in range(config.layers_per_block)]
        if i < n_blocks - 1:
            names.append(f"down{i}.downsample {side // 2}x{side // 2}")
    side = latent_size // 2 ** (n_blocks - 1)
    return names + [f"mid {side}x{side}"]


def record_residuals(module, args, output) -> None:
    """Forward hook: RMS of each scaled residual s * Z_k(...) into the request's list, if any."""
    sink = _RESIDUALS.get()
    if sink is None:
        return
    down, mid = output if isinstance(output, tuple) else (output.down_block_res_samples, output.mid_block_res_sample)
    sink.append([float(r.detach().float().pow(2).mean().sqrt()) for r in (*down, mid)])


def controlnet_pipeline(base, controlnet: ControlNetModel) -> StableDiffusionControlNetPipeline:
    """A ControlNet pipeline sharing ``base``'s modules (and its safety checker, if it has one).

    ``base`` is a ``StableDiffusionPipeline`` or the Guidance tab's model holding one as ``.pipe``.
    """
    base = getattr(base, "pipe", base)
    controlnet.eval().requires_grad_(False)
    controlnet.register_forward_hook(record_residuals)
    parts = {k: base.components.get(k) for k in ("vae", "text_encoder", "tokenizer", "unet", "scheduler",
                                                 "safety_checker", "feature_extractor")}
    pipe = StableDiffusionControlNetPipeline(**parts, controlnet=controlnet,
                                             requires_safety_checker=parts["safety_checker"] is not None)
    pipe.set_progress_bar_config(disable=True)
    return pipe


# ---------------------------------------------------------------------------------------------
# Loaders (called by playground.models as ``function(source, device, dtype)``)


def load_embedded(source, device: str, dtype) -> StableDiffusionControlNetPipeline:
    """The embedded ControlNet from ``source`` on top of the registry's ``shapes-ldm`` pipeline."""
    from playground import models

    base = models.get("shapes-ldm")
    controlnet = ControlNetModel.from_pretrained(source.location, **source.pretrained_kwargs())
    return controlnet_pipeline(base, controlnet.to(device, dtype))


def load_sd15_scribble(source, device: str, dtype) -> StableDiffusionControlNetPipeline:
    """The scribble ControlNet from ``source`` on the registry's Stable Diffusion 1.5 (``sd15``)."""
    from playground import models

    controlnet = ControlNetModel.from_pretrained(source.location, torch_dtype=dtype, **source.pretrained_kwargs())
    return controlnet_pipeline(models.get("sd15"), controlnet.to(device, dtype))


# ---------------------------------------------------------------------------------------------
# One request


def request_pipeline(pipe: StableDiffusionControlNetPipeline, steps: int) -> StableDiffusionControlNetPipeline:
    """A per-request pipeline: the shared modules with a fresh DDIM scheduler (it keeps state)."""
    request = StableDiffusionControlNetPipeline(**{**pipe.components, "scheduler": make_scheduler(pipe, "ddim", steps)},
                                                requires_safety_checker=pipe.safety_checker is not None)
    request.set_progress_bar_config(disable=True)
    return request


def condition_pil(condition: np.ndarray):
    """Condition (S, S) in [0, 1] -> the RGB PIL image the pipeline turns into (1, 3, S, S)."""
    from PIL import Image

    return Image.fromarray((condition * 255).round().astype(np.uint8)).convert("RGB")


def step_callback(request, steps: int, on_step: Callable[[int, int], None] | None,
                  should_stop: Callable[[], bool] | None) -> Callable:
    """diffusers' ``callback_on_step_end``: ``on_step(i + 1, N)`` after step i, and once
    ``should_stop()`` is true the per-request pipeline's interrupt flag, so it skips the steps left."""
    def callback(_pipe, i, _t, kwargs):
        if on_step is not None:
            on_step(i + 1, steps)
        if should_stop is not None and should_stop():
            request._interrupt = True  # the per-request pipeline skips the steps left
        return kwargs

    return callback


def run_pipeline(request, condition: np.ndarray, params, generator, callback):
    """One call of the per-request pipeline: N DDIM steps of eps_{} + w (eps_c - eps_{}) with the
    ControlNet's residuals s * Z_k(...) added to the frozen UNet while t is in [start, end]."""
    with torch.inference_mode():
        # Prompts encoded here, so the pipeline never calls the shared tokenizer concurrently.
        prompt_embeds = encode_prompts(request, [params.prompt])
        negative_embeds = encode_prompts(request, [""]) if params.guidance_scale > 1 else None
        return request(prompt_embeds=prompt_embeds, negative_prompt_embeds=negative_embeds,
                       image=condition_pil(condition), num_inference_steps=params.steps,
                       guidance_scale=params.guidance_scale, generator=generator, output_type="np",
                       controlnet_conditioning_scale=params.conditioning_scale,
                       control_guidance_start=params.control_start, control_guidance_end=params.control_end,
                       callback_on_step_end=callback)


def checked_image(output) -> np.ndarray:
    """The pipeline's output (1, S, S, 3) in [0, 1] -> uint8 (S, S, 3); ``ValueError`` if the safety
    checker flagged it or it is not finite."""
    if any(output.nsfw_content_detected or []):
        raise ValueError("the safety checker flagged this image, so it is not shown; try another prompt or seed")
    images = output.images  # (1, S, S, 3) in [0, 1]
    if not np.isfinite(images).all():
        raise ValueError("the model produced non-finite values for these settings; try other settings")
    return (np.clip(images[0], 0, 1) * 255).round().astype(np.uint8)


def denoise(pipe, condition: np.ndarray, params, on_step: Callable[[int, int], None] | None = None,
            should_stop: Callable[[], bool] | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """Run the pipeline: image (S, S, 3) uint8, residual RMS (N, K), seconds.

    ``params`` is a validated ``ControlParams``; ``on_step(i, N)`` is called after each step;
    once ``should_stop()`` is true the remaining steps are skipped (diffusers' interrupt flag).
    """
    request = request_pipeline(pipe, params.steps)
    generator = torch.Generator("cpu").manual_seed(params.seed)  # z_T as in the Guidance tab
    callback = step_callback(request, params.steps, on_step, should_stop)
    sink: list = []
    token = _RESIDUALS.set(sink)
    start = time.perf_counter()
    try:
        output = run_pipeline(request, condition, params, generator, callback)
    finally:
        _RESIDUALS.reset(token)
    seconds = time.perf_counter() - start
    return checked_image(output), np.array(sink, dtype=np.float64).reshape(len(sink), -1), seconds
