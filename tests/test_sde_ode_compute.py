"""SDE vs ODE: properties against closed forms (forward marginals, Gaussian data, mode weights)."""

import numpy as np
import pytest

from demos.sde_ode import compute, samplers
from demos.sde_ode.scores import ExactScore, GaussianScore
from demos.sde_ode.sdes import SubVPSDE, VESDE, VPSDE, make_sde

SDES = [VPSDE(), SubVPSDE(), VESDE(0.01, 6.0)]


@pytest.mark.parametrize("sde", SDES, ids=lambda s: s.name)
def test_forward_marginals_match_closed_form(sde):
    """Euler-Maruyama on the forward SDE from x(0) = x0 gives N(m_t x0, s_t^2 I) at t = 0.4."""
    rng = np.random.default_rng(0)
    x0 = np.array([1.5, -0.5])
    x = np.tile(x0, (20_000, 1))
    ts = np.linspace(0.0, 0.4, 801)
    for t, t_next in zip(ts[:-1], ts[1:]):
        dt = t_next - t
        x = x + sde.f(x, t) * dt + np.sqrt(sde.g2(t) * dt) * rng.standard_normal(x.shape)
    m, v = sde.mean_coeff(0.4), sde.var(0.4)
    se = np.sqrt(v / len(x))  # standard error of the mean
    assert np.allclose(x.mean(0), m * x0, atol=5 * se + 2e-3 * np.sqrt(v))
    assert np.allclose(x.var(0), v, rtol=0.04)


@pytest.mark.parametrize("sde", SDES, ids=lambda s: s.name)
def test_gaussian_data_ode_maps_prior_to_that_gaussian(sde):
    """For data N(mu, Sigma) the probability-flow ODE with the exact score is affine; pushing the
    exact p_1 = N(m_1 mu, m_1^2 Sigma + s_1^2 I) through it gives back mean mu and covariance Sigma."""
    mu, sigma = np.array([0.5, -0.3]), np.array([[1.0, 0.6], [0.6, 0.5]])
    score = GaussianScore(mu, sigma, sde)
    probes = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]) * sde.prior_std()
    out, _, _ = samplers.ode_heun(sde, score, probes, 1000)
    b = out[0]
    a = (out[1:] - b).T / sde.prior_std()  # x_eps = A x_1 + b, (2, 2)
    m1, v1 = sde.mean_coeff(1.0), sde.var(1.0)
    mean_out = a @ (m1 * mu) + b
    cov_out = a @ (m1 ** 2 * sigma + v1 * np.eye(2)) @ a.T
    m_eps, v_eps = sde.mean_coeff(samplers.EPS), sde.var(samplers.EPS)  # the ODE stops at t = eps
    assert np.allclose(mean_out, m_eps * mu, atol=2e-3)
    assert np.allclose(cov_out, m_eps ** 2 * sigma + v_eps * np.eye(2), atol=3e-3)


def weighted_mixture(seed=0):
    """100 points in three tight clusters with weights 0.5, 0.3, 0.2."""
    centres = np.array([[-2.0, 0.0], [2.0, 0.0], [0.0, 2.5]])
    labels = np.repeat([0, 1, 2], [50, 30, 20])
    return centres[labels] + 0.05 * np.random.default_rng(seed).standard_normal((100, 2)), centres


@pytest.mark.parametrize("name", ["VP", "subVP", "VE"])
def test_both_samplers_reproduce_mode_weights(name):
    data, centres = weighted_mixture()
    sde = make_sde(name, data)
    score = ExactScore(data, sde)
    x_T = compute.prior_noise(sde, 3000, seed=1)
    x_sde, _, _ = samplers.euler_maruyama(sde, score.fresh(), x_T, 300, np.random.default_rng(2))
    x_ode, _, _ = samplers.ode_heun(sde, score.fresh(), x_T, 300)
    for x in (x_sde, x_ode):
        nearest = np.argmin(((x[:, None] - centres[None]) ** 2).sum(-1), 1)
        weights = np.bincount(nearest, minlength=3) / len(x)
        assert np.allclose(weights, [0.5, 0.3, 0.2], atol=0.035), weights


def test_predictor_corrector_and_lambda_family_keep_the_weights():
    data, centres = weighted_mixture()
    sde = make_sde("VP", data)
    score = ExactScore(data, sde)
    x_T = compute.prior_noise(sde, 2000, seed=3)
    pc, _, nfe = samplers.predictor_corrector(sde, score.fresh(), x_T, 200, np.random.default_rng(4))
    lam, _, _ = samplers.euler_maruyama(sde, score.fresh(), x_T, 200, np.random.default_rng(5), lam=0.5)
    assert nfe == 400
    for x in (pc, lam):
        nearest = np.argmin(((x[:, None] - centres[None]) ** 2).sum(-1), 1)
        assert np.allclose(np.bincount(nearest, minlength=3) / len(x), [0.5, 0.3, 0.2], atol=0.04)


def test_ode_encode_decode_round_trip():
    run = compute.simulate(compute.SDEParams(data="8_gaussians", n_data=200, n_samples=50, n_steps=200))
    result = compute.encode_decode(run, n_points=100)
    assert result["latent"].std() > 0.5  # it really went to noise
    assert result["mean_error"] < 0.02


def test_adaptive_ode_reports_its_nfe_and_agrees():
    run = compute.simulate(compute.SDEParams(data="two_moons", n_data=200, n_samples=200, n_steps=200))
    result = compute.adaptive_ode(run)
    assert result["nfe"] > 6
    assert result["mean_gap_to_fixed_ode"] < 0.1


def test_simulate_is_reproducible_and_shapes_are_capped():
    params = compute.SDEParams(data="spiral", n_data=100, n_samples=1600, n_steps=30, seed=7)
    a, b = compute.simulate(params), compute.simulate(params)
    assert np.array_equal(a.sde_final, b.sde_final) and np.array_equal(a.ode_final, b.ode_final)
    assert a.sde_frames.shape == (31, compute.MAX_SHOWN, 2)
    assert a.sde_paths.shape[1] == compute.N_PATHS
    assert np.array_equal(a.sde_frames[0], a.ode_frames[0])  # same noise
    assert not np.allclose(a.sde_paths, a.ode_paths)  # different paths


def test_exact_marginal_density_integrates_to_one():
    data = np.array([[0.0, 0.0], [1.0, 1.0]])
    sde = VPSDE()
    xs = ys = np.linspace(-6, 6, 241)
    density = compute.marginal_density(data, sde, 0.3, xs, ys)
    assert abs(density.sum() * (xs[1] - xs[0]) ** 2 - 1.0) < 1e-3
