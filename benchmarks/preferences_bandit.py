"""RLHF vs DPO, the exact problem: KL of each method's policy to the optimum pi* across beta, K and
seeds, and the time to train both to convergence; with ``--write``, stores the default settings'
run, which the tab draws on open.

    python -m benchmarks.preferences_bandit [--seeds 10] [--write]

Targets (issue "Tab: RLHF vs DPO", items 4 and 7): KL(pi_DPO || pi*) below 0.05 nats with 5,000
pairs at tau = 1; both methods trained to convergence within 5 s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import asdict

from demos.preferences import compute
from demos.preferences.compute import BanditParams
from playground import settings

OUT = settings.ASSETS_DIR / "preferences"
BETAS = (0.1, 0.3, 0.5, 1.0)
KS = (8, 16, 64)
SWEEP_PAIRS = (30, 100, 300, 1000, 3000, 10_000)
SWEEP_BETAS = (0.1, 0.5, 2.0)
SWEEP_TAUS = (1.0, 0.01)


def timed(p: BanditParams) -> tuple[compute.BanditResult, float]:
    start = time.perf_counter()
    result = compute.run(p)
    return result, time.perf_counter() - start


def kl_sweep(seeds: int) -> list[dict]:
    """Median and worst KL to pi* of both methods over ``seeds`` seeds, 5,000 pairs, tau = 1."""
    rows = []
    for k in KS:
        for beta in BETAS:
            runs = [compute.run(BanditParams(beta=beta, n_candidates=k, n_pairs=5000, tau=1.0, seed=s))
                    for s in range(seeds)]
            dpo, rlhf = [r.kl_dpo_to_optimal for r in runs], [r.kl_rlhf_to_optimal for r in runs]
            rows.append({"K": k, "beta": beta, "dpo_median": statistics.median(dpo), "dpo_max": max(dpo),
                         "rlhf_median": statistics.median(rlhf), "rlhf_max": max(rlhf),
                         "dpo_below_0.05": sum(x < 0.05 for x in dpo) / seeds,
                         "mle_exists": sum(r.stats["mle_exists"] for r in runs) / seeds})
    return rows


def pairs_sweep(seeds: int) -> dict:
    """Median KL to pi* of both methods against the number of pairs, for a few betas and two label
    noises (K and seed range as the tab's defaults): what the tab draws under "what changes"."""
    out = {"n_pairs": list(SWEEP_PAIRS), "seeds": seeds, "n_candidates": BanditParams().n_candidates, "curves": []}
    for tau in SWEEP_TAUS:
        for beta in SWEEP_BETAS:
            curve = {"beta": beta, "tau": tau, "dpo": [], "rlhf": [], "mle_exists": []}
            for n in SWEEP_PAIRS:
                runs = [compute.run(BanditParams(beta=beta, n_pairs=n, tau=tau, seed=s)) for s in range(seeds)]
                curve["dpo"].append(statistics.median(r.kl_dpo_to_optimal for r in runs))
                curve["rlhf"].append(statistics.median(r.kl_rlhf_to_optimal for r in runs))
                curve["mle_exists"].append(sum(r.stats["mle_exists"] for r in runs) / seeds)
            out["curves"].append(curve)
    return out


def check(label: str, ok: bool, value: str) -> str:
    return f"{label:<66}{value:>16}   {'PASS' if ok else 'FAIL'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="seeds per (beta, K) of the KL sweep")
    parser.add_argument("--write", action="store_true", help="store the default run in assets/preferences/")
    args = parser.parse_args()

    start = time.perf_counter()
    import torch  # timed apart: the server imports it once, on the first run

    torch_import = time.perf_counter() - start
    _, first = timed(BanditParams())
    default = [timed(BanditParams(seed=s)) for s in range(5)]
    largest = [timed(BanditParams(beta=0.1, n_candidates=compute.MAX_CANDIDATES, n_pairs=compute.MAX_PAIRS,
                                  tau=0.01, seed=s))[1] for s in range(3)]
    default_s = statistics.median(t for _, t in default)
    sweep = kl_sweep(args.seeds)
    by_pairs = pairs_sweep(max(1, args.seeds // 2))

    print(f"exact problem: {compute.TRAIN_STEPS} steps of each method; torch import {torch_import:.1f} s, "
          f"first run {first:.2f} s (one-time warm-up)\n")
    print(f"KL to pi* with 5,000 pairs, tau = 1, over {args.seeds} seeds (nats)")
    print(f"{'K':>3} {'beta':>5} {'DPO median':>11} {'DPO max':>9} {'RLHF median':>12} {'RLHF max':>9} "
          f"{'DPO < 0.05':>11} {'finite MLE':>11}")
    for r in sweep:
        print(f"{r['K']:>3} {r['beta']:>5} {r['dpo_median']:>11.4f} {r['dpo_max']:>9.4f} {r['rlhf_median']:>12.4f} "
              f"{r['rlhf_max']:>9.4f} {r['dpo_below_0.05']:>11.0%} {r['mle_exists']:>11.0%}")
    print(f"\nmedian KL to pi* against the number of pairs (K {by_pairs['n_candidates']}, {by_pairs['seeds']} seeds): DPO / RLHF")
    print(f"{'tau':>5} {'beta':>5}" + "".join(f"{n:>16,}" for n in by_pairs["n_pairs"]))
    for c in by_pairs["curves"]:
        print(f"{c['tau']:>5} {c['beta']:>5}" + "".join(f"{a:>8.3f}/{b:<7.3f}" for a, b in zip(c["dpo"], c["rlhf"])))
    d = BanditParams()
    at_default = next(r for r in sweep if r["K"] == d.n_candidates and r["beta"] == d.beta)
    print("\ntargets")
    print(check(f"KL(pi_DPO || pi*) < 0.05, 5,000 pairs, tau 1 (K {d.n_candidates}, beta {d.beta}, worst seed)",
                at_default["dpo_max"] < 0.05, f"{at_default['dpo_max']:.4f}"))
    print(check("both methods to convergence, default settings (median of 5)", default_s <= 5, f"{default_s:.2f} s"))
    print(check(f"both, K {compute.MAX_CANDIDATES}, {compute.MAX_PAIRS:,} pairs, tau 0.01 (slowest of 3)",
                max(largest) <= 5, f"{max(largest):.2f} s"))
    converged = max(max(r.stats["dpo_grad"] for r, _ in default), max(r.stats["rl_gap"] for r, _ in default))
    print(check("converged: DPO gradient and RLHF gap to its target (worst of 5)", converged < 1e-6, f"{converged:.1e}"))
    print(f"(measured in {time.perf_counter() - start:.0f} s)")

    if args.write:
        OUT.mkdir(parents=True, exist_ok=True)
        run = compute.run(BanditParams())
        (OUT / "bandit_default.json").write_text(json.dumps(run.export()))
        (OUT / "benchmark.json").write_text(json.dumps(
            {"command": "python -m benchmarks.preferences_bandit" + (f" --seeds {args.seeds}" if args.seeds != 10 else "")
                        + " --write",
             "defaults": asdict(BanditParams()), "kl_sweep": sweep, "pairs_sweep": by_pairs, "seconds": {"default_median": default_s,
                                                                                  "largest_max": max(largest)}},
            indent=1))
        print(f"\nwrote {OUT / 'bandit_default.json'} and {OUT / 'benchmark.json'}")


if __name__ == "__main__":
    main()
