"""The learned score: DSM training works, is reproducible, and is cached."""

import numpy as np

from demos.sde_ode import learned
from demos.sde_ode.scores import dense_score
from demos.sde_ode.sdes import VPSDE
from demos.common.toy_data import load_data


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


def test_the_learned_score_leaves_other_threads_torch_setting_alone():
    """It runs on one torch thread; threads started afterwards (every Gradio worker, every
    step-wise run) must still get the process's setting, not that one."""
    import threading

    import torch

    def threads_of_a_new_thread() -> int:
        seen = []
        thread = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
        thread.start()
        thread.join()
        return seen[0]

    before = threads_of_a_new_thread()
    data = load_data("8_gaussians", 100, 0)
    worker = threading.Thread(target=lambda: learned.LearnedScore(learned.train(data, VPSDE(), 0, n_iters=100),
                                                                  VPSDE())(np.zeros((4, 2)), 0.5))
    worker.start()
    worker.join()
    assert threads_of_a_new_thread() == before


def test_single_thread_can_be_re_entered_and_restores_the_setting():
    import torch

    from playground.models import single_thread

    before = torch.get_num_threads()
    with single_thread():
        with single_thread():
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 1  # the inner exit does not restore early
    assert torch.get_num_threads() == before
