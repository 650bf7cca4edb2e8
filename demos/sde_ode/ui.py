"""The SDE vs ODE tab: layout and wiring only (numbers from ``compute``, figures from ``figures``)."""

from __future__ import annotations

import functools
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass

import gradio as gr
import numpy as np

from demos.common import toy_data
from demos.sde_ode import compute, figures
from playground import settings, tempfiles, validate
from playground.ui_helpers import (Api, Binding, Opening, Cancelled, StopButtons, api_errors, explanation, model_event,
                                   progress_steps, run_steps, user_errors)

STOP = StopButtons()  # this tab's Stop button (one flag per session)


CUSTOM = "custom points"
CANVAS_SIZE, CANVAS_EXTENT = 360, 3.0
DEFAULT = compute.SDEParams(n_samples=1000, n_steps=150)  # drawn at build time: cheap
TIMING_FILE = settings.ASSETS_DIR / "sde_ode_timing.json"  # written by ``python benchmarks/sde_ode.py --write``


def score_info() -> str:
    """The score control's words, with what the learned score costs as the benchmark measured it."""
    text = "exact: closed-form mixture score (memorises the data); learned: a DSM MLP, trained when first chosen"
    try:
        t = json.loads(TIMING_FILE.read_text())
        return text + (f" (that first run took {t['run_seconds']:.0f} s, {t['train_seconds']:.0f} s of it training, on "
                       f"{t['cores']} CPU cores when benchmarks/sde_ode.py last ran; then cached)")
    except (OSError, ValueError, KeyError, TypeError):
        return text + " (time it here with benchmarks/sde_ode.py; then cached)"


RUN_CACHE_SIZE = 8
_runs: "OrderedDict[compute.SDEParams, compute.Run]" = OrderedDict()  # bounded, under _runs_lock
_runs_lock = threading.Lock()

EXPLANATION = r"""
**Forward SDE** $dx = f(x,t)\,dt + g(t)\,dw$ turns data into noise on $t\in[0,1]$. Song et al. (2021) show it has
a **reverse-time SDE** $dx = [f - g^2\nabla_x\log p_t(x)]\,dt + g\,d\bar w$ and a deterministic
**probability-flow ODE** $dx = [f - \tfrac12 g^2\nabla_x\log p_t(x)]\,dt$ with the *same marginals* $p_t$.
Both start here from the **same noise** $x_T$: the clouds agree at every $t$, single paths do not
(the SDE's are jagged, the ODE's smooth). More generally every member of
$dx = [f - \tfrac{1+\lambda^2}{2} g^2\nabla\log p_t]\,dt + \lambda g\,d\bar w$ has these marginals
($\lambda=0$: ODE, $\lambda=1$: reverse SDE).

| SDE | $f(x,t)$ | $g(t)^2$ | $x(t)\mid x(0)$ | prior |
|---|---|---|---|---|
| VP | $-\tfrac12\beta(t)x$ | $\beta(t)$ | $N(e^{-B/2}x_0,\ (1-e^{-B})I)$ | $N(0,I)$ |
| sub-VP | $-\tfrac12\beta(t)x$ | $\beta(t)(1-e^{-2B})$ | $N(e^{-B/2}x_0,\ (1-e^{-B})^2 I)$ | $N(0,I)$ |
| VE | $0$ | $\frac{d\sigma^2}{dt}$ | $N(x_0,\ (\sigma(t)^2-\sigma_{min}^2) I)$ | $N(0,\sigma_{max}^2 I)$ |

with $\beta(t)=\beta_{min}+t(\beta_{max}-\beta_{min})$ ($\beta_{min}=0.1$, $\beta_{max}=20$), $B(t)=\int_0^t\beta$,
$\sigma(t)=\sigma_{min}(\sigma_{max}/\sigma_{min})^t$ ($\sigma_{min}=0.01$; $\sigma_{max}$ = the data's largest pairwise
distance, the rule that gave the paper's 50 on CIFAR-10).

**Exact score.** For data points $x_i$ the perturbed distribution is the mixture
$p_t = \frac1M\sum_i N(m_t x_i, s_t^2 I)$, so $\nabla\log p_t(x) = \sum_i w_i(x)\,(m_t x_i - x)/s_t^2$ with softmax
weights $w_i \propto e^{-|x-m_t x_i|^2/2s_t^2}$: no training, and the samples collapse onto the data points
(memorisation). It is evaluated fast with an explicit bound ($|\Delta s|\le 2\,\mathrm{tol}\,m_t D/s_t^2$): a Taylor
series at large $t$, nearest neighbours at small $t$, all pairs in between. **Learned score**: a small MLP
trained by denoising score matching, $\min_\theta E\,|\epsilon_\theta(m_t x_0 + s_t\epsilon, t)-\epsilon|^2$,
$s_\theta = -\epsilon_\theta/s_t$ (trained once per data + SDE + seed, then cached).

**Samplers.** Euler-Maruyama $x \leftarrow x - [f - g^2 s]\Delta t + g\sqrt{\Delta t}\,z$; predictor-corrector adds a
Langevin step $x \leftarrow x + \epsilon s + \sqrt{2\epsilon}\,z$ (snr 0.16); the ODE by Euler, Heun (2 NFE per step)
or adaptive RK45 (its NFE is whatever the error control needed). **NFE** = score evaluations.
"""


@dataclass(frozen=True)
class Controls:
    """The tab's controls (defaults: what it opens with): the run's ``SDEParams`` and the two views."""

    data_choice: str = DEFAULT.data
    custom: str = ""
    n_data: int = DEFAULT.n_data
    sde: str = DEFAULT.sde
    score: str = DEFAULT.score
    n_samples: int = DEFAULT.n_samples
    n_steps: int = DEFAULT.n_steps
    seed: int = DEFAULT.seed
    sde_sampler: str = DEFAULT.sde_sampler
    ode_solver: str = DEFAULT.ode_solver
    beta_min: float = DEFAULT.beta_min
    beta_max: float = DEFAULT.beta_max
    sigma_min: float = DEFAULT.sigma_min
    sigma_max: float = DEFAULT.sigma_max
    t_compare: float = 0.5  # the marginals compared at t
    lam: float = 0.5  # the lambda family's member

    def params(self) -> compute.SDEParams:
        data = self.custom if self.data_choice == CUSTOM else self.data_choice
        return compute.SDEParams(data=data or "", n_data=self.n_data, sde=self.sde, score=self.score,
                                 n_samples=self.n_samples, n_steps=self.n_steps, seed=self.seed,
                                 sde_sampler=self.sde_sampler, ode_solver=self.ode_solver, beta_min=self.beta_min,
                                 beta_max=self.beta_max, sigma_min=self.sigma_min, sigma_max=self.sigma_max)

    def checked(self) -> "Controls":
        """The checks a run makes (``ValueError`` naming the field), the points included."""
        self.params().checked()
        if self.data_choice == CUSTOM:
            toy_data.parse_points(self.custom)
        validate.check_float("t", self.t_compare, 0.0, 1.0)
        validate.check_float("λ", self.lam, 0.0, 2.0)
        return self


def api_args(c: Controls) -> dict:
    p = c.params()
    return {"data": p.data, "sde": p.sde, "score": p.score, "n_samples": p.n_samples, "n_steps": p.n_steps,
            "seed": p.seed}


def _run(params: compute.SDEParams, progress=None) -> compute.Run:
    """The run for these parameters, from a small cache: the slider views after a run reuse it
    (the page keeps only the parameters, as JSON, not the arrays)."""
    params = params.checked()
    with _runs_lock:
        if params in _runs:
            _runs.move_to_end(params)
            return _runs[params]
    run = compute.simulate(params, progress=progress)
    with _runs_lock:
        _runs[params] = run
        while len(_runs) > RUN_CACHE_SIZE:
            _runs.popitem(last=False)
    return run


def _run_of(key: dict | None) -> compute.Run:
    if not key:
        raise ValueError("run the samplers first")
    return _run(compute.SDEParams(**key))


def _views(run: compute.Run, t_compare: float, lam: float):
    """Everything drawn after a run: animation, stats, paths, comparison, lambda, download."""
    frame = _frame(run, t_compare)
    numbers = compute.compare_at(run, frame)
    lam_result = compute.lambda_family(run, lam)
    stats = compute.stats_rows(run, [(f"λ = {lam:g} family (Euler-Maruyama)", lam_result["nfe"],
                                      round(lam_result["seconds"], 3), round(lam_result["sw_to_data"], 4))])
    return (dict(run.params.__dict__), figures.animation(run), stats, figures.paths(run), figures.compare(run, frame, numbers),
            _compare_text(numbers), figures.lambda_cloud(run, lam_result), _download(run), *_encode_views(run))


def _frame(run: compute.Run, t: float) -> int:
    return int(np.argmin(np.abs(run.frame_t - float(t))))


def _compare_text(n: dict) -> str:
    return (f"At **t = {n['t']:.3f}** (sliced Wasserstein-1): SDE vs ODE **{n['sw_sde_ode']:.4f}**, "
            f"SDE vs exact p_t {n['sw_sde_exact']:.4f}, ODE vs exact p_t {n['sw_ode_exact']:.4f}. "
            "Same marginals: all three are small, while single paths differ.")


def _download(run: compute.Run) -> str:
    path = tempfiles.output_folder("sde_ode_") / "sde_ode.json"
    path.write_text(compute.run_json(run))
    return str(path)


@functools.lru_cache(maxsize=1)
def _default_views() -> tuple:
    """The default run's views, computed once per process (the tab opens with them drawn)."""
    run = _run(DEFAULT)
    return _views(run, 0.5, 0.5)


def run(c: Controls, request: gr.Request = None, progress=gr.Progress()):
    """The Run button (``binding.event(run)``). Step-wise (``run_steps``): Stop or a closed tab ends
    the run within 2% of its steps."""
    params = c.params()

    def work(on_step, should_stop):
        return _run(params, progress_steps(on_step, should_stop, progress))

    try:
        result = yield from run_steps(work, STOP.start(request))
    except Cancelled:
        gr.Info("Stopped: the last finished run stays on the page.")
        return
    progress(0.95, desc="λ family and figures")
    yield _views(result, c.t_compare, c.lam)


@user_errors
def on_compare(key, t):
    run = _run_of(key)
    frame = _frame(run, t)
    numbers = compute.compare_at(run, frame)
    return figures.compare(run, frame, numbers), _compare_text(numbers)


@user_errors
def on_lambda(key, lam, progress=gr.Progress()):
    run = _run_of(key)
    return figures.lambda_cloud(run, compute.lambda_family(run, lam, progress))


def _encode_views(run: compute.Run):
    result = compute.encode_decode(run, n_points=300)
    text = (f"Encoded {len(result['data'])} data points to t = 1 and decoded them back with the ODE "
            f"({run.params.ode_solver}, {run.params.n_steps} steps each way, {result['nfe']} NFE): "
            f"mean reconstruction error **{result['mean_error']:.2e}**, max {result['max_error']:.2e}.")
    return figures.encoding(result), text


@user_errors
def on_adaptive(key, stats):
    run = _run_of(key)
    result = compute.adaptive_ode(run)
    row = ["Probability-flow ODE, adaptive RK45 (rtol 1e-3)", result["nfe"], round(result["seconds"], 3),
           round(compute.sliced_wasserstein(result["final"], run.data), 4)]
    rows = [r for r in stats.values.tolist() if "adaptive" not in str(r[0])] if stats is not None else []
    return rows + [row]


@user_errors
def on_click(custom: str, evt: gr.SelectData):
    points = _custom_points(custom)
    points.append(toy_data.pixel_to_point(evt.index[0], evt.index[1], CANVAS_SIZE, CANVAS_EXTENT))
    return json.dumps(points), figures.canvas_points(np.array(points), CANVAS_SIZE, CANVAS_EXTENT), CUSTOM


@user_errors
def on_upload(file):
    with open(file if isinstance(file, str) else file.name, encoding="utf-8", errors="replace") as f:
        points = toy_data.parse_points(f.read())
    return (json.dumps(points.round(5).tolist()), figures.canvas_points(points, CANVAS_SIZE, CANVAS_EXTENT),
            CUSTOM)


def _custom_points(text: str) -> list:
    if not (text or "").strip():
        return []
    return toy_data.parse_points(text).tolist()


@api_errors
def api_sde_ode(data: str, sde: str, score: str, n_samples: int, n_steps: int, seed: int) -> dict:
    """Final samples of the reverse SDE (Euler-Maruyama) and the probability-flow ODE (Heun) from
    the same noise: ``{"sde": [[x, y], ...], "ode": [[x, y], ...], "nfe_sde": int, "nfe_ode": int}``.
    Yields while it runs, so a client's ``/cancel`` stops it within 2% of its steps."""
    def work(on_step, should_stop):
        return compute.api_sde_ode(data, sde, score, n_samples, n_steps, seed, progress_steps(on_step, should_stop))

    yield (yield from run_steps(work, each=lambda step: None))  # None: an empty progress message


@dataclass(frozen=True)
class Views:
    """What a run shows, and the buttons beside it."""

    anim: gr.Plot
    play: gr.Button
    stats: gr.Dataframe
    adaptive_btn: gr.Button
    download: gr.DownloadButton
    paths_plot: gr.Plot
    t_slider: gr.Slider
    compare_plot: gr.Plot
    compare_md: gr.Markdown
    lam: gr.Slider
    lam_plot: gr.Plot
    enc_plot: gr.Plot
    enc_md: gr.Markdown


def build(demo: gr.Blocks) -> Binding:
    gr.Markdown("Two samplers, one noise: the **reverse-time SDE** (left) and the **probability-flow ODE** "
                "(right) start from the same $x_T$. Press ▶ or drag the time slider: the clouds agree, the "
                "paths below do not.", latex_delimiters=[{"left": "$", "right": "$", "display": False}])
    explanation(EXPLANATION)
    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            c = _controls()
            with gr.Row(elem_classes="gp-primary-row"):  # sticks to the screen's bottom (playground/theme.py CSS)
                run_btn = gr.Button("Run both samplers", variant="primary", elem_id="sde-ode-run", scale=3)
                stop_btn = gr.Button("Stop", variant="stop", scale=1, elem_id="sde-ode-stop")
        top = _run_column()
    v = Views(*top, *_comparison_rows())
    run_state = gr.JSON(visible=False)  # the run's parameters (no gr.State: no heartbeat)
    views = [run_state, v.anim, v.stats, v.paths_plot, v.compare_plot, v.compare_md, v.lam_plot, v.download,
             v.enc_plot, v.enc_md]
    binding = Binding(Controls, **{k: c[k] for k in INPUT_KEYS}, t_compare=v.t_slider, lam=v.lam,
                      check=Controls.checked, api=Api("sde_ode", api_args, note=API_NOTE))
    on_run = binding.event(run)
    _wire(c, binding, on_run, run_btn, stop_btn, run_state, v.stats, views, v.compare_plot, v.compare_md,
          v.lam_plot, v.adaptive_btn)
    # The default run is drawn on page load, not at build (app start-up budget); cached per process.
    opening = Opening(_default_views, list(views))
    binding.on_open(opening, on_run, views, **model_event())  # a link to other settings runs them
    v.play.click(None, js=figures.PLAY_JS)
    gr.api(api_sde_ode, api_name="sde_ode")
    return binding


def _run_column() -> tuple:
    """anim, play, stats, adaptive_btn, download: right of the controls."""
    with gr.Column(scale=2):
        anim = gr.Plot(label="Particles over time, over the exact density p_t", elem_id="sde-ode-anim")
        play = gr.Button("▶ Play: t from 1 to ε (or drag the slider under the plot)", size="sm")
        stats = gr.Dataframe(headers=["sampler", "NFE", "seconds", "sliced W1 to data"], interactive=False,
                             label="Cost per sampler (NFE = score evaluations)", elem_id="sde-ode-stats")
        with gr.Row():
            adaptive_btn = gr.Button("Add the adaptive ODE (RK45) to the table", size="sm")
            download = gr.DownloadButton("Download samples (JSON)", size="sm")
    return anim, play, stats, adaptive_btn, download


def _comparison_rows() -> tuple:
    """paths_plot, t_slider, compare_plot, compare_md, lam, lam_plot, enc_plot, enc_md."""
    with gr.Row():
        paths_plot = gr.Plot(label="Single paths: SDE jagged, ODE smooth", elem_id="sde-ode-paths")
        with gr.Column():
            t_slider = gr.Slider(0.0, 1.0, 0.5, step=0.005, label="Compare the marginals at t",
                                 info="t in [ε, 1]: SDE cloud vs ODE cloud vs exact p_t at that time",
                                 elem_id="sde-ode-t")
            compare_plot = gr.Plot(label="SDE vs ODE marginals", elem_id="sde-ode-compare")
            compare_md = gr.Markdown(elem_id="sde-ode-compare-text")
    with gr.Row():
        with gr.Column():
            lam = gr.Slider(0.0, 2.0, 0.5, step=0.05, label="λ (lambda): the SDE/ODE family",
                            info="dx = [f − (1+λ²)/2 g² ∇log p_t] dt + λ g dw̄; λ=0 ODE, λ=1 reverse SDE")
            lam_plot = gr.Plot(label="A member of the family, same x_T")
        with gr.Column():
            enc_plot = gr.Plot(label="Encode data to noise with the ODE, decode it back")
            enc_md = gr.Markdown()
    return paths_plot, t_slider, compare_plot, compare_md, lam, lam_plot, enc_plot, enc_md


def _controls() -> dict:
    c = {}
    c["data_choice"] = gr.Dropdown([*toy_data.DATASETS, CUSTOM], value=DEFAULT.data, label="Data p_data",
                                   info="a built-in 2-D set, or your own points (click, paste or upload below)")
    c["n_data"] = gr.Slider(10, 3000, DEFAULT.n_data, step=10, label="Data points M",
                            info="M points x_i drawn from the built-in set; p_t is a mixture of M Gaussians")
    with gr.Accordion("Your own points (choose 'custom points' above)", open=False):
        c["canvas"] = gr.Image(figures.canvas_points(np.zeros((0, 2)), CANVAS_SIZE, CANVAS_EXTENT), type="pil",
                               interactive=False, label="Click to add a point x_i (grid: 1 unit)",
                               height=CANVAS_SIZE, width=CANVAS_SIZE, buttons=[])
        c["custom"] = gr.Textbox(label="Points x_i (JSON or CSV)", lines=3, max_lines=8,
                                 info="[[x, y], ...] or two CSV columns x,y (at most 10,000); clicks add here")
        with gr.Row():
            c["upload"] = gr.UploadButton("Upload CSV / JSON", file_types=[".csv", ".json", ".txt"], size="sm")
            c["clear"] = gr.Button("Clear points", size="sm")
    c["sde"] = gr.Radio(["VP", "subVP", "VE"], value=DEFAULT.sde, label="Forward SDE",
                        info="dx = f(x,t) dt + g(t) dw: VP, sub-VP (β_min 0.1, β_max 20) or VE (σ_min 0.01)")
    c["score"] = gr.Radio(list(compute.SCORES), value=DEFAULT.score, label="Score ∇log p_t",
                          info=score_info())
    c["n_samples"] = gr.Slider(1, compute.MAX_SAMPLES, DEFAULT.n_samples, step=1, label="Samples N",
                               elem_id="sde-ode-n-samples",
                               info="particles x_T ~ prior, shared by both samplers")
    c["n_steps"] = gr.Slider(1, compute.MAX_STEPS, DEFAULT.n_steps, step=1, label="Steps n", elem_id="sde-ode-n-steps",
                             info="uniform Δt = (1 − ε)/n from t = 1 to ε = 0.001")
    c["seed"] = gr.Number(DEFAULT.seed, precision=0, label="Seed",
                          info="one seed for the data, x_T and the SDE's Brownian increments dw̄")
    c["sde_sampler"] = gr.Radio(list(compute.SDE_SAMPLERS), value=DEFAULT.sde_sampler, label="SDE sampler",
                                info="Euler-Maruyama, or predictor-corrector (+ Langevin corrector, snr 0.16)")
    c["ode_solver"] = gr.Radio(list(compute.ODE_SOLVERS), value=DEFAULT.ode_solver, label="ODE solver",
                               info="fixed steps: Euler (1 NFE/step) or Heun (2 NFE/step)")
    with gr.Accordion("SDE constants", open=False):
        c["beta_min"] = gr.Number(DEFAULT.beta_min, label="β_min", info="VP / sub-VP: β(t) = β_min + t (β_max − β_min)")
        c["beta_max"] = gr.Number(DEFAULT.beta_max, label="β_max", info="VP / sub-VP")
        c["sigma_min"] = gr.Number(DEFAULT.sigma_min, label="σ_min", info="VE: σ(t) = σ_min (σ_max/σ_min)^t")
        c["sigma_max"] = gr.Number(DEFAULT.sigma_max, label="σ_max (0 = data diameter)",
                                   info="VE; 0 picks the largest pairwise distance of the data")
    return c


INPUT_KEYS = ["data_choice", "custom", "n_data", "sde", "score", "n_samples", "n_steps", "seed",
              "sde_sampler", "ode_solver", "beta_min", "beta_max", "sigma_min", "sigma_max"]
API_NOTE = ("the endpoint runs Euler-Maruyama and Heun with the default constants and M = 600 data points "
            "(this tab's samplers, constants and M are not among its inputs)")


def _wire(c, binding, on_run, run_btn, stop_btn, run_state, stats, outputs, compare_plot, compare_md, lam_plot,
          adaptive_btn) -> None:
    private = {"api_visibility": "private"}
    t_slider, lam = binding.components["t_compare"], binding.components["lam"]
    run_btn.click(on_run, binding.inputs, outputs, **private, **model_event(),
                  show_progress_on=[stats])  # the plots keep the last view while a run goes (issue 14)
    STOP.wire(stop_btn)  # the run ends within 2% of its steps
    t_slider.release(on_compare, [run_state, t_slider], [compare_plot, compare_md], **private)
    lam.release(on_lambda, [run_state, lam], lam_plot, **private, **model_event())
    adaptive_btn.click(on_adaptive, [run_state, stats], stats, **private, **model_event())
    c["canvas"].select(on_click, c["custom"], [c["custom"], c["canvas"], c["data_choice"]], **private)
    c["upload"].upload(on_upload, c["upload"], [c["custom"], c["canvas"], c["data_choice"]], **private)
    c["clear"].click(lambda: ("", figures.canvas_points(np.zeros((0, 2)), CANVAS_SIZE, CANVAS_EXTENT)), None,
                     [c["custom"], c["canvas"]], **private)
    gr.Examples([["8_gaussians", "VP", "exact", 1000, 250, 0], ["checkerboard", "subVP", "exact", 1000, 250, 1],
                 ["spiral", "VE", "exact", 1000, 250, 2], ["rings", "VP", "learned", 1000, 250, 0]],
                [c[k] for k in ("data_choice", "sde", "score", "n_samples", "n_steps", "seed")],
                label="Examples (then press Run)")


if __name__ == "__main__":
    from playground import theme

    with gr.Blocks() as app:
        build(app)
    app.launch(**theme.launch_kwargs())
