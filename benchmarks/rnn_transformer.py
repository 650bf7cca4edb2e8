"""RNN vs Transformer: held-out accuracy against distance and pairs, saliency fading, the cost of
recurrence, and the server time of ``recall``; with ``--write``, stores what the tab draws on open.

    python -m benchmarks.rnn_transformer [--n 500] [--write]

Targets (issue "Tab: RNN vs Transformer"): the Transformer >= 0.95 at every distance up to 128;
the tanh RNN <= 0.3 at distance 32 and beyond; the LSTM >= 0.9 at distance 8 or less and at least
0.3 below the Transformer at distance 64; the tanh RNN's saliency at the queried value falls at
least 10x from distance 4 to distance 64; ``recall`` (all four models) within 100 ms.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time

import numpy as np
import torch

from demos.rnn_transformer import compute, models
from demos.rnn_transformer.compute import MODEL_KINDS, sample_sequence
from playground import settings
from playground.models import single_thread

OUT = settings.ASSETS_DIR / "rnn_transformer"


def accuracy_tables(n: int) -> dict:
    by_distance = {kind: models.accuracy_by_distance(models.get_model(kind), n_per_point=n)["accuracy"]
                   for kind in MODEL_KINDS}
    pairs = list(range(compute.MIN_PAIRS, compute.MAX_PAIRS + 1))
    by_pairs = {}
    for kind in MODEL_KINDS:
        rng = np.random.default_rng(54_321)  # the same held-out sequences for every model
        by_pairs[kind] = [models.accuracy(models.get_model(kind), [sample_sequence(rng, n_pairs=k) for _ in range(n)])
                          for k in pairs]
    return {"accuracy_by_distance": {"x": list(models.EVAL_DISTANCES), "n_per_point": n, "models": by_distance},
            "accuracy_by_pairs": {"x": pairs, "n_per_point": n, "models": by_pairs}}


def saliency_at_value(n: int = 100, distances=(4, 64)) -> dict:
    """Median over ``n`` held-out sequences of the saliency at the queried value's position,
    computed in float64 (the tanh RNN's gradient from d = 64 underflows float32 to exactly 0)."""
    out: dict = {"n": n, "dtype": "float64"}
    for kind in MODEL_KINDS:
        model = copy.deepcopy(models.get_model(kind)).double()
        rng = np.random.default_rng(999)
        out[kind] = {}
        for d in distances:
            values = []
            for _ in range(n):
                s = sample_sequence(rng, distance=d)
                values.append(models.explain(model, s)["saliency"][s.value_position])
            out[kind][str(d)] = float(statistics.median(values))
    return out


def recall_seconds(repeats: int = 30) -> dict:
    """Median and p95 server time of ``answer_all`` (the API's work: 4 models, answer, p, saliency)."""
    rng = np.random.default_rng(7)
    sequences = [sample_sequence(rng, distance=int(d)) for d in rng.integers(0, 129, size=repeats)]
    compute.answer_all(sequences[0])  # loads the models
    times = {}
    for details in (False, True):
        seconds = []
        for s in sequences:
            start = time.perf_counter()
            compute.answer_all(s, details=details)
            seconds.append(time.perf_counter() - start)
        times["ui" if details else "api"] = {"median_s": statistics.median(seconds),
                                             "p95_s": float(np.percentile(seconds, 95)), "longest_tokens": max(len(s.tokens) for s in sequences)}
    return times


def default_view() -> dict:
    """The tab's opening sequence answered by the checkpoints, arrays as lists (rounded)."""
    sequence = compute.built_sequence(compute.BuilderParams())
    result = compute.answer_all(sequence, details=True)
    for r in result["models"].values():
        for key in ("states", "attention"):
            if key in r:
                r[key] = np.round(r[key], 4).tolist()
    return {"sequence": sequence.text(), "result": result}


def fall(saliency: dict) -> float:
    """How many times smaller the saliency at the value is at d = 64 than at d = 4."""
    return saliency["4"] / saliency["64"] if saliency["64"] > 0 else float("inf")


def check(name: str, ok: bool, value: str) -> str:
    return f"{name:<62}{value:>22}  {'PASS' if ok else 'FAIL'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500, help="held-out sequences per point")
    parser.add_argument("--write", action="store_true", help="store evaluation.json and default_view.json in assets/")
    args = parser.parse_args()
    with single_thread():
        start = time.perf_counter()
        evaluation = {**accuracy_tables(args.n), "saliency_at_value": saliency_at_value(),
                      "cost": models.recurrence_cost(), "recall_seconds": recall_seconds(),
                      "command": "python -m benchmarks.rnn_transformer" + (f" --n {args.n}" if args.n != 500 else "") + " --write",
                      "torch": torch.__version__}
        print(f"(measured in {time.perf_counter() - start:.0f} s on 1 thread)\n")
    acc = evaluation["accuracy_by_distance"]
    print("held-out accuracy against distance d (" + f"{args.n} sequences per point)")
    print(f"{'d':>5}" + "".join(f"{compute.MODEL_TITLES[k]:>13}" for k in MODEL_KINDS))
    for i, d in enumerate(acc["x"]):
        print(f"{d:>5}" + "".join(f"{acc['models'][k][i]:>13.3f}" for k in MODEL_KINDS))
    pairs = evaluation["accuracy_by_pairs"]
    print("\nheld-out accuracy against the number of pairs (training mix of distances)")
    print(f"{'pairs':>5}" + "".join(f"{compute.MODEL_TITLES[k]:>13}" for k in MODEL_KINDS))
    for i, n in enumerate(pairs["x"]):
        print(f"{n:>5}" + "".join(f"{pairs['models'][k][i]:>13.3f}" for k in MODEL_KINDS))
    sal = evaluation["saliency_at_value"]
    print("\nmedian saliency ||d log p(answer)/d e_t|| at the queried value")
    for k in MODEL_KINDS:
        print(f"{compute.MODEL_TITLES[k]:>12}: d=4 {sal[k]['4']:.3e}   d=64 {sal[k]['64']:.3e}   ratio {fall(sal[k]):.3g}x")
    cost = evaluation["cost"]
    print(f"\ncost of recurrence, batch {cost['batch']}, {cost['threads']} thread (ms: forward / training step; sequential steps)")
    print(f"{'T':>5}" + "".join(f"{compute.MODEL_TITLES[k]:>26}" for k in MODEL_KINDS))
    for i, T in enumerate(cost["lengths"]):
        print(f"{T:>5}" + "".join(f"{1e3 * cost['models'][k]['forward_s'][i]:>9.1f} /{1e3 * cost['models'][k]['train_step_s'][i]:>7.1f}; "
                                  f"{cost['models'][k]['sequential_steps'][i]:>4}" for k in MODEL_KINDS))
    rec = evaluation["recall_seconds"]
    x = acc["x"]
    m = acc["models"]
    at = {k: dict(zip(x, m[k])) for k in MODEL_KINDS}
    print("\ntargets")
    print(check("Transformer >= 0.95 at every distance <= 128", min(at["transformer"][d] for d in x if d <= 128) >= 0.95,
                f"min {min(at['transformer'][d] for d in x if d <= 128):.3f}"))
    print(check("tanh RNN <= 0.3 at distance >= 32", max(at["rnn"][d] for d in x if d >= 32) <= 0.3,
                f"max {max(at['rnn'][d] for d in x if d >= 32):.3f}"))
    print(check("LSTM >= 0.9 at distance <= 8", min(at["lstm"][d] for d in x if d <= 8) >= 0.9,
                f"min {min(at['lstm'][d] for d in x if d <= 8):.3f}"))
    print(check("LSTM at least 0.3 below the Transformer at distance 64", at["transformer"][64] - at["lstm"][64] >= 0.3,
                f"gap {at['transformer'][64] - at['lstm'][64]:.3f}"))
    ratio = fall(sal["rnn"])
    print(check("tanh RNN saliency at the value falls >= 10x from d=4 to d=64", ratio >= 10, f"{ratio:.3g}x"))
    print(check("recall (4 models, API) median server time <= 100 ms", rec["api"]["median_s"] <= 0.1,
                f"{1e3 * rec['api']['median_s']:.1f} ms (p95 {1e3 * rec['api']['p95_s']:.1f})"))
    print(f"{'(the UI path, with hidden states and attention)':<62}{1e3 * rec['ui']['median_s']:>19.1f} ms")
    if args.write:
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / "evaluation.json").write_text(json.dumps(evaluation, indent=1) + "\n")
        with single_thread():
            (OUT / "default_view.json").write_text(json.dumps(default_view()) + "\n")
        print(f"\nwrote {OUT / 'evaluation.json'} and {OUT / 'default_view.json'}")


if __name__ == "__main__":
    main()
