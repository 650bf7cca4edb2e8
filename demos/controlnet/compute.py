"""ControlNet (Zhang, Rao & Agrawala 2023): steer a frozen diffusion UNet with a sketch.

A ControlNet is a trainable copy of the UNet's encoder and middle block. It reads the noisy
latent z_t, the text c and a condition image c_f (here: the user's outline), and its outputs
reach the frozen UNet through zero-initialised 1x1 convolutions Z:

    y_k = F_k(x) + s * Z_k(F'_k(x + Z_0(E(c_f))))        for every skip k and the middle block

``F_k`` are the frozen UNet's skip features, ``F'_k`` the copy's, ``E`` a small conv encoder of
the condition image (64 x 64 -> 8 x 8 latent grid), ``s`` the conditioning scale. At the start of
training every Z is zero, so the model is exactly the frozen UNet and learning starts from it.

The control is applied only on the denoising steps i with start <= i / N and (i + 1) / N <= end
(diffusers' ``control_guidance_start`` / ``control_guidance_end``); classifier-free guidance
``eps = eps(z_t, {}) + w (eps(z_t, c) - eps(z_t, {}))`` works as usual on top.

**Condition convention** (both the embedded model and SD 1.5's scribble ControlNet): the user
draws dark strokes on light paper; the condition is the *ink map*, strokes = 1 on a 0 background
(white on black, the colour inversion scribble ControlNets expect), scaled to the model's size
(64 x 64 embedded, 512 x 512 for SD 1.5) with area averaging and stretched so the darkest stroke
is 1. Transparent pixels are paper; non-square sketches are padded with paper; huge ones are
downscaled first.

This module never imports gradio; torch and diffusers are imported lazily (``model.py``).
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from playground.validate import check_choice, check_float, check_int

EMBEDDED = "shapes-controlnet"
SD15_SCRIBBLE = "sd15-scribble"
CONDITION_SIZE = {EMBEDDED: 64, SD15_SCRIBBLE: 512}  # pixels the ControlNet reads
MODEL_CHOICES = tuple(CONDITION_SIZE)

MAX_STEPS, MAX_GUIDANCE, MAX_CONDITIONING, MAX_SEED = 100, 20.0, 2.0, 2**31 - 1
MAX_PIXELS = 50_000_000  # larger images are refused before they are decoded
WORK_SIZE = 512  # sketches are downscaled to at most this side before anything else
MIN_INK = 0.06  # peak ink (fraction of black) below which the canvas counts as empty
SWEEP_SCALES = (0.0, 0.5, 1.0, 1.5, 2.0)
EMPTY_MESSAGE = "draw an outline first: the sketch has no dark strokes on a light background"


@dataclass(frozen=True)
class ControlParams:
    """One generation. Symbols: s (conditioning scale), w (guidance scale), N (steps)."""

    prompt: str = "a red circle"
    conditioning_scale: float = 1.0  # s in  F(x) + s * Z(F'(x + Z(c_f)))
    control_start: float = 0.0  # first fraction of the N steps that gets the control
    control_end: float = 1.0  # last fraction of the N steps that gets the control
    guidance_scale: float = 5.0  # w in eps_{} + w (eps_c - eps_{})
    steps: int = 25  # N DDIM steps
    seed: int = 0
    model: str = EMBEDDED


def validate(params: ControlParams) -> ControlParams:
    """Every field checked (NaN, infinities, wrong types and ranges raise ``ValueError``)."""
    model = check_choice("model", params.model, MODEL_CHOICES)
    prompt = check_prompt(params.prompt, model)
    start = check_float("control start", params.control_start, 0.0, 1.0)
    end = check_float("control end", params.control_end, 0.0, 1.0)
    if end <= start:
        raise ValueError(f"control end must be larger than control start, got start {start:g}, end {end:g}")
    return ControlParams(
        prompt=prompt,
        conditioning_scale=check_float("conditioning scale", params.conditioning_scale, 0.0, MAX_CONDITIONING),
        control_start=start, control_end=end,
        guidance_scale=check_float("guidance scale", params.guidance_scale, 0.0, MAX_GUIDANCE),
        steps=check_int("steps", params.steps, 1, MAX_STEPS),
        seed=check_int("seed", params.seed, 0, MAX_SEED), model=model)


# ---------------------------------------------------------------------------------------------
# Sketch -> grey paper image -> condition image


def open_image(path: str | Path):
    """A PIL image from a file, refusing decompression bombs before decoding the pixels."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(path)  # reads the header only
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ValueError(f"the image is too large (over {MAX_PIXELS:,} pixels); upload a smaller one") from None
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f"the sketch file could not be read as an image ({type(err).__name__})") from None
    if image.width * image.height > MAX_PIXELS:
        raise ValueError(f"the image is too large ({image.width} x {image.height} pixels, "
                         f"more than {MAX_PIXELS:,}); upload a smaller one")
    image.draft("RGB", (WORK_SIZE, WORK_SIZE))  # JPEG: decode at a reduced size directly
    try:
        image.load()
    except (OSError, SyntaxError, ValueError) as err:
        raise ValueError(f"the sketch image is damaged or truncated ({type(err).__name__})") from None
    return image


def shrink(image):
    """A PIL image ready for ``np.asarray``: 1-bit -> L, palette or LA -> RGBA, and an 8-bit image
    area-averaged (BOX) to at most ``WORK_SIZE`` a side before any float copy is made, so a large
    upload costs little more memory than its decoded pixels. Pillow premultiplies alpha while
    resizing, so compositing on paper afterwards gives the grey of compositing first.
    """
    from PIL import Image

    if image.mode == "1":
        image = image.convert("L")
    elif image.mode in ("P", "PA", "LA", "La"):
        image = image.convert("RGBA")
    if image.mode in ("L", "RGB", "RGBA") and max(image.size) > WORK_SIZE:
        scale = WORK_SIZE / max(image.size)
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.BOX)
    return image


def as_array(sketch: Any) -> np.ndarray:
    """A Sketchpad dict, PIL image, file path or array -> a numeric array (H, W[, C])."""
    if isinstance(sketch, dict):  # gr.Sketchpad / gr.ImageEditor value
        sketch = sketch.get("composite") if sketch.get("composite") is not None else sketch.get("background")
    if sketch is None:
        raise ValueError(EMPTY_MESSAGE)
    if isinstance(sketch, (str, Path)):
        sketch = open_image(sketch)
    if hasattr(sketch, "mode") and hasattr(sketch, "size"):  # a PIL image
        sketch = np.asarray(shrink(sketch))
    array = np.asarray(sketch)
    if array.dtype == object or not np.issubdtype(array.dtype, np.number):
        raise ValueError(f"the sketch must be an image (numbers), got an array of {array.dtype}")
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 2, 3, 4)) or min(array.shape[:2]) < 1:
        raise ValueError(f"the sketch must be an image of shape (H, W) or (H, W, 1-4), got {array.shape}")
    return array


def paper_grey(array: np.ndarray) -> np.ndarray:
    """Any image array -> grey (H, W) float in [0, 255] with transparent pixels as white paper.

    RGBA is composited over white: ``grey = a * Y + (1 - a) * 255`` with ``Y`` the luma.
    Float arrays in [0, 1] are read as [0, 1]; NaN or infinite values are refused.
    """
    values = array.astype(np.float32)
    if array.dtype.kind == "f":
        if not np.isfinite(values).all():
            raise ValueError("the sketch contains NaN or infinite values; send an ordinary image")
        values = values * 255.0 if values.max(initial=0) <= 1.0 else values
    if array.dtype != np.uint8:
        values = np.clip(values, 0, 255)
    if values.ndim == 2:
        values = values[..., None]
    colour, alpha = (values[..., :-1], values[..., -1:] / 255) if values.shape[2] in (2, 4) else (values, 1.0)
    luma = colour[..., 0] if colour.shape[2] == 1 else colour[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return alpha[..., 0] * luma + (1 - alpha[..., 0]) * 255.0 if np.ndim(alpha) else luma


def resize_grey(grey: np.ndarray, width: int, height: int | None = None) -> np.ndarray:
    """Area-averaged (PIL ``BOX``) resize of a grey (H, W) float image to (height, width)."""
    from PIL import Image

    image = Image.fromarray(grey.astype(np.float32), mode="F")
    size = (width, width if height is None else height)
    return np.asarray(image.resize(size, Image.Resampling.BOX), dtype=np.float64)


def square_sketch(sketch: Any) -> np.ndarray:
    """The sketch as a square grey (S, S) paper image, S <= 512: padded with paper, downscaled.

    The paper level is the median grey; a dark median means light strokes on a dark ground,
    which is inverted so strokes are dark on light like a drawing.
    """
    grey = paper_grey(as_array(sketch))  # (H, W)
    paper = float(np.median(grey))
    if paper < 128:
        grey, paper = 255.0 - grey, 255.0 - paper
    height, width = grey.shape
    if max(height, width) > WORK_SIZE:  # shrink first so padding stays cheap
        scale = WORK_SIZE / max(height, width)
        grey = resize_grey(grey, max(1, round(width * scale)), max(1, round(height * scale)))
        height, width = grey.shape
    if height == width:
        return grey
    side = max(height, width)
    square = np.full((side, side), paper)
    top, left = (side - height) // 2, (side - width) // 2
    square[top:top + height, left:left + width] = grey
    return square


def condition_image(square: np.ndarray, size: int) -> np.ndarray:
    """Square grey paper image -> the condition c_f (size, size) float32: strokes 1, paper 0.

    ``ink = (paper - grey) / 255`` after area-averaging to ``size``, then divided by its maximum
    so a thin pencil line and a thick marker give the same strokes. Raises on an empty canvas.
    """
    small = resize_grey(square, size)  # (size, size)
    ink = np.clip((np.median(small) - small) / 255.0, 0, None)
    peak = float(ink.max())
    if peak < MIN_INK:
        raise ValueError(EMPTY_MESSAGE)
    return np.clip(ink / peak, 0, 1).astype(np.float32)


def sketch_to_condition(sketch: Any, size: int = 64) -> np.ndarray:
    """Any sketch (Sketchpad dict, file, PIL, array) -> condition (size, size) in [0, 1]."""
    return condition_image(square_sketch(sketch), size)


# ---------------------------------------------------------------------------------------------
# Pictures of the result


def overlay(image: np.ndarray, condition: np.ndarray, size: int = 256, strength: float = 0.7) -> np.ndarray:
    """The generated image (H, W, 3) uint8 upscaled to ``size`` with the strokes drawn over it."""
    from PIL import Image

    big = np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.NEAREST), dtype=np.float64)
    ink = np.asarray(Image.fromarray((condition * 255).astype(np.uint8)).resize(
        (size, size), Image.Resampling.BILINEAR), dtype=np.float64)[..., None] / 255  # (size, size, 1)
    return np.clip(big * (1 - strength * ink), 0, 255).astype(np.uint8)


def condition_picture(condition: np.ndarray, size: int = 256) -> np.ndarray:
    """The condition exactly as the model reads it (white strokes on black), upscaled for display."""
    from PIL import Image

    grey = Image.fromarray((condition * 255).round().astype(np.uint8))
    return np.asarray(grey.resize((size, size), Image.Resampling.NEAREST).convert("RGB"))


# ---------------------------------------------------------------------------------------------
# Generation


@dataclass
class Generation:
    """One result: image (S, S, 3) uint8, condition (S, S), residual RMS per step and block."""

    image: np.ndarray
    condition: np.ndarray
    residual_rms: np.ndarray  # (N steps, K blocks) RMS of s * Z_k(...) at each step
    block_names: list[str]
    params: ControlParams
    timings: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """Settings, timings and the mean residual RMS per block, as plain JSON."""
        return {
            "model": self.params.model,
            "settings": {**asdict(self.params), "scheduler": "DDIM", "condition_size": int(self.condition.shape[0]),
                         "image_size": int(self.image.shape[0])},
            "timings_s": {k: round(v, 4) for k, v in self.timings.items()},
            "residual_rms_mean": {name: round(float(v), 5) for name, v in
                                  zip(self.block_names, self.residual_rms.mean(axis=0))},
        }


def check_prompt(prompt: str, model: str) -> str:
    """The Shapes World LDM's prompt check: the embedded model knows only Shapes World's words."""
    from demos.common.ldm_prompts import check_prompt as check_ldm_prompt

    return check_ldm_prompt("prompt", prompt, closed_vocabulary=model == EMBEDDED)


def load_model(name: str):
    """The shared pipeline from the model registry (``ModelUnavailable`` if missing)."""
    from playground import models

    return models.get(name)


def generate(sketch: Any, params: ControlParams, on_step: Callable[[int, int], None] | None = None,
             should_stop: Callable[[], bool] | None = None) -> Generation:
    """Sketch + params -> a ``Generation``. Bad input raises ``ValueError`` with a message.

    1. validate the params and the prompt; 2. sketch -> condition c_f; 3. load the model (cached);
    4. denoise N steps with the ControlNet's residuals added to the frozen UNet (the steps left
       are skipped once ``should_stop()`` is true).
    """
    start = time.perf_counter()
    params = validate(params)
    condition = sketch_to_condition(sketch, CONDITION_SIZE[params.model])  # (S, S)
    prepared = time.perf_counter()
    pipe = load_model(params.model)
    loaded = time.perf_counter()
    from demos.controlnet import model as torch_side

    image, rms, seconds = torch_side.denoise(pipe, condition, params, on_step, should_stop)
    names = torch_side.residual_names(pipe.controlnet, image.shape[0] // pipe.vae_scale_factor)
    timings = {"condition": prepared - start, "load": loaded - prepared, "denoise": seconds,
               "total": time.perf_counter() - start}
    return Generation(image, condition, rms, names, params, timings)


def sweep(sketch: Any, params: ControlParams, scales=SWEEP_SCALES,
          on_step: Callable[[int, int], None] | None = None,
          should_stop: Callable[[], bool] | None = None) -> list[tuple[float, np.ndarray]]:
    """The same seed and prompt at several conditioning scales s: [(s, image (S, S, 3))]
    (only the scales finished before ``should_stop()`` turned true)."""
    results = []
    for k, scale in enumerate(scales):
        if should_stop is not None and should_stop():
            break
        step = None if on_step is None else (lambda i, n, k=k: on_step(k * n + i, len(scales) * n))
        results.append((scale, generate(sketch, replace(params, conditioning_scale=scale), step,
                                        should_stop).image))
    return results


# ---------------------------------------------------------------------------------------------
# The view the tab opens with: generated once from the committed model, read at build time


def default_sketch_path() -> Path:
    from playground import settings

    return settings.ASSETS_DIR / "examples" / "controlnet" / "circle.png"


def default_view_dir() -> Path:
    from playground import settings

    return settings.ASSETS_DIR / "examples" / "controlnet" / "default"


def save_default_view(folder: Path | None = None, params: ControlParams = ControlParams()) -> Path:
    """Run the default example once and save what the tab shows first (PNGs + JSON)."""
    from PIL import Image

    folder = folder or default_view_dir()
    folder.mkdir(parents=True, exist_ok=True)
    result = generate(str(default_sketch_path()), params)
    Image.fromarray(result.image).save(folder / "result.png")
    for k, (scale, image) in enumerate(sweep(str(default_sketch_path()), params)):
        Image.fromarray(image).save(folder / f"sweep_{k}.png")
    record = {**result.summary(), "residual_rms": result.residual_rms.round(6).tolist(),
              "block_names": result.block_names, "sweep_scales": list(SWEEP_SCALES)}
    (folder / "view.json").write_text(json.dumps(record, indent=1))
    return folder


def load_default_view(folder: Path | None = None) -> dict | None:
    """The saved default view (numpy and JSON only, no model), or None if it is missing."""
    from PIL import Image

    folder = folder or default_view_dir()
    if not (folder / "view.json").is_file():
        return None
    record = json.loads((folder / "view.json").read_text())
    record["image"] = np.asarray(Image.open(folder / "result.png").convert("RGB"))
    record["sweep"] = [(s, np.asarray(Image.open(folder / f"sweep_{k}.png").convert("RGB")))
                       for k, s in enumerate(record["sweep_scales"])]
    record["condition"] = sketch_to_condition(str(default_sketch_path()), CONDITION_SIZE[EMBEDDED])
    return record
