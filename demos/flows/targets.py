"""Analytic 2-D targets: densities whose true log p(x) is known, so the learned one can be
compared with it (and KL(true || learned) measured on a grid).

Each target draws ``(n, 2)`` float64 samples from ``(n, rng)`` and evaluates ``log p(x)`` for
``x`` of shape (N, 2). The sample-only sets (two moons, spirals, ...) live in
``demos/common/toy_data.py``, shared with the SDE vs ODE tab.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

LOG_2PI = math.log(2 * math.pi)


def gaussian_log_pdf(x: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """log N(x; mean, cov) for x of shape (N, 2)."""
    diff = x - mean  # (N, 2)
    precision = np.linalg.inv(cov)
    mahalanobis = np.einsum("ni,ij,nj->n", diff, precision, diff)
    return -0.5 * (mahalanobis + np.linalg.slogdet(cov)[1] + 2 * LOG_2PI)


# 1. Two Gaussians: p(x) = sum_m pi_m N(x; mu_m, Sigma_m)
MIXTURE_WEIGHTS = np.array([0.4, 0.6])
MIXTURE_MEANS = np.array([[-1.2, -0.6], [1.0, 0.7]])
MIXTURE_COVS = np.array([[[0.30, 0.12], [0.12, 0.25]], [[0.35, -0.15], [-0.15, 0.30]]])


def two_gaussians_log_pdf(x: np.ndarray) -> np.ndarray:
    """log p(x) = logsumexp_m [log pi_m + log N(x; mu_m, Sigma_m)]."""
    from scipy.special import logsumexp  # 0.3 s to import: not at the app's start-up

    parts = [math.log(w) + gaussian_log_pdf(x, m, c)
             for w, m, c in zip(MIXTURE_WEIGHTS, MIXTURE_MEANS, MIXTURE_COVS)]
    return logsumexp(np.stack(parts), axis=0)


def two_gaussians(n: int, rng: np.random.Generator) -> np.ndarray:
    component = rng.choice(len(MIXTURE_WEIGHTS), size=n, p=MIXTURE_WEIGHTS)
    noise = rng.standard_normal((n, 2))
    chol = np.linalg.cholesky(MIXTURE_COVS)  # (M, 2, 2)
    return MIXTURE_MEANS[component] + np.einsum("nij,nj->ni", chol[component], noise)


# 2. Banana: x1 ~ N(0, a^2), x2 | x1 ~ N(b x1^2 + c, s^2)
BANANA_A, BANANA_B, BANANA_C, BANANA_S = 1.2, 0.4, -1.0, 0.35


def banana_log_pdf(x: np.ndarray) -> np.ndarray:
    """log p(x) = log N(x1; 0, a^2) + log N(x2; b x1^2 + c, s^2)."""
    x1, x2 = x[:, 0], x[:, 1]
    log_p1 = -0.5 * (x1 / BANANA_A) ** 2 - math.log(BANANA_A) - 0.5 * LOG_2PI
    log_p2 = -0.5 * ((x2 - BANANA_B * x1**2 - BANANA_C) / BANANA_S) ** 2 - math.log(BANANA_S) - 0.5 * LOG_2PI
    return log_p1 + log_p2


def banana(n: int, rng: np.random.Generator) -> np.ndarray:
    x1 = BANANA_A * rng.standard_normal(n)
    x2 = BANANA_B * x1**2 + BANANA_C + BANANA_S * rng.standard_normal(n)
    return np.stack([x1, x2], 1)


# 3. Ring: p(x) = exp(-(|x| - R)^2 / (2 s^2)) / Z, a hole no Gaussian-shaped flow can tear
RING_R, RING_S = 2.0, 0.25


def ring_log_normaliser() -> float:
    """log Z, Z = int_0^inf exp(-(r-R)^2 / 2s^2) 2 pi r dr
    = 2 pi [s^2 exp(-R^2 / 2s^2) + R s sqrt(pi/2) (1 + erf(R / (s sqrt 2)))]."""
    r, s = RING_R, RING_S
    z = s**2 * math.exp(-r**2 / (2 * s**2)) + r * s * math.sqrt(math.pi / 2) * (1 + math.erf(r / (s * math.sqrt(2))))
    return math.log(2 * math.pi * z)


def ring_log_pdf(x: np.ndarray) -> np.ndarray:
    radius = np.linalg.norm(x, axis=1)
    return -0.5 * ((radius - RING_R) / RING_S) ** 2 - ring_log_normaliser()


def ring(n: int, rng: np.random.Generator) -> np.ndarray:
    """Radius from p(r) ∝ r exp(-(r-R)^2 / 2s^2) by rejection, angle uniform."""
    r_max = RING_R + 8 * RING_S
    radii = np.empty(0)
    while len(radii) < n:
        proposal = RING_R + RING_S * rng.standard_normal(2 * n)
        keep = (proposal > 0) & (rng.uniform(0, r_max, 2 * n) < proposal)
        radii = np.concatenate([radii, proposal[keep]])
    angle = rng.uniform(0, 2 * math.pi, n)
    return radii[:n, None] * np.stack([np.cos(angle), np.sin(angle)], 1)


@dataclass(frozen=True)
class AnalyticTarget:
    sample: Callable[[int, np.random.Generator], np.ndarray]  # (n, rng) -> (n, 2)
    log_pdf: Callable[[np.ndarray], np.ndarray]  # (N, 2) -> (N,)


TARGETS = {
    "2_gaussians": AnalyticTarget(two_gaussians, two_gaussians_log_pdf),
    "banana": AnalyticTarget(banana, banana_log_pdf),
    "ring": AnalyticTarget(ring, ring_log_pdf),
}
