"""Generate the Self-Instruct data and train the Instruction tuning tab's fine-tunes.

    python -m demos.instruction_tuning.train [--jobs 3] [--threads 1] [--out assets/instruction_tuning]

1. Self-Instruct with the program teacher (``self_instruct``), seed 0, ROUGE-L threshold 0.7,
   until 8,000 kept tasks have a right response; and again with the filter off (threshold 1.0:
   only repeats of an instruction are dropped). Both pools are written as JSON lines with each
   task's family, kind and whether the teacher's response was wrong.
2. The base model with its vocabulary extended for the instructions (``tuning.prepare_base``),
   saved as ``base``.
3. Fine-tunes in Alpaca's format, loss on the response only, 7 epochs, from the same seed, with a
   quarter as many of the base model's pretraining documents mixed in (``TuneConfig.replay``, loss on
   every token: InstructGPT's pretraining mix, not Alpaca's recipe; without it the 7 epochs that
   reverse needs forget the facts of people no task asks about):
   ``n500`` / ``n2000`` / ``n8000`` (the first 500 / 2,000 / 8,000 clean kept tasks),
   ``n8000-unfiltered`` (the first 8,000 clean tasks of the unfiltered pool) and ``n8000-noisy``
   (the first 8,000 kept tasks, the teacher's mistakes included).

Weights are saved as float16 safetensors with the tokenizer; ``training_log.json`` records the
data, the configuration, every loss, and the wall and CPU seconds of each stage. Held-out
accuracy: ``python -m benchmarks.instruction_tuning --write``.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path

from demos.common import sft
from demos.common import text_world as tw
from demos.instruction_tuning import self_instruct as si
from demos.instruction_tuning import tuning
from playground import settings

N_LARGEST = 8000
MAX_CANDIDATES = 200_000


def pool(oracle, threshold: float) -> si.Run:
    """Self-Instruct rounds until ``N_LARGEST`` kept tasks have a right response."""
    def enough(run):
        return sum(not c.task.mistake for c in run.candidates if c.kept) >= N_LARGEST

    return si.self_instruct(si.seed_tasks(oracle), si.ProgramTeacher(oracle), MAX_CANDIDATES, threshold, seed=0,
                            stop=enough)


def datasets(filtered: si.Run, unfiltered: si.Run) -> dict[str, list[si.Task]]:
    clean = [t for t in filtered.kept if not t.mistake]
    return {"n500": clean[:500], "n2000": clean[:2000], "n8000": clean[:N_LARGEST],
            "n8000-unfiltered": [t for t in unfiltered.kept if not t.mistake][:N_LARGEST],
            "n8000-noisy": filtered.kept[:N_LARGEST]}


def write_pool(run: si.Run, path: Path) -> None:
    path.write_text("".join(json.dumps({"instruction": c.task.instruction, "response": c.task.response,
                                        "family": c.task.family, "kind": c.task.kind, "mistake": c.task.mistake,
                                        "rouge_l": round(c.rouge_l, 4)}) + "\n" for c in run.candidates if c.kept))


def train_one(job) -> tuple[str, dict]:
    """One fine-tune from the saved base (a worker process: ``threads`` torch threads)."""
    import torch

    from demos.common import language_model as lmk

    name, tasks, folder, threads = job
    torch.set_num_threads(threads)
    base = lmk.load_causal_lm(lmk.LocalFolder(Path(folder).parent / "base"), "cpu", torch.float32)
    t0, c0 = time.perf_counter(), lmk.cpu_seconds()
    lm, losses = sft.finetune(base, tasks, sft.TuneConfig(), on_log=lambda r: print(name, r, flush=True))
    lmk.save_float16(lm.model, lm.tokenizer, Path(folder))
    record = {"examples": len(tasks), "mistakes": sum(t.mistake for t in tasks),
              "families": sft.family_counts(tasks), "loss": losses, "seconds": round(time.perf_counter() - t0, 1),
              "cpu_seconds": round(lmk.cpu_seconds() - c0, 1)}
    print(f"{name}: {record['seconds']} s ({record['cpu_seconds']} CPU s)", flush=True)
    return name, record


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads per fine-tune")
    parser.add_argument("--jobs", type=int, default=1, help="fine-tunes trained at once (processes)")
    parser.add_argument("--out", default=str(settings.ASSETS_DIR / "instruction_tuning"))
    parser.add_argument("--only", default="", help="comma-separated fine-tunes to train (default: all)")
    return parser.parse_args()


def pools(oracle, out: Path, log: dict) -> dict[str, list[si.Task]]:
    """Step 1: the filtered and unfiltered Self-Instruct pools, written and logged; the datasets."""
    start = time.perf_counter()
    filtered, unfiltered = pool(oracle, 0.7), pool(oracle, 1.0)
    write_pool(filtered, out / "pool_threshold_0.7.jsonl")
    write_pool(unfiltered, out / "pool_threshold_1.0.jsonl")
    log["pools"] = {name: {"threshold": run.threshold, "candidates": len(run.candidates), "kept": len(run.kept),
                           "kept_mistakes": sum(t.mistake for t in run.kept), "pairs_scored": run.pairs_scored}
                    for name, run in (("filtered", filtered), ("unfiltered", unfiltered))}
    log["pool_seconds"] = round(time.perf_counter() - start, 1)
    print(f"pools: {log['pools']} in {log['pool_seconds']} s", flush=True)
    return datasets(filtered, unfiltered)


def train_all(jobs: list, processes: int) -> list[tuple[str, dict]]:
    """Step 3: every fine-tune, ``processes`` at once (forked workers) or one after another."""
    if processes > 1:
        import multiprocessing

        with multiprocessing.get_context("fork").Pool(processes) as workers:
            return workers.map(train_one, jobs, chunksize=1)
    return [train_one(job) for job in jobs]


def main() -> None:
    args = parse_args()
    import torch

    from demos.common import language_model as lmk
    from playground import models

    torch.set_num_threads(args.threads)
    out, start, cpu0 = Path(args.out), time.perf_counter(), lmk.cpu_seconds()
    out.mkdir(parents=True, exist_ok=True)
    oracle = tw.Oracle(tw.load_world(settings.ASSETS_DIR / "text_world" / "people.jsonl"))
    log = {"command": f"python -m demos.instruction_tuning.train --jobs {args.jobs} --threads {args.threads}",
           "teacher": asdict(si.TeacherConfig())}
    data = pools(oracle, out, log)
    log.update({"tune_config": asdict(sft.TuneConfig()), "finetunes": {}})
    base = tuning.prepare_base(models.get("textworld-base"))
    lmk.save_float16(base.model, base.tokenizer, out / "base")
    only = [x for x in args.only.split(",") if x]
    jobs = [(name, tasks, str(out / name), args.threads) for name, tasks in data.items() if not only or name in only]
    jobs.sort(key=lambda job: -len(job[1]))  # the largest first, so that the pool ends together
    log["finetunes"] = dict(sorted(train_all(jobs, args.jobs), key=lambda kv: kv[1]["examples"]))
    log["total_seconds"] = round(time.perf_counter() - start, 1)
    log["total_cpu_seconds"] = round(lmk.cpu_seconds() - cpu0, 1)
    (out / "training_log.json").write_text(json.dumps(log, indent=1) + "\n")
    print(f"done in {log['total_seconds']:.0f} s ({log['total_cpu_seconds']:.0f} CPU s)")


if __name__ == "__main__":
    main()
