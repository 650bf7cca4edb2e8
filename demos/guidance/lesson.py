"""What the Guidance lessons ask, computed with the tab's own model (no gradio; torch inside).

Two lessons share this module: ``lesson.md`` (the tab's controls: each function takes its
``Controls``) and ``lesson_sd.md`` (the "Inside the latent diffusion model" section: each function
takes its ``Inside`` settings, ``inside_...`` in a view, and runs the embedded model).

Images are judged from their pixels by ``demos/common/shapes_judge.py``.
"""

from dataclasses import replace

import numpy as np

from demos.common import shapes_world
from demos.common.shapes_judge import judge, shape_mask
from demos.common.ldm_prompts import prompt_words
from demos.guidance import compute, internals

SAME_PIXELS = 3  # two images "are the same" when no pixel channel differs by more than this


# ----------------------------------------------------------------------------- judging images
def matches(image: np.ndarray, prompt: str) -> bool:
    """The image shows every colour and shape word of the prompt."""
    colour, shape = judge(image)
    words = set(prompt_words(prompt))
    return (colour is not None and (not words & set(shapes_world.COLOURS) or colour in words)
            and (not words & set(shapes_world.SHAPES) or shape in words))


def _images(params: compute.GuidanceParams) -> np.ndarray:
    return compute.generate(params).images


# ----------------------------------------------------------------------------- lesson.md (the tab)
def matching_images(controls) -> float:
    """How many of the n images show the prompt's colour and shape."""
    p = controls.params()
    return float(sum(matches(image, p.prompt) for image in _images(p)))


def all_match(controls) -> bool:
    """Every one of the n images shows the prompt's colour and shape."""
    p = controls.params()
    return all(matches(image, p.prompt) for image in _images(p))


def same_as_plain_conditional(controls) -> str:
    """The view's images against mode "none" (eps_theta(z_t, c) alone) with the same seed: "the same
    images" when no pixel channel differs by more than 3."""
    p = controls.params()
    gap = np.abs(_images(p).astype(int) - _images(replace(p, mode="none")).astype(int)).max()
    return "the same images" if gap <= SAME_PIXELS else "more on-prompt images" if _more_on_prompt(p) else "different images"


def _more_on_prompt(p) -> bool:
    ours = sum(matches(im, p.prompt) for im in _images(p))
    plain = sum(matches(im, p.prompt) for im in _images(replace(p, mode="none")))
    return ours > plain


def distinct_colours(controls) -> float:
    """How many different colours the n images show."""
    return float(len({judge(image)[0] for image in _images(controls.params())} - {None}))


def same_as_cfg(controls) -> str:
    """The view's images (classifier guidance) against classifier-free guidance at the same s and
    seed: "the same images" when no pixel channel differs by more than 3."""
    p = controls.params()
    gap = np.abs(_images(p).astype(int) - _images(replace(p, mode="cfg")).astype(int)).max()
    return "the same images" if gap <= SAME_PIXELS else "different images"


# ----------------------------------------------------------------------------- lesson_sd.md (inside)
def _inside(inside) -> internals.InternalsParams:
    return internals.validate(inside.params(internals.InternalsParams.model))


def _look(inside) -> internals.Internals:
    """What Look inside computes, less the per-step latents (the maps and the round trip are the same)."""
    return internals.generate(_inside(inside), with_steps=False)


def round_trip_psnr(inside) -> str:
    """PSNR of the autoencoder round trip D(E(x)) of the generated image: over 30 dB, 20-30, under 20."""
    psnr = _look(inside).round_trip.psnr_db
    return "above 30 dB" if psnr > 30 else "20 to 30 dB" if psnr >= 20 else "below 20 dB"


def _count_calls(inside) -> dict:
    """How many times each part of the pipeline runs while one image is generated from the prompt
    (the sampler alone, as the endpoint runs it: no step views, no round trip)."""
    from demos.guidance import sampler

    p = _inside(inside)
    model = compute.get_model(p.model)
    pipe, counts = model.pipe, {"text_encoder": 0, "unet": 0, "encode": 0, "decode": 0}

    def counter(key):
        def hook(*_args):
            counts[key] += 1
        return hook

    hooks = [pipe.text_encoder.register_forward_pre_hook(counter("text_encoder")),
             pipe.unet.register_forward_pre_hook(counter("unet")),
             pipe.vae.encoder.register_forward_pre_hook(counter("encode")),
             pipe.vae.decoder.register_forward_pre_hook(counter("decode"))]
    try:
        sampler.sample(model, internals.internals_request(p, with_steps=False))
    finally:
        for hook in hooks:
            hook.remove()
    return counts


def text_encoder_runs(inside) -> float:
    """How many times the text encoder runs while one image is generated."""
    return float(_count_calls(inside)["text_encoder"])


def vae_runs(inside) -> str:
    """How many times the VAE's encoder E and decoder D run while one image is generated."""
    c = _count_calls(inside)
    steps = _inside(inside).steps
    if c["encode"] == 0 and c["decode"] == 1:
        return "E never, D once"
    if c["encode"] == 1 and c["decode"] == 1:
        return "E once, D once"
    if c["decode"] >= steps:
        return "E and D at every step"
    return f"E {c['encode']}, D {c['decode']}"


SPECIALS = ("<start>", "<end>", "<pad>")


def top_token(inside) -> str:
    """The token (a prompt word, or <start>, <end>, or all <pad>s together) with the largest share of all
    cross-attention over the run, named as the options read."""
    result = _look(inside)
    share = np.array(result.attention_share())
    groups = {word: share[pos].sum() for word, pos in result.word_tokens.items()}
    for special in SPECIALS:
        groups[special] = share[[j for j, t in enumerate(result.tokens) if t == special]].sum()
    best = max(groups, key=groups.get)
    return {"<pad>": "<pad> (all copies together)"}.get(best, best)


def _overlap(heatmap: np.ndarray, mask: np.ndarray) -> float:
    """IoU of a word's map thresholded at its mean with a mask."""
    hot = heatmap > heatmap.mean()
    return float((hot & mask).sum() / max((hot | mask).sum(), 1))


def where_colour_acts(inside) -> str:
    """Where the prompt's colour word's map (summed over the run, thresholded at its mean) lies: IoU
    with the shape's pixels over 0.5 "on the shape", with the background over 0.5 "on the background"."""
    result = _look(inside)
    colour = next(w for w in result.words if w in shapes_world.COLOURS)
    mask = shape_mask(result.image)
    heat = result.heatmaps()[colour]
    if _overlap(heat, mask) > 0.5:
        return "on the shape"
    if _overlap(heat, ~mask) > 0.5:
        return "on the background"
    return "spread over the whole image"


def shape_word_on_shape(inside) -> bool:
    """The prompt has a shape word and its map overlaps the generated shape with IoU above 0.5."""
    result = _look(inside)
    words = [w for w in result.words if w in shapes_world.SHAPES]
    if not words:
        return False
    mask = shape_mask(result.image)
    return all(_overlap(result.heatmaps()[w], mask) > 0.5 for w in words)


def all_four_or_fewer(controls) -> str:
    """Whether every one of the n images shows the prompt's colour and shape."""
    return "all of them, as with classifier-free s = 1" if all_match(controls) else "fewer than all"
