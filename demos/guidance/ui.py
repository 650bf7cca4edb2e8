"""Guidance tab: classifier and classifier-free guidance on a Stable-Diffusion-style pipeline.

Run alone with ``python -m demos.guidance.ui``. Imports no torch: the model loads (through
``playground.models``) the first time an image is generated.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, fields

import gradio as gr
import numpy as np

from demos.guidance import compute, defaults, figures, internals_ui
from playground import tempfiles
from playground.models import usable_choices
from playground.ui_helpers import Api, Binding, Opening, StopButtons, api_errors, explanation, model_event, run_steps
from playground.validate import shown
from demos.guidance import TAB


STOP = StopButtons()  # this tab's Stop button (one flag per session)


INTRO = """
### What does the guidance scale *s* do?
Type a prompt, move **s**, and watch the same starting noise turn into different pictures. The
embedded model is a tiny Stable Diffusion (VAE + CLIP text encoder + UNet) the project trained on
**Shapes World**: it knows the words *a, red, green, blue, yellow, purple, orange, circle, square,
triangle*. s = 0 ignores the prompt, s = 1 is the plain conditional model, larger s follows the
prompt harder and with less variety.
"""

EXPLANATION = r"""
**Classifier-free guidance** (Ho & Salimans 2022). One network $\epsilon_\theta$ is trained both
with the caption $c$ and, 10% of the time, with an empty caption $\varnothing$. At each sampling step

$$\hat\epsilon = \epsilon_\theta(z_t, \varnothing) + s\,\big(\epsilon_\theta(z_t, c) - \epsilon_\theta(z_t, \varnothing)\big)$$

so $s = 0$ is the unconditional model, and **$s = 1$ gives exactly $\epsilon_\theta(z_t, c)$**: the
two $\epsilon_\theta(z_t,\varnothing)$ terms cancel and guidance is switched off. $s > 1$
extrapolates *past* the conditional prediction, away from the unconditional one. Since
$\epsilon \approx -\sqrt{1-\bar\alpha_t}\,\nabla_z \log p(z_t)$, this samples from
$p(z_t)\,p(c \mid z_t)^s$: an implicit classifier $p(c\mid z_t) \propto p(z_t\mid c)/p(z_t)$ raised to
the power $s$, which sharpens adherence and costs diversity. A **negative prompt** replaces
$\varnothing$ in the formula, so the sample is pushed away from it.

**Classifier guidance** (Dhariwal & Nichol 2021). A separate classifier $p_\phi(y \mid z_t, t)$,
trained on *noisy* latents, supplies the gradient:

$$\hat\epsilon = \epsilon_\theta(z_t, \varnothing) - s\,\sqrt{1-\bar\alpha_t}\;\nabla_{z_t} \log p_\phi(y \mid z_t, t)$$

Here $s = 0$ is unconditional and $s = 1$ samples $p(z_t)\,p_\phi(y\mid z_t)$. For a prompt naming
only a colour (or a shape), $\log p(y)$ sums over the classes that match.

**The step view** shows, for the first image, the predicted clean image
$\hat x_0 = (z_t - \sqrt{1-\bar\alpha_t}\,\hat\epsilon)/\sqrt{\bar\alpha_t}$ decoded by the VAE, the
two noise predictions (first three latent channels as RGB), and $\lVert d \rVert$ per latent pixel,
where $d = \epsilon_{\text{cond}} - \epsilon_{\text{uncond}}$ is what guidance adds, times $s$.
It is large where the shape is being decided.

**The sweep** starts every scale from the *same* noise (the seed's first image) and runs all the
scales as one batch. **The curve** was measured on the embedded model with an independent
colour/shape checker over many seeds: adherence rises with $s$, diversity falls.
"""

MODEL_CHOICES = [("Shapes World LDM (embedded, 64x64)", compute.EMBEDDED),
                 ("Stable Diffusion 1.5 (hub or local folder)", compute.SD15)]
EXAMPLES = [["a red circle", "cfg", 5.0], ["a blue triangle", "cfg", 7.5], ["a green square", "classifier", 5.0],
            ["a yellow circle", "cfg", 0.0], ["", "cfg", 5.0], ["a purple", "cfg", 3.0]]


# ----------------------------------------------------------------------------- inputs -> params
@dataclass(frozen=True)
class Controls(compute.GuidanceParams):
    """The tab's controls: a generation's ``GuidanceParams`` and the steps the step view shows."""

    view_steps: str = ""  # '1, 8, 25'; empty: four spread over the run

    def params(self) -> compute.GuidanceParams:
        return compute.GuidanceParams(**{f.name: getattr(self, f.name) for f in fields(compute.GuidanceParams)})

    def checked(self) -> "Controls":
        p = compute.validate(self.params())
        parse_view_steps(self.view_steps, p.steps)
        return self


def api_args(c: Controls) -> dict:
    return {"prompt": c.prompt, "mode": c.mode, "guidance_scale": c.guidance_scale, "n_images": c.n_images,
            "steps": c.steps, "seed": c.seed}


API_NOTE = ("the endpoint always runs the embedded model with DDIM and no negative prompt "
            "(this tab's model, scheduler and negative prompt are not among its inputs)")


def parse_view_steps(text: str, steps) -> list[int]:
    """'1, 8, 25' -> [1, 8, 25]; empty -> four steps spread over the run."""
    if not str(text).strip():
        try:
            return compute.default_view_steps(compute.check_int("steps", steps, 1, compute.MAX_STEPS))
        except ValueError:
            return []  # the bad steps value is reported by compute.generate
    try:
        return sorted({int(part) for part in str(text).replace(";", ",").split(",") if part.strip()})
    except ValueError:
        raise ValueError(f"steps to show must be whole numbers separated by commas, got {shown(text)}") from None


# ----------------------------------------------------------------------------- formatting
def gallery_items(result: compute.Generation, sweep: bool = False) -> list[tuple[np.ndarray, str]]:
    def label(i: int, s: float) -> str:
        note = {0.0: " (unconditional)", 1.0: " (conditional, no guidance)"}.get(s, "") if sweep else ""
        return f"s = {s:g}{note}" if sweep else f"image {i + 1}, seed {result.settings['seed']}, s = {s:g}"
    return [(image, label(i, s)) for i, (image, s) in enumerate(zip(result.images, result.scales))]


def status_text(result: compute.Generation, what: str) -> str:
    t = result.timings
    stopped = (f" **Stopped at step {result.stopped_at}**: showing the prediction x̂₀ at that step."
               if result.stopped_at is not None else "")
    nsfw = " Some images were blanked by the safety checker." if result.nsfw and any(result.nsfw) else ""
    return (f"{what}: {len(result.images)} images in {t['total_s']:.2f} s "
            f"({t['seconds_per_step'] * 1000:.0f} ms per step).{stopped}{nsfw}")


def download_files(result: compute.Generation, name: str) -> list[str]:
    """A PNG strip of the images and a JSON of the settings and timings."""
    from PIL import Image

    folder = tempfiles.output_folder("guidance_")
    strip = np.concatenate(list(result.images), axis=1)  # (H, B*W, 3)
    Image.fromarray(strip).save(folder / f"{name}.png")
    (folder / f"{name}.json").write_text(json.dumps({"settings": result.settings, "timings": result.timings},
                                                    indent=2))
    return [str(folder / f"{name}.png"), str(folder / f"{name}.json")]


def denoising(work, progress, request, n_outputs: int, status_at: int):
    """``result = yield from denoising(...)``: ``work(on_step, should_stop)`` step-wise
    (``run_steps``), yielding a status line and reporting the progress after each step.
    ``should_stop`` is true once the run is cancelled or this session pressed Stop (which keeps
    the partial images)."""
    def each(step):
        progress((step.index, step.total), desc="denoising")
        updates = [gr.skip()] * n_outputs
        updates[status_at] = f"Denoising… step {step.index} of {step.total}"
        return tuple(updates)

    return (yield from run_steps(work, STOP.start(request), each))


# ----------------------------------------------------------------------------- events
def generate(c: Controls, request: gr.Request = None, progress=gr.Progress()):
    """Generate and Enter in the prompt (``binding.event(generate)``)."""
    params = c.params()
    view_steps = parse_view_steps(c.view_steps, params.steps)
    result = yield from denoising(lambda on_step, should_stop: compute.generate(params, view_steps, on_step,
                                                                                should_stop),
                                  progress, request, n_outputs=5, status_at=3)
    yield (gallery_items(result), {"settings": result.settings, "timings": result.timings},
           figures.step_view(result.records, params.mode), status_text(result, "Generated"),
           download_files(result, "guidance"))


def sweep(c: Controls, request: gr.Request = None, progress=gr.Progress()):
    params = c.params()
    result = yield from denoising(lambda on_step, should_stop: compute.sweep(params, compute.SWEEP_SCALES, on_step,
                                                                             should_stop),
                                  progress, request, n_outputs=2, status_at=1)
    yield gallery_items(result, sweep=True), status_text(result, "Sweep (one batched call)")


def on_model_change(model: str) -> str:
    return compute.model_status(model)


def initial_values() -> dict:
    """What the tab shows before anyone clicks: precomputed by ``python -m demos.guidance.defaults``."""
    stored = defaults.load()
    if stored is None:
        return {"gallery": [], "sweep": [], "info": {}, "steps": figures.step_view([], "cfg"),
                "status": "Press **Generate** to draw the first images."}
    generation, sweep = stored
    return {"gallery": gallery_items(generation), "sweep": gallery_items(sweep, sweep=True),
            "info": {"settings": generation.settings, "timings": generation.timings},
            "steps": figures.step_view(generation.records, generation.settings["mode"]),
            "status": "Showing the default settings (precomputed). Change anything and press **Generate**."}


@api_errors
def api_guidance(prompt: str, mode: str, guidance_scale: float, n_images: int, steps: int, seed: int):
    """Images of the embedded model for ``prompt`` (DDIM), then {settings, timings}.

    Step-wise, so a client's ``/cancel`` stops the run within one step."""
    def work(on_step, should_stop):
        return compute.api_guidance(prompt, mode, guidance_scale, n_images, steps, seed, on_step, should_stop)

    images, info = yield from run_steps(work)
    yield [(image, f"image {i + 1}") for i, image in enumerate(images)], info


# ----------------------------------------------------------------------------- layout
@dataclass(frozen=True)
class Inputs:
    """The left column: the model, the generation's settings and the Generate/Stop row."""

    model: gr.Dropdown
    model_note: gr.Markdown
    prompt: gr.Textbox
    negative: gr.Textbox
    mode: gr.Radio
    scale: gr.Slider
    steps: gr.Slider
    n_images: gr.Slider
    scheduler: gr.Radio
    seed: gr.Number
    view_steps: gr.Textbox
    generate_button: gr.Button
    stop: gr.Button


@dataclass(frozen=True)
class Outputs:
    """The right column, then the sweep, the step view and the measured curve below."""

    status: gr.Markdown
    gallery: gr.Gallery
    info: gr.JSON
    files: gr.File
    sweep_button: gr.Button
    sweep_gallery: gr.Gallery
    step_plot: gr.Plot
    curve_plot: gr.Plot


def build(demo: gr.Blocks) -> list[Binding]:
    gr.Markdown(INTRO)
    with gr.Row():
        i = inputs_column(Controls())
        column = outputs_column()
    o = Outputs(*column, *rows_below())
    explanation(EXPLANATION)
    gr.Examples(EXAMPLES, [i.prompt, i.mode, i.scale], label="Examples (click, then Generate)")
    inside = internals_ui.build_section(demo, i.model)  # inside the model: VAE, latents, cross-attention per word

    binding = Binding(Controls, model=i.model, prompt=i.prompt, negative_prompt=i.negative, mode=i.mode,
                      guidance_scale=i.scale, steps=i.steps, scheduler=i.scheduler, seed=i.seed, n_images=i.n_images,
                      view_steps=i.view_steps, check=Controls.checked, api=Api("guidance", api_args, note=API_NOTE))
    wire(demo, binding, i, o)
    return [binding, inside]  # the tab's controls, then the section's (inside_... in a link)


def inputs_column(default: Controls) -> Inputs:
    with gr.Column(scale=2, min_width=300):
        choices, missing = usable_choices(MODEL_CHOICES)  # only the models that are here
        model = gr.Dropdown(choices, value=compute.EMBEDDED, label="Model", elem_id="guidance-model",
                            info="the same diffusers pipeline loads both")
        model_note = gr.Markdown(compute.model_status(compute.EMBEDDED))
        gr.Markdown(missing, visible=bool(missing), elem_classes="gp-missing-model")
        prompt = gr.Textbox(default.prompt, label="Prompt c", info="empty = unconditional ε(z_t, ∅)",
                            elem_id="guidance-prompt")
        negative = gr.Textbox("", label="Negative prompt", info="replaces ∅ in classifier-free guidance")
        mode = gr.Radio([(compute.MODE_LABELS[m], m) for m in compute.MODES], value=default.mode,
                        label="Guidance mode", info="classifier-free: ε_u + s(ε_c − ε_u); classifier: "
                        "ε_u − s√(1−ᾱ_t)∇log p(y|z_t); none: ε_c")
        scale = gr.Slider(0, compute.MAX_SCALE, value=default.guidance_scale, step=0.5,
                          label="Guidance scale s", info="0 = unconditional, 1 = no guidance, >1 = guided",
                          elem_id="guidance-scale")
        with gr.Row():
            steps = gr.Slider(1, compute.MAX_STEPS, value=default.steps, step=1, label="Steps",
                              info="number of denoising steps t_N → t_0", elem_id="guidance-n-steps")
            n_images = gr.Slider(1, compute.MAX_IMAGES, value=default.n_images, step=1,
                                 label="Images", info="B images, one noise z_T each", elem_id="guidance-n-images")
        scheduler = gr.Radio([(compute.SCHEDULER_LABELS[n], n) for n in compute.SCHEDULER_NAMES],
                             value=default.scheduler, label="Scheduler", info="ODE solver for the reverse process")
        seed = gr.Number(default.seed, label="Seed", info="fixes z_T: same seed, same images", precision=0,
                         minimum=0, maximum=compute.MAX_SEED)
        view_steps = gr.Textbox(default.view_steps, label="Steps to show in the step view",
                                info="e.g. 1, 8, 15, 25 (empty: four spread over the run)")
        with gr.Row(elem_classes="gp-primary-row"):  # sticks to the screen's bottom (playground/theme.py CSS)
            generate_button = gr.Button("Generate", variant="primary")
            stop = gr.Button("Stop", variant="stop", elem_id="guidance-stop")
    return Inputs(model, model_note, prompt, negative, mode, scale, steps, n_images, scheduler, seed, view_steps,
                  generate_button, stop)


def outputs_column() -> tuple[gr.Markdown, gr.Gallery, gr.JSON, gr.File]:
    """Status, images, settings and downloads, right of the controls."""
    with gr.Column(scale=3, min_width=320):
        status = gr.Markdown(elem_id="guidance-status")
        gallery = gr.Gallery(label="Images", columns=4, height=300, object_fit="contain",
                             format="png", elem_id="guidance-gallery")
        with gr.Accordion("Settings and timings (JSON)", open=False):
            info = gr.JSON(label="settings and timings")
        files = gr.File(label="Download images (PNG) and settings (JSON)", file_count="multiple")
    return status, gallery, info, files


def rows_below() -> tuple[gr.Button, gr.Gallery, gr.Plot, gr.Plot]:
    """Below the controls' row: the sweep, the step view and the measured curve."""
    with gr.Row(equal_height=True):
        sweep_button = gr.Button("Sweep s = 0, 1, 3, 5, 7.5, 10, 15 (same seed, one batch)", scale=1)
        gr.Markdown("The **sweep** runs the first image's seed at seven scales in one batched call: "
                    "read it left to right to see what *s* does to one picture.", scale=3)
    sweep_gallery = gr.Gallery(label="Sweep over s", columns=7, rows=1, height=230,
                               object_fit="contain", format="png", elem_id="guidance-sweep")
    step_plot = gr.Plot(label="Step view: what guidance adds at each step (first image)",
                        elem_id="guidance-steps")
    gr.Markdown("#### Measured on the embedded model: prompt adherence and diversity against s")
    curve_plot = gr.Plot(label="Adherence and diversity vs s")
    return sweep_button, sweep_gallery, step_plot, curve_plot


def wire(demo: gr.Blocks, binding: Binding, i: Inputs, o: Outputs) -> None:
    on_generate, on_sweep = binding.event(generate), binding.event(sweep)
    outputs = [o.gallery, o.info, o.step_plot, o.status, o.files]
    for trigger in (i.generate_button.click, i.prompt.submit, i.scale.release):
        trigger(on_generate, binding.inputs, outputs, api_visibility="private", **model_event())
    o.sweep_button.click(on_sweep, binding.inputs, [o.sweep_gallery, o.status], api_visibility="private",
                         **model_event())
    STOP.wire(i.stop)
    i.model.change(on_model_change, i.model, i.model_note, api_visibility="private")
    build_api()
    # The precomputed opening views are sent on page load, not at build (app start-up budget).
    opening = Opening(opening_views, [o.status, o.gallery, o.info, o.sweep_gallery, o.step_plot, o.curve_plot])
    binding.on_open(opening, on_generate, outputs, **model_event())  # a link to other settings generates them


@functools.lru_cache(maxsize=1)
def opening_views() -> tuple:
    """What the tab shows before anyone clicks (cached per process; no model runs)."""
    initial = initial_values()
    return (initial["status"], initial["gallery"], initial["info"], initial["sweep"], initial["steps"],
            figures.curve(compute.load_curve()))


def build_api() -> None:
    """The ``guidance`` endpoint: simple types in, validated in compute; a gallery and a JSON out."""
    with gr.Column(visible=False):
        api_inputs = [gr.Textbox(label="prompt"), gr.Textbox(label="mode"), gr.Number(label="guidance_scale"),
                      gr.Number(label="n_images"), gr.Number(label="steps"), gr.Number(label="seed")]
        api_outputs = [gr.Gallery(label="images", format="png"), gr.JSON(label="settings and timings")]
        trigger = gr.Button("guidance API")
    trigger.click(api_guidance, api_inputs, api_outputs, api_name="guidance", **model_event())


if __name__ == "__main__":
    from playground import theme

    with gr.Blocks(title=TAB.title) as app:
        build(app)
    app.queue().launch(**theme.launch_kwargs())
