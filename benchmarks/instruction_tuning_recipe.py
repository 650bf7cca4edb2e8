"""Instruction tuning, a recipe probe: fine-tune the 8,000-example model again with another number
of epochs or another seed, and read the issue's two targets for ``n8000`` on the benchmark's
held-out instructions (docs/text-world.md forms), without touching the committed checkpoints.

    python -m benchmarks.instruction_tuning_recipe [--epochs 7] [--seed 0] [--start committed|fresh]

``--start committed`` tunes from ``assets/instruction_tuning/base`` as committed; ``--start fresh``
from the base that ``train.py`` makes today (``tuning.prepare_base``, saved and reloaded through
float16 as train.py does), whose new vocabulary rows start from different seeded noise (the
committed ``base/`` drew it in ``get_vocab()`` order, see assets/PROVENANCE.md). One run is one
8,000-example fine-tune: about 500 CPU seconds at 7 epochs on one thread here.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from benchmarks.instruction_tuning import by_phrasing, training_instructions, training_sets
from demos.instruction_tuning import compute, tuning
from playground import models
from playground.models import single_thread


def start_model(start: str):
    import torch

    from demos.common import language_model as lmk

    if start == "committed":
        return lmk.load_causal_lm(lmk.LocalFolder(compute.ASSETS / "base"), "cpu", torch.float32)
    with tempfile.TemporaryDirectory() as folder:
        base = tuning.prepare_base(models.get("textworld-base"))
        lmk.save_float16(base.model, base.tokenizer, Path(folder))
        return lmk.load_causal_lm(lmk.LocalFolder(Path(folder)), "cpu", torch.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=tuning.TuneConfig.epochs)
    parser.add_argument("--seed", type=int, default=0, help="TuneConfig.seed: the order of the examples")
    parser.add_argument("--start", choices=("committed", "fresh"), default="committed")
    parser.add_argument("--replay", type=float, default=0.0, help="TuneConfig.replay: pretraining documents per example")
    parser.add_argument("--freeze", default="", help="comma-separated parameter-name parts to keep frozen (e.g. mlp)")
    parser.add_argument("--per-cell", type=int, default=40, help="as benchmarks.instruction_tuning")
    args = parser.parse_args()
    oracle = compute.oracle()
    with single_thread():
        start = time.perf_counter()
        base = start_model(args.start)
        for name, parameter in base.model.named_parameters():
            parameter.requires_grad_(not any(part and part in name for part in args.freeze.split(",")))
        lm, _ = tuning.finetune(base, training_sets()["n8000"],
                                tuning.TuneConfig(epochs=args.epochs, seed=args.seed, replay=args.replay))
        seconds = time.perf_counter() - start
        items = tuning.evaluation_set(oracle, args.per_cell, exclude=training_instructions())
        known = tuning.base_knowledge(models.get("textworld-base"), items, oracle)
        responses = tuning.respond(lm, [i.instruction for i in items])
    em = tuning.exact_match(items, responses, oracle)
    forms = by_phrasing(items, responses, known, oracle)["canonical"]
    print(json.dumps({"epochs": args.epochs, "seed": args.seed, "start": args.start,
                      "replay": args.replay, "freeze": args.freeze,
                      "word_tasks": forms["word_tasks"], "share_of_base_knowledge": forms["share_of_base_knowledge"],
                      "families": {k.split(":")[1]: round(v, 3) for k, v in em.items() if k.startswith("family:")},
                      "fine_tune_seconds": round(seconds)}))


if __name__ == "__main__":
    main()
