"""Samplers for the reverse-time SDE and the probability-flow ODE, all from a given ``x_T``.

Reverse-time SDE (Anderson 1982; Song et al. 2021, eq. 6) and probability-flow ODE (eq. 13)
are one family (Song et al. 2021, appendix D.1; Karras et al. 2022):

    dx = [f(x,t) - (1 + lambda^2)/2 g(t)^2 grad log p_t(x)] dt + lambda g(t) dw_bar,

``lambda = 0`` is the ODE, ``lambda = 1`` the reverse SDE; every lambda has the marginals p_t.
Time runs from ``t = 1`` down to ``t = eps`` on a uniform grid of ``n_steps`` steps.

Every sampler returns ``(x_eps (N, 2), path, nfe)`` where ``path`` (n_steps + 1, K, 2) holds the
particles ``keep`` (K indices; None keeps none) at every time of the grid. The fixed-step ones
call ``tick(k, n)`` after each step k of n, if given (progress reports; a cancelled run raises there).
``score(x, t)`` is any callable returning the score, shape (N, 2).
"""

from __future__ import annotations

import numpy as np

EPS = 1e-3  # score_sde's sampling_eps for VP; used for all three here


def time_grid(n_steps: int, eps: float = EPS) -> np.ndarray:
    """``t_0 = 1 > t_1 > ... > t_n = eps``, uniform (score_sde's ``linspace(T, eps, N)``)."""
    return np.linspace(1.0, eps, n_steps + 1)


def drift(sde, score, x: np.ndarray, t: float, lam: float) -> np.ndarray:
    """``f(x,t) - (1 + lambda^2)/2 g(t)^2 score(x,t)``: the reverse drift of the lambda family."""
    return sde.f(x, t) - 0.5 * (1.0 + lam * lam) * sde.g2(t) * score(x, t)


def _record(path, k, x, keep):
    if path is not None:
        path[k] = x[keep]


def _tick(tick, k: int, n: int) -> None:
    """``tick(k, n)`` after step k of n, if the caller passed one (progress, cancelling)."""
    if tick is not None:
        tick(k, n)


def _new_path(x, n_steps, keep):
    if keep is None:
        return None
    path = np.empty((n_steps + 1, len(keep), 2))
    path[0] = x[keep]
    return path


def euler_maruyama(sde, score, x_T, n_steps, rng, lam=1.0, keep=None, tick=None):
    """``x <- x - drift dt + lambda g sqrt(dt) z`` (dt > 0 is the step back in time)."""
    ts, x = time_grid(n_steps), np.array(x_T, dtype=float)
    path = _new_path(x, n_steps, keep)
    for k in range(n_steps):
        dt = ts[k] - ts[k + 1]
        x = x - drift(sde, score, x, ts[k], lam) * dt
        if lam:
            x = x + lam * np.sqrt(sde.g2(ts[k]) * dt) * rng.standard_normal(x.shape)
        _record(path, k + 1, x, keep)
        _tick(tick, k + 1, n_steps)
    return x, path, n_steps


def predictor_corrector(sde, score, x_T, n_steps, rng, snr=0.16, keep=None, tick=None):
    """Euler-Maruyama predictor + one Langevin corrector step per time (Song et al. 2021, alg. 1-2).

    Corrector: ``eps = 2 alpha (snr |z| / |s|)^2``, ``x <- x + eps s + sqrt(2 eps) z`` with the
    norms averaged over particles and ``alpha = 1 - beta(t) dt`` for VP/sub-VP, 1 for VE.
    """
    ts, x = time_grid(n_steps), np.array(x_T, dtype=float)
    path = _new_path(x, n_steps, keep)
    for k in range(n_steps):
        dt = ts[k] - ts[k + 1]
        x = x - drift(sde, score, x, ts[k], 1.0) * dt
        x = x + np.sqrt(sde.g2(ts[k]) * dt) * rng.standard_normal(x.shape)
        s, z = score(x, ts[k + 1]), rng.standard_normal(x.shape)  # corrector at t_{k+1}
        alpha = 1.0 - sde.beta(ts[k + 1]) * dt if hasattr(sde, "beta") else 1.0
        ratio = np.sqrt((z ** 2).sum(1)).mean() / max(np.sqrt((s ** 2).sum(1)).mean(), 1e-12)
        step = 2.0 * alpha * (snr * ratio) ** 2
        x = x + step * s + np.sqrt(2.0 * step) * z
        _record(path, k + 1, x, keep)
        _tick(tick, k + 1, n_steps)
    return x, path, 2 * n_steps


def ode_euler(sde, score, x_T, n_steps, keep=None, ts=None, tick=None):
    """Probability-flow ODE, explicit Euler: ``x <- x - [f - 1/2 g^2 s] dt``."""
    ts = time_grid(n_steps) if ts is None else ts
    x = np.array(x_T, dtype=float)
    path = _new_path(x, len(ts) - 1, keep)
    for k in range(len(ts) - 1):
        x = x + drift(sde, score, x, ts[k], 0.0) * (ts[k + 1] - ts[k])
        _record(path, k + 1, x, keep)
        _tick(tick, k + 1, len(ts) - 1)
    return x, path, len(ts) - 1


def ode_heun(sde, score, x_T, n_steps, keep=None, ts=None, tick=None):
    """Probability-flow ODE, Heun (2nd order): Euler predictor, trapezoid corrector.

    ``ts`` may run either way (``1 -> eps`` samples, ``eps -> 1`` encodes data into noise).
    """
    ts = time_grid(n_steps) if ts is None else ts
    x = np.array(x_T, dtype=float)
    path = _new_path(x, len(ts) - 1, keep)
    nfe = 0
    d = drift(sde, score, x, ts[0], 0.0)
    for k in range(len(ts) - 1):
        h = ts[k + 1] - ts[k]
        x_pred = x + h * d
        d_next = drift(sde, score, x_pred, ts[k + 1], 0.0)
        x = x + 0.5 * h * (d + d_next)
        nfe += 2
        if k + 1 < len(ts) - 1:
            d = drift(sde, score, x, ts[k + 1], 0.0)  # reused as the next step's predictor slope
        _record(path, k + 1, x, keep)
        _tick(tick, k + 1, len(ts) - 1)
    return x, path, nfe


def ode_adaptive(sde, score, x_T, rtol=1e-3, atol=1e-3, keep=None, t_eval=None):
    """Probability-flow ODE with scipy's RK45 (Dormand-Prince, adaptive steps), as score_sde's
    ``ode_sampler``; the step size follows the local error, and ``nfe`` is what it cost.

    ``t_eval`` (decreasing times) are where the ``keep`` particles are recorded.
    """
    from scipy.integrate import solve_ivp

    shape = np.shape(x_T)

    def rhs(t, y):  # (2N,) -> (2N,)
        return drift(sde, score, y.reshape(shape), t, 0.0).ravel()

    solution = solve_ivp(rhs, (1.0, EPS), np.asarray(x_T, float).ravel(), method="RK45",
                         rtol=rtol, atol=atol, t_eval=t_eval)
    if not solution.success:
        raise ValueError(f"the adaptive ODE solver failed: {solution.message}")
    x = solution.y[:, -1].reshape(shape)
    path = None
    if keep is not None and t_eval is not None:
        path = solution.y.T.reshape(len(solution.t), *shape)[:, keep]  # (T, K, 2)
    return x, path, int(solution.nfev)
