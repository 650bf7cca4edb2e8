"""Train the RLHF vs DPO tab's language models on Text World, from a fixed seed.

    python -m demos.preferences.train [--jobs 2] [--threads 1] [--out assets/preferences/lm]

1. **SFT**: the base model as the Instruction tuning tab tuned it on 8,000 Self-Instruct examples
   (``textworld-instruct-n8000``), fine-tuned further with the same code (``sft.finetune``,
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

from demos.common import sft
from demos.common.text_world import oracle
from demos.preferences import lm
from playground import settings

BETAS = (0.03, 0.1, 0.3, 1.0)
N_DEMOS = 12000
N_PAIRS, N_HELD_OUT_PAIRS = 3000, 600
TAU = 0.1
SEED = 0
SFT_START = "textworld-instruct-n8000"  # the base model instruction-tuned by the Instruction tuning tab
SFT_CONFIG = sft.TuneConfig(epochs=3, replay=0.0)  # word tasks only: no fact to keep
REWARD_CONFIG = lm.RewardConfig()
DPO_STEPS = lm.DPOConfig().steps
PPO_ITERATIONS = 60


def load_lm(folder: Path):
    import torch

    from demos.common import language_model as lmk

    return lmk.load_causal_lm(lmk.LocalFolder(folder), "cpu", torch.float32)


def load_reward_model(folder: Path):
    """The reward model saved in ``folder``, loaded as the registry loads it (``lm.load_reward_model``)."""
    import torch

    from demos.common import language_model as lmk

    return lm.load_reward_model(lmk.LocalFolder(folder), "cpu", torch.float32).model


def save(model, tokenizer, folder: Path) -> None:
    from demos.common import language_model as lmk

    lmk.save_float16(model, tokenizer, folder)


def pair_instructions(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [lm.instruction(rng) for _ in range(n)]


def rollout_instructions(rng: random.Random, n: int) -> list[str]:
    return [lm.instruction(rng) for _ in range(n)]


def train_beta(job) -> tuple[float, dict]:
    """DPO and PPO at one beta (a worker process)."""
    import torch

    from demos.common import language_model as lmk

    beta, out, threads, dpo_steps, ppo_iterations = job
    torch.set_num_threads(threads)
    out = Path(out)
    sft, rm, world = load_lm(out / "sft"), load_reward_model(out / "reward"), oracle()
    pairs = [lm.Pair(**p) for p in json.loads((out / "pairs.json").read_text())["train"]]
    record = {}
    t0, c0 = time.perf_counter(), lmk.cpu_seconds()
    dpo, log = lm.train_dpo(sft, pairs, lm.DPOConfig(beta=beta, steps=dpo_steps, seed=SEED),
                            on_log=lambda r: print(f"dpo {beta}", r, flush=True))
    save(dpo.model, dpo.tokenizer, out / f"dpo-beta{beta:g}")
    record["dpo"] = {"config": asdict(lm.DPOConfig(beta=beta, steps=dpo_steps, seed=SEED)), "log": log,
                     "seconds": round(time.perf_counter() - t0, 1), "cpu_seconds": round(lmk.cpu_seconds() - c0, 1)}
    t0, c0 = time.perf_counter(), lmk.cpu_seconds()
    cfg = lm.PPOConfig(beta=beta, iterations=ppo_iterations, seed=SEED)
    ppo, log = lm.train_ppo(sft, rm, rollout_instructions, cfg, oracle=world,
                            on_log=lambda r: print(f"ppo {beta}", r, flush=True))
    save(ppo.model, ppo.tokenizer, out / f"rlhf-beta{beta:g}")
    record["rlhf"] = {"config": asdict(cfg), "log": log, "seconds": round(time.perf_counter() - t0, 1),
                      "cpu_seconds": round(lmk.cpu_seconds() - c0, 1)}
    return beta, record


def stage_record(t0: float, c0: float, **fields) -> dict:
    """A stage's log: ``fields``, then its wall and CPU seconds since ``t0`` and ``c0``."""
    from demos.common import language_model as lmk

    return {**fields, "seconds": round(time.perf_counter() - t0, 1), "cpu_seconds": round(lmk.cpu_seconds() - c0, 1)}


def sft_stage(log: dict, out: Path, n, world):
    """Stage 1: SFT of the instruction-tuned model on the demonstrations; saved as ``sft``."""
    from demos.common import language_model as lmk
    from playground import models

    t0, c0 = time.perf_counter(), lmk.cpu_seconds()
    base = models.get(SFT_START)
    demos = lm.demonstrations(n(N_DEMOS), lm.DemoMix(), world, seed=SEED)
    policy, sft_log = sft.finetune(base, demos, SFT_CONFIG, on_log=lambda r: print("sft", r, flush=True))
    save(policy.model, policy.tokenizer, out / "sft")
    log["stages"]["sft"] = stage_record(
        t0, c0, start=SFT_START, demonstrations=len(demos), families=dict(sorted(sft.family_counts(demos).items())),
        mix={k: sum(d.kind == k for d in demos) for k in ("concise", "verbose", "wrong")},
        config=asdict(SFT_CONFIG), log=sft_log)
    return policy


def pairs_stage(log: dict, out: Path, n, world, policy) -> tuple[list, list]:
    """Stage 2: two SFT samples per instruction, labelled by Bradley-Terry on r*; ``pairs.json``."""
    import torch

    from demos.common import language_model as lmk

    t0, c0 = time.perf_counter(), lmk.cpu_seconds()
    texts = pair_instructions(n(N_PAIRS) + n(N_HELD_OUT_PAIRS), seed=SEED + 1)
    generator = torch.Generator().manual_seed(SEED)
    first, second = lm.sample(policy, texts, generator), lm.sample(policy, texts, generator)
    pairs = lm.label_pairs(policy.tokenizer, texts, first, second, world, TAU, random.Random(SEED))
    train_pairs, held_out = pairs[:n(N_PAIRS)], pairs[n(N_PAIRS):]
    (out / "pairs.json").write_text(json.dumps({"tau": TAU, "train": [asdict(p) for p in train_pairs],
                                                "held_out": [asdict(p) for p in held_out]}) + "\n")
    log["stages"]["pairs"] = stage_record(t0, c0, train=len(train_pairs), held_out=len(held_out),
                                          ties=sum(p.reward_chosen == p.reward_rejected for p in pairs))
    return train_pairs, held_out


def reward_stage(log: dict, out: Path, policy, train_pairs: list, held_out: list) -> None:
    """Stage 3: the reward model fitted to the training pairs; saved as ``reward``."""
    from demos.common import language_model as lmk

    t0, c0 = time.perf_counter(), lmk.cpu_seconds()
    rm, rm_log = lm.train_reward_model(policy, train_pairs, REWARD_CONFIG, on_log=lambda r: print("rm", r, flush=True))
    rm.config.pad_token_id = policy.tokenizer.pad_token_id
    save(rm, policy.tokenizer, out / "reward")
    log["stages"]["reward_model"] = stage_record(
        t0, c0, config=asdict(REWARD_CONFIG), log=rm_log,
        held_out_accuracy=round(lm.reward_model_accuracy(rm, policy.tokenizer, held_out), 4),
        held_out_ceiling=round(lm.bradley_terry_ceiling(held_out, TAU), 4),
        train_accuracy=round(lm.reward_model_accuracy(rm, policy.tokenizer, train_pairs), 4))
    print("reward model", {k: v for k, v in log["stages"]["reward_model"].items() if k != "log"}, flush=True)


def stages_before_policies(log: dict, out: Path, n, world) -> dict:
    """SFT, the preference pairs and the reward model (stages 1-3)."""
    policy = sft_stage(log, out, n, world)
    train_pairs, held_out = pairs_stage(log, out, n, world, policy)
    reward_stage(log, out, policy, train_pairs, held_out)
    return log


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    parser.add_argument("--jobs", type=int, default=2, help="betas trained at once (processes)")
    parser.add_argument("--out", default=str(settings.ASSETS_DIR / "preferences" / "lm"))
    parser.add_argument("--scale", type=float, default=1.0, help="shrink every stage (a smoke run: 0.02)")
    parser.add_argument("--policies-only", action="store_true",
                        help="reuse the saved SFT, pairs and reward model; train DPO and PPO only")
    return parser.parse_args()


def train_policies(jobs: list, processes: int) -> list[tuple[float, dict]]:
    """Stage 4: DPO and PPO at every beta, ``processes`` at once (spawned workers) or one after another."""
    if processes > 1:
        import multiprocessing

        with multiprocessing.get_context("spawn").Pool(processes) as workers:
            return workers.map(train_beta, jobs, chunksize=1)
    return [train_beta(job) for job in jobs]


def totals(log: dict) -> None:
    """Every stage's own CPU and wall seconds, summed into ``log``."""
    stages = [log["stages"][k] for k in ("sft", "pairs", "reward_model")] + \
        [r[m] for r in log["stages"]["policies"].values() for m in ("dpo", "rlhf")]
    log["total_cpu_seconds"] = round(sum(s["cpu_seconds"] for s in stages), 1)
    log["total_stage_seconds"] = round(sum(s["seconds"] for s in stages), 1)


def main() -> None:
    args = parse_args()
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
    log["stages"]["policies"] = {str(beta): record for beta, record in train_policies(jobs, args.jobs)}
    log["seconds_this_run"] = round(time.perf_counter() - start, 1)
    totals(log)
    (out / "training_log.json").write_text(json.dumps(log, indent=1) + "\n")
    print(f"done in {log['seconds_this_run']:.0f} s; all stages {log['total_cpu_seconds']:.0f} CPU s")


if __name__ == "__main__":
    main()
