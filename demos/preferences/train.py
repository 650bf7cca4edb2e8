"""Train the RLHF vs DPO tab's language models on Text World, from a fixed seed.

    python -m demos.preferences.train [--jobs 2] [--threads 1] [--out assets/preferences/lm]

1. **SFT**: the base model as the Instruction tuning tab tuned it on 8,000 Self-Instruct examples
   (``textworld-instruct-n8000``), fine-tuned further with the same code (``tuning.finetune``,
   Alpaca's format, loss on the response) on ``N_DEMOS`` demonstrations of the four word tasks:
   50% concise, 30% right but verbose, 20% wrong (``lm.DemoMix``).
2. **Pairs**: ``N_PAIRS`` + ``N_HELD_OUT_PAIRS`` instructions, two SFT samples each (temperature
   1), labelled by Bradley-Terry on r* at ``TAU``.
3. **Reward model**: SFT with a scalar head, fitted to the training pairs.
4. For each beta in ``BETAS`` (worker processes): **DPO** on the pairs and **PPO** against the
   reward model, both from SFT with SFT as the reference.
5. **Evaluation** (``benchmarks/preferences_lm.py`` reruns it): held-out instructions, samples of
   every policy, r*, learned reward, KL to SFT, win rate against SFT: ``evaluation.json``.

Weights are float16 safetensors with the tokenizer; ``training_log.json`` records the data, the
configurations, every curve, and the wall and CPU seconds of each stage.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from dataclasses import asdict
from pathlib import Path

from demos.instruction_tuning import tuning
from demos.instruction_tuning.compute import oracle
from demos.instruction_tuning.train import _Local, cpu_seconds
from demos.preferences import lm
from playground import settings

BETAS = (0.03, 0.1, 0.3, 1.0)
N_DEMOS = 12000
N_PAIRS, N_HELD_OUT_PAIRS = 3000, 600
TAU = 0.1
SEED = 0
SFT_START = "textworld-instruct-n8000"  # the base model instruction-tuned by the Instruction tuning tab
SFT_CONFIG = tuning.TuneConfig(epochs=3, replay=0.0)  # word tasks only: no fact to keep
REWARD_CONFIG = lm.RewardConfig()
DPO_STEPS = lm.DPOConfig().steps
PPO_ITERATIONS = 60


def load_lm(folder: Path):
    import torch

    from demos.common import language_model as lmk

    return lmk.load_causal_lm(_Local(folder), "cpu", torch.float32)


def load_reward_model(folder: Path):
    import torch
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification.from_pretrained(folder, dtype=torch.float32, local_files_only=True,
                                                              use_safetensors=True).eval()


def save(model, tokenizer, folder: Path) -> None:
    model.half().save_pretrained(folder, safe_serialization=True)
    model.float()
    tokenizer.save_pretrained(folder)


def pair_instructions(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [lm.instruction(rng) for _ in range(n)]


def rollout_instructions(rng: random.Random, n: int) -> list[str]:
    return [lm.instruction(rng) for _ in range(n)]


def train_beta(job) -> tuple[float, dict]:
    """DPO and PPO at one beta (a worker process)."""
    import torch

    beta, out, threads, dpo_steps, ppo_iterations = job
    torch.set_num_threads(threads)
    out = Path(out)
    sft, rm, world = load_lm(out / "sft"), load_reward_model(out / "reward"), oracle()
    pairs = [lm.Pair(**p) for p in json.loads((out / "pairs.json").read_text())["train"]]
    record = {}
    t0, c0 = time.perf_counter(), cpu_seconds()
    dpo, log = lm.train_dpo(sft, pairs, lm.DPOConfig(beta=beta, steps=dpo_steps, seed=SEED),
                            on_log=lambda r: print(f"dpo {beta}", r, flush=True))
    save(dpo.model, dpo.tokenizer, out / f"dpo-beta{beta:g}")
    record["dpo"] = {"config": asdict(lm.DPOConfig(beta=beta, steps=dpo_steps, seed=SEED)), "log": log,
                     "seconds": round(time.perf_counter() - t0, 1), "cpu_seconds": round(cpu_seconds() - c0, 1)}
    t0, c0 = time.perf_counter(), cpu_seconds()
    cfg = lm.PPOConfig(beta=beta, iterations=ppo_iterations, seed=SEED)
    ppo, log = lm.train_ppo(sft, rm, rollout_instructions, cfg, oracle=world,
                            on_log=lambda r: print(f"ppo {beta}", r, flush=True))
    save(ppo.model, ppo.tokenizer, out / f"rlhf-beta{beta:g}")
    record["rlhf"] = {"config": asdict(cfg), "log": log, "seconds": round(time.perf_counter() - t0, 1),
                      "cpu_seconds": round(cpu_seconds() - c0, 1)}
    return beta, record


def stages_before_policies(log: dict, out: Path, n, world) -> dict:
    """SFT, the preference pairs and the reward model (stages 1-3)."""
    import torch

    from playground import models

    t0, c0 = time.perf_counter(), cpu_seconds()
    base = models.get(SFT_START)
    demos = lm.demonstrations(n(N_DEMOS), lm.DemoMix(), world, seed=SEED)
    sft, sft_log = tuning.finetune(base, demos, SFT_CONFIG, on_log=lambda r: print("sft", r, flush=True))
    save(sft.model, sft.tokenizer, out / "sft")
    log["stages"]["sft"] = {"start": SFT_START, "demonstrations": len(demos), "families": dict(sorted(tuning.family_counts(demos).items())),
                            "mix": {k: sum(d.kind == k for d in demos) for k in ("concise", "verbose", "wrong")},
                            "config": asdict(SFT_CONFIG), "log": sft_log, "seconds": round(time.perf_counter() - t0, 1),
                            "cpu_seconds": round(cpu_seconds() - c0, 1)}

    t0, c0 = time.perf_counter(), cpu_seconds()
    texts = pair_instructions(n(N_PAIRS) + n(N_HELD_OUT_PAIRS), seed=SEED + 1)
    generator = torch.Generator().manual_seed(SEED)
    first, second = lm.sample(sft, texts, generator), lm.sample(sft, texts, generator)
    pairs = lm.label_pairs(sft.tokenizer, texts, first, second, world, TAU, random.Random(SEED))
    train_pairs, held_out = pairs[:n(N_PAIRS)], pairs[n(N_PAIRS):]
    (out / "pairs.json").write_text(json.dumps({"tau": TAU, "train": [asdict(p) for p in train_pairs],
                                                "held_out": [asdict(p) for p in held_out]}) + "\n")
    log["stages"]["pairs"] = {"train": len(train_pairs), "held_out": len(held_out),
                              "ties": sum(p.reward_chosen == p.reward_rejected for p in pairs),
                              "seconds": round(time.perf_counter() - t0, 1), "cpu_seconds": round(cpu_seconds() - c0, 1)}

    t0, c0 = time.perf_counter(), cpu_seconds()
    rm, rm_log = lm.train_reward_model(sft, train_pairs, REWARD_CONFIG, on_log=lambda r: print("rm", r, flush=True))
    rm.config.pad_token_id = sft.tokenizer.pad_token_id
    save(rm, sft.tokenizer, out / "reward")
    log["stages"]["reward_model"] = {
        "config": asdict(REWARD_CONFIG), "log": rm_log,
        "held_out_accuracy": round(lm.reward_model_accuracy(rm, sft.tokenizer, held_out), 4),
        "held_out_ceiling": round(lm.bradley_terry_ceiling(held_out, TAU), 4),
        "train_accuracy": round(lm.reward_model_accuracy(rm, sft.tokenizer, train_pairs), 4),
        "seconds": round(time.perf_counter() - t0, 1), "cpu_seconds": round(cpu_seconds() - c0, 1)}
    print("reward model", {k: v for k, v in log["stages"]["reward_model"].items() if k != "log"}, flush=True)

    return log


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    parser.add_argument("--jobs", type=int, default=2, help="betas trained at once (processes)")
    parser.add_argument("--out", default=str(settings.ASSETS_DIR / "preferences" / "lm"))
    parser.add_argument("--scale", type=float, default=1.0, help="shrink every stage (a smoke run: 0.02)")
    parser.add_argument("--policies-only", action="store_true",
                        help="reuse the saved SFT, pairs and reward model; train DPO and PPO only")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    out, start, world = Path(args.out), time.perf_counter(), oracle()
    out.mkdir(parents=True, exist_ok=True)
    n = lambda x: max(2, round(x * args.scale))  # noqa: E731
    log = {"command": f"python -m demos.preferences.train --jobs {args.jobs} --threads {args.threads}"
                      + (f" --scale {args.scale}" if args.scale != 1 else ""),
           "seed": SEED, "tau": TAU, "betas": list(BETAS), "demo_mix": asdict(lm.DemoMix()), "stages": {}}

    if args.policies_only:
        log = json.loads((out / "training_log.json").read_text())
    else:
        log = stages_before_policies(log, out, n, world)
        (out / "training_log.json").write_text(json.dumps(log, indent=1) + "\n")

    jobs = [(beta, str(out), args.threads, n(DPO_STEPS), n(PPO_ITERATIONS)) for beta in BETAS]
    if args.jobs > 1:
        import multiprocessing

        with multiprocessing.get_context("spawn").Pool(args.jobs) as workers:
            results = workers.map(train_beta, jobs, chunksize=1)
    else:
        results = [train_beta(job) for job in jobs]
    log["stages"]["policies"] = {str(beta): record for beta, record in results}
    log["seconds_this_run"] = round(time.perf_counter() - start, 1)
    stages = [log["stages"][k] for k in ("sft", "pairs", "reward_model")] + \
        [r[m] for r in log["stages"]["policies"].values() for m in ("dpo", "rlhf")]
    log["total_cpu_seconds"] = round(sum(s["cpu_seconds"] for s in stages), 1)  # every stage's own CPU time
    log["total_stage_seconds"] = round(sum(s["seconds"] for s in stages), 1)
    (out / "training_log.json").write_text(json.dumps(log, indent=1) + "\n")
    print(f"done in {log['seconds_this_run']:.0f} s; all stages {log['total_cpu_seconds']:.0f} CPU s")


if __name__ == "__main__":
    main()
