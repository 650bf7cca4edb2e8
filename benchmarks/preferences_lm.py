"""RLHF vs DPO on the Text World language model: every trained policy on held-out instructions,
scored by the true reward r*; with ``--write``, stores ``assets/preferences/lm/evaluation.json``,
which the tab draws on open (the reward-KL frontier).

    python -m benchmarks.preferences_lm [--samples 4] [--write]

Targets (issue "Tab: RLHF vs DPO", items 4 and 7): RLHF and DPO each raise the mean true reward
over SFT by at least 0.2 on held-out instructions, with a win rate against SFT of at least 0.7;
KL to the reference grows as beta falls; the reward model's held-out pair accuracy is within 0.05
of the Bradley-Terry ceiling; ``preference`` with 8 samples within 500 ms of server time.

Held-out instructions: the four word tasks on fresh word lists (none in the SFT demonstrations,
the pairs or the rollouts' seeds), half in the canonical phrasing, half in a phrasing never
trained on. Each policy samples ``--samples`` responses per instruction at temperature 1 from the
same seed. KL(pi || pi_SFT) is the mean over those samples of log pi(y|x) - log pi_SFT(y|x)
(an unbiased estimate; whole responses with EOS). The win rate compares each sample's r* with
SFT's sample of the same index for the same instruction: wins + half the ties, over all.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from demos.preferences import compute, lm
from playground import models
from playground.models import single_thread

N_PER_CELL = 25  # instructions per (family, phrasing): 200 in all


def trained_instructions(world) -> frozenset:
    """Every instruction training used: the SFT demonstrations, the pairs and PPO's rollouts
    (regenerated from the training script's seeds)."""
    import random

    from demos.preferences import train

    seen = {d.instruction for d in lm.demonstrations(train.N_DEMOS, lm.DemoMix(), world, seed=train.SEED)}
    seen |= set(train.pair_instructions(train.N_PAIRS + train.N_HELD_OUT_PAIRS, seed=train.SEED + 1))
    rng = random.Random(lm.PPOConfig().seed)
    for _ in range(train.PPO_ITERATIONS):
        seen |= set(train.rollout_instructions(rng, lm.PPOConfig().rollouts))
    return frozenset(seen)


def evaluate(n_samples: int, seed: int = 0) -> dict:
    world = compute._oracle()
    items = lm.evaluation_instructions(N_PER_CELL, exclude=trained_instructions(world))
    texts = [t for t, _ in items]
    reference = models.get("textworld-pref-sft")
    reward_model = models.get("textworld-pref-reward").model
    policies = [("sft", None)] + [(m, b) for m in ("rlhf", "dpo") for b in compute.LM_BETAS]
    rows, sft_rewards = [], None
    for method, beta in policies:
        policy = models.get(compute.lm_registry_name(method, beta or 0))
        start = time.perf_counter()
        with single_thread():
            result = lm.evaluate_policy(policy, reference, reward_model, texts, world, n_samples, seed)
        if method == "sft":
            sft_rewards = result["rewards"]
        row = {"method": method, "beta": beta, "true_reward": round(result["true_reward"], 4),
               "learned_reward": round(result["learned_reward"], 4), "kl": round(result["kl"], 4),
               "correct": round(result["correct"], 4), "extra_words": round(result["extra_words"], 4),
               **lm.win_rate(result["rewards"], sft_rewards),
               "examples": [{"instruction": t, "response": r} for t, r in
                            zip(texts[::N_PER_CELL * 2], result["responses"][::N_PER_CELL * 2 * n_samples])],
               "seconds": round(time.perf_counter() - start, 1)}
        rows.append(row)
        print(f"{method:>5} {beta if beta else '':>5} r* {row['true_reward']:.3f} learned {row['learned_reward']:+.3f} "
              f"KL {row['kl']:.3f} right {row['correct']:.3f} extra {row['extra_words']:.2f} "
              f"win {row['win_rate']:.3f} (no ties {row['win_rate_without_ties']:.3f})", flush=True)
    return {"instructions": len(texts), "samples_per_instruction": n_samples, "seed": seed, "policies": rows,
            "win_rate_ceiling": lm.win_rate_ceiling(sft_rewards)}


def preference_timing(repeats: int = 10) -> dict:
    """Server time of ``preference`` with 8 samples (models loaded first)."""
    p = compute.PreferenceParams(n_samples=8)
    compute.preference(p)
    times = []
    for seed in range(repeats):
        start = time.perf_counter()
        compute.preference(compute.PreferenceParams(p.instruction, "dpo", 0.1, 8, seed))
        times.append(time.perf_counter() - start)
    return {"median_ms": round(1000 * statistics.median(times), 1), "max_ms": round(1000 * max(times), 1),
            "repeats": repeats}


def reward_model_by_kind() -> list[dict]:
    """The reward model on the held-out pairs, by what separates their responses (``lm.reward_model_by_kind``)."""
    pairs = compute.lm_stored("pairs.json")
    if not pairs:
        return []
    sft = models.get("textworld-pref-sft")
    with single_thread():
        return lm.reward_model_by_kind(models.get("textworld-pref-reward").model, sft.tokenizer,
                                       [lm.Pair(**p) for p in pairs["held_out"]], compute._oracle(),
                                       pairs["tau"])


def implied_reward_by_kind() -> list[dict]:
    """Each policy's implied reward ``beta log(pi/pi_SFT)`` as a reward model on the held-out pairs
    (``lm.implied_reward_by_kind``): DPO's is the reward it fitted to the pairs."""
    pairs = compute.lm_stored("pairs.json")
    if not pairs:
        return []
    sft, world = models.get("textworld-pref-sft"), compute._oracle()
    held_out = [lm.Pair(**p) for p in pairs["held_out"]]
    out = []
    for method in ("dpo", "rlhf"):
        for beta in compute.LM_BETAS:
            policy = models.get(compute.lm_registry_name(method, beta))
            with single_thread():
                rows = lm.implied_reward_by_kind(policy.model, sft.model, sft.tokenizer, held_out, world,
                                                 pairs["tau"], beta)
            out.append({"method": method, "beta": beta, "rows": rows})
    return out


def targets(evaluation: dict, log: dict) -> list[str]:
    rows = {(r["method"], r["beta"]): r for r in evaluation["policies"]}
    sft = rows[("sft", None)]["true_reward"]
    out = []
    for method in ("rlhf", "dpo"):
        for beta in compute.LM_BETAS:
            r = rows[(method, beta)]
            out.append(f"{method} beta {beta:g}: r* {sft:.3f} -> {r['true_reward']:.3f} "
                       f"({r['true_reward'] - sft:+.3f}; target +0.2: {'met' if r['true_reward'] - sft >= 0.2 else 'missed'}), "
                       f"win rate {r['win_rate']:.3f} (target 0.7: {'met' if r['win_rate'] >= 0.7 else 'missed'})")
        kls = [rows[(method, b)]["kl"] for b in compute.LM_BETAS]
        out.append(f"{method}: KL by beta {dict(zip(compute.LM_BETAS, kls))}: "
                   f"{'falls' if all(a >= b for a, b in zip(kls, kls[1:])) else 'does not fall everywhere'} as beta grows")
    rm = log["stages"]["reward_model"]
    gap = rm["held_out_ceiling"] - rm["held_out_accuracy"]
    out.append(f"reward model held-out accuracy {rm['held_out_accuracy']:.3f}, ceiling {rm['held_out_ceiling']:.3f} "
               f"(gap {gap:.3f}; target <= 0.05: {'met' if gap <= 0.05 else 'missed'})")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=4, help="samples per held-out instruction")
    parser.add_argument("--write", action="store_true", help="store evaluation.json in assets/preferences/lm/")
    args = parser.parse_args()
    evaluation = evaluate(args.samples)
    evaluation["preference_8_samples"] = preference_timing()
    print(f"preference, 8 samples: median {evaluation['preference_8_samples']['median_ms']} ms, "
          f"max {evaluation['preference_8_samples']['max_ms']} ms (target 500 ms)")
    log = compute.lm_stored("training_log.json")
    if log:
        for line in targets(evaluation, log):
            print(line)
    ceiling = evaluation["win_rate_ceiling"]
    print(f"{ceiling['sft_samples_at_best']:.1%} of SFT's samples score r* = 1: a policy always right and concise "
          f"would have a win rate of {ceiling['win_rate']:.3f} against SFT (ties half)")
    evaluation["reward_model_by_kind"] = reward_model_by_kind()
    for row in evaluation["reward_model_by_kind"]:
        if row["family"] == "all":
            print(f"reward model on {row['pairs']} held-out {row['kind']} pairs: accuracy {row['accuracy']:.3f} "
                  f"(ceiling {row['ceiling']:.3f}), orders as r* {row['orders_as_r_star']}")
    evaluation["implied_reward_by_kind"] = implied_reward_by_kind()
    for item in evaluation["implied_reward_by_kind"]:
        rows = {r["kind"]: r for r in item["rows"] if r["family"] == "all"}
        print(f"{item['method']} beta {item['beta']:g}: beta log(pi/pi_SFT) on the held-out pairs orders right vs wrong "
              f"as r* {rows['right vs wrong']['orders_as_r_star']:.3f}, extra words {rows['extra words']['orders_as_r_star']:.3f}")
    evaluation["default_side_by_side"] = compute.side_by_side(compute.PreferenceParams())  # the tab's opening view
    if args.write:
        (compute.LM_ASSETS / "evaluation.json").write_text(json.dumps(evaluation, indent=1) + "\n")
        print("wrote", compute.LM_ASSETS / "evaluation.json")


if __name__ == "__main__":
    main()
