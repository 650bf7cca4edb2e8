"""The three forward SDEs of Song et al. 2021 (score_sde's ``sde_lib.py``), on numpy arrays.

Each defines the forward SDE ``dx = f(x, t) dt + g(t) dw`` on ``t in [0, 1]`` and its Gaussian
perturbation kernel ``p_0t(x(t) | x(0)) = N(m_t x(0), s_t^2 I)``; with ``m_t`` (``mean_coeff``)
and ``s_t^2`` (``var``) the marginal of data points ``x_i`` is the mixture
``p_t = 1/M sum_i N(m_t x_i, s_t^2 I)``, whose score is exact (see ``scores.py``).

| symbol | VP | sub-VP | VE |
|---|---|---|---|
| f(x,t) | -1/2 beta(t) x | -1/2 beta(t) x | 0 |
| g(t)^2 | beta(t) | beta(t) (1 - e^{-2 B(t)}) | d sigma(t)^2 / dt |
| m_t | e^{-B(t)/2} | e^{-B(t)/2} | 1 |
| s_t^2 | 1 - e^{-B(t)} | (1 - e^{-B(t)})^2 | sigma(t)^2 - sigma_min^2 |
| prior | N(0, I) | N(0, I) | N(0, sigma_max^2 I) |

with ``beta(t) = beta_min + t (beta_max - beta_min)``, ``B(t) = int_0^t beta = beta_min t +
(beta_max - beta_min) t^2 / 2`` and ``sigma(t) = sigma_min (sigma_max / sigma_min)^t``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

SDE_NAMES = ("VP", "subVP", "VE")


@dataclass(frozen=True)
class VPSDE:
    """Variance preserving: ``dx = -1/2 beta(t) x dt + sqrt(beta(t)) dw`` (DDPM's limit)."""

    beta_min: float = 0.1
    beta_max: float = 20.0
    name = "VP"

    def beta(self, t: float) -> float:
        return self.beta_min + t * (self.beta_max - self.beta_min)

    def B(self, t: float) -> float:
        """``B(t) = int_0^t beta(s) ds``."""
        return self.beta_min * t + 0.5 * (self.beta_max - self.beta_min) * t * t

    def f(self, x: np.ndarray, t: float) -> np.ndarray:
        return -0.5 * self.beta(t) * x

    def g2(self, t: float) -> float:
        return self.beta(t)

    def mean_coeff(self, t: float) -> float:
        return math.exp(-0.5 * self.B(t))

    def var(self, t: float) -> float:
        return -math.expm1(-self.B(t))

    def prior_std(self) -> float:
        return 1.0


@dataclass(frozen=True)
class SubVPSDE(VPSDE):
    """sub-VP: ``g(t)^2 = beta(t) (1 - e^{-2B(t)})``; variance ``(1 - e^{-B})^2`` stays below VP's."""

    name = "subVP"

    def g2(self, t: float) -> float:
        return self.beta(t) * -math.expm1(-2.0 * self.B(t))

    def var(self, t: float) -> float:
        return math.expm1(-self.B(t)) ** 2


@dataclass(frozen=True)
class VESDE:
    """Variance exploding: ``dx = sigma(t) sqrt(2 log(sigma_max / sigma_min)) dw`` (SMLD's limit)."""

    sigma_min: float = 0.01
    sigma_max: float = 50.0
    name = "VE"

    def sigma(self, t: float) -> float:
        return self.sigma_min * (self.sigma_max / self.sigma_min) ** t

    def f(self, x: np.ndarray, t: float) -> np.ndarray:
        return np.zeros_like(x)

    def g2(self, t: float) -> float:
        """``g^2 = d sigma^2 / dt = 2 sigma(t)^2 log(sigma_max / sigma_min)``."""
        return 2.0 * self.sigma(t) ** 2 * math.log(self.sigma_max / self.sigma_min)

    def mean_coeff(self, t: float) -> float:
        return 1.0

    def var(self, t: float) -> float:
        return self.sigma(t) ** 2 - self.sigma_min ** 2

    def prior_std(self) -> float:
        return self.sigma_max


def data_diameter(data: np.ndarray) -> float:
    """Largest distance between two data points (over the convex hull's vertices)."""
    data = np.asarray(data, dtype=float)  # (M, 2)
    if len(data) > 3:
        from scipy.spatial import ConvexHull, QhullError
        try:
            data = data[ConvexHull(data).vertices]
        except QhullError:  # collinear or repeated points: use them all (few distinct)
            data = np.unique(data, axis=0)[:2000]
    diff = data[:, None, :] - data[None, :, :]  # (H, H, 2)
    return float(np.sqrt((diff ** 2).sum(-1)).max())


def make_sde(name: str, data: np.ndarray, beta_min: float = 0.1, beta_max: float = 20.0,
             sigma_min: float = 0.01, sigma_max: float | None = None):
    """The SDE called ``name``; VE's ``sigma_max`` defaults to the data's diameter.

    Song & Ermon (2020, technique 1) pick ``sigma_max`` as the largest pairwise distance of the
    training data, which gave score_sde's ``sigma_max = 50`` on CIFAR-10; on 2-D toy data a few
    units across the same rule gives a few units (at least 1).
    """
    if name == "VP":
        return VPSDE(beta_min, beta_max)
    if name == "subVP":
        return SubVPSDE(beta_min, beta_max)
    if name == "VE":
        if sigma_max is None:
            sigma_max = max(data_diameter(data), 1.0)
        return VESDE(sigma_min, max(sigma_max, 2 * sigma_min))
    raise ValueError(f"sde must be one of {', '.join(SDE_NAMES)}; got {name!r}")
