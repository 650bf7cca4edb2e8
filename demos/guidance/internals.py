"""Inside the latent diffusion model: the autoencoder, the latents, and cross-attention per word.

Stable Diffusion (Rombach et al. 2022) is a latent diffusion model:

* an autoencoder maps an image x (H, W, 3) to a latent z = E(x) * scaling_factor of shape
  (C, H/f, W/f) (the embedded model: 64 x 64 x 3 -> 8 x 8 x 4, 48 times fewer numbers; SD 1.5:
  512 x 512 x 3 -> 64 x 64 x 4) and a decoder D maps it back; the round trip's quality is its
  PSNR = 10 log10(1 / MSE) with pixels in [0, 1];
* the UNet eps_theta(z_t, t, c) denoises in latent space, and the prompt c enters only through
  cross-attention (``cross_attention.py``): every latent position attends over the tokens;
* DAAM's per-word heat map D_j = sum over steps, layers, heads of the upsampled attention
  A_{:, j} says where word j acts on the image.

This module validates and returns plain data; it imports torch only inside the functions that
run the model (``ui.py`` imports it without torch).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from demos.guidance import compute
from playground.validate import check_choice, check_float, check_int

MAX_MAP_SIZE = 64  # heat maps at the image's size, at most this many pixels a side (SD 1.5: 64 x 64 over 512)
SPECIAL_NAMES = {"<|startoftext|>": "<start>", "<|endoftext|>": "<end>", "<pad>": "<pad>"}


@dataclass(frozen=True)
class InternalsParams:
    """One look inside a generation (classifier-free guidance, DDIM, one image)."""

    prompt: str = "a red circle"
    steps: int = 25
    seed: int = 0
    guidance_scale: float = 5.0
    model: str = compute.EMBEDDED


def validate(params: InternalsParams) -> InternalsParams:
    """Checked params; ``ValueError`` naming the field otherwise."""
    model = check_choice("model", params.model, compute.MODEL_NAMES)
    prompt = compute.check_prompt("prompt", params.prompt, model)
    if not compute.prompt_words(prompt):
        raise ValueError("prompt: type at least one word (e.g. 'a red circle'): the maps are per word")
    return replace(params, prompt=prompt, model=model, steps=check_int("steps", params.steps, 1, compute.MAX_STEPS),
                   seed=check_int("seed", params.seed, 0, compute.MAX_SEED),
                   guidance_scale=check_float("guidance scale", params.guidance_scale, 0.0, compute.MAX_SCALE))


@dataclass
class RoundTrip:
    """x -> z = E(x) -> D(z) for one image."""

    image: np.ndarray  # (H, W, 3) uint8, the input as the autoencoder sees it
    latent: np.ndarray  # (C, h, w) float32, z = E(x) * scaling_factor (posterior mode)
    reconstruction: np.ndarray  # (H, W, 3) uint8
    error: np.ndarray  # (H, W) float32, mean over channels of |x - D(z)| in [0, 1]
    psnr_db: float
    compression: float  # H * W * 3 / (C * h * w)


@dataclass
class Internals:
    """A generation and what happened inside it, per step (image 0, conditional branch)."""

    image: np.ndarray  # (H, W, 3) uint8
    tokens: list[str]  # every token position the UNet attends over, e.g. <start> a red circle <end> <pad> x3
    words: list[str]  # the prompt's words
    word_tokens: dict[str, list[int]]  # word -> its token positions
    step_maps: np.ndarray  # (T, L, S, S) float32: per step, sum over heads and layers of upsampled A_{:, j}
    latents: np.ndarray | None  # (T, C, h, w) z_t at each step (None when not asked for)
    latent_images: np.ndarray | None  # (T, H, W, 3) D(z_t / scaling) at each step
    x0_images: np.ndarray | None  # (T, H, W, 3) D(x0_hat_t) at each step
    round_trip: RoundTrip
    settings: dict
    timings: dict
    raw: list[dict] = field(default_factory=list)  # per attn2 call {layer, step, probs (heads, N, L)} if kept

    def heatmaps(self, upto: int | None = None) -> dict[str, np.ndarray]:
        """DAAM heat map (S, S) per word: the sum over steps 1..upto (all by default) of its tokens' maps."""
        summed = self.step_maps[: upto or len(self.step_maps)].sum(axis=0)  # (L, S, S)
        return {word: summed[positions].sum(axis=0) for word, positions in self.word_tokens.items()}

    def attention_share(self) -> list[float]:
        """Share of all attention probability each token position received, over the whole run."""
        mass = self.step_maps.sum(axis=(0, 2, 3)).astype(np.float64)  # (L,)
        return (mass / mass.sum()).tolist()


# ---------------------------------------------------------------------------------------------
# Running the model


def token_labels(tokenizer, prompt: str) -> tuple[list[str], dict[str, list[int]]]:
    """The padded token sequence as readable labels, and each prompt word's token positions."""
    ids = tokenizer(prompt, padding="max_length", max_length=tokenizer.model_max_length, truncation=True).input_ids
    labels = [SPECIAL_NAMES.get(t, t.replace("</w>", "")) for t in tokenizer.convert_ids_to_tokens(ids)]
    if tokenizer.pad_token == tokenizer.eos_token:  # SD 1.5 pads with <end>: name the copies <pad>
        first_end = labels.index("<end>") if "<end>" in labels else len(labels)
        labels = labels[: first_end + 1] + ["<pad>"] * (len(labels) - first_end - 1)
    positions, cursor = {}, 1  # after <start>
    for word in compute.prompt_words(prompt):
        n_pieces = len(tokenizer(word).input_ids) - 2
        span = [p for p in range(cursor, cursor + n_pieces) if p < len(labels) and labels[p] not in ("<end>", "<pad>")]
        positions.setdefault(word, []).extend(span)
        cursor += n_pieces
    return labels, {word: span for word, span in positions.items() if span}


def internals_request(params: InternalsParams, with_steps: bool):
    """The sampler's request: classifier-free guidance, DDIM, one image; every step recorded when
    ``with_steps`` (the image's conditional row is 1 in the UNet's batch [uncond, cond])."""
    from demos.guidance import sampler

    record = tuple(range(1, params.steps + 1)) if with_steps else ()
    return sampler.Request(params.prompt, "", "cfg", [params.guidance_scale], params.steps, "ddim", params.seed,
                           False, record, None)


def attention_recorder(pipe, steps: int, n_tokens: int, keep_raw: bool):
    """A ``cross_attention.Recorder`` of the conditional row's maps (T, L, S, S), S the image's size
    (at most ``MAX_MAP_SIZE``) over the (h, w) latent grid."""
    from demos.guidance import cross_attention

    latent_size = pipe.unet.config.sample_size
    image_size = latent_size * 2 ** (len(pipe.vae.config.block_out_channels) - 1)
    return cross_attention.Recorder(steps, n_tokens, min(image_size, MAX_MAP_SIZE), (latent_size, latent_size),
                                    row=1, keep_raw=keep_raw)


def step_images(model, records: list[dict]) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """Every recorded step's latent z_t (T, C, h, w), its decoding D(z_t) and D(x0_hat_t) (T, H, W, 3)."""
    if not records:
        return None, None, None
    latents = np.stack([r["z_t"] for r in records])  # (T, C, h, w)
    return latents, decode_latents(model, latents), np.stack([r["x0_image"] for r in records])


def generate(params: InternalsParams, with_steps: bool = True, keep_raw: bool = False, on_step=None,
             should_stop=None) -> Internals:
    """Generate one image with its cross-attention recorded (and, ``with_steps``, every step's
    latent and its decodings), then the autoencoder round trip of the image."""
    from demos.guidance import cross_attention, sampler

    params = validate(params)
    model = compute.get_model(params.model)
    pipe, start = model.pipe, time.perf_counter()
    tokens, word_tokens = token_labels(pipe.tokenizer, params.prompt)
    recorder = attention_recorder(pipe, params.steps, len(tokens), keep_raw)

    def step_done(index: int, total: int) -> None:  # the next UNet call is step ``index`` (0-based)
        recorder.step = min(index, total - 1)
        if on_step is not None:
            on_step(index, total)

    with cross_attention.recording(recorder):  # the recorder is active in this context only
        result = sampler.sample(model, internals_request(params, with_steps), step_done, should_stop)
    sampled = time.perf_counter()
    done_steps = result.stopped_at if result.stopped_at is not None else params.steps
    latents, latent_images, x0_images = step_images(model, result.records if with_steps else [])
    trip = round_trip(model, result.images[0])
    end = time.perf_counter()
    settings = {**asdict(params), "mode": "cfg", "scheduler": "ddim", "tokens": tokens, "steps_done": done_steps,
                "image_size": list(result.images.shape[1:3]), "map_size": recorder.size,
                "cross_attention_layers": recorder.calls // max(done_steps, 1)}
    timings = {"sample_s": round(sampled - start, 4), "decode_and_round_trip_s": round(end - sampled, 4),
               "total_s": round(end - start, 4)}
    return Internals(result.images[0], tokens, compute.prompt_words(params.prompt), word_tokens,
                     recorder.maps[:done_steps].numpy(), latents, latent_images, x0_images, trip, settings,
                     timings, recorder.raw)


def decode_latents(model, latents: np.ndarray) -> np.ndarray:
    """Latents (T, C, h, w) -> D(z / scaling_factor) as uint8 images (T, H, W, 3), one batched call."""
    import torch

    from demos.guidance import sampler

    pipe = model.pipe
    z = torch.from_numpy(latents).to(pipe.device, pipe.vae.dtype)
    return np.concatenate([sampler.decode(model, z[i:i + 16])[0] for i in range(0, len(z), 16)])


# ---------------------------------------------------------------------------------------------
# The autoencoder round trip


def psnr_db(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR = 10 log10(1 / MSE) of two uint8 images, pixels scaled to [0, 1] (inf if identical)."""
    mse = float(np.mean((a.astype(np.float64) / 255 - b.astype(np.float64) / 255) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1 / mse)


def square_resize(image: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop to a square and resize (area-averaged) to ``size`` x ``size``: what the VAE takes."""
    from PIL import Image

    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = Image.fromarray(image[top:top + side, left:left + side])
    if side == size:
        return np.asarray(square)
    resample = Image.Resampling.BOX if side > size else Image.Resampling.BICUBIC
    return np.asarray(square.resize((size, size), resample))


def round_trip(model, image: np.ndarray) -> RoundTrip:
    """E then D on an RGB uint8 image (H, W, 3) already at the autoencoder's size."""
    import torch

    pipe = model.pipe
    vae, scaling = pipe.vae, pipe.vae.config.scaling_factor
    x = torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].to(pipe.device, vae.dtype) / 127.5 - 1  # (1, 3, H, W)
    with torch.no_grad():
        z = vae.encode(x).latent_dist.mode() * scaling  # (1, C, h, w)
        decoded = vae.decode(z / scaling).sample.clamp(-1, 1)  # (1, 3, H, W)
    reconstruction = ((decoded[0].permute(1, 2, 0).float().cpu().numpy() + 1) * 127.5).round().astype(np.uint8)
    error = np.abs(image.astype(np.float32) - reconstruction.astype(np.float32)).mean(axis=2) / 255
    latent = z[0].float().cpu().numpy()
    return RoundTrip(image, latent, reconstruction, error, psnr_db(image, reconstruction), image.size / latent.size)


def autoencode(image: Any, model_name: str = compute.EMBEDDED) -> RoundTrip:
    """The round trip of an uploaded file or array: checked (size, corrupt files), made square and
    resized to the autoencoder's input size."""
    from demos.common.images import image_array  # the project's image checks: size limits, corrupt files

    model_name = check_choice("model", model_name, compute.MODEL_NAMES)
    array = image_array(image)
    model = compute.get_model(model_name)
    size = model.pipe.vae.config.sample_size
    return round_trip(model, square_resize(array, size))


def shapes_world_image(seed: int) -> np.ndarray:
    """A fresh Shapes World generation image (64, 64, 3) for ``seed`` (never one the model trained on: its
    training drew from other seeds' streams)."""
    from demos.common import shapes_world

    seed = check_int("image seed", seed, 0, compute.MAX_SEED)
    return shapes_world.generation_sample(np.random.default_rng([seed, 20]))[0]


# ---------------------------------------------------------------------------------------------
# The API


def api_sd_internals(prompt: str, steps: int, seed: int, on_step=None, should_stop=None) -> tuple[np.ndarray, dict]:
    """The ``sd_internals`` endpoint: the image and {tokens, heatmaps (per word, at the image's
    size), latent_shape, psnr_db} for the embedded model, CFG s = 5, DDIM."""
    result = generate(InternalsParams(prompt=prompt, steps=steps, seed=seed), with_steps=False, on_step=on_step,
                      should_stop=should_stop)
    heatmaps = {word: np.round(m, 5).tolist() for word, m in result.heatmaps().items()}
    return result.image, {"tokens": result.tokens, "heatmaps": heatmaps,
                          "latent_shape": list(result.round_trip.latent.shape),
                          "psnr_db": round(result.round_trip.psnr_db, 3)}
