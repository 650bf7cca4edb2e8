"""Exact scores: the perturbed empirical distribution (fast, with an error bound) and a Gaussian.

The forward SDE turns data points ``x_i`` (i = 1..M) into the Gaussian mixture
``p_t(x) = 1/M sum_i N(x; mu_i, v I)`` with ``mu_i = m_t x_i`` and ``v = s_t^2``, whose score is

    grad log p_t(x) = (E[mu | x] - x) / v,    E[mu | x] = sum_i w_i(x) mu_i,
    w_i(x) = softmax_i(-|x - mu_i|^2 / (2 v))        (the posterior over data points).

A dense evaluation costs N x M exponentials per call; most are negligible. ``ExactScore`` picks,
per call, the cheapest of three evaluations, each with an explicit bound on what it leaves out:

1. ``taylor`` (large t, ``m_t x_i`` small against ``s_t``): with ``zeta = (x - m_t c)/s_t``,
   ``a_i = m_t (x_i - c)/s_t``, ``w_i ∝ e^{-|a_i|^2/2} e^{zeta . a_i}`` and the exponential is a
   degree-p power series in ``zeta`` whose coefficients are data moments (cost N p^2, not N M).
   With ``rho = max|zeta| max|a_i|`` the error of ``E[mu|x]`` is at most
   ``2.1 rho^p / p! e^{2 rho} m_t R`` (R = data radius); p is the smallest degree making it
   ``<= tol m_t D`` (cost ~p^2 per particle: the closest 90% of particles get their own, lower p;
   particles whose rho needs p above ~sqrt(M) are computed densely).
2. ``neighbours`` (small t): each particle keeps its K nearest data points from a KD-tree query
   (in data coordinates ``y = x / m_t``), reused while valid. Every dropped point is at least
   ``r_K - |y - y_query|`` away, so the dropped posterior mass is at most
   ``delta <= (M - K) exp(-(m_t^2 (r_K - |y - y_q|)^2 - d_min^2) / (2 v)) / sum_kept``.
   Rows with ``delta > tol`` are queried again, then computed densely if still above.
3. ``dense``: every pair; logits in float32 when they are small enough that rounding stays
   below tol, else in float64 shifted by their row maximum, the exponentials always in float32.

Dropping posterior mass ``delta`` moves ``E[mu|x]`` by ``delta |mean_dropped - mean_kept| <=
delta m_t D`` (D = data diameter), so in every case

    |score_fast(x, t) - score_exact(x, t)| <= 2 tol m_t D / v_t     for every particle.

``tests/test_sde_ode_scores.py`` checks this against ``dense_score`` in float64.
"""

from __future__ import annotations

import copy
import functools
import math

import numpy as np

TAYLOR_MAX_DEGREE = 60
TAYLOR_MAX_RHO = 10.0  # above this e^{2 rho} makes the series long and float64 cancellation visible
# OpenBLAS runs a product with more than 65536 * 4 multiply-adds on several threads; on a busy
# 2-core machine those threads wait on each other (10x slower here), so products stay below it.
BLAS_SERIAL_MNK = 65536 * 4
NEIGHBOURS_K = 16
SAFE_EXP_LOGIT = 80.0  # e^{+-80} neither overflows nor underflows in float32
FLOAT32_MAX_LOGIT = 200.0  # float32 rounding of logits below this keeps weights within ~2.4e-5


def dense_score(x: np.ndarray, data: np.ndarray, m: float, v: float) -> np.ndarray:
    """Reference: the exact mixture score over all pairs in float64 (slow, for tests)."""
    mu = m * np.asarray(data, dtype=np.float64)  # (M, 2)
    x = np.asarray(x, dtype=np.float64)  # (N, 2)
    logits = -((x[:, None, :] - mu[None]) ** 2).sum(-1) / (2 * v)  # (N, M)
    logits -= logits.max(1, keepdims=True)
    w = np.exp(logits)
    w /= w.sum(1, keepdims=True)
    return (w @ mu - x) / v


def gaussian_score(x: np.ndarray, mean: np.ndarray, cov: np.ndarray, m: float, v: float) -> np.ndarray:
    """Score of ``p_t = N(m mean, m^2 cov + v I)``, the marginal of Gaussian data ``N(mean, cov)``."""
    cov_t = m * m * np.asarray(cov, dtype=float) + v * np.eye(2)  # (2, 2)
    return -np.linalg.solve(cov_t, (x - m * np.asarray(mean)).T).T  # (N, 2)


class GaussianScore:
    """``score(x, t)`` for Gaussian data ``N(mean, cov)``: the closed form, for tests and checks."""

    def __init__(self, mean, cov, sde):
        self.mean, self.cov, self.sde = np.asarray(mean, float), np.asarray(cov, float), sde

    def __call__(self, x: np.ndarray, t: float) -> np.ndarray:
        return gaussian_score(x, self.mean, self.cov, self.sde.mean_coeff(t), self.sde.var(t))

    def fresh(self) -> "GaussianScore":
        return self


class ExactScore:
    """``score(x, t)``: the exact score of the perturbed empirical distribution of ``data``.

    Call ``fresh()`` to get an evaluator with its own neighbour cache for one sampler run
    (the cache speeds up consecutive calls on slowly moving particles; it never changes results
    beyond the bound in the module docstring).
    """

    def __init__(self, data: np.ndarray, sde, tol: float = 1e-4):
        from scipy.spatial import cKDTree

        from demos.sde_ode.sdes import data_diameter

        self.data = np.asarray(data, dtype=np.float64)  # (M, 2)
        self.sde, self.tol = sde, tol
        self.center = self.data.mean(0)  # (2,)
        self.radius = float(np.sqrt(((self.data - self.center) ** 2).sum(1)).max())  # R
        self.diameter = data_diameter(self.data)  # D
        self.tree = cKDTree(self.data)
        self.k = min(NEIGHBOURS_K, len(self.data))
        # Taylor costs ~3 p^2 multiply-adds per particle, dense ~M exponentials (~8 flops each).
        self.max_degree = int(min(TAYLOR_MAX_DEGREE, math.sqrt(len(self.data))))
        # Typical distance from a data point to its K-th neighbour (for the neighbour heuristic).
        dist = self.tree.query(self.data, k=min(self.k + 1, len(self.data)))[0]
        self.r_k = float(np.quantile(np.reshape(dist, (len(self.data), -1))[:, -1], 0.8))
        self._cache: dict | None = None
        self._coef_cache: tuple | None = None
        self._backoff_v = math.inf  # neighbours are tried again only below this variance
        self.counts = {"taylor": 0, "neighbours": 0, "dense": 0}

    def fresh(self) -> "ExactScore":
        other = copy.copy(self)
        other._cache, other._coef_cache, other._backoff_v = None, None, math.inf
        other.counts = {"taylor": 0, "neighbours": 0, "dense": 0}
        return other

    def __call__(self, x: np.ndarray, t: float) -> np.ndarray:
        m, v = self.sde.mean_coeff(t), self.sde.var(t)
        x = np.asarray(x, dtype=np.float64)  # (N, 2)
        rho = self._rho(x, m, v)  # (N,)
        near = rho <= min(TAYLOR_MAX_RHO, self.max_rho)
        if near.all() and rho.max() <= 1.0:  # low degree for everyone: one product
            self.counts["taylor"] += 1
            return self._taylor(x, m, v, rho.max())
        if near.mean() > 0.5:  # most rows by Taylor (cost ~p^2: the closest 90% get a lower p),
            self.counts["taylor"] += 1  # the far ones densely
            score = np.empty_like(x)
            rho_near = rho[near]
            cut = np.partition(rho_near, int(0.9 * (len(rho_near) - 1)))[int(0.9 * (len(rho_near) - 1))]
            for rows in (near & (rho <= cut), near & (rho > cut)):
                if rows.any():
                    score[rows] = self._taylor(x[rows], m, v, rho[rows].max())
            if not near.all():
                score[~near] = self._dense(x[~near], m, v)
            return score
        if self.k < len(self.data) and self._neighbours_worthwhile(m, v):
            self.counts["neighbours"] += 1
            return self._neighbours(x, m, v)
        self.counts["dense"] += 1
        return self._dense(x, m, v)

    # 1. Taylor expansion of the posterior weights around the data mean.
    def _rho(self, x: np.ndarray, m: float, v: float) -> np.ndarray:
        """``rho = |zeta| max|a_i| = |x - m_t c| m_t R / s_t^2`` per particle, (N,)."""
        return np.sqrt(((x - m * self.center) ** 2).sum(1)) * m * self.radius / v

    @functools.cached_property
    def max_rho(self) -> float:
        """Largest rho whose Taylor degree stays within ``max_degree``."""
        return max((r for r in np.arange(0.05, TAYLOR_MAX_RHO + 1e-9, 0.05)
                    if self._degree_or_none(r) is not None), default=0.0)

    def _degree_or_none(self, rho: float) -> int | None:
        for p in range(1, self.max_degree + 1):
            log_bound = p * math.log(max(rho, 1e-300)) - math.lgamma(p + 1) + 2 * rho
            if math.log(2.1) + log_bound <= math.log(self.tol) and rho < p + 1:
                return p
        return None

    def taylor_degree(self, rho: float) -> int:
        """Smallest p with ``2.1 rho^p / p! e^{2 rho} <= tol`` (and ``rho < p + 1``)."""
        p = self._degree_or_none(rho)
        if p is not None:
            return p
        raise ValueError(f"rho = {rho:.3g} is too large for a Taylor expansion")

    def _taylor(self, x: np.ndarray, m: float, v: float, rho: float) -> np.ndarray:
        """``E[a|x] = grad_zeta log Z``, ``Z(zeta) = sum_{j+k<=p} zeta1^j zeta2^k M_jk / (j! k!)``."""
        p, s = self.taylor_degree(rho), math.sqrt(v)
        coef = self._taylor_coefficients(m, s, p)  # (3 (p+1), p+1)
        zeta = (x - m * self.center) / s  # (N, 2)
        z1, z2 = _powers(zeta[:, 0], p).T.copy(), _powers(zeta[:, 1], p).T  # (N, p+1) each
        partial = serial_matmul(z1, coef.T)  # sum_j zeta1^j coef[., k, j], (N, 3 (p+1))
        z, g1, g2 = (partial.reshape(-1, 3, p + 1) * z2[:, None, :]).sum(2).T  # (N,) each
        mean_a = np.stack([g1, g2], 1) / z[:, None]  # E[a | x], (N, 2)
        return (s * mean_a - (x - m * self.center)) / v

    def _taylor_coefficients(self, m: float, s: float, p: int) -> np.ndarray:
        """Data moments ``M_jk / (j! k!)`` for Z and its two derivatives; the last one is kept
        (Heun and the corrector ask twice at the same t)."""
        if self._coef_cache is None or self._coef_cache[0] != (m, s):
            self._coef_cache = ((m, s), {})  # one time at a time, a few degrees
        if p in self._coef_cache[1]:
            return self._coef_cache[1][p]
        a = m * (self.data - self.center) / s  # (M, 2)
        c = np.exp(-0.5 * (a ** 2).sum(1))  # (M,)
        moments = serial_matmul(_powers(a[:, 0], p) * c, _powers(a[:, 1], p).T)  # M_jk, (p+1, p+1)
        j = np.arange(p + 1)
        log_fact = np.array([math.lgamma(k + 1) for k in j])
        fact2 = np.exp(-log_fact[:, None] - log_fact[None, :])  # 1 / (j! k!)
        total = j[:, None] + j[None, :]  # j + k
        coef = np.zeros((3, p + 1, p + 1))  # for Z, dZ/d zeta1, dZ/d zeta2
        coef[0] = np.where(total <= p, moments * fact2, 0.0)
        coef[1, :p] = np.where(total[:p] <= p - 1, moments[1:] * fact2[:p], 0.0)
        coef[2, :, :p] = np.where(total[:, :p] <= p - 1, moments[:, 1:] * fact2[:, :p], 0.0)
        coef = np.ascontiguousarray(coef.transpose(0, 2, 1).reshape(3 * (p + 1), p + 1))  # ((which, k), j)
        self._coef_cache[1][p] = coef
        return coef

    # 2. Nearest neighbours with a cached candidate list.
    def _neighbours_worthwhile(self, m: float, v: float) -> bool:
        """Heuristic only (results are bounded either way): would K neighbours usually do?

        True when the cut-off radius ``sqrt(2 v log(M / tol)) / m_t`` is below the typical
        distance from a data point to its K-th neighbour, and the last try did not fail often.
        """
        cutoff = math.sqrt(2 * v * math.log(len(self.data) / self.tol)) / max(m, 1e-12)
        return cutoff < self.r_k and v < self._backoff_v

    def _query(self, y: np.ndarray) -> dict:
        dist, idx = self.tree.query(y, k=self.k)  # (n, K) each
        return {"y": y.copy(), "cand": self.data[idx], "r_k": dist[:, -1]}

    def _neighbours(self, x: np.ndarray, m: float, v: float) -> np.ndarray:
        y = x / m  # data coordinates, (N, 2)
        if self._cache is None or len(self._cache["y"]) != len(x):
            self._cache = self._query(y)
        score, bad = self._from_candidates(x, y, m, v, self._cache)
        if bad.any():  # 2b. query the failing rows again
            fresh = self._query(y[bad])
            for key in ("y", "cand", "r_k"):
                self._cache[key][bad] = fresh[key]
            score[bad], still = self._from_candidates(x[bad], y[bad], m, v, fresh)
            if still.any():  # 2c. too many close points: dense for those rows
                rows = np.flatnonzero(bad)[still]
                score[rows] = self._dense(x[rows], m, v)
                if len(rows) > 0.1 * len(x):  # K is too small at this t: wait for smaller v
                    self._backoff_v = 0.5 * v
        return score

    def _from_candidates(self, x, y, m, v, cache) -> tuple[np.ndarray, np.ndarray]:
        mu = m * cache["cand"]  # (N, K, 2)
        d2 = ((x[:, None, :] - mu) ** 2).sum(-1)  # (N, K)
        d2_min = d2.min(1)  # (N,)
        w = np.exp((d2_min[:, None] - d2) / (2 * v))  # (N, K), max 1
        kept = w.sum(1)  # (N,)
        moved = np.sqrt(((y - cache["y"]) ** 2).sum(1))  # (N,)
        lower = m * np.maximum(cache["r_k"] - moved, 0.0)  # dropped points are at least this far
        exponent = np.minimum((d2_min - lower ** 2) / (2 * v), 700.0)  # no overflow: inf fails anyway
        delta = (len(self.data) - self.k) * np.exp(exponent) / kept
        mean_mu = (w[:, :, None] * mu).sum(1) / kept[:, None]  # (N, 2)
        return (mean_mu - x) / v, delta > self.tol

    # 3. Dense over all pairs, in row blocks that fit in cache and stay single-threaded.
    def _dense(self, x: np.ndarray, m: float, v: float) -> np.ndarray:
        """Small logits: all in float32. Large logits (small v): computed and shifted by their row
        maximum in float64, then exponentiated and summed in float32 (a shifted logit l <= 0
        rounds by at most 2^-24 |l|, so every weight moves by at most e^-1 2^-24; 3x faster than
        float64 exponentials)."""
        mu = m * (self.data - self.center)  # (M, 2), centred for smaller logits
        xc = x - m * self.center  # (N, 2)
        max_logit = (np.sqrt((xc ** 2).sum(1).max()) * m * self.radius + 0.5 * (m * self.radius) ** 2) / v
        small = max_logit < FLOAT32_MAX_LOGIT
        dtype = np.float32 if small else np.float64
        weights = np.concatenate([mu.T / v, -0.5 * (mu ** 2).sum(1)[None] / v]).astype(dtype)  # (3, M)
        xa = np.concatenate([xc, np.ones((len(x), 1))], 1).astype(dtype)  # (N, 3)
        mu_1 = np.concatenate([mu, np.ones((len(mu), 1))], 1).astype(np.float32)  # (M, 3)
        sums = np.empty((len(x), 3), np.float32)  # sum_i w_i [mu_i, 1]
        rows_per_block = max(1, BLAS_SERIAL_MNK // (3 * len(mu)))
        block = np.empty((min(rows_per_block, len(x)), len(mu)), dtype)
        block32 = block if small else np.empty(block.shape, np.float32)
        for start in range(0, len(x), rows_per_block):
            rows = slice(start, min(start + rows_per_block, len(x)))
            logits = block[: rows.stop - start]  # (B, M)
            np.matmul(xa[rows], weights, out=logits)
            if max_logit > SAFE_EXP_LOGIT:  # otherwise |logits| < 80: exp needs no shift
                logits -= logits.max(1, keepdims=True)
            if not small:
                block32[: len(logits)] = logits
                logits = block32[: len(logits)]
            np.exp(logits, out=logits)
            np.matmul(logits, mu_1, out=sums[rows])
        mean_mu = sums[:, :2].astype(np.float64) / sums[:, 2:].astype(np.float64)
        return (mean_mu - xc) / v


def serial_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` in row blocks of ``a`` below OpenBLAS's threading threshold (``BLAS_SERIAL_MNK``)."""
    rows = max(1, BLAS_SERIAL_MNK // (a.shape[1] * b.shape[1]))
    if a.shape[0] <= rows:
        return a @ b
    out = np.empty((a.shape[0], b.shape[1]))
    for i in range(0, a.shape[0], rows):
        np.matmul(a[i:i + rows], b, out=out[i:i + rows])
    return out


def _powers(values: np.ndarray, p: int) -> np.ndarray:
    """``[1, v, v^2, ..., v^p]`` row by row (faster than ``np.cumprod`` here), shape (p+1, n)."""
    out = np.empty((p + 1, len(values)))
    out[0] = 1.0
    if p >= 1:
        out[1] = values
    for k in range(2, p + 1):
        np.multiply(out[k - 1], values, out=out[k])
    return out
