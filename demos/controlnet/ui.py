"""ControlNet tab: sketch an outline, and a ControlNet steers the diffusion model to fill it.

Run alone with ``python -m demos.controlnet.ui``. Imports no torch: generation imports
``demos.controlnet.model`` (torch, diffusers) when it first runs.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, fields, replace

import gradio as gr
import numpy as np

from demos.controlnet import TAB
from demos.controlnet import compute
from playground import plots, tempfiles
from playground.models import usable_choices
from playground.settings import ASSETS_DIR
from playground.ui_helpers import (Api, Binding, Opening, File, StopButtons, api_errors, explanation, model_event,
                                   run_steps, user_errors)

STOP = StopButtons()  # this tab's Stop button (one flag per session)

EXAMPLES_DIR = ASSETS_DIR / "examples" / "controlnet"
CANVAS, UPLOAD = "Canvas", "Uploaded image"
MODEL_LABELS = [("Shapes World (embedded, 64x64)", compute.EMBEDDED),
                ("SD 1.5 + scribble ControlNet (512x512)", compute.SD15_SCRIBBLE)]
EXAMPLES = [("circle.png", "a red circle"), ("square.png", "a blue square"),
            ("triangle.png", "a yellow triangle"), ("wobbly_circle.png", "a green circle"),
            ("open_triangle.png", "a purple triangle")]
DEFAULT_EXAMPLE = EXAMPLES_DIR / EXAMPLES[0][0]

# Gradio's Sketchpad opens (and returns after "clear") with no tool selected, so the canvas ignores
# the mouse until the user finds the brush. This keeps the brush selected whenever the canvas is
# visible and neither brush nor eraser is (browser-side only, no server call).
BRUSH_READY_JS = """
() => {
  setInterval(() => {
    const root = document.getElementById('controlnet-sketch');
    if (!root || root.offsetParent === null) return;
    const brush = root.querySelector('button[aria-label="Brush"]');
    const tools = root.querySelectorAll('button[aria-label="Brush"], button[aria-label="Erase"]');
    if (brush && ![...tools].some((b) => b.classList.contains('highlight'))) brush.click();
  }, 300);
}
"""

INTRO = """
### Draw an outline, and watch a diffusion model fill it
A **ControlNet** is a trainable copy of a diffusion UNet's encoder that reads your sketch and adds
its features into the frozen UNet through *zero-initialised* convolutions. Draw one closed outline
(a circle, square or triangle) on the canvas, pick a colour in the prompt, and press **Generate**.
Turn the conditioning scale $s$ down to 0 and the model ignores your sketch; turn it up and the
shape follows your lines.
"""

EXPLANATION = """
**ControlNet** (Zhang, Rao & Agrawala 2023). For every skip connection $k$ of the UNet and for
its middle block, the frozen UNet's feature $F_k(x)$ becomes

$$y_k = F_k(x) + s \\cdot Z_k\\big(F'_k(x + Z_0(E(c_f)))\\big)$$

$F'$ is a trainable copy of the UNet's encoder and middle block (`ControlNetModel.from_unet`),
$E$ a small convolutional encoder of the condition image $c_f$ (your sketch, 64 x 64 -> the 8 x 8
latent grid), $Z$ are 1x1 convolutions **initialised to zero**, and $s$ is the conditioning
scale. At the start of training every $Z$ is 0, so the network *is* the frozen model and training
cannot damage it; only the copy learns, with the usual loss
$\\lVert \\epsilon - \\epsilon_\\theta(z_t, t, c, c_f) \\rVert^2$.

**Control window.** The residuals are added only on denoising steps $i$ with
$\\text{start} \\le i/N$ and $(i+1)/N \\le \\text{end}$. Try narrowing it: with this model a
control that ends at 0.3 leaves the shape loose (the outline is filled at about 0.7), while a control
over only the second half still fills it; starting after 0.7 loses it.

**Classifier-free guidance** works as usual on top:
$\\hat\\epsilon = \\epsilon(z_t, \\varnothing) + w\\,(\\epsilon(z_t, c) - \\epsilon(z_t, \\varnothing))$, the
ControlNet feeding both branches.

**What the model receives.** Your dark strokes on light paper become the *ink map*
$c_f = (\\text{paper} - \\text{grey}) / 255$, area-averaged to 64 x 64 (512 x 512 for SD 1.5)
and stretched so the darkest stroke is 1: white strokes on black, the convention scribble
ControlNets use. Transparent pixels count as paper, non-square images are padded with paper.

**The residual map** shows $\\lVert s\\, Z_k(\\cdot) \\rVert_{\\text{RMS}}$ for each block $k$ and
step: what the zero convolutions learned to add. Outside the control window it is exactly 0.

The embedded model is trained by this project on Shapes World sketches (`demos/controlnet/train.py`)
on top of the Guidance tab's 3M-parameter latent diffusion model; it knows the words
*a, red, green, blue, yellow, purple, orange, circle, square, triangle*.
"""


# ---------------------------------------------------------------------------------------------
# Formatting


def residual_figure(rms: np.ndarray, block_names: list[str]):
    """Heatmap of the residual RMS (N steps, K blocks): blocks as rows, denoising steps as columns."""
    rms = np.asarray(rms, dtype=float)
    fig = plots.figure("What the ControlNet adds: RMS of s·Z_k(·) per UNet block and step",
                       "denoising step i", "", height=330)
    fig.add_trace(plots.heatmap_trace(np.arange(1, rms.shape[0] + 1), block_names, rms.T,
                                      name="RMS", colorscale="Magma"))
    fig.update_layout(margin={"l": 150, "r": 20, "t": 50, "b": 45})
    return fig


def empty_residual_figure():
    fig = plots.figure("What the ControlNet adds (press Generate)", "denoising step i", "", height=330)
    fig.add_annotation(text="no generation yet", showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    return fig


def result_picture(image: np.ndarray, condition: np.ndarray, show_overlay: bool) -> np.ndarray:
    """The generated image, with the sketch drawn over it if asked."""
    return compute.overlay(image, condition, size=max(256, image.shape[0])) if show_overlay else image


def summary_file(summary: dict) -> str:
    """The JSON summary written to a temporary file for download."""
    path = tempfiles.output_folder("controlnet_") / "controlnet.json"
    path.write_text(json.dumps(summary, indent=2))
    return str(path)


# ---------------------------------------------------------------------------------------------
# Events


@dataclass(frozen=True)
class Controls(compute.ControlParams):
    """The tab's settings: a generation's ``ControlParams``, where the condition comes from and the
    overlay. The drawing and the upload themselves are images: inputs of the events, not settings."""

    source: str = CANVAS  # CANVAS or UPLOAD
    show_overlay: bool = True

    def params(self) -> compute.ControlParams:
        return compute.ControlParams(**{f.name: getattr(self, f.name) for f in fields(compute.ControlParams)})

    def checked(self) -> "Controls":
        compute.validate(self.params())
        compute.check_choice("condition from", self.source, [CANVAS, UPLOAD])
        return self


EXAMPLE_SKETCH = "assets/examples/controlnet/circle.png"  # the snippet's file: yours instead


def api_args(c: Controls) -> dict:
    return {"sketch": File(EXAMPLE_SKETCH), "prompt": c.prompt, "conditioning_scale": c.conditioning_scale,
            "guidance_scale": c.guidance_scale, "steps": c.steps, "seed": c.seed}


API_NOTE = ("the endpoint always runs the embedded model with control over every step; the sketch is a "
            "file: pass your own (drawings and uploads are not in the link)")


def denoising(work, progress, desc: str, stop):
    """``result = yield from denoising(...)``: ``work(on_step, should_stop)`` step-wise (``run_steps``, so
    Stop and a closed tab end it within a step); nothing changes on the page until the result."""
    def each(step):
        progress((step.index, step.total), desc=desc)
        return gr.skip()  # one skip leaves every output as it is

    return (yield from run_steps(work, stop, each))


def generate_drawn(c: Controls, sketch, upload, request: gr.Request = None, progress=gr.Progress()):
    """The Generate button (``binding.event(generate_drawn, extra=[sketch, upload])``): the outline
    of the chosen source, the canvas or the upload."""
    yield from generate(c, upload if c.source == UPLOAD else sketch, request, progress)


def generate_example(c: Controls, upload, request: gr.Request = None, progress=gr.Progress()):
    """A clicked example (``binding.event(generate_example, extra=[upload])``): generated at once from
    the outline it put in the Upload tab (which is then shown), whatever the canvas holds."""
    yield from generate(replace(c, source=UPLOAD), upload, request, progress)


def show_upload_tab(upload):
    """An outline in the Upload tab (an example clicked, a file dropped): that tab is shown, not
    the Draw canvas it is not on."""
    return gr.Tabs(selected="upload") if upload else gr.skip()


def link_event(binding: Binding):
    """What opening a link to other settings shows: those settings on the default outline (the page's
    upload when it opens). A drawing is not in a link: with the canvas chosen there is nothing to run."""

    def on_link(values: dict, request: gr.Request = None, progress=gr.Progress()):
        c = binding.params(values)
        if c.source != UPLOAD or not DEFAULT_EXAMPLE.exists():
            gr.Info("A link carries the settings, not the drawing: draw an outline and press Generate.")
            return
        yield from generate(c, str(DEFAULT_EXAMPLE), request, progress)

    return on_link


def generate(c: Controls, sketch, request: gr.Request = None, progress=gr.Progress()):
    """The image (shown as soon as it is done), then the same seed at every conditioning scale."""
    progress(0, desc="loading the model")
    params, show_overlay = c.params(), c.show_overlay
    stop = STOP.start(request)
    result = yield from denoising(lambda on_step, should_stop: compute.generate(sketch, params, on_step, should_stop),
                                  progress, "denoising", stop)
    if stop.is_set():  # a half-denoised image is noise: keep the page as it was
        gr.Info("Stopped: the last finished image stays on the page.")
        yield gr.skip()
        return
    summary = result.summary()
    yield (compute.condition_picture(result.condition, max(256, result.condition.shape[0])),
           result_picture(result.image, result.condition, show_overlay),
           residual_figure(result.residual_rms, result.block_names), summary, summary_file(summary),
           (result.image, result.condition), gr.skip())
    sweep = yield from denoising(lambda on_step, should_stop: compute.sweep(sketch, params, compute.SWEEP_SCALES,
                                                                            on_step, should_stop),
                                 progress, "conditioning-scale sweep", stop)
    if not stop.is_set():
        yield (*[gr.skip()] * 6, [(image, f"s = {s:g}") for s, image in sweep])


@user_errors
def redraw_overlay(shown, show_overlay):
    """Overlay on or off without running the model again: ``shown`` is the session's last
    (image, c_f), kept on the server (no picture comes back from the page to be decoded)."""
    if shown is None:
        return gr.skip()
    image, condition = shown
    return result_picture(image, condition, show_overlay)


@api_errors
def controlnet_api(sketch, prompt, conditioning_scale, guidance_scale, steps, seed):
    """The embedded model on one sketch file: (image 64x64, JSON with settings and timings).

    Step-wise, so a client's ``/cancel`` stops the run within one step."""
    params = compute.ControlParams(prompt=prompt, conditioning_scale=conditioning_scale,
                                   guidance_scale=guidance_scale, steps=steps, seed=seed)
    result = yield from run_steps(lambda on_step, should_stop: compute.generate(sketch, params, on_step, should_stop))
    yield result.image, result.summary()


# ---------------------------------------------------------------------------------------------
# Layout


def build_inputs() -> dict:
    """The left column: canvas / upload, prompt and the sliders."""
    c = {}
    with gr.Tabs(selected="upload" if DEFAULT_EXAMPLE.exists() else "draw",
                 elem_id="controlnet-sketch-tabs") as c["sketch_tabs"]:  # the tab the condition comes from
        with gr.Tab("Draw", id="draw"):
            c["sketch"] = gr.Sketchpad(
                label="Sketch an outline (brush ready: just draw)", canvas_size=(256, 256), fixed_canvas=True,
                type="numpy", image_mode="RGBA", layers=False, height=340, elem_id="controlnet-sketch",
                brush=gr.Brush(default_size=2, colors=["#000000"], color_mode="fixed"))
        with gr.Tab("Upload", id="upload"):
            c["upload"] = gr.Image(label="Upload an outline (dark strokes on light paper, any size)",
                                   type="filepath", image_mode=None, sources=["upload", "clipboard"],
                                   value=str(DEFAULT_EXAMPLE) if DEFAULT_EXAMPLE.exists() else None, height=300)
    c["source"] = gr.Radio([CANVAS, UPLOAD], value=UPLOAD if DEFAULT_EXAMPLE.exists() else CANVAS,
                           label="Condition from", info="c_f: the canvas drawing or the uploaded image "
                           "(switches by itself when you draw or upload)")
    c["prompt"] = gr.Textbox(value="a red circle", label="Prompt", elem_id="controlnet-prompt",
                             info="c: the text; the embedded model knows a, red, green, blue, yellow, purple, "
                                  "orange, circle, square, triangle")
    c["scale"] = gr.Slider(0, compute.MAX_CONDITIONING, value=1.0, step=0.05, label="Conditioning scale",
                           info="s in F(x) + s·Z(F'(x + Z(c_f))): 0 ignores the sketch")
    with gr.Row():
        c["start"] = gr.Slider(0, 1, value=0.0, step=0.05, label="Control start",
                               info="first fraction i/N of the steps with control")
        c["end"] = gr.Slider(0, 1, value=1.0, step=0.05, label="Control end",
                             info="last fraction (i+1)/N of the steps with control")
    c["guidance"] = gr.Slider(0, compute.MAX_GUIDANCE, value=5.0, step=0.5, label="Guidance scale",
                              info="w in eps(z,∅) + w·(eps(z,c) − eps(z,∅)); 1 = no guidance")
    with gr.Row():
        c["steps"] = gr.Slider(1, compute.MAX_STEPS, value=25, step=1, label="Steps", info="N DDIM steps",
                               elem_id="controlnet-steps")
        c["seed"] = gr.Number(value=0, minimum=0, maximum=compute.MAX_SEED, step=1, label="Seed",
                              info="fixes the initial noise z_T")
    choices, missing = usable_choices(MODEL_LABELS)  # only the models that are here
    c["model"] = gr.Dropdown(choices, value=compute.EMBEDDED, label="Model", elem_id="controlnet-model",
                             info="SD 1.5 needs its weights in the Hugging Face cache (see the Home tab)")
    gr.Markdown(missing, visible=bool(missing), elem_classes="gp-missing-model")
    return c


OPENING = ("condition", "result", "sweep", "residuals", "details", "shown")  # the outputs set on page load


def default_values() -> dict:
    """What the outputs show when the tab opens: the saved default view, or placeholders."""
    view = compute.load_default_view()
    if view is None:
        return {"condition": None, "result": None, "sweep": None, "residuals": empty_residual_figure(),
                "details": None, "shown": None}
    summary = {k: view[k] for k in ("model", "settings", "timings_s", "residual_rms_mean")}
    return {"condition": compute.condition_picture(view["condition"]),
            "result": result_picture(view["image"], view["condition"], True),
            "sweep": [(image, f"s = {s:g}") for s, image in view["sweep"]],
            "residuals": residual_figure(view["residual_rms"], view["block_names"]),
            "details": summary, "shown": (view["image"], view["condition"])}


@functools.lru_cache(maxsize=1)
def opening_views() -> tuple:
    """The saved default view, in ``OPENING``'s order: sent on page load, not at build (the app's
    start-up budget: it decodes images and draws a plot); cached per process."""
    d = default_values()
    return tuple(d[k] for k in OPENING)


def build_outputs() -> dict:
    o = {}
    with gr.Row():  # captions above the pictures: a label badge would cover their top rows
        with gr.Column(min_width=200):
            gr.Markdown("**c_f**: what the ControlNet receives")
            o["condition"] = gr.Image(label="c_f: what the ControlNet receives", show_label=False,
                                      height=256, interactive=False, format="png", elem_id="controlnet-condition",
                                      buttons=["download"])
        with gr.Column(min_width=200):
            gr.Markdown("**Generated image**")
            o["result"] = gr.Image(label="Generated image", show_label=False, height=256,
                                   interactive=False, format="png", elem_id="controlnet-result",
                                   buttons=["download", "fullscreen"])
    o["overlay"] = gr.Checkbox(value=True, label="Overlay the sketch", info="draw c_f's strokes over the result")
    o["sweep"] = gr.Gallery(label="Same seed, conditioning scale s = 0, 0.5, 1, 1.5, 2", columns=5,
                            rows=1, height=200, object_fit="contain", format="png")
    o["residuals"] = gr.Plot(label="ControlNet residuals")
    with gr.Accordion("Settings and timings (JSON)", open=False):
        o["details"] = gr.JSON(label="settings and timings", elem_id="controlnet-details")
    o["download"] = gr.File(label="Download settings, timings and residuals (JSON)", interactive=False)
    o["shown"] = gr.State(None)  # (image without overlay, c_f) of what the page shows
    return o


def build(demo: gr.Blocks) -> Binding:
    gr.Markdown(INTRO, latex_delimiters=[{"left": "$", "right": "$", "display": False}])
    with gr.Row():
        with gr.Column(scale=1):
            c = build_inputs()
            with gr.Row(elem_classes="gp-primary-row"):  # sticks to the screen's bottom (playground/theme.py CSS)
                generate = gr.Button("Generate", variant="primary")
                stop = gr.Button("Stop", variant="stop", elem_id="controlnet-stop")
        with gr.Column(scale=1):
            o = build_outputs()
    existing = [[str(EXAMPLES_DIR / name), prompt] for name, prompt in EXAMPLES if (EXAMPLES_DIR / name).exists()]
    example_set = (gr.Examples(existing, inputs=[c["upload"], c["prompt"]], label="Example outlines (click one)",
                               elem_id="controlnet-examples") if existing else None)
    explanation(EXPLANATION)
    binding = wire(demo, c, o, generate, stop)
    if example_set is not None:  # a clicked example runs (it showed the old image, from the hidden tab)
        outputs = [o["condition"], o["result"], o["residuals"], o["details"], o["download"], o["shown"], o["sweep"]]
        example_set.load_input_event.then(binding.event(generate_example, extra=[c["upload"]], name="on_example"),
                                          binding.inputs_with(c["upload"]),
                                          outputs, api_visibility="private", **model_event())
    return binding


def wire(demo: gr.Blocks, c: dict, o: dict, generate: gr.Button, stop: gr.Button) -> Binding:
    binding = Binding(Controls, prompt=c["prompt"], conditioning_scale=c["scale"], control_start=c["start"],
                      control_end=c["end"], guidance_scale=c["guidance"], steps=c["steps"], seed=c["seed"],
                      model=c["model"], source=c["source"], show_overlay=o["overlay"], check=Controls.checked,
                      api=Api("controlnet", api_args, note=API_NOTE),
                      note="The link carries the settings, not your drawing or upload: those stay on this page.")
    run_generate = binding.event(generate_drawn, extra=[c["sketch"], c["upload"]], name="run_generate")
    outputs = [o["condition"], o["result"], o["residuals"], o["details"], o["download"], o["shown"], o["sweep"]]
    generate.click(run_generate, inputs=binding.inputs_with(c["sketch"], c["upload"]), outputs=outputs,
                   api_visibility="private", **model_event())
    STOP.wire(stop)  # ends the run within one denoising step
    o["overlay"].change(redraw_overlay, inputs=[o["shown"], o["overlay"]], outputs=o["result"],
                        api_visibility="private")
    demo.load(None, js=BRUSH_READY_JS)
    opening = Opening(opening_views, [o[k] for k in OPENING])
    binding.on_open(opening, link_event(binding), outputs, **model_event())
    c["sketch"].input(None, js=f"() => '{CANVAS}'", outputs=c["source"])
    c["upload"].change(None, js=f"(x) => x ? '{UPLOAD}' : '{CANVAS}'", inputs=c["upload"], outputs=c["source"])
    c["upload"].change(show_upload_tab, c["upload"], c["sketch_tabs"], queue=False, api_visibility="private")
    build_api()
    return binding


def build_api() -> None:
    """The public endpoint: a sketch file and five numbers in, the 64x64 image and JSON out."""
    with gr.Row(visible=False):
        sketch = gr.File(label="sketch", type="filepath")
        prompt = gr.Textbox(label="prompt")
        scale, guidance = gr.Number(label="conditioning_scale"), gr.Number(label="guidance_scale")
        steps, seed = gr.Number(label="steps"), gr.Number(label="seed")
        image, summary = gr.Image(label="image", format="png"), gr.JSON(label="summary")
        button = gr.Button("api")
    button.click(controlnet_api, inputs=[sketch, prompt, scale, guidance, steps, seed], outputs=[image, summary],
                 api_name="controlnet", **model_event())


if __name__ == "__main__":
    from playground import theme

    with gr.Blocks(title=TAB.title) as demo:
        build(demo)
    demo.queue().launch(**theme.launch_kwargs())
