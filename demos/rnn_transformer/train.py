"""Train the four recall models at the same budget and save them to ``assets/rnn_transformer/``.

    python -m demos.rnn_transformer.train [--steps 3000] [--jobs 2] [--out assets/rnn_transformer]

Every model gets the same number of steps, batch, optimiser (AdamW, warm-up then cosine) and
seed, on fresh batches of the training mix (``compute.sample_batch``: one length per batch, 4 to
146 tokens, 1-8 pairs, the queried pair uniform). Each model trains on one torch thread (small models gain nothing from
more, see ``playground.models.single_thread``), so ``--jobs 2`` trains two at once on two
cores; the results do not depend on ``--jobs``. Writes ``<kind>/config.json``,
``<kind>/model.safetensors`` and ``training_log.json`` (loss and validation accuracy every 100
steps, seconds, parameters). Accuracy against distance is measured by
``python -m benchmarks.rnn_transformer``, not here.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, replace
from pathlib import Path

from playground import settings

KINDS = ("transformer", "lstm", "gru", "rnn")  # longest first, so two jobs finish together


def train_one(kind: str, steps: int, out: str) -> dict:
    """Train ``kind`` on one thread, save it under ``out/kind``, return its log."""
    import torch

    from demos.rnn_transformer import models

    torch.set_num_threads(1)
    cfg = replace(models.TrainConfig(), steps=steps)
    start = time.perf_counter()

    def show(record: dict) -> None:
        print(f"{kind:>11} step {record['step']:>5}  loss {record['loss']:.3f}  "
              f"val acc {record['val_accuracy']:.3f}  {record['seconds']:.0f} s", flush=True)

    model, log = models.train(kind, cfg, on_eval=show)
    models.save(model, Path(out) / kind)
    return {"kind": kind, "parameters": models.n_params(model), "seconds": round(time.perf_counter() - start, 1),
            "train_config": asdict(cfg), "model_config": asdict(model.config), "log": log}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--jobs", type=int, default=2, help="models trained at once, one thread each")
    parser.add_argument("--out", default=str(settings.ASSETS_DIR / "rnn_transformer"))
    args = parser.parse_args()
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(train_one, KINDS, [args.steps] * len(KINDS), [args.out] * len(KINDS)))
    summary = {"command": f"python -m demos.rnn_transformer.train --steps {args.steps} --jobs {args.jobs}",
               "wall_seconds": round(time.perf_counter() - start, 1), "machine": platform.processor() or platform.machine(),
               "models": {r["kind"]: r for r in results}}
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "training_log.json").write_text(json.dumps(summary, indent=1) + "\n")
    for r in results:
        print(f"{r['kind']:>11}: {r['parameters']:,} parameters, {r['seconds']:.0f} s, "
              f"final val acc {r['log'][-1]['val_accuracy']:.3f}")
    print(f"all four in {summary['wall_seconds']:.0f} s wall")


if __name__ == "__main__":
    main()
