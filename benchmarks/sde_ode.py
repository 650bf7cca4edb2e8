"""SDE vs ODE speed: 2,000 samples x 500 steps with the exact score of 600 data points.

Target (issue 4): the reverse SDE (Euler-Maruyama) and the probability-flow ODE (Heun), both,
within 1.5 s on a 2-core CPU. Prints wall and CPU seconds per SDE (VP is the tab's default), which
evaluation path the fast exact score took, and a dense all-pairs estimate for comparison.

    python benchmarks/sde_ode.py [--repeats 3] [--dataset two_moons] [--write]

It also times a run with the **learned** score as a user waits for it the first time (the DSM
MLP trained from scratch, then both samplers at the tab's defaults); ``--write`` stores that in
``assets/sde_ode_timing.json``, which the tab's own words quote (issue 14: a user measured 28 s
where the tab said nothing).

Wall time is the figure; CPU time (this process, all threads) shows what the run costs when other
jobs share the machine (compare ``load average`` printed at the top).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from demos.sde_ode import compute, samplers  # noqa: E402
from demos.sde_ode.scores import ExactScore, dense_score  # noqa: E402

TARGET_S = 1.5
N_SAMPLES, N_STEPS, N_DATA = 2000, 500, 600


def one_run(name: str, dataset: str, ode: str = "heun") -> dict:
    params = compute.SDEParams(data=dataset, n_data=N_DATA, sde=name, n_samples=N_SAMPLES, n_steps=N_STEPS)
    data = compute.load_points(params)
    sde = compute.build_sde(params, data)
    wall, cpu = time.perf_counter(), time.process_time()
    score = ExactScore(data, sde)
    x_T = compute.prior_noise(sde, N_SAMPLES, 0)
    s_sde, s_ode = score.fresh(), score.fresh()
    samplers.euler_maruyama(sde, s_sde, x_T, N_STEPS, np.random.default_rng(0))
    (samplers.ode_heun if ode == "heun" else samplers.ode_euler)(sde, s_ode, x_T, N_STEPS)
    paths = {k: s_sde.counts[k] + s_ode.counts[k] for k in s_sde.counts}
    return {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu, "paths": paths,
            "data": data, "sde": sde}


def dense_estimate(data, sde, n_calls: int = 5) -> float:
    """Seconds for 1,500 naive float64 all-pairs score calls (``dense_score``), from a few."""
    x = np.random.default_rng(0).standard_normal((N_SAMPLES, 2))
    start = time.perf_counter()
    for t in np.linspace(0.9, 0.1, n_calls):
        dense_score(x, data, sde.mean_coeff(t), sde.var(t))
    return (time.perf_counter() - start) / n_calls * 1500


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dataset", default="two_moons")
    parser.add_argument("--write", action="store_true", help="store the learned-score run's time for the tab")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} on {os.cpu_count()} CPUs; "
          f"{N_SAMPLES} samples x {N_STEPS} steps, exact score of {N_DATA} '{args.dataset}' points, "
          "Euler-Maruyama (500 NFE) + Heun (1000 NFE)")
    print("VP*: the same with the ODE by Euler instead of Heun (1000 NFE in all, not 1500)")
    print(f"{'SDE':6} {'best wall s':>11} {'median wall s':>13} {'CPU s':>7} {'target s':>8}  "
          f"{'score calls: taylor / neighbours / dense':40} {'naive all-pairs est. s':>22}")
    for name, ode in (("VP", "heun"), ("subVP", "heun"), ("VE", "heun"), ("VP", "euler")):
        runs = [one_run(name, args.dataset, ode) for _ in range(args.repeats)]
        walls = sorted(r["wall"] for r in runs)
        p = runs[0]["paths"]
        dense = dense_estimate(runs[0]["data"], runs[0]["sde"])
        ok = "ok" if walls[0] <= TARGET_S else "OVER"
        label = name if ode == "heun" else f"{name}*"
        print(f"{label:6} {walls[0]:11.2f} {np.median(walls):13.2f} {min(r['cpu'] for r in runs):7.2f} "
              f"{TARGET_S:8.1f}  {p['taylor']:>12} / {p['neighbours']:>10} / {p['dense']:<14} {dense:22.1f}  {ok}")
    result = learned_run()
    print(f"learned score, the tab's defaults from an empty cache: training {result['train_seconds']} s "
          f"({result['train_cpu_seconds']} CPU s), the whole run {result['run_seconds']} s "
          f"({result['run_cpu_seconds']} CPU s)")
    if args.write:
        write_timing(result)


def learned_run() -> dict:
    """The tab's default run with the learned score, from an empty cache: (wall, CPU) seconds of the
    training alone and of the whole run."""
    from dataclasses import replace

    from demos.sde_ode import learned
    from demos.sde_ode.ui import DEFAULT

    learned._cache.clear()
    params = replace(DEFAULT, score="learned")
    data = compute.load_points(params)
    sde = compute.build_sde(params, data)
    t0, c0 = time.perf_counter(), time.process_time()
    learned.train(data, sde, params.seed)
    train_s, train_cpu = time.perf_counter() - t0, time.process_time() - c0
    learned._cache.clear()
    t0, c0 = time.perf_counter(), time.process_time()
    compute.simulate(params)
    return {"train_seconds": round(train_s, 1), "train_cpu_seconds": round(train_cpu, 1),
            "run_seconds": round(time.perf_counter() - t0, 1), "run_cpu_seconds": round(time.process_time() - c0, 1),
            "iterations": learned.N_ITERS, "batch": learned.BATCH}


def write_timing(result: dict) -> None:
    import datetime
    import json

    from demos.sde_ode.ui import TIMING_FILE

    data = {**result, "cores": os.cpu_count(), "load_average": round(os.getloadavg()[0], 1),
            "measured": datetime.date.today().isoformat(), "by": "python benchmarks/sde_ode.py --write"}
    TIMING_FILE.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {TIMING_FILE}")


if __name__ == "__main__":
    main()
