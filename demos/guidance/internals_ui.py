"""The Guidance tab's section "Inside the latent diffusion model" and its ``sd_internals`` endpoint.

Wiring only: the numbers come from ``internals.py`` (torch inside its functions), the figures from
``internals_figures.py``. Imports no torch; the opening view is drawn on page load from
``assets/guidance_internals/`` (``internals_defaults.py``).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass

import gradio as gr
import numpy as np

from demos.guidance import internals, internals_defaults
from demos.guidance import internals_figures as figures
from playground import tempfiles
from playground.ui_helpers import Api, Binding, Opening, StopButtons, api_errors, explanation, model_event, run_steps, user_errors

SPECIALS = ("<start>", "<end>", "<pad>")
STOP = StopButtons()  # this section's Stop button (one flag per session)

INTRO = """
### Inside the latent diffusion model
Stable Diffusion never denoises pixels. An **autoencoder** squeezes the image into a small latent
(here 64×64×3 → 8×8×4, 48× fewer numbers), the UNet denoises that latent, and the prompt reaches
it only through **cross-attention**: every latent position looks at every token of the prompt.
Press **Look inside** to generate one image and record, at every step, where each word is looked at;
move the **step** slider to see when each word takes hold.
"""

EXPLANATION = r"""
**Autoencoder.** $z = \mathcal E(x)\cdot$ scaling, $\hat x = \mathcal D(z)$. The round trip's
quality is $\text{PSNR} = 10\log_{10}(1/\text{MSE})$ with pixels in $[0, 1]$; the error map is
$|x-\hat x|$ averaged over the colour channels. Any picture is centre-cropped and resized to the
autoencoder's input size first.

**Latents per step.** $z_t$ is what the sampler holds at step $t$ (its four channels), "D(z_t)" is
the decoder on $z_t$, $\mathcal D(z_t)$, noise included, and "D(x̂₀)" decodes the prediction
$\hat x_0 = (z_t - \sqrt{1-\bar\alpha_t}\,\hat\epsilon)/\sqrt{\bar\alpha_t}$.

**Cross-attention per word** (DAAM, Tang et al. 2022). In each cross-attention layer $l$ and head $h$,
latent position $i$ attends over the tokens $j$ with $A^{l,h}_{ij} = \operatorname{softmax}_j(q_i\cdot k_j/\sqrt d)$,
so $\sum_j A_{ij} = 1$. A word's map is $D_j = \sum_t\sum_l\sum_h \operatorname{up}(A^{l,h,t}_{:,j})$:
each map (8×8 or 4×4) upsampled (bicubic, clamped at 0) to the 64×64 image and summed over heads,
the eleven cross-attention layers (five at 8×8, six at 4×4 and in the middle) and the steps (the
slider shows one step $t$, or steps $1..t$ summed). Each map is drawn from its own minimum (dark) to
its maximum (bright); the percentage is the token's share of all attention in the steps shown.

**How this model learned where words go.** Stable Diffusion's word maps localise because billions
of captions taught it; this 3.5M-parameter model, trained on one shape per image, did not learn that
by itself: with cross-attention at 4×4 only, the shape word's map overlapped the shape with IoU
0.38 (for *purple* prompts it sat on the background), and after adding cross-attention at 8×8 and
fine-tuning on the plain diffusion loss, 0.41. So the 8×8 fine-tune adds TokenCompose's grounding
loss (Wang et al. 2024) for the **colour and shape words only**:
$\mathcal L = \|\epsilon-\hat\epsilon\|^2 + 0.02\cdot\text{mean}_{l,j}\,(1-\sum_u A^l_{u,j}M_u/\sum_u A^l_{u,j})^2$,
with $M$ the shape's coverage of each layer's grid. `a`, `<start>`, `<end>` and `<pad>` were never
told where to look.

**What the tokens do.** Measured over the 18 prompts × 4 seeds (`python -m benchmarks.sd_internals`):
the shape word's map thresholded at its mean overlaps the shape (a mask taken from the pixels alone)
with IoU 0.65 on average, the colour word's 0.65 (a perfect map at 8×8 would reach 0.75, at 4×4
0.62). `a`, untaught, became the place the background looks (about half of all attention; IoU with
the shape 0.02): an attention "sink", like `<start>` in Stable Diffusion. The other untaught tokens
are mixed: `<start>` (which has read no word: the text encoder is causal) lands partly on the shape
(IoU 0.50 on average); `<end>` and `<pad>` (which have read the whole prompt) sit on squares but
often around circles and triangles, with a hole where the shape is (0.49 and 0.35). Recording does
not change the image: the maps are computed
beside the unchanged attention.
"""


@dataclass(frozen=True)
class Inside:
    """The section's own settings (the model is the tab's menu): ``InternalsParams`` less the model."""

    prompt: str = internals.InternalsParams.prompt
    steps: int = internals.InternalsParams.steps
    seed: int = internals.InternalsParams.seed
    guidance_scale: float = internals.InternalsParams.guidance_scale

    def params(self, model: str) -> internals.InternalsParams:
        return internals.InternalsParams(self.prompt, self.steps, self.seed, self.guidance_scale, model)

    def checked(self) -> "Inside":
        internals.validate(self.params(internals.InternalsParams.model))
        return self


def api_args(p: Inside) -> dict:
    return {"prompt": p.prompt, "steps": p.steps, "seed": p.seed}


# ----------------------------------------------------------------------------- formatting
def shown_tokens(result: internals.Internals) -> list[tuple[str, list[int]]]:
    """(label, token positions) to draw: each prompt word, then <start>, <end> and all <pad>s summed."""
    rows = list(result.word_tokens.items())
    for special in SPECIALS:
        positions = [j for j, t in enumerate(result.tokens) if t == special]
        if positions:
            rows.append((special, positions))
    return rows


def views(result: internals.Internals, step, cumulative: bool) -> tuple:
    """(word-map figure, latent figure) at ``step`` (1-based): that step alone, or steps 1..step summed."""
    total = len(result.step_maps)
    if total == 0:
        return figures.message("Stopped before the first step."), figures.message("No step was run.")
    k = int(min(max(int(step or total), 1), total))
    maps = result.step_maps[:k].sum(axis=0) if cumulative else result.step_maps[k - 1]  # (L, S, S)
    share = maps.sum(axis=(1, 2)) / (maps.sum() or 1.0)  # (L,)
    rows = shown_tokens(result)
    what = f"steps 1..{k} summed" if cumulative else f"step {k} alone"
    caption = f"“{result.settings['prompt']}”: {what}, of {total}"
    word_fig = figures.word_maps(result.image, [label for label, _ in rows], [maps[p].sum(axis=0) for _, p in rows],
                                 [float(share[p].sum()) for _, p in rows], caption)
    if result.latents is None:
        return word_fig, figures.message("Latents were not recorded for this run.")
    latent_fig = figures.latent_steps(result.latents[k - 1], result.latent_images[k - 1], result.x0_images[k - 1],
                                      k, total)
    return word_fig, latent_fig


def status_of(result: internals.Internals, prefix: str) -> str:
    t, s = result.timings, result.settings
    stopped = "" if s.get("steps_done", s["steps"]) == s["steps"] else f" **Stopped after step {s['steps_done']}.**"
    return (f"{prefix} “{s['prompt']}”, seed {s['seed']}, {s['steps']} steps, s = {s['guidance_scale']:g}: "
            f"{s.get('cross_attention_layers', 11)} cross-attention layers recorded in {t['total_s']:.2f} s; "
            f"the image's autoencoder round trip: PSNR {result.round_trip.psnr_db:.1f} dB.{stopped}")


def trip_status(trip: internals.RoundTrip, what: str) -> str:
    return (f"{what}: PSNR **{trip.psnr_db:.1f} dB**, {trip.image.size:,} numbers → {trip.latent.size:,} "
            f"(**{trip.compression:g}×** fewer).")


def download(result: internals.Internals) -> list[str]:
    """The image (PNG) and the endpoint's JSON (tokens, per-word heat maps, latent shape, PSNR)."""
    from PIL import Image

    folder = tempfiles.output_folder("sd_internals_")
    Image.fromarray(result.image).save(folder / "sd_internals.png")
    data = {"tokens": result.tokens, "heatmaps": {w: np.round(m, 5).tolist() for w, m in result.heatmaps().items()},
            "latent_shape": list(result.round_trip.latent.shape), "psnr_db": round(result.round_trip.psnr_db, 3),
            "attention_share": dict(zip(result.tokens, np.round(result.attention_share(), 4).tolist())),
            "settings": result.settings, "timings": result.timings}
    (folder / "sd_internals.json").write_text(json.dumps(data))
    return [str(folder / "sd_internals.png"), str(folder / "sd_internals.json")]


# ----------------------------------------------------------------------------- events
def look(params: internals.InternalsParams, cumulative: bool, request: gr.Request = None, progress=gr.Progress()):
    """Look inside: one generation with every step's cross-attention recorded."""
    def each(step):
        progress((step.index, step.total), desc="denoising with attention recorded")
        return (gr.skip(),) * 6 + (f"Denoising… step {step.index} of {step.total}",) + (gr.skip(),)

    work = lambda on_step, should_stop: internals.generate(params, True, False, on_step, should_stop)  # noqa: E731
    result = yield from run_steps(work, STOP.start(request), each)
    total = max(len(result.step_maps), 1)
    word_fig, latent_fig = views(result, total, cumulative)
    yield (result, word_fig, latent_fig, figures.round_trip(result.round_trip),
           gr.Slider(minimum=1, maximum=total, value=total, step=1),
           trip_status(result.round_trip, "Autoencoder on the generated image"), status_of(result, "Generated"),
           download(result))


@user_errors
def on_step_view(result, step, cumulative):
    if result is None:
        raise ValueError("Press Look inside first.")
    return views(result, step, cumulative)


@user_errors
def on_upload(path, model):
    if path is None:
        return gr.skip(), gr.skip()
    trip = internals.autoencode(path, model)
    return figures.round_trip(trip), trip_status(trip, "Autoencoder on your picture (centre-cropped, resized)")


@user_errors
def on_shapes_image(seed, model):
    trip = internals.autoencode(internals.shapes_world_image(seed), model)
    return figures.round_trip(trip), trip_status(trip, f"Autoencoder on Shapes World image {int(seed)} (never trained on)")


@functools.lru_cache(maxsize=1)
def opening_view() -> tuple:
    """What the section shows before anyone clicks (precomputed; no model runs)."""
    stored = internals_defaults.load()
    if stored is None:
        empty = figures.message("Press Look inside to record a generation.")
        return None, empty, empty, empty, "", "Press **Look inside**."
    result, trip = stored
    word_fig, latent_fig = views(result, len(result.step_maps), True)
    return (result, word_fig, latent_fig, figures.round_trip(trip),
            trip_status(trip, f"Autoencoder on Shapes World image {internals_defaults.TRIP_SEED} (never trained on)"),
            status_of(result, "Showing the precomputed default:"))


@api_errors
def api_sd_internals(prompt: str, steps: int, seed: int):
    """The embedded model's image for ``prompt`` (CFG s = 5, DDIM), then {tokens, heatmaps, latent_shape,
    psnr_db}. Step-wise, so a client's ``/cancel`` stops the run within one step."""
    image, data = yield from run_steps(lambda on_step, should_stop: internals.api_sd_internals(prompt, steps, seed,
                                                                                                on_step, should_stop))
    yield image, data


# ----------------------------------------------------------------------------- layout
def look_inside(inside: Inside, cumulative: bool, model: str, request: gr.Request = None, progress=gr.Progress()):
    """The Look inside button (``binding.event(look_inside, extra=[cumulative, model])``)."""
    yield from look(inside.params(model), cumulative, request, progress)


@dataclass(frozen=True)
class Section:
    """The section's components, top to bottom."""

    prompt: gr.Textbox
    steps: gr.Number
    seed: gr.Number
    scale: gr.Number
    look_button: gr.Button
    stop: gr.Button
    status: gr.Markdown
    step: gr.Slider
    cumulative: gr.Checkbox
    word_plot: gr.Plot
    latent_plot: gr.Plot
    upload: gr.Image
    image_seed: gr.Number
    new_image: gr.Button
    trip_note: gr.Markdown
    trip_plot: gr.Plot
    files: gr.File


def build_section(demo: gr.Blocks, model: gr.Dropdown) -> Binding:
    """The section, inside the Guidance tab; ``model`` is the tab's model menu. Returns its Binding
    (in a link, its fields are ``inside_prompt``, ``inside_steps``, ...)."""
    default = Inside()
    gr.Markdown(INTRO)
    s = Section(*settings_row(default), *maps(default), *round_trip_row(),
                gr.File(label="Download the image (PNG) and the word maps (JSON)", file_count="multiple"))
    explanation(EXPLANATION, title="What am I looking at? (autoencoder, latents, cross-attention)")
    state = gr.State(None)
    binding = Binding(Inside, prompt=s.prompt, steps=s.steps, seed=s.seed, guidance_scale=s.scale, prefix="inside_",
                      check=Inside.checked, api=Api("sd_internals", api_args, note=(
                          "Inside the latent diffusion model: the endpoint runs the embedded model at s = 5 "
                          "(this section's s is not among its inputs)")))
    wire(demo, binding, model, state, s)
    build_api()
    return binding


def settings_row(default: Inside) -> tuple:
    """prompt, steps, seed, scale, the Look inside and Stop buttons."""
    with gr.Row():
        prompt = gr.Textbox(default.prompt, label="Prompt c", info="one or more words of the vocabulary",
                            elem_id="internals-prompt", scale=3, min_width=200)
        steps = gr.Number(default.steps, label="Steps", info="DDIM steps, 1-100", precision=0, minimum=1,
                          maximum=100, elem_id="internals-steps", scale=1, min_width=100)
        seed = gr.Number(default.seed, label="Seed", info="fixes z_T", precision=0, minimum=0, scale=1, min_width=100)
        scale = gr.Number(default.guidance_scale, label="Guidance scale s", info="classifier-free, 0-20",
                          minimum=0, maximum=20, scale=1, min_width=100)
        with gr.Column(scale=1, min_width=120):
            look_button = gr.Button("Look inside", variant="primary", elem_id="internals-look")
            stop = gr.Button("Stop", variant="stop", elem_id="internals-stop")
    return prompt, steps, seed, scale, look_button, stop


def maps(default: Inside) -> tuple:
    """status, the step slider, the sum checkbox, the word maps and the latents."""
    status = gr.Markdown(elem_id="internals-status")
    step = gr.Slider(1, default.steps, value=default.steps, step=1, label="Step t",
                     info="which denoising step the maps below show", elem_id="internals-step")
    cumulative = gr.Checkbox(True, label="Sum steps 1..t (DAAM's aggregate at t = last); off: step t alone")
    word_plot = gr.Plot(label="Cross-attention per word", show_label=False, elem_id="internals-words")
    latent_plot = gr.Plot(label="The latent z_t and its decodings at step t", show_label=False,
                          elem_id="internals-latents")
    return status, step, cumulative, word_plot, latent_plot


def round_trip_row() -> tuple:
    """upload, image_seed, new_image, trip_note, trip_plot."""
    gr.Markdown("#### Autoencoder round trip: x → z = E(x) → D(z)")
    with gr.Row():
        with gr.Column(scale=1, min_width=220):
            upload = gr.Image(type="filepath", image_mode=None, label="Upload any picture", sources=["upload"],
                              height=180, elem_id="internals-upload")  # undecoded: autoencode checks the size
            with gr.Row():
                image_seed = gr.Number(0, label="Shapes World image seed", precision=0, minimum=0, min_width=100)
                new_image = gr.Button("New Shapes World image", min_width=120)
        with gr.Column(scale=3, min_width=300):
            trip_note = gr.Markdown(elem_id="internals-trip-status")
            trip_plot = gr.Plot(label="Input, latent channels, reconstruction, error", show_label=False,
                                elem_id="internals-trip")
    return upload, image_seed, new_image, trip_note, trip_plot


def wire(demo: gr.Blocks, binding: Binding, model: gr.Dropdown, state: gr.State, s: Section) -> None:
    on_look = binding.event(look_inside, extra=[s.cumulative, model], name="on_look")
    look_outputs = [state, s.word_plot, s.latent_plot, s.trip_plot, s.step, s.trip_note, s.status, s.files]
    s.look_button.click(on_look, binding.inputs_with(s.cumulative, model), look_outputs, api_visibility="private",
                        **model_event())
    for event in (s.step.input, s.cumulative.input):
        event(on_step_view, [state, s.step, s.cumulative], [s.word_plot, s.latent_plot], api_visibility="private",
              show_progress="hidden", trigger_mode="always_last")  # a drag's last value is always drawn
    STOP.wire(s.stop)
    s.upload.upload(on_upload, [s.upload, model], [s.trip_plot, s.trip_note], api_visibility="private",
                    **model_event())
    s.new_image.click(on_shapes_image, [s.image_seed, model], [s.trip_plot, s.trip_note], api_visibility="private",
                      **model_event())
    opening = Opening(opening_view, [state, s.word_plot, s.latent_plot, s.trip_plot, s.trip_note, s.status])

    def on_link(values: dict, request: gr.Request = None, progress=gr.Progress()):
        """A link to other settings looks inside with them (the model and the sum as they open)."""
        yield from on_look({**values, model: model.value, s.cumulative: s.cumulative.value}, request, progress)

    binding.on_open(opening, on_link, look_outputs, **model_event())


def build_api() -> None:
    """The ``sd_internals`` endpoint: prompt, steps, seed in; the image and a JSON out."""
    with gr.Column(visible=False):
        inputs = [gr.Textbox(label="prompt"), gr.Number(label="steps"), gr.Number(label="seed")]
        outputs = [gr.Image(label="image", format="png"), gr.JSON(label="tokens, heatmaps, latent_shape, psnr_db")]
        trigger = gr.Button("sd_internals API")
    trigger.click(api_sd_internals, inputs, outputs, api_name="sd_internals", **model_event())
