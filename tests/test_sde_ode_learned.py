"""The learned score: DSM training works, is reproducible, and is cached."""

import numpy as np

from demos.sde_ode import learned
from demos.sde_ode.scores import dense_score
from demos.sde_ode.sdes import VPSDE
from demos.toy_data import load_data


def test_dsm_mlp_learns_the_exact_score_at_large_t():
    data = load_data("8_gaussians", 400, 0)
    sde = VPSDE()
    model = learned.train(data, sde, seed=0, n_iters=300)
    score = learned.LearnedScore(model, sde)
    x = np.random.default_rng(0).standard_normal((500, 2))
    t = 0.7
    got, ref = score(x, t), dense_score(x, data, sde.mean_coeff(t), sde.var(t))
    assert np.isfinite(got).all()
    assert np.abs(got - ref).mean() < 0.25 * np.abs(ref).mean()


def test_learned_score_is_cached_and_reproducible(monkeypatch):
    monkeypatch.setattr(learned, "N_ITERS", 100)
    data = load_data("two_moons", 100, 0)
    first = learned.learned_score(data, VPSDE(), seed=3)
    second = learned.learned_score(data, VPSDE(), seed=3)
    assert first.model is second.model
    fresh = learned.train(data, VPSDE(), seed=3, n_iters=100)
    x = np.zeros((4, 2))
    assert np.allclose(learned.LearnedScore(fresh, VPSDE())(x, 0.5), first(x, 0.5), atol=1e-5)
    assert len(learned._cache) <= learned.CACHE_SIZE
