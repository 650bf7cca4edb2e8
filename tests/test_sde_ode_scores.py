"""The fast exact score equals the dense float64 reference within its stated bound."""

import numpy as np
import pytest

from demos.sde_ode import samplers
from demos.sde_ode.scores import ExactScore, dense_score, gaussian_score
from demos.sde_ode.sdes import make_sde
from demos.common.toy_data import load_data


@pytest.mark.parametrize("name", ["VP", "subVP", "VE"])
@pytest.mark.parametrize("dataset", ["two_moons", "rings"])
def test_fast_score_within_bound_of_dense(name, dataset):
    data = load_data(dataset, 600, 0)
    sde = make_sde(name, data)
    score = ExactScore(data, sde, tol=1e-4)
    rng = np.random.default_rng(1)
    used = set()
    for t in [1.0, 0.8, 0.6, 0.45, 0.3, 0.2, 0.1, 0.05, 0.02, 0.005, samplers.EPS]:
        m, v = sde.mean_coeff(t), sde.var(t)
        near = m * data[rng.integers(0, 600, 400)] + np.sqrt(v) * rng.standard_normal((400, 2))
        far = rng.uniform(-6, 6, (100, 2)) * max(1.0, np.sqrt(v))  # off the data too
        x = np.concatenate([near, far])
        fast = score.fresh()
        got = fast(x, t)
        used |= {k for k, c in fast.counts.items() if c}
        bound = 2 * score.tol * m * score.diameter / v
        err = np.abs(got - dense_score(x, data, m, v)).max()
        assert err <= bound + 1e-6 * np.abs(dense_score(x, data, m, v)).max(), (t, err, bound)
    assert len(used) >= 2  # the test visits more than one evaluation path


def test_neighbour_cache_reuse_stays_exact_along_a_run():
    """Consecutive calls reuse neighbour lists; every call must still meet the bound."""
    data = load_data("8_gaussians", 600, 0)
    sde = make_sde("VE", data)
    score = ExactScore(data, sde).fresh()
    x = sde.prior_std() * np.random.default_rng(0).standard_normal((300, 2))
    ts = samplers.time_grid(200)
    for k in range(200):
        t = ts[k]
        s = score(x, t)
        m, v = sde.mean_coeff(t), sde.var(t)
        if k % 10 == 0 or k > 190:
            ref = dense_score(x, data, m, v)
            assert np.abs(s - ref).max() <= 2 * score.tol * m * score.diameter / v + 1e-6 * np.abs(ref).max()
        x = x - samplers.drift(sde, lambda y, u: s, x, t, 0.0) * (ts[k + 1] - t)
    assert score.counts["neighbours"] > 0


def test_taylor_degree_meets_tolerance():
    data = load_data("spiral", 300, 0)
    score = ExactScore(data, make_sde("VP", data), tol=1e-6)
    for rho in [0.1, 1.0, 2.0]:
        p = score.taylor_degree(rho)
        bound = 2.1 * rho ** p / np.prod(np.arange(1, p + 1)) * np.exp(2 * rho)
        assert bound <= 1e-6


def test_gaussian_score_is_grad_log_density():
    mean, cov = np.array([0.3, -0.2]), np.array([[1.0, 0.4], [0.4, 0.7]])
    x = np.array([[0.5, 0.1]])
    m, v = 0.8, 0.3
    c = m * m * cov + v * np.eye(2)

    def logp(y):
        d = y - m * mean
        return -0.5 * d @ np.linalg.solve(c, d)

    h = 1e-6
    numeric = [(logp(x[0] + h * e) - logp(x[0] - h * e)) / (2 * h) for e in np.eye(2)]
    assert np.allclose(gaussian_score(x, mean, cov, m, v)[0], numeric, atol=1e-6)
