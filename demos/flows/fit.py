"""Training and the per-layer views (torch). Imported lazily by ``compute.py``.

* discrete flows (planar, RealNVP) maximise the exact log-likelihood:
      L(theta) = -1/B sum_i log p_theta(x_i);
* the continuous flow learns its velocity by flow matching on straight paths (Lipman et al.
  2023; Liu et al. 2023, "rectified flow"):
      x_t = (1 - t) z + t x,  z ~ N(0, I),  t ~ U(0, 1),   L(theta) = E |v_theta(x_t, t) - (x - z)|^2.
Every ``EVAL_EVERY`` steps the held-out mean log-likelihood is measured and the best weights
are kept, so more steps never give a worse held-out likelihood.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import numpy as np
import torch

from demos.flows import nets

BATCH_SIZE = 256
LEARNING_RATE = 2e-3
LR_HALF_LIFE = 1000  # steps; lr_k = lr * 0.5^(k / half-life), independent of the total
EVAL_EVERY = 100
MAX_EVAL_POINTS = 1000
GRAD_CLIP = 10.0

BUILDERS = {"realnvp": nets.realnvp, "planar": nets.planar, "flow_matching": nets.continuous}


@dataclass
class History:
    """What the loss curve shows: a smoothed training loss and the held-out log-likelihood."""

    loss_steps: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    eval_steps: list[int] = field(default_factory=list)
    heldout_ll: list[float] = field(default_factory=list)
    best_step: int = 0
    stopped: str = ""  # why training ended early ("" if it did not)


def build(flow: str, n_layers: int, train: np.ndarray, generator: torch.Generator) -> nets.Flow:
    """A flow whose base Gaussian is matched to the training data's mean and spread."""
    mu = torch.tensor(train.mean(0), dtype=torch.float32)
    sigma = torch.tensor(train.std(0), dtype=torch.float32).clamp_min(1e-3)
    return BUILDERS[flow](n_layers, mu, sigma, generator)


def flow_matching_loss(model: nets.Flow, x_data: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """E |v(x_t, t) - (x - z)|^2 on the straight path x_t = (1 - t) z + t x (standardised x)."""
    x = model.standardise(x_data)  # (B, 2)
    z = torch.randn(x.shape, generator=generator)
    t = torch.rand(len(x), 1, generator=generator)  # (B, 1)
    velocity = model.layers[0].velocity
    return ((velocity((1 - t) * z + t * x, t) - (x - z)) ** 2).sum(1).mean()


def loss_fn(flow: str, model: nets.Flow, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    if flow == "flow_matching":
        return flow_matching_loss(model, batch, generator)
    return -model.log_prob(batch).mean()


@torch.no_grad()
def mean_log_likelihood(model: nets.Flow, points: torch.Tensor) -> float:
    return float(model.log_prob(points).mean())


def train_flow(flow: str, n_layers: int, train_points: np.ndarray, heldout_points: np.ndarray,
               steps: int, seed: int):
    """Build a seeded flow and train it; yields ``(model, step, history)`` as ``train`` does."""
    generator = torch.Generator().manual_seed(seed)
    model = build(flow, n_layers, train_points, generator)
    for step, history in train(flow, model, train_points, heldout_points, steps, generator):
        yield model, step, history


def train(flow: str, model: nets.Flow, train_points: np.ndarray, heldout_points: np.ndarray,
          steps: int, generator: torch.Generator):
    """Adam on ``loss_fn``; yields ``(step, history)`` after every evaluation, and a last time
    once the best weights (by held-out log-likelihood) are loaded back into ``model``."""
    data = torch.tensor(train_points, dtype=torch.float32)  # (N, 2)
    heldout = torch.tensor(heldout_points[:MAX_EVAL_POINTS], dtype=torch.float32)
    optimiser = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE, fused=True)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda k: 0.5 ** (k / LR_HALF_LIFE))
    history, best, running = History(), (-math.inf, None), []
    for step in range(steps + 1):
        if step % EVAL_EVERY == 0 or step == steps:
            best = evaluate(model, heldout, step, history, best)
            yield step, history
        if step == steps:
            break
        batch = data[torch.randint(len(data), (BATCH_SIZE,), generator=generator)]  # (B, 2)
        loss = loss_fn(flow, model, batch, generator)
        if not torch.isfinite(loss):
            history.stopped = f"training stopped at step {step}: the loss became {loss.item()}"
            break
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP, foreach=True)
        optimiser.step()
        schedule.step()
        running.append(loss.item())
        if len(running) == 10:
            history.loss_steps.append(step + 1)
            history.loss.append(sum(running) / len(running))
            running = []
    if best[1] is None:
        raise ValueError("the held-out log-likelihood was never finite: try another seed or fewer layers")
    model.load_state_dict(best[1])
    model.eval()
    yield steps, history


def evaluate(model, heldout, step, history, best):
    """Record the held-out log-likelihood; return the (score, weights) of the best so far."""
    model.eval()
    score = mean_log_likelihood(model, heldout)
    model.train()
    history.eval_steps.append(step)
    history.heldout_ll.append(score)
    if math.isfinite(score) and score > best[0]:
        history.best_step = step
        return score, copy.deepcopy(model.state_dict())
    return best


@torch.no_grad()
def stage_densities(model: nets.Flow, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """log p_k(x) and log|det dz/dx_k| (data coordinates) at ``points`` (N, 2) after every
    k = 0..K layers: two arrays of shape (K + 1, N)."""
    x = model.standardise(torch.tensor(points, dtype=torch.float32))
    log_sigma = torch.log(model.sigma).sum()
    log_p, log_det = [], []
    for k in range(len(model.layers) + 1):
        z, ld = model.to_base(x, k)
        log_p.append(nets.standard_normal_log_prob(z) + ld - log_sigma)
        log_det.append(ld - log_sigma)
    return torch.stack(log_p).numpy(), torch.stack(log_det).numpy()


@torch.no_grad()
def pushed_stages(model: nets.Flow, z: np.ndarray) -> np.ndarray:
    """Base points z (N, 2) after every layer, in data coordinates: (K + 1, N, 2)."""
    stages = model.stages(torch.tensor(z, dtype=torch.float32))
    return torch.stack([model.to_data(s) for s in stages]).numpy()


@torch.no_grad()
def trajectories(model: nets.Flow, z: np.ndarray) -> np.ndarray:
    """A continuous flow's ODE paths from z (M, 2), every RK4 step: (T, M, 2), data coordinates."""
    x = torch.tensor(z, dtype=torch.float32)
    paths = [x[None]]
    for layer in model.layers:
        paths.append(layer.path(paths[-1][-1]))
    return model.to_data(torch.cat(paths)).numpy()


@torch.no_grad()
def log_density(model: nets.Flow, points: np.ndarray) -> np.ndarray:
    """log p(x) of the trained flow at ``points`` (N, 2), float64."""
    return model.log_prob(torch.tensor(points, dtype=torch.float32)).double().numpy()
