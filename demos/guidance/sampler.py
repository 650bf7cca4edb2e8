"""The guided sampler: torch code behind ``compute.py`` (imported lazily, never by ``ui.py``).

One denoising loop serves the three modes, the sweep and the step view. At each step, with
z_t the (variance-preserving) noisy latent and abar_t the noise schedule,

    eps_hat = eps_u + s * d

* classifier-free (Ho & Salimans 2022): eps_u = eps_theta(z_t, c_neg), d = eps_theta(z_t, c) - eps_u;
* classifier (Dhariwal & Nichol 2021): eps_u = eps_theta(z_t, {}),
  d = -sqrt(1 - abar_t) * grad_z log p_phi(y | z_t, t);
* none: eps_hat = eps_theta(z_t, c) (d = 0, s ignored).

s is a tensor (B,), one scale per image, so a sweep over scales is a single batched call.
Everything per call (scheduler, RNG) is created here per request; the loaded model is read-only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from diffusers import StableDiffusionPipeline

from demos.common import shapes_ldm
from demos.common.ldm_pipeline import encode_prompts, make_scheduler
from demos.guidance import cross_attention
from playground import settings
from playground.models import ModelUnavailable


@dataclass
class GuidanceModel:
    """A Stable-Diffusion-style pipeline plus, for the embedded model, p_phi(y | z_t, t)."""

    pipe: StableDiffusionPipeline
    classifier: torch.nn.Module | None
    name: str

    @property
    def components(self) -> dict:  # for the registry's size report
        return {**self.pipe.components, "classifier": self.classifier}


def load_embedded(source, device, dtype) -> GuidanceModel:
    """The Shapes World LDM from ``assets/shapes_ldm`` (no safety checker: a closed world of shapes)."""
    pipe = StableDiffusionPipeline.from_pretrained(source.location, dtype=dtype, safety_checker=None,
                                                   feature_extractor=None, requires_safety_checker=False,
                                                   **source.pretrained_kwargs())
    folder = Path(source.location) / "classifier"
    classifier = shapes_ldm.NoisyLatentClassifier.from_pretrained(folder, **source.pretrained_kwargs())
    return _ready(GuidanceModel(pipe, classifier.to(device), "shapes-ldm"), device)  # classifier stays fp32


def load_sd15(source, device, dtype) -> GuidanceModel:
    """Stable Diffusion 1.5 (hub id or local folder) with its safety checker kept on: a checkpoint
    without one is refused (``settings.safety_checker_required``)."""
    pipe = StableDiffusionPipeline.from_pretrained(source.location, dtype=dtype, **source.pretrained_kwargs())
    if pipe.safety_checker is None and settings.safety_checker_required():
        raise ModelUnavailable("sd15", source.location, "Use a checkpoint saved with its safety_checker and "
                               "feature_extractor (the Hugging Face one has them); on a private server only, "
                               "PLAYGROUND_SD_SAFETY_CHECKER=off allows one without.",
                               "it has no safety checker, which a shared app needs")
    return _ready(GuidanceModel(pipe, None, "sd15"), device)


def _ready(model: GuidanceModel, device) -> GuidanceModel:
    """Move to ``device``, eval mode, no parameter gradients (the model is shared read-only)."""
    model.pipe.to(device)
    model.pipe.set_progress_bar_config(disable=True)
    cross_attention.install(model.pipe.unet)  # records only inside cross_attention.recording()
    for module in model.components.values():
        if isinstance(module, torch.nn.Module):
            module.eval().requires_grad_(False)
    return model


# ---------------------------------------------------------------------------------------------
# One call


@dataclass
class Request:
    """What to sample: per-image prompt embeddings, scales and class mask, all resolved."""

    prompt: str
    negative_prompt: str
    mode: str  # cfg | classifier | none
    scales: list[float]  # one per image (B,)
    steps: int
    scheduler: str
    seed: int
    same_noise: bool = False  # True for a sweep: every image starts from the seed's first noise
    record_steps: tuple[int, ...] = ()  # 1-based steps whose x0_hat and eps are recorded
    class_mask: list[bool] | None = None  # (18,) classes allowed by the prompt, for classifier mode


@dataclass
class Result:
    images: np.ndarray  # (B, H, W, 3) uint8
    records: list[dict] = field(default_factory=list)  # step view, image 0
    timings: dict = field(default_factory=dict)
    stopped_at: int | None = None  # step at which the user stopped, else None
    nsfw: list[bool] | None = None


def initial_noise(pipe, request: Request, batch: int) -> torch.Tensor:
    """z_T ~ N(0, I) of shape (B, 4, h, w) from a per-request generator (same seed, same noise)."""
    channels, size = pipe.unet.config.in_channels, pipe.unet.config.sample_size
    generator = torch.Generator("cpu").manual_seed(request.seed)
    count = 1 if request.same_noise else batch
    noise = torch.randn((count, channels, size, size), generator=generator)  # (B or 1, C, h, w)
    return noise.expand(batch, -1, -1, -1).clone() if request.same_noise else noise


def classifier_direction(classifier, z_t: torch.Tensor, t, class_mask: torch.Tensor,
                         abar_t: torch.Tensor) -> torch.Tensor:
    """d = -sqrt(1 - abar_t) * grad_z log p_phi(y | z_t, t), y = any class allowed by the prompt.

    log p(y | z_t) = logsumexp over allowed classes of log_softmax(logits); z_t (B, 4, h, w).
    """
    with torch.enable_grad():
        z = z_t.detach().float().requires_grad_(True)
        timesteps = torch.full((len(z),), float(t), device=z.device)
        log_probs = torch.log_softmax(classifier(z, timesteps).float(), dim=1)  # (B, 18)
        log_p_y = torch.logsumexp(log_probs.masked_fill(~class_mask, -torch.inf), dim=1)  # (B,)
        (grad,) = torch.autograd.grad(log_p_y.sum(), z)  # samples are independent: per-sample grads
    return (-(1 - abar_t).sqrt() * grad).to(z_t.dtype)


def guided_eps(model: GuidanceModel, z_t, t, embeddings, request: Request, scales, abar_t):
    """eps_hat = eps_u + s * d for the request's mode; returns (eps_hat, eps_u, d), each (B, 4, h, w)."""
    unet = model.pipe.unet
    if request.mode == "none":
        eps_c = unet(z_t, t, encoder_hidden_states=embeddings["cond"]).sample
        return eps_c, eps_c, torch.zeros_like(eps_c)
    if request.mode == "cfg":
        both = unet(torch.cat([z_t, z_t]), t, encoder_hidden_states=torch.cat([embeddings["uncond"],
                                                                             embeddings["cond"]])).sample
        eps_u, eps_c = both.chunk(2)
        direction = eps_c - eps_u
    else:
        eps_u = unet(z_t, t, encoder_hidden_states=embeddings["uncond"]).sample
        mask = embeddings["class_mask"]
        direction = (classifier_direction(model.classifier, z_t, t, mask, abar_t) if mask is not None
                     else torch.zeros_like(eps_u))
    return eps_u + scales[:, None, None, None] * direction, eps_u, direction


def prepare_embeddings(model: GuidanceModel, request: Request, batch: int) -> dict:
    """Cond/uncond embeddings repeated to (B, L, D) and the class mask (B, 18) or None."""
    pipe = model.pipe
    uncond_text = request.negative_prompt if request.mode == "cfg" else ""
    cond, uncond = encode_prompts(pipe, [request.prompt, uncond_text]).chunk(2)  # (1, L, D) each
    mask = None
    if request.mode == "classifier" and request.class_mask is not None:
        mask = torch.tensor(request.class_mask, device=pipe.device)[None].expand(batch, -1)  # (B, 18)
    return {"cond": cond.expand(batch, -1, -1), "uncond": uncond.expand(batch, -1, -1), "class_mask": mask}


@torch.no_grad()
def decode(model: GuidanceModel, latents: torch.Tensor) -> tuple[np.ndarray, list[bool] | None]:
    """Latents (B, 4, h, w) -> uint8 images (B, H, W, 3), through the safety checker if any."""
    pipe = model.pipe
    image = pipe.vae.decode(latents / pipe.vae.config.scaling_factor).sample  # (B, 3, H, W) in [-1, 1]
    image, nsfw = pipe.run_safety_checker(image, pipe.device, latents.dtype)
    denormalize = [True] * len(image) if nsfw is None else [not flag for flag in nsfw]
    array = pipe.image_processor.postprocess(image, output_type="np", do_denormalize=denormalize)
    return (np.clip(array, 0, 1) * 255).round().astype(np.uint8), (None if nsfw is None else list(nsfw))


def predicted_x0(z_t: torch.Tensor, eps: torch.Tensor, abar_t: torch.Tensor) -> torch.Tensor:
    """x0_hat = (z_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)   (Tweedie / DDPM eq. 15)."""
    return (z_t - (1 - abar_t).sqrt() * eps) / abar_t.sqrt()


def record_step(model, step, t, z_t, eps_hat, eps_u, direction, abar_t) -> dict:
    """The step view of image 0: decoded x0_hat and the noise predictions (C, h, w) as arrays."""
    x0_image, _ = decode(model, predicted_x0(z_t[:1], eps_hat[:1], abar_t))
    as_np = lambda x: x[0].float().cpu().numpy()  # noqa: E731
    return {"step": step, "t": int(t), "x0_image": x0_image[0], "z_t": as_np(z_t), "eps_hat": as_np(eps_hat),
            "eps_uncond": as_np(eps_u), "eps_cond": as_np(eps_u + direction), "direction": as_np(direction)}


@torch.no_grad()
def sample(model: GuidanceModel, request: Request, on_step: Callable[[int, int], None] | None = None,
           should_stop: Callable[[], bool] | None = None) -> Result:
    """Run the guided reverse process; stops within one step when ``should_stop()`` turns true."""
    pipe, start = model.pipe, time.perf_counter()
    batch = len(request.scales)
    # 1. conditioning, noise, scheduler, scales: all per request
    embeddings = prepare_embeddings(model, request, batch)
    scheduler = make_scheduler(pipe, request.scheduler, request.steps)
    latents = initial_noise(pipe, request, batch).to(pipe.device, pipe.unet.dtype) * scheduler.init_noise_sigma
    scales = torch.tensor(request.scales, device=pipe.device, dtype=latents.dtype)  # (B,)
    alphas_cumprod = scheduler.alphas_cumprod.to(pipe.device)
    records, stopped_at, encoded = [], None, time.perf_counter()
    # 2. denoise
    for i, t in enumerate(scheduler.timesteps):
        if should_stop is not None and should_stop():
            stopped_at = i
            break
        z_t = scheduler.scale_model_input(latents, t)  # the VP latent for every scheduler
        abar_t = alphas_cumprod[int(round(float(t)))].to(latents.dtype)
        eps_hat, eps_u, direction = guided_eps(model, z_t, t, embeddings, request, scales, abar_t)
        if i + 1 in request.record_steps:
            records.append(record_step(model, i + 1, t, z_t, eps_hat, eps_u, direction, abar_t))
        latents = scheduler.step(eps_hat, t, latents).prev_sample
        if on_step is not None:
            on_step(i + 1, request.steps)
    denoised = time.perf_counter()
    # 3. decode (a stopped run shows its current x0 prediction)
    if stopped_at is not None and stopped_at > 0:
        latents = predicted_x0(z_t, eps_hat, abar_t)
    images, nsfw = decode(model, latents)
    end = time.perf_counter()
    timings = {"encode_s": encoded - start, "denoise_s": denoised - encoded, "decode_s": end - denoised,
               "total_s": end - start}
    return Result(images, records, {k: round(v, 4) for k, v in timings.items()}, stopped_at, nsfw)
