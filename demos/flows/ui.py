"""Flows tab: watch a Gaussian's grid and density bend, layer by layer, into a target.

Run alone with ``python -m demos.flows.ui``. Imports no torch: training imports
``demos.flows.fit`` on first use.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass

import gradio as gr
import numpy as np

from demos.flows import compute, figures
from playground import settings, tempfiles
from playground.ui_helpers import Api, Binding, Opening, StopButtons, api_errors, explanation, model_event, user_errors
from demos.flows import TAB


STOP = StopButtons()  # this tab's Stop button (one flag per session)

CUSTOM = "custom points"
FLOW_LABELS = [("RealNVP (affine coupling)", "realnvp"), ("planar", "planar"),
               ("flow matching (continuous, straight paths)", "flow_matching")]

INTRO = """
### Flows: warping a Gaussian into a density
A normalizing flow is a chain of invertible maps $x = f_K \\circ \\dots \\circ f_1(z)$ from a Gaussian $z$;
the change of variables gives its **exact** density. Pick a target, train a flow live on the CPU,
then drag **Layer k** to watch the base grid and density bend into the data, layer by layer
(for the continuous flow, instant by instant).
Flow matching's ODE is a probability-flow ODE: the same kind of deterministic path from noise to
data that the **SDE vs ODE** tab integrates from an exact score.
"""

EXPLANATION = """
**Change of variables.** With $z = f^{-1}(x)$ and $z_k = f_k(z_{k-1})$,
$$\\log p(x) = \\log \\mathcal N(z; 0, I) + \\log\\left|\\det \\frac{\\partial z}{\\partial x}\\right|
= \\log \\mathcal N(z; 0, I) - \\sum_{k=1}^K \\log\\left|\\det \\frac{\\partial z_k}{\\partial z_{k-1}}\\right|.$$
The heatmaps show $p_k$, the density after the first $k$ layers, and its $\\log|\\det \\partial z/\\partial x|$
(red: the flow squeezes volume there, so density piles up; blue: it stretches).
Every flow starts from a Gaussian matched to the data's mean $\\mu$ and spread $\\sigma$ (layer 0).

**Planar** (Rezende & Mohamed 2015): $g(x) = x + \\hat u\\, \\tanh(w^\\top x + b)$, one ridge per layer,
$\\log|\\det| = \\log|1 + \\hat u^\\top w \\tanh'(w^\\top x + b)|$; used here in the normalising direction
$z = g(x)$, and inverted by bisection to draw samples.

**RealNVP** (Dinh et al. 2017): an affine coupling keeps one coordinate and moves the other,
$x_b = z_b\\, e^{s(z_a)} + t(z_a)$, $\\log|\\det| = s(z_a)$; layers alternate $a$ and $b$. Trained by maximum
likelihood, $\\min_\\theta -\\frac1N \\sum_i \\log p_\\theta(x_i)$.

**Flow matching** (Lipman et al. 2023; rectified flow, Liu et al. 2023): learn a velocity $v_\\theta(x, t)$ on
straight paths $x_t = (1-t) z + t x$ by $\\min_\\theta \\mathbb E\\, |v_\\theta(x_t, t) - (x - z)|^2$, then integrate
$dx/dt = v_\\theta(x, t)$ from $t = 0$ to $1$ (RK4). Its density follows
$\\frac{d}{dt} \\log p_t(x_t) = -\\nabla\\cdot v_\\theta(x_t, t)$ (exact divergence: two backward passes in 2-D).
*Layers* are $K$ time slices $[\\frac{k-1}{K}, \\frac kK]$ of one ODE.

**Training keeps the best model**: 20% of the points are held out; every 100 steps the held-out mean
log-likelihood is measured and the best weights are kept, so more steps never give a worse held-out
likelihood. Built-in and analytic sets draw 1,500 points from the seed; for an analytic target the
true density is shown next to the learned one and $\\mathrm{KL}(p\\,\\|\\,p_\\theta)$ is reported.
"""

EXAMPLE_POINTS = json.dumps(np.round(np.concatenate([
    np.random.default_rng(0).normal([-1.5, 0.0], 0.3, (60, 2)),
    np.random.default_rng(1).normal([1.5, 0.0], [0.3, 1.0], (60, 2))]), 2).tolist())

EXAMPLES = [["2_gaussians", "realnvp", 8, 2000, 0], ["two_moons", "flow_matching", 8, 2000, 0],
            ["banana", "planar", 16, 2000, 0], ["8_gaussians", "realnvp", 16, 3000, 0],
            ["ring", "flow_matching", 8, 2000, 0]]


# ----------------------------------------------------------------------------- inputs -> params
@dataclass(frozen=True)
class Controls:
    """The tab's controls: ``FlowParams`` with the data as chosen (a name, or ``CUSTOM`` and the points)."""

    data: str = compute.FlowParams.data
    points: str = EXAMPLE_POINTS
    flow: str = compute.FlowParams.flow
    n_layers: int = compute.FlowParams.n_layers
    train_steps: int = compute.FlowParams.train_steps
    seed: int = compute.FlowParams.seed

    def params(self) -> compute.FlowParams:
        """Validated ``FlowParams`` (``ValueError`` naming the field)."""
        return compute.check_params(compute.FlowParams(self.points if self.data == CUSTOM else self.data, self.flow,
                                                       self.n_layers, self.train_steps, self.seed))

    def checked(self) -> "Controls":
        p = self.params()
        compute.load_points(p.data, p.seed)  # a custom set's points are parsed here
        return self


def api_args(c: Controls) -> dict:
    p = c.params()
    return {"data": p.data, "flow": p.flow, "n_layers": p.n_layers, "train_steps": p.train_steps, "seed": p.seed}


# ----------------------------------------------------------------------------- formatting
def layer_figures(result: compute.FlowResult, k: int) -> tuple:
    """What moving the layer slider re-renders."""
    return figures.grid_figure(result, k), figures.density_figure(result, k), figures.log_det_figure(result, k)


N_PLOTS = 6  # what all_figures returns


def all_figures(result: compute.FlowResult, k: int) -> tuple:
    return (*layer_figures(result, k), figures.target_figure(result), figures.samples_figure(result),
            figures.loss_figure(result.history, result.params.flow))


def summary(result: compute.FlowResult, cached: bool) -> str:
    p, h = result.params, result.history
    kl = "" if result.kl_true_learned is None else f" · KL(true ‖ learned) ≈ **{result.kl_true_learned:.3f}** nats"
    stopped = f" · ⚠ {h.stopped}" if h.stopped else ""
    return (f"**{figures.FLOW_NAMES[p.flow]}, {p.n_layers} layers, {p.train_steps} steps** trained in "
            f"{result.seconds:.1f} s{' (from cache)' if cached else ''} · mean log-likelihood: train "
            f"**{result.train_ll:.3f}**, held-out **{result.heldout_ll:.3f}** (best step {h.best_step}){kl}{stopped}")


def layer_slider(result: compute.FlowResult) -> dict:
    n_layers = result.n_stages - 1
    label = "Time slice k (t = k/K)" if result.params.flow == "flow_matching" else "Layer k"
    return gr.update(maximum=max(n_layers, 1), value=n_layers, label=label, interactive=result.trained)


def download_file(result: compute.FlowResult) -> str:
    """The API's JSON for what is shown, as a file."""
    path = tempfiles.output_folder("flow_") / "flow.json"
    path.write_text(json.dumps(compute.api_output(result)))
    return str(path)


# ----------------------------------------------------------------------------- callbacks
def preview(c: Controls):
    """Data changed: show it and the base Gaussian (no training, no torch)."""
    if c.data == CUSTOM and not (c.points or "").strip():
        return (gr.update(visible=True), *[gr.skip()] * 10)
    result = compute.untrained(c.params())
    return (gr.update(visible=c.data == CUSTOM), *all_figures(result, 0),
            gr.update(maximum=1, value=0, interactive=False, label="Layer k"), None,
            "Press **Train** to fit a flow to these points.", gr.update(visible=False))


def train_views(c: Controls, request: gr.Request = None, progress=gr.Progress()):
    """Train (streaming the loss curve), then draw every view at the last layer. Stop ends the
    training at its next evaluation and keeps the page as it was."""
    params = c.params()
    cached = compute.CACHE.get(compute.cache_key(params, compute.load_points(params.data, params.seed)[0]))
    stop = STOP.start(request)
    for item in compute.fit_iter(params):
        if stop.is_set() and isinstance(item, compute.TrainingUpdate):  # leaving closes fit_iter: training ends
            yield (*[gr.skip()] * 8, f"Stopped at step {item.step} of {item.total}: press **Train** to "
                   "start again.", gr.skip())
            return
        if isinstance(item, compute.TrainingUpdate):
            progress((item.step, item.total), desc=item.message, unit="steps")
            yield (*[gr.skip()] * 5, figures.loss_figure(item.history, params.flow), gr.skip(), gr.skip(),
                   f"Training… step {item.step} of {item.total}", gr.skip())
    result = item
    yield (*all_figures(result, result.n_stages - 1), layer_slider(result), params,
           summary(result, cached is not None), gr.update(value=download_file(result), visible=True))


@user_errors
def on_layer(k, params, progress=gr.Progress()):
    """Re-render one layer from the cache (retrains, deterministically, if it was evicted)."""
    if params is None:
        return gr.skip(), gr.skip(), gr.skip()
    for result in compute.fit_iter(params):
        if isinstance(result, compute.TrainingUpdate):
            progress((result.step, result.total), desc="the model left the cache: retraining")
    k = int(min(max(k, 0), result.n_stages - 1))
    return layer_figures(result, k)


@api_errors
def flow_api(data: str, flow: str, n_layers: int, train_steps: int, seed: int) -> dict:
    """Train a flow (or reuse a cached one) and return its log-density on a grid.

    data: a built-in set or analytic target name, or a JSON list of [x, y] points;
    flow: realnvp | planar | flow_matching. Returns x, y (grid axes), log_density
    (len(y) rows x len(x) columns, natural log, data coordinates), train_log_likelihood,
    heldout_log_likelihood and more (see the Flows section of README.md). Yields between
    training evaluations, so a client's ``/cancel`` stops the training there."""
    for item in compute.fit_iter(compute.FlowParams(data, flow, n_layers, train_steps, seed)):
        if isinstance(item, compute.TrainingUpdate):
            yield None  # an empty progress message; the last message is the answer
    yield compute.api_output(item)


def on_flow(flow, n_layers):
    """The continuous flow allows fewer time slices (each one costs an ODE solve per view)."""
    maximum = compute.MAX_LAYERS[flow]
    return gr.update(maximum=maximum, value=min(int(n_layers), maximum))


# ----------------------------------------------------------------------------- layout
def controls() -> Binding:
    names = compute.dataset_names() + [CUSTOM]
    data = gr.Dropdown(names, value=compute.FlowParams.data, label="Target data p(x)", elem_id="flows-data",
                       info="built-in samples, an analytic density (2_gaussians, banana, ring: true log p known), "
                            "or your own points")
    points = gr.Textbox(EXAMPLE_POINTS, label="Your points x", lines=3, max_lines=6, visible=False,
                        info=f"JSON [[x, y], ...] or CSV x,y lines; {compute.MIN_POINTS} to 10,000 points")
    flow = gr.Radio(FLOW_LABELS, value=compute.FlowParams.flow, label="Flow f",
                    info="planar and RealNVP: discrete layers f_k; flow matching: an ODE dx/dt = v(x, t)")
    n_layers = gr.Slider(1, compute.MAX_LAYERS["realnvp"], compute.FlowParams.n_layers, step=1,
                         label="Layers K", elem_id="flows-layers", info="x = f_K ∘ … ∘ f_1(z); time slices for flow matching (≤ 16)")
    train_steps = gr.Slider(50, compute.MAX_TRAIN_STEPS, compute.FlowParams.train_steps, step=50,
                            label="Training steps", elem_id="flows-steps", info="Adam steps (batch 256) on −log p_θ(x), or on |v_θ − (x − z)|²")
    seed = gr.Number(compute.FlowParams.seed, precision=0, minimum=0, maximum=compute.MAX_SEED,
                     label="Seed", info="seeds the data, the held-out split, θ's init and the samples z")
    return Binding(Controls, data=data, points=points, flow=flow, n_layers=n_layers, train_steps=train_steps,
                   seed=seed, check=Controls.checked, api=Api("flow", api_args))


TIMING_FILE = settings.ASSETS_DIR / "flows_timing.json"  # written by ``python benchmarks/flows.py --write``


def train_hint() -> str:
    """What pressing Train costs, in the benchmark's measured words (never a guess)."""
    try:
        t = json.loads(TIMING_FILE.read_text())
        measured = (f"{t['seconds']:.0f} s on {t['cores']} CPU cores at load {t['load_average']:g} when "
                    f"`benchmarks/flows.py` last ran ({t['measured']}); longer on a busier machine")
        shape = f"{t['n_layers']} RealNVP layers × {t['train_steps']:,} steps"
    except (OSError, ValueError, KeyError, TypeError):
        shape, measured = "8 RealNVP layers × 2,000 steps", "time it here with `python benchmarks/flows.py`"
    return f"Press **Train** to fit a flow ({shape}: {measured})."


def build(demo: gr.Blocks) -> Binding:
    gr.Markdown(INTRO, latex_delimiters=[{"left": "$", "right": "$", "display": False}])
    with gr.Row():
        with gr.Column(scale=1, min_width=280):
            binding = controls()
            with gr.Row(elem_classes="gp-primary-row"):  # sticks to the screen's bottom (playground/theme.py CSS)
                train = gr.Button("Train", variant="primary")
                stop = gr.Button("Stop", variant="stop", elem_id="flows-stop")
            status = gr.Markdown(train_hint(), elem_id="flows-status")
            download = gr.DownloadButton("Download JSON (grid, log p, likelihoods)", visible=False, size="sm")
        with gr.Column(scale=3):
            layer = gr.Slider(0, 1, 0, step=1, label="Layer k", interactive=False, elem_id="flows-layer",
                              info="x_k = f_k ∘ … ∘ f_1(z): 0 is the base Gaussian z, K is the data x")
            plots = []
            for _ in range(N_PLOTS // 2):  # grid, density | log-det, target | samples, loss
                with gr.Row():
                    plots += [gr.Plot(show_label=False, elem_id=f"flows-plot-{len(plots) + i}") for i in range(2)]
    state = gr.State(None)  # the trained run's FlowParams (its key in compute.CACHE)
    c = binding.components
    gr.Examples(EXAMPLES, inputs=[c[k] for k in ("data", "flow", "n_layers", "train_steps", "seed")],
                label="Examples (click, then Train)")
    explanation(EXPLANATION)
    on_train = wire(binding, train, stop, layer, plots, state, status, download)
    # The untrained flow is drawn on page load, not at build (app start-up budget); cached per process.
    opening = Opening(default_figures, list(plots))
    binding.on_open(opening, on_train, [*plots, layer, state, status, download], **model_event())
    return binding


@functools.lru_cache(maxsize=1)
def default_figures() -> tuple:
    """The untrained default flow's views (the tab opens with them drawn)."""
    return all_figures(compute.untrained(compute.FlowParams()), 0)


def wire(binding, train, stop, layer, plots, state, status, download):
    """Connect the controls; returns the Train event's function."""
    c = binding.components
    on_preview, on_train = binding.event(preview), binding.event(train_views)
    preview_out = [c["points"], *plots, layer, state, status, download]
    c["data"].change(on_preview, binding.inputs, preview_out, api_visibility="private")
    c["points"].blur(on_preview, binding.inputs, preview_out, api_visibility="private")
    c["flow"].change(on_flow, [c["flow"], c["n_layers"]], c["n_layers"], api_visibility="private")
    train.click(on_train, binding.inputs, [*plots, layer, state, status, download], api_visibility="private",
                **model_event(), show_progress_on=[status])  # the plots keep the last view (issue 14)
    STOP.wire(stop)
    layer.input(on_layer, [layer, state], plots[:3], api_visibility="private",
                trigger_mode="always_last", show_progress="hidden")
    gr.api(flow_api, api_name="flow", **model_event())
    return on_train


if __name__ == "__main__":
    from playground import theme

    with gr.Blocks(title=TAB.title) as app:
        with gr.Tab(TAB.title, id="flows"):
            build(app)
    app.queue().launch(**theme.launch_kwargs())
