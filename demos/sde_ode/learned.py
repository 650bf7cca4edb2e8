"""A small MLP score trained live by denoising score matching (Vincent 2011; Song et al. 2021).

``s_theta(x, t) = -eps_theta(x, t) / s_t`` where ``eps_theta`` predicts the noise of
``x_t = m_t x_0 + s_t eps``; the loss ``E_t E_{x_0, eps} |eps_theta(x_t, t) - eps|^2`` is DSM with
weighting ``lambda(t) = s_t^2``. The network sees ``x_t / sqrt(m_t^2 sigma_data^2 + s_t^2)``
(unit scale at every t, which VE needs) and Fourier features of t.

Trained models are cached (bounded, keyed by data + SDE + seed) under a lock, so a second look
is instant and two requests never train the same model twice.

All torch work runs on one intra-op thread (``models.single_thread``, shared with DETR and the
attention run): for a network this small, two threads were 5x slower than one on a busy 2-core
machine. (A pool whose threads called ``torch.set_num_threads(1)`` also set the default for every
thread started later, so it slowed the other tabs' threads for the rest of the process.)
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections import OrderedDict

import numpy as np
import torch
from torch import nn

from playground.models import single_thread

N_ITERS = 1500
BATCH = 512
WIDTH = 128
CACHE_SIZE = 8
_cache: "OrderedDict[tuple, ScoreMLP]" = OrderedDict()
_lock = threading.Lock()


class ScoreMLP(nn.Module):
    """``eps_theta(x, t)``: 3 hidden layers of ``WIDTH`` with SiLU; input ``[x / c, sin/cos(k t)]``."""

    def __init__(self, sigma_data: float, width: int = WIDTH, n_freq: int = 8):
        super().__init__()
        self.sigma_data = sigma_data
        self.register_buffer("freqs", math.pi * torch.arange(1, n_freq + 1, dtype=torch.float32))
        self.net = nn.Sequential(nn.Linear(2 + 2 * n_freq, width), nn.SiLU(), nn.Linear(width, width),
                                 nn.SiLU(), nn.Linear(width, width), nn.SiLU(), nn.Linear(width, 2))

    def forward(self, x, t, m, s):  # x (B, 2), t / m / s (B, 1)
        c_in = torch.rsqrt(m ** 2 * self.sigma_data ** 2 + s ** 2)
        features = torch.cat([x * c_in, torch.sin(t * self.freqs), torch.cos(t * self.freqs)], 1)
        return self.net(features)  # eps_theta, (B, 2)


def _initialise(model: nn.Module, gen: torch.Generator) -> None:
    """PyTorch's default Linear initialisation, drawn from ``gen`` (not the global RNG)."""
    for layer in model.modules():
        if isinstance(layer, nn.Linear):
            nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=gen)
            bound = 1 / math.sqrt(layer.in_features)
            nn.init.uniform_(layer.bias, -bound, bound, generator=gen)


def _marginal(sde, t: torch.Tensor):
    """``(m_t, s_t)`` for a batch of times, (B, 1) each."""
    m = torch.tensor([sde.mean_coeff(float(u)) for u in t], dtype=torch.float32)[:, None]
    s = torch.tensor([math.sqrt(sde.var(float(u))) for u in t], dtype=torch.float32)[:, None]
    return m, s


def train(data: np.ndarray, sde, seed: int, n_iters: int | None = None, progress=None) -> ScoreMLP:
    """Fit ``eps_theta`` by DSM with Adam, in chunks of 100 steps on one torch thread
    (``models.single_thread``); ``progress(fraction, desc)`` is called between chunks."""
    n_iters = N_ITERS if n_iters is None else n_iters
    gen = torch.Generator().manual_seed(seed)
    x0_all = torch.as_tensor(data, dtype=torch.float32)  # (M, 2)
    model = ScoreMLP(sigma_data=float(x0_all.std()) if len(x0_all) > 1 else 1.0)
    _initialise(model, gen)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, n_iters)
    t_grid = torch.linspace(1e-3, 1.0, 1000)
    m_grid, s_grid = _marginal(sde, t_grid)

    def steps(n: int) -> float:
        for _ in range(n):
            x0 = x0_all[torch.randint(0, len(x0_all), (BATCH,), generator=gen)]  # (B, 2)
            k = torch.randint(0, len(t_grid), (BATCH,), generator=gen)
            t, m, s = t_grid[k][:, None], m_grid[k], s_grid[k]  # (B, 1) each
            eps = torch.randn(BATCH, 2, generator=gen)
            loss = ((model(m * x0 + s * eps, t, m, s) - eps) ** 2).sum(1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        return loss.item()

    for done in range(0, n_iters, 100):
        with single_thread():  # a tiny MLP: one thread, and others get the lock between chunks
            loss = steps(min(100, n_iters - done))
        if progress is not None:
            progress(0.6 * (done + 100) / n_iters, desc=f"training the score MLP: step {done + 100}/{n_iters}, loss {loss:.3f}")
    return model.eval()


class LearnedScore:
    """``score(x, t) = -eps_theta(x, t) / s_t`` on numpy arrays."""

    def __init__(self, model: ScoreMLP, sde):
        self.model, self.sde = model, sde

    def __call__(self, x: np.ndarray, t: float) -> np.ndarray:
        with single_thread():
            return self._score(x, t)

    def _score(self, x: np.ndarray, t: float) -> np.ndarray:
        m, s = self.sde.mean_coeff(t), math.sqrt(self.sde.var(t))
        xt = torch.as_tensor(x, dtype=torch.float32)  # (N, 2)
        col = torch.ones(len(xt), 1)
        with torch.no_grad():
            eps = self.model(xt, col * t, col * m, col * s)  # (N, 2)
        return -eps.double().numpy() / s

    def fresh(self) -> "LearnedScore":
        return self

    def threads(self):
        """Held around a whole sampler run, so its many small calls do not each switch torch's
        thread setting (that cost ~0.7 ms a call, +40% on a 500-step run)."""
        return single_thread()


def cache_key(data: np.ndarray, sde, seed: int) -> tuple:
    digest = hashlib.sha256(np.ascontiguousarray(data, dtype=np.float64).tobytes()).hexdigest()
    return digest, repr(sde), seed


def learned_score(data: np.ndarray, sde, seed: int, progress=None) -> LearnedScore:
    """The trained score for (data, sde, seed): from the cache, or trained now (seconds)."""
    key = cache_key(data, sde, seed)
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
        else:
            _cache[key] = train(data, sde, seed, progress=progress)
            while len(_cache) > CACHE_SIZE:
                _cache.popitem(last=False)
        return LearnedScore(_cache[key], sde)
