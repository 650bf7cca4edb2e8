"""A short run of ``benchmarks/load.py`` (issue 9, item 4): simultaneous users on every endpoint,
no error, no mixed-up answer, and no memory kept from one identical round to the next. The full
run (12 users) is the benchmark: ``python -m benchmarks.load --users 12``."""

import gc
import tracemalloc

from benchmarks import load

ENDPOINTS = {"kv_cache", "sde_ode", "flow", "guidance", "controlnet", "detect"}


def test_simultaneous_users_get_their_own_right_answers_and_memory_does_not_grow(app_url):
    setup = load.prepare(app_url, users=2)  # two at once are enough to mix answers up; 12 in the benchmark
    assert set(setup["endpoints"]) == ENDPOINTS
    warm_up = load.run_rounds(setup, rounds=1)  # caches filled, threads started

    tracemalloc.start()
    try:
        results, traced = [], []
        for _ in range(2):  # two identical rounds, each user with the same session as before
            results.append(load.run_rounds(setup, rounds=1)["results"])
            gc.collect()
            traced.append(tracemalloc.get_traced_memory()[0])
    finally:
        tracemalloc.stop()
    for result in [warm_up["results"], *results]:
        assert not result.errors, result.errors
        assert not result.wrong, result.mismatches
        assert set(result.latencies) == ENDPOINTS
    grew_mb = (traced[1] - traced[0]) / 1e6
    assert grew_mb < 1.0, f"the second identical round kept {grew_mb:.1f} MB more (Python objects)"


def test_answers_are_compared_with_a_tolerance_that_still_catches_a_mixed_up_answer():
    import numpy as np

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    rounded = image.copy()
    rounded[3, 5, 0] ^= 1  # one level on one pixel: torch's thread count changed a rounding
    other_seed = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    answer = {"images": [load.Pixels(image)], "nfe": 10, "loss": 0.123456}
    assert load.difference(answer, {"images": [load.Pixels(image)], "nfe": 10, "loss": 0.123456}, exact=True) is None
    assert load.difference(answer, {"images": [load.Pixels(rounded)], "nfe": 10, "loss": 0.1234561}) is None
    assert load.difference(answer, {"images": [load.Pixels(rounded)], "nfe": 10, "loss": 0.123456}, exact=True)
    assert "pixels differ" in load.difference(answer, {"images": [load.Pixels(other_seed)], "nfe": 10,
                                                        "loss": 0.123456})
    assert "loss" in load.difference(answer, {"images": [load.Pixels(image)], "nfe": 10, "loss": 0.124})
    assert "nfe" in load.difference(answer, {"images": [load.Pixels(image)], "nfe": 11, "loss": 0.123456})
