"""SDE vs ODE on 2-D data: the reverse-time SDE and the probability-flow ODE from the same noise.

Song et al. (2021): the forward SDE ``dx = f(x,t) dt + g(t) dw`` has the reverse-time SDE

    dx = [f(x,t) - g(t)^2 grad log p_t(x)] dt + g(t) dw_bar

and the probability-flow ODE ``dx = [f(x,t) - 1/2 g(t)^2 grad log p_t(x)] dt`` with the same
marginals p_t. This module runs both from one ``x_T`` on data the user picks, with the exact score
of the data's empirical distribution (``scores.py``) or a small learned one (``learned.py``).

Pure numpy/scipy: no gradio, no torch at import (torch only inside the learned score).
"""

from __future__ import annotations

import contextlib

import json
import time
from dataclasses import dataclass, replace

import numpy as np

from demos.common import toy_data
from demos.sde_ode import samplers
from demos.sde_ode.scores import ExactScore, serial_matmul
from demos.sde_ode.sdes import SDE_NAMES, make_sde
from playground.validate import check_choice, check_float, check_int

SCORES = ("exact", "learned")
SDE_SAMPLERS = ("euler_maruyama", "predictor_corrector")
ODE_SOLVERS = ("euler", "heun")
MAX_SAMPLES = 10_000
MAX_STEPS = 2000
MAX_SHOWN = 1500  # particles sent to the browser per cloud
N_PATHS = 8  # particles whose whole paths are drawn
N_FRAMES = 31  # animation frames


@dataclass(frozen=True)
class SDEParams:
    """Everything one run depends on (the API uses the defaults for the fields it lacks)."""

    data: str = "two_moons"  # a built-in set, or JSON / CSV text of [x, y] points
    n_data: int = 600  # M: points drawn from a built-in set
    sde: str = "VP"  # VP | subVP | VE
    score: str = "exact"  # exact | learned
    n_samples: int = 2000  # N particles
    n_steps: int = 500  # uniform steps from t = 1 to t = eps
    seed: int = 0
    sde_sampler: str = "euler_maruyama"  # or predictor_corrector
    ode_solver: str = "heun"  # or euler
    beta_min: float = 0.1  # VP / sub-VP: beta(t) = beta_min + t (beta_max - beta_min)
    beta_max: float = 20.0
    sigma_min: float = 0.01  # VE: sigma(t) = sigma_min (sigma_max / sigma_min)^t
    sigma_max: float = 0.0  # 0: the data's diameter (Song & Ermon 2020)
    snr: float = 0.16  # corrector signal-to-noise ratio (Song et al. 2021)
    tol: float = 1e-4  # posterior mass the fast exact score may drop

    def checked(self) -> "SDEParams":
        """A copy with every field validated (``ValueError`` names the first bad field)."""
        if not isinstance(self.data, str):
            raise ValueError("data must be a built-in name or a JSON list of [x, y] points")
        return replace(
            self,
            n_data=check_int("n_data", self.n_data, 1, toy_data.MAX_POINTS),
            sde=check_choice("sde", self.sde, SDE_NAMES),
            score=check_choice("score", self.score, SCORES),
            n_samples=check_int("n_samples", self.n_samples, 1, MAX_SAMPLES),
            n_steps=check_int("n_steps", self.n_steps, 1, MAX_STEPS),
            seed=check_int("seed", self.seed, 0, 2**31 - 1),
            sde_sampler=check_choice("sde_sampler", self.sde_sampler, SDE_SAMPLERS),
            ode_solver=check_choice("ode_solver", self.ode_solver, ODE_SOLVERS),
            beta_min=check_float("beta_min", self.beta_min, 0.001, 10.0),
            beta_max=check_float("beta_max", self.beta_max, 0.5, 100.0),
            sigma_min=check_float("sigma_min", self.sigma_min, 1e-4, 1.0),
            sigma_max=check_float("sigma_max", self.sigma_max, 0.0, 1000.0),
            snr=check_float("snr", self.snr, 0.0, 1.0),
            tol=check_float("tol", self.tol, 1e-8, 1e-2),
        )


@dataclass
class Run:
    """One SDE run and one ODE run from the same ``x_T``, and what the views need."""

    params: SDEParams
    data: np.ndarray  # (M, 2)
    sde: object
    x_T: np.ndarray  # (N, 2)
    sde_final: np.ndarray  # (N, 2)
    ode_final: np.ndarray  # (N, 2)
    frame_t: np.ndarray  # (F,) times of the animation frames, 1 -> eps
    sde_frames: np.ndarray  # (F, K, 2) the first K <= MAX_SHOWN particles
    ode_frames: np.ndarray  # (F, K, 2)
    path_t: np.ndarray  # (T,) times of the path points
    sde_paths: np.ndarray  # (T, N_PATHS, 2)
    ode_paths: np.ndarray  # (T, N_PATHS, 2)
    nfe_sde: int
    nfe_ode: int
    seconds_sde: float
    seconds_ode: float


def load_points(params: SDEParams) -> np.ndarray:
    """The data points ``x_i`` (M, 2): a built-in set drawn with the seed, or the user's points."""
    return toy_data.load_data(params.data, params.n_data, params.seed)


def build_sde(params: SDEParams, data: np.ndarray):
    return make_sde(params.sde, data, params.beta_min, params.beta_max, params.sigma_min,
                    params.sigma_max or None)


def build_score(params: SDEParams, data: np.ndarray, sde, progress=None):
    """``score(x, t)``: exact (closed form, no training) or learned (trained once, cached)."""
    if params.score == "exact":
        return ExactScore(data, sde, tol=params.tol)
    from demos.sde_ode.learned import learned_score  # torch, imported only when asked for

    return learned_score(data, sde, params.seed, progress=progress)


def prior_noise(sde, n: int, seed: int) -> np.ndarray:
    """``x_T ~ N(0, sigma_T^2 I)``, the same for every sampler of a run, (n, 2)."""
    return sde.prior_std() * np.random.default_rng([seed, 1]).standard_normal((n, 2))


def run_sde(params: SDEParams, sde, score, x_T, keep=None, lam: float = 1.0, progress=None, span=(0.6, 0.8)):
    """The reverse-time SDE (or the lambda family member) from ``x_T``; (x, path, nfe, seconds).
    ``progress(fraction, desc)`` is reported every 2% of the steps, over ``span`` of the run."""
    tick = _ticker(progress, span, "reverse-time SDE")
    rng = np.random.default_rng([params.seed, 2])
    start = time.perf_counter()
    with run_context(score):
        if params.sde_sampler == "predictor_corrector" and lam == 1.0:
            out = samplers.predictor_corrector(sde, score.fresh(), x_T, params.n_steps, rng,
                                               snr=params.snr, keep=keep, tick=tick)
        else:
            out = samplers.euler_maruyama(sde, score.fresh(), x_T, params.n_steps, rng, lam=lam, keep=keep,
                                          tick=tick)
    return (*out, time.perf_counter() - start)


def run_ode(params: SDEParams, sde, score, x_T, keep=None, progress=None, span=(0.8, 0.95)):
    """The probability-flow ODE from ``x_T`` (Euler or Heun); (x, path, nfe, seconds)."""
    solver = samplers.ode_heun if params.ode_solver == "heun" else samplers.ode_euler
    tick = _ticker(progress, span, "probability-flow ODE")
    start = time.perf_counter()
    with run_context(score):
        out = solver(sde, score.fresh(), x_T, params.n_steps, keep=keep, tick=tick)
    return (*out, time.perf_counter() - start)


def _ticker(progress, span: tuple[float, float], what: str):
    """A sampler's ``tick(k, n)`` that reports ``progress`` every 2% of the steps (None: no reports)."""
    if progress is None:
        return None
    low, high = span

    def tick(k: int, n: int) -> None:
        if k == n or k % max(1, n // 50) == 0:
            progress(low + (high - low) * k / n, desc=f"{what}: step {k} of {n}")

    return tick


def run_context(score):
    """What a sampler run holds: the learned score's torch thread setting (``threads()``);
    nothing for the numpy scores."""
    return score.threads() if hasattr(score, "threads") else contextlib.nullcontext()


def simulate(params: SDEParams, progress=None) -> Run:
    """1. check inputs, 2. data, SDE, score, 3. one x_T, 4. SDE and ODE, 5. frames and paths."""
    params = params.checked()
    data = load_points(params)
    sde = build_sde(params, data)
    score = build_score(params, data, sde, progress)
    x_T = prior_noise(sde, params.n_samples, params.seed)
    keep = np.arange(min(params.n_samples, MAX_SHOWN))
    x_sde, path_sde, nfe_sde, sec_sde = run_sde(params, sde, score, x_T, keep, progress=progress)
    x_ode, path_ode, nfe_ode, sec_ode = run_ode(params, sde, score, x_T, keep, progress=progress)
    ts = samplers.time_grid(params.n_steps)
    frames = frame_indices(params.n_steps, N_FRAMES)
    steps = frame_indices(params.n_steps, 400)
    n_paths = min(N_PATHS, len(keep))
    return Run(params, data, sde, x_T, x_sde, x_ode, ts[frames], path_sde[frames], path_ode[frames],
               ts[steps], path_sde[steps, :n_paths], path_ode[steps, :n_paths],
               nfe_sde, nfe_ode, sec_sde, sec_ode)


def frame_indices(n_steps: int, n_frames: int) -> np.ndarray:
    """At most ``n_frames`` step indices from 0 to n_steps, evenly spread, both ends included."""
    return np.unique(np.round(np.linspace(0, n_steps, min(n_frames, n_steps + 1))).astype(int))


# --- The views' numbers -------------------------------------------------------------------------

def marginal_density(data: np.ndarray, sde, t: float, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """The exact ``p_t(x) = 1/M sum_i N(x; m_t x_i, s_t^2 I)`` on a grid, (len(ys), len(xs))."""
    m, v = sde.mean_coeff(t), sde.var(t)
    gx = np.exp(-(xs[None, :] - m * data[:, 0:1]) ** 2 / (2 * v))  # (M, X)
    gy = np.exp(-(ys[None, :] - m * data[:, 1:2]) ** 2 / (2 * v))  # (M, Y)
    return serial_matmul(gy.T, gx) / (len(data) * 2 * np.pi * v)  # separable Gaussians, (Y, X)


def sample_marginal(data: np.ndarray, sde, t: float, n: int, seed: int) -> np.ndarray:
    """``n`` exact samples of p_t: a random data point, scaled by m_t, plus N(0, s_t^2 I)."""
    rng = np.random.default_rng([seed, 3])
    picks = data[rng.integers(0, len(data), n)]
    return sde.mean_coeff(t) * picks + np.sqrt(sde.var(t)) * rng.standard_normal((n, 2))


def sliced_wasserstein(a: np.ndarray, b: np.ndarray, n_proj: int = 64, seed: int = 0) -> float:
    """Sliced 1-Wasserstein distance: W1 of 1-D projections on ``n_proj`` directions, averaged."""
    angles = np.random.default_rng(seed).uniform(0, np.pi, n_proj)
    dirs = np.stack([np.cos(angles), np.sin(angles)])  # (2, P)
    qs = np.linspace(0.005, 0.995, 100)
    pa, pb = np.quantile(a @ dirs, qs, axis=0), np.quantile(b @ dirs, qs, axis=0)  # (100, P)
    return float(np.abs(pa - pb).mean())


def compare_at(run: Run, frame: int) -> dict:
    """SDE vs ODE vs exact p_t at one animation frame: sliced W1 distances."""
    t = float(run.frame_t[frame])
    sde_x, ode_x = run.sde_frames[frame], run.ode_frames[frame]
    exact = sample_marginal(run.data, run.sde, t, len(sde_x), run.params.seed)
    return {"t": t, "sw_sde_ode": sliced_wasserstein(sde_x, ode_x),
            "sw_sde_exact": sliced_wasserstein(sde_x, exact),
            "sw_ode_exact": sliced_wasserstein(ode_x, exact), "exact": exact}


def lambda_family(run: Run, lam: float, progress=None) -> dict:
    """``dx = [f - (1 + lambda^2)/2 g^2 s] dt + lambda g dw_bar`` from the run's ``x_T``."""
    lam = check_float("lambda", lam, 0.0, 2.0)
    params = run.params
    score = build_score(params, run.data, run.sde, progress)
    keep = np.arange(min(params.n_samples, MAX_SHOWN))
    x, path, nfe, seconds = run_sde(replace(params, sde_sampler="euler_maruyama"), run.sde, score,
                                    run.x_T, keep, lam=lam)
    steps = frame_indices(params.n_steps, 400)
    return {"lam": lam, "final": x, "paths": path[steps, :N_PATHS], "nfe": nfe, "seconds": seconds,
            "sw_to_data": sliced_wasserstein(x, run.data)}


def adaptive_ode(run: Run, rtol: float = 1e-3) -> dict:
    """The probability-flow ODE with adaptive RK45: its NFE, time, and distance to the fixed ODE."""
    params = run.params
    score = build_score(params, run.data, run.sde)
    start = time.perf_counter()
    x, _, nfe = samplers.ode_adaptive(run.sde, score.fresh(), run.x_T, rtol=rtol, atol=rtol)
    seconds = time.perf_counter() - start
    gap = np.sqrt(((x - run.ode_final) ** 2).sum(1))  # per particle
    return {"final": x, "nfe": nfe, "seconds": seconds, "mean_gap_to_fixed_ode": float(gap.mean())}


def encode_decode(run: Run, n_points: int = 500) -> dict:
    """Encode data to noise with the ODE (t: eps -> 1), decode back (1 -> eps), measure the error.

    The ODE is deterministic and invertible, so decode(encode(x)) = x up to the solver's error.
    """
    params = run.params
    score = build_score(params, run.data, run.sde)
    x0 = run.data[:: max(1, len(run.data) // n_points)][:n_points]  # spread over the whole set
    solver = samplers.ode_heun if params.ode_solver == "heun" else samplers.ode_euler
    forward = samplers.time_grid(params.n_steps)[::-1]
    z, _, nfe_enc = solver(run.sde, score.fresh(), x0, params.n_steps, ts=forward)
    x_rec, _, nfe_dec = solver(run.sde, score.fresh(), z, params.n_steps, ts=forward[::-1])
    error = np.sqrt(((x_rec - x0) ** 2).sum(1))
    return {"data": x0, "latent": z, "reconstruction": x_rec, "mean_error": float(error.mean()),
            "max_error": float(error.max()), "nfe": nfe_enc + nfe_dec}


def stats_rows(run: Run, extra: list[tuple] | None = None) -> list[list]:
    """The table of samplers: name, NFE, seconds, sliced W1 to the data."""
    sde_name = ("Reverse SDE, predictor-corrector" if run.params.sde_sampler == "predictor_corrector"
                else "Reverse SDE, Euler-Maruyama")
    rows = [[sde_name, run.nfe_sde, round(run.seconds_sde, 3), round(sliced_wasserstein(run.sde_final, run.data), 4)],
            [f"Probability-flow ODE, {run.params.ode_solver.title()}", run.nfe_ode, round(run.seconds_ode, 3),
             round(sliced_wasserstein(run.ode_final, run.data), 4)]]
    return rows + [list(r) for r in (extra or [])]


# --- The API ------------------------------------------------------------------------------------

def api_sde_ode(data: str, sde: str, score: str, n_samples: int, n_steps: int, seed: int,
                progress=None) -> dict:
    """Final samples of the reverse SDE (Euler-Maruyama) and the ODE (Heun) from the same noise."""
    params = SDEParams(data=data, sde=sde, score=score, n_samples=n_samples, n_steps=n_steps, seed=seed)
    params = params.checked()
    data_points = load_points(params)
    sde_obj = build_sde(params, data_points)
    score_fn = build_score(params, data_points, sde_obj, progress)
    x_T = prior_noise(sde_obj, params.n_samples, params.seed)
    x_sde, _, nfe_sde, _ = run_sde(params, sde_obj, score_fn, x_T, progress=progress)
    x_ode, _, nfe_ode, _ = run_ode(params, sde_obj, score_fn, x_T, progress=progress)
    return {"sde": x_sde.tolist(), "ode": x_ode.tolist(), "nfe_sde": int(nfe_sde), "nfe_ode": int(nfe_ode)}


def run_json(run: Run) -> str:
    """What the user sees, as JSON: parameters, data, final samples, NFE and times."""
    return json.dumps({
        "params": run.params.__dict__, "data": run.data.round(5).tolist(),
        "sde": run.sde_final.round(5).tolist(), "ode": run.ode_final.round(5).tolist(),
        "nfe_sde": run.nfe_sde, "nfe_ode": run.nfe_ode,
        "seconds_sde": run.seconds_sde, "seconds_ode": run.seconds_ode,
    })
