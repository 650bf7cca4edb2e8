"""Flows: warp a Gaussian into a target density, layer by layer (or instant by instant).

A normalising flow is an invertible map x = f(z) = f_K o ... o f_1 (z) from a base Gaussian
z ~ N(0, I); the change of variables gives its exact density

    log p(x) = log N(z; 0, I) + sum_k log|det dz_{k-1} / dz_k|,    z = f^{-1}(x).

Three flows (``nets.py``): planar layers, RealNVP affine couplings, and a continuous flow
dx/dt = v(x, t) learned by flow matching, cut into K time slices. This module is the pure
entry point (no gradio, no torch at import): validate inputs, load data, train (torch is
imported lazily), precompute what each layer looks like, and cache the result.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from demos.common import toy_data
from demos.flows.targets import TARGETS
from playground.validate import check_choice, check_int, shown

FLOWS = ("realnvp", "planar", "flow_matching")
MAX_LAYERS = {"realnvp": 32, "planar": 32, "flow_matching": 16}
MAX_TRAIN_STEPS = 5000
MAX_LAYER_STEPS = 64_000  # n_layers x train_steps for the discrete flows (~40 s here)
MAX_SEED = 2**31 - 1
N_SAMPLES = 1500  # points drawn from a built-in or analytic set
HELDOUT_FRACTION = 0.2
MIN_POINTS = 20
GRID_SIZE = 96  # the API's density grid, per axis
VIEW_GRID_SIZE = 64  # the heatmaps' grid (one per layer), per axis
GRID_SIGMAS = 4.5  # the API grid reaches at least this many standard deviations from the mean
VIEW_SIGMAS = 3.0  # the heatmaps zoom closer (and always show every point)
BASE_LINES, BASE_LINE_POINTS, BASE_EXTENT = 13, 60, 3.0  # the square grid in base space
N_SHOWN_SAMPLES, N_PATHS = 1000, 40
CACHE_SIZE = 12


@dataclass(frozen=True)
class FlowParams:
    """data: a built-in set, an analytic target, or JSON/CSV [x, y] points; K = n_layers."""

    data: str = "two_moons"
    flow: str = "realnvp"
    n_layers: int = 8
    train_steps: int = 2000
    seed: int = 0


@dataclass
class TrainingUpdate:
    """Sent while training: step k of ``total`` and the loss history so far."""

    step: int
    total: int
    history: object  # fit.History
    message: str = "training"


@dataclass
class FlowResult:
    """Everything the tab shows, precomputed once per trained flow (arrays in data coordinates)."""

    params: FlowParams
    train_points: np.ndarray  # (N_train, 2)
    heldout_points: np.ndarray  # (N_heldout, 2)
    x: np.ndarray  # (GRID_SIZE,) the API grid
    y: np.ndarray  # (GRID_SIZE,)
    log_density: np.ndarray  # (len(y), len(x)) after the last layer
    view_x: np.ndarray  # (VIEW_GRID_SIZE,)
    view_y: np.ndarray  # (VIEW_GRID_SIZE,)
    stage_log_density: np.ndarray  # (K + 1, len(view_y), len(view_x)) log p_k
    stage_log_det: np.ndarray  # (K + 1, len(view_y), len(view_x)) log|det dz/dx_k|
    stage_lines: np.ndarray  # (K + 1, 2 * BASE_LINES, BASE_LINE_POINTS, 2) the pushed grid
    stage_samples: np.ndarray  # (K + 1, N_SHOWN_SAMPLES, 2) pushed base samples
    paths: np.ndarray | None = None  # (T, N_PATHS, 2) continuous flow only
    true_log_density: np.ndarray | None = None  # (len(y), len(x)) analytic targets only
    true_view_log_density: np.ndarray | None = None  # (len(view_y), len(view_x))
    train_ll: float = math.nan
    heldout_ll: float = math.nan
    kl_true_learned: float | None = None
    history: object = None  # fit.History (None before training)
    seconds: float = 0.0
    model: object = field(default=None, repr=False)  # the trained nets.Flow, read-only

    @property
    def trained(self) -> bool:
        return self.model is not None

    @property
    def n_stages(self) -> int:
        return len(self.stage_log_density)


# ---------------------------------------------------------------- inputs


def check_params(params: FlowParams) -> FlowParams:
    """Validated copy of ``params``; every failure is a ``ValueError`` naming the field."""
    flow = check_choice("flow", params.flow, FLOWS)
    n_layers = check_int("n_layers", params.n_layers, 1, MAX_LAYERS[flow])
    train_steps = check_int("train_steps", params.train_steps, 1, MAX_TRAIN_STEPS)
    seed = check_int("seed", params.seed, 0, MAX_SEED)
    if flow != "flow_matching" and n_layers * train_steps > MAX_LAYER_STEPS:
        raise ValueError(f"n_layers x train_steps must be at most {MAX_LAYER_STEPS:,} (training time), "
                         f"got {n_layers} x {train_steps} = {n_layers * train_steps:,}")
    if not isinstance(params.data, (str, list, tuple, np.ndarray)):
        raise ValueError(f"data must be a built-in name or a JSON list of [x, y] points, got {shown(params.data)}")
    return FlowParams(params.data, flow, n_layers, train_steps, seed)


def dataset_names() -> list[str]:
    """Built-in sample sets (shared with the SDE vs ODE tab), then the analytic targets."""
    return list(toy_data.DATASETS) + [name for name in TARGETS if name not in toy_data.DATASETS]


def load_points(data, seed: int) -> tuple[np.ndarray, str | None]:
    """(points (N, 2), the analytic target's name or None) for a name or user points."""
    name = data.strip() if isinstance(data, str) else None
    if name in TARGETS:
        return TARGETS[name].sample(N_SAMPLES, np.random.default_rng(seed)), name
    if name is not None and name and name[0] not in "[{" and "," not in name and "\n" not in name:
        if name not in toy_data.DATASETS:
            raise ValueError(f"unknown data set {shown(name)}; choose one of {', '.join(dataset_names())}, "
                             "or give a JSON list of [x, y] points")
    points = toy_data.load_data(data, N_SAMPLES, seed)
    if len(points) < MIN_POINTS:
        raise ValueError(f"a flow needs at least {MIN_POINTS} points to fit and validate, got {len(points)}")
    if (points.std(0) < 1e-6).any():
        raise ValueError("the points lie on a line (no spread along x or y): a 2-D density cannot fit them")
    return points, None


def split(points: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded train / held-out split (HELDOUT_FRACTION held out, at least one point)."""
    order = np.random.default_rng([seed, 1]).permutation(len(points))
    n_heldout = max(1, round(HELDOUT_FRACTION * len(points)))
    return points[order[n_heldout:]], points[order[:n_heldout]]


def grid_axes(points: np.ndarray, size: int, n_sigmas: float = GRID_SIGMAS) -> tuple[np.ndarray, np.ndarray]:
    """Evenly spaced ascending x (size,), y (size,) spanning mean +- n_sigmas std and all points
    with a margin of half a standard deviation."""
    mean, std = points.mean(0), points.std(0)
    low = np.minimum(mean - n_sigmas * std, points.min(0) - 0.5 * std)
    high = np.maximum(mean + n_sigmas * std, points.max(0) + 0.5 * std)
    return np.linspace(low[0], high[0], size), np.linspace(low[1], high[1], size)


def grid_points(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The (len(y) * len(x), 2) points of a grid, row-major (y outer), to reshape to (ny, nx)."""
    xx, yy = np.meshgrid(x, y)
    return np.stack([xx.ravel(), yy.ravel()], 1)


def base_grid_lines() -> np.ndarray:
    """A square grid in base space: BASE_LINES vertical then horizontal lines,
    (2 * BASE_LINES, BASE_LINE_POINTS, 2)."""
    ticks = np.linspace(-BASE_EXTENT, BASE_EXTENT, BASE_LINES)
    along = np.linspace(-BASE_EXTENT, BASE_EXTENT, BASE_LINE_POINTS)
    vertical = np.stack(np.broadcast_arrays(ticks[:, None], along[None, :]), -1)  # (L, P, 2)
    return np.concatenate([vertical, vertical[..., ::-1]])


def base_samples(seed: int) -> np.ndarray:
    """The N_SHOWN_SAMPLES base points z ~ N(0, I) pushed through the layers."""
    return np.random.default_rng([seed, 2]).standard_normal((N_SHOWN_SAMPLES, 2))


# ---------------------------------------------------------------- before training


def untrained(params: FlowParams) -> FlowResult:
    """Layer 0 only, in numpy (no torch): the base Gaussian N(mu, diag sigma^2) matched to the
    training points, where every flow starts. The tab draws this at start-up."""
    params = check_params(params)
    points, target = load_points(params.data, params.seed)
    train, heldout = split(points, params.seed)
    mu, sigma = train.mean(0), np.maximum(train.std(0), 1e-3)
    x, y = grid_axes(points, GRID_SIZE)
    view_x, view_y = grid_axes(points, VIEW_GRID_SIZE, VIEW_SIGMAS)
    z = (grid_points(view_x, view_y) - mu) / sigma  # (V, 2)
    log_det = -np.log(sigma).sum()  # log|det dz/dx| of x = mu + sigma z
    log_p = -0.5 * (z**2).sum(1) - math.log(2 * math.pi) + log_det
    shape = (1, len(view_y), len(view_x))
    return FlowResult(
        params, train, heldout, x, y, log_density=np.full((len(y), len(x)), np.nan), view_x=view_x,
        view_y=view_y, stage_log_density=log_p.reshape(shape), stage_log_det=np.full(shape, log_det),
        stage_lines=(mu + sigma * base_grid_lines())[None], stage_samples=(mu + sigma * base_samples(params.seed))[None],
        **true_densities(target, x, y, view_x, view_y))


def true_densities(target: str | None, x, y, view_x, view_y) -> dict:
    """The analytic target's log p on both grids (empty for sample-only data)."""
    if target is None:
        return {}
    log_pdf = TARGETS[target].log_pdf
    return {"true_log_density": log_pdf(grid_points(x, y)).reshape(len(y), len(x)),
            "true_view_log_density": log_pdf(grid_points(view_x, view_y)).reshape(len(view_y), len(view_x))}


# ---------------------------------------------------------------- training and views


def fit_iter(params: FlowParams) -> Iterator[TrainingUpdate | FlowResult]:
    """Yield ``TrainingUpdate`` while training, then the ``FlowResult`` (at once, from the
    cache, if this exact run was done before: runs are deterministic in their inputs)."""
    params = check_params(params)
    points, target = load_points(params.data, params.seed)
    key = cache_key(params, points)
    cached = CACHE.get(key)
    if cached is not None:
        yield cached
        return
    from demos.flows import fit  # torch: imported on first training only

    start = time.perf_counter()
    train, heldout = split(points, params.seed)
    model, history = None, None
    for model, step, history in fit.train_flow(params.flow, params.n_layers, train, heldout,
                                               params.train_steps, params.seed):
        yield TrainingUpdate(step, params.train_steps, history)
    yield TrainingUpdate(params.train_steps, params.train_steps, history, "precomputing layer views")
    result = views(params, model, history, train, heldout, target)
    result.seconds = time.perf_counter() - start
    CACHE.put(key, result)
    yield result


def fit(params: FlowParams) -> FlowResult:
    """Train (or fetch from the cache) and return the result; for the API, tests, benchmarks."""
    for item in fit_iter(params):
        pass
    return item


def views(params, model, history, train, heldout, target) -> FlowResult:
    """1. grids  2. log p_k and log|det| on the view grid per layer  3. pushed grid and samples
    4. ODE paths (continuous flow)  5. the API grid, likelihoods and KL(true || learned)."""
    from demos.flows import fit

    points = np.concatenate([train, heldout])
    x, y = grid_axes(points, GRID_SIZE)
    view_x, view_y = grid_axes(points, VIEW_GRID_SIZE, VIEW_SIGMAS)
    stage_log_p, stage_log_det = fit.stage_densities(model, grid_points(view_x, view_y))
    shape = (-1, len(view_y), len(view_x))
    lines = base_grid_lines()  # (2L, P, 2)
    pushed_lines = fit.pushed_stages(model, lines.reshape(-1, 2)).reshape(-1, *lines.shape)
    paths = None
    if params.flow == "flow_matching":
        paths = fit.trajectories(model, base_samples(params.seed)[:N_PATHS])
    log_density = fit.log_density(model, grid_points(x, y)).reshape(len(y), len(x))
    truth = true_densities(target, x, y, view_x, view_y)
    return FlowResult(
        params, train, heldout, x, y, log_density, view_x, view_y,
        stage_log_density=stage_log_p.reshape(shape), stage_log_det=stage_log_det.reshape(shape),
        stage_lines=pushed_lines, stage_samples=fit.pushed_stages(model, base_samples(params.seed)),
        paths=paths, train_ll=float(fit.log_density(model, train).mean()),
        heldout_ll=float(fit.log_density(model, heldout).mean()),
        kl_true_learned=grid_kl(truth.get("true_log_density"), log_density, x, y),
        history=history, model=model, **truth)


def grid_kl(log_p: np.ndarray | None, log_q: np.ndarray, x: np.ndarray, y: np.ndarray) -> float | None:
    """KL(p || q) = int p (log p - log q) dx, a Riemann sum on the grid (p renormalised on it)."""
    if log_p is None:
        return None
    cell = (x[1] - x[0]) * (y[1] - y[0])
    p = np.exp(log_p)
    p /= p.sum() * cell
    return float((p * (np.log(np.maximum(p, 1e-300)) - log_q)).sum() * cell)


def learned_log_density(result: FlowResult, points: np.ndarray) -> np.ndarray:
    """log p(x) of a trained flow at any points (N, 2)."""
    from demos.flows import fit

    return fit.log_density(result.model, np.asarray(points, dtype=float))


def api_output(result: FlowResult) -> dict:
    """The ``flow`` endpoint's JSON: the grid, log p on it, and the mean log-likelihoods."""
    history = result.history
    return {
        "x": result.x.tolist(), "y": result.y.tolist(),
        "log_density": np.round(result.log_density, 6).tolist(),
        "train_log_likelihood": result.train_ll, "heldout_log_likelihood": result.heldout_ll,
        "flow": result.params.flow, "n_layers": result.params.n_layers,
        "train_steps": result.params.train_steps, "seed": result.params.seed,
        "n_train": len(result.train_points), "n_heldout": len(result.heldout_points),
        "best_step": history.best_step, "stopped_early": history.stopped or None,
        "kl_true_learned": result.kl_true_learned,
        "true_log_density": None if result.true_log_density is None
        else np.round(result.true_log_density, 6).tolist(),
    }


# ---------------------------------------------------------------- the cache


class ResultCache:
    """A small LRU of trained results, shared by all users, guarded by a lock."""

    def __init__(self, size: int):
        self.size, self.items, self.lock = size, OrderedDict(), threading.Lock()

    def get(self, key):
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
            return self.items.get(key)

    def put(self, key, value) -> None:
        with self.lock:
            self.items[key] = value
            self.items.move_to_end(key)
            while len(self.items) > self.size:
                self.items.popitem(last=False)


CACHE = ResultCache(CACHE_SIZE)


def cache_key(params: FlowParams, points: np.ndarray) -> tuple:
    """(hash of the data, flow, n_layers, train_steps, seed)."""
    digest = hashlib.sha1(np.ascontiguousarray(points, dtype=np.float64).tobytes()).hexdigest()
    return digest, params.flow, params.n_layers, params.train_steps, params.seed
