"""What the ControlNet lesson asks, computed with the embedded model on the tab's default outline.

Each function takes the tab's ``ui.Controls`` for a step's view (``demos/controlnet/lesson.md``);
like a link to the tab, a view runs on the default example outline (``circle.png``), since a
drawing is not part of a view. Torch and diffusers are imported inside the functions.

Where the question is about the shape: the generated object is the largest part of the pixels that
differ from the border's colour by more than 60 (as ``demos/common/shapes_judge.py`` finds it), and
the outline's inside is the condition's strokes with their holes filled; IoU compares the two."""

from dataclasses import replace

import numpy as np

from demos.common import shapes_judge
from demos.controlnet import compute


def _sketch() -> str:
    return str(compute.default_sketch_path())


def _image(controls) -> np.ndarray:
    """The generated image (64, 64, 3) uint8 for the view's settings on the default outline."""
    return compute.generate(_sketch(), controls.params()).image


def _object(image: np.ndarray) -> np.ndarray:
    """(H, W) bool: the largest connected region that differs from the border colour by > 60."""
    return shapes_judge.shape_mask(image, largest=True)


def _inside_outline(size: int) -> np.ndarray:
    """(size, size) bool: the outline's strokes and everything they enclose."""
    from scipy import ndimage

    return ndimage.binary_fill_holes(compute.sketch_to_condition(_sketch(), size) > 0.3)


def outline_iou(controls) -> float:
    """IoU of the generated object with the filled outline."""
    image = _image(controls)
    found, inside = _object(image), _inside_outline(image.shape[0])
    return float((found & inside).sum() / max((found | inside).sum(), 1))


def _same(a: np.ndarray, b: np.ndarray) -> str:
    """Two uint8 images as the options read: identical (within one level of 255), close, or different."""
    diff = np.abs(a.astype(np.int64) - b.astype(np.int64))
    return "identical, pixel for pixel" if diff.max() <= 1 else (
        "almost the same, a few pixels differ" if diff.mean() < 2 else "a different picture")


def against_base_model(controls) -> str:
    """The view's image against the base latent diffusion model with no ControlNet at all (the same
    UNet, VAE, text encoder, DDIM steps, guidance and seed)."""
    import torch
    from diffusers import StableDiffusionPipeline

    from demos.common.ldm_pipeline import encode_prompts, make_scheduler

    params = compute.validate(controls.params())
    pipe = compute.load_model(params.model)
    parts = {k: pipe.components[k] for k in ("vae", "text_encoder", "tokenizer", "unet")}
    base = StableDiffusionPipeline(**parts, scheduler=make_scheduler(pipe, "ddim", params.steps),
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    base.set_progress_bar_config(disable=True)
    with torch.inference_mode():
        negative = encode_prompts(base, [""]) if params.guidance_scale > 1 else None
        out = base(prompt_embeds=encode_prompts(base, [params.prompt]), negative_prompt_embeds=negative,
                   num_inference_steps=params.steps, guidance_scale=params.guidance_scale, output_type="np",
                   generator=torch.Generator("cpu").manual_seed(params.seed)).images[0]
    reference = (np.clip(out, 0, 1) * 255).round().astype(np.uint8)
    return _same(_image(controls), reference)


def untrained_controlnet(controls) -> str:
    """A freshly made ControlNet (``ControlNetModel.from_unet``: every zero convolution at 0) at the
    view's settings, against the shipped model's image at s = 0."""
    from demos.controlnet import model

    params = compute.validate(controls.params())
    pipe = compute.load_model(params.model)
    fresh = model.controlnet_pipeline(pipe, model.build_controlnet(pipe.unet))
    condition = compute.sketch_to_condition(_sketch(), compute.CONDITION_SIZE[params.model])
    image, _, _ = model.denoise(fresh, condition, params)
    return _same(image, _image(replace(controls, conditioning_scale=0.0)))


def what_is_drawn(controls) -> str:
    """The object's colour and shape (``demos/common/shapes_judge.py``) and whether it lies in
    the outline (IoU with the filled outline >= 0.5), as the option reads."""
    image = _image(controls)
    colour, shape = shapes_judge.judge(image)
    found, inside = _object(image), _inside_outline(image.shape[0])
    iou = float((found & inside).sum() / max((found | inside).sum(), 1))
    where = "inside the outline" if iou >= 0.5 else "away from the outline"
    return f"a {colour} {shape} {where}"


def follows_outline(controls) -> str:
    """How well the object fills the outline: IoU >= 0.7 fills it, 0.3-0.7 partly, < 0.3 not at all."""
    iou = outline_iou(controls)
    return "it fills the outline" if iou >= 0.7 else "partly" if iou >= 0.3 else "no, it lands elsewhere"


def fills_outline(controls) -> bool:
    """The object fills the outline (IoU >= 0.7) with control start at 0."""
    return controls.control_start == 0 and outline_iou(controls) >= 0.7
