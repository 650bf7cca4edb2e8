"""Write Text World, train its base language model, and the Gekhman et al. fine-tunes.

    python -m demos.hallucination.train [--steps 1600] [--threads 2] [--out assets/text_world] [--pretrained DIR]

1. The world (``demos.common.text_world.make_world``, seed 0) -> ``people.jsonl``.
2. The word-level tokenizer over every word of the world's text (names of unseen people included:
   a real LM has tokens for names it never read about).
3. The base model: a ``LlamaForCausalLM`` (4 layers x 192, tied embeddings) pretrained on the
   biographies (each fact stated f times) and the question-answer pairs of the ``qa_train`` people;
   then the embedding rows of the words no pretraining text contains (the last names of the f = 0
   people) are redrawn like trained rows (``language_model.redraw_unread_rows``): with a word-level
   vocabulary those rows were never trained, and a real model's subword name for a stranger is not.
4. Gekhman fine-tunes: from the base, question-answer fine-tuning on 240 examples of which a share
   (0, 25, 50, 75%) is about the "unknown" people (f = 0, never in pretraining) and the rest about
   known ``qa_train`` people (f >= 4); loss on the answer only; greedy fit of the known and unknown
   examples after every epoch.

Each model is saved with ``save_pretrained`` (safetensors) with its tokenizer; ``train_log.json``
records every loss and fit. Held-out accuracy is measured by ``python -m benchmarks.hallucination``.
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import time
from dataclasses import asdict, replace
from pathlib import Path

from demos.common import text_world as tw
from demos.common.text_world import BaseModelConfig as Config
from playground import settings

SHARES = (0, 25, 50, 75)


def finetune_pairs(world: list[tw.Person], share: int, cfg: Config) -> tuple[list, list]:
    """(known, unknown) question-answer pairs of one fine-tune: ``share`` % unknown."""
    rng = random.Random(cfg.seed + share)
    known = [pair for p in world if p.split == "qa_train" and p.f >= cfg.known_min_f for pair in tw.qa_pairs(p)]
    unknown = [pair for p in world if p.split == "qa_train" and p.f == 0 for pair in tw.qa_pairs(p)]
    n_unknown = round(cfg.finetune_examples * share / 100)
    return rng.sample(known, cfg.finetune_examples - n_unknown), rng.sample(unknown, n_unknown)


def fit(lm, pairs) -> float | None:
    """Share of ``pairs`` whose greedy answer is the trained one."""
    from demos.common import language_model

    if not pairs:
        return None
    answers = language_model.generate(lm, [p for p, _ in pairs], max_new_tokens=3)
    return sum(tw.normalise_answer(a) == tw.normalise_answer(r) for a, (_, r) in zip(answers, pairs)) / len(pairs)


def finetune(base, tokenizer, world, share: int, cfg: Config) -> tuple[object, dict]:
    from demos.common import language_model as lmk

    known, unknown = finetune_pairs(world, share, cfg)
    model = copy.deepcopy(base)
    lm = lmk.LanguageModel(model, tokenizer)
    data = lmk.examples(tokenizer, known + unknown, response_only=True)
    per_epoch = -(-len(data) // cfg.finetune_batch)
    fits = [{"epoch": 0, "known": fit(lm, known), "unknown": fit(lm, unknown)}]

    def on_log(record):
        model.eval()
        fits.append({"epoch": record["step"] // per_epoch, "loss": record["loss"],
                     "known": fit(lm, known), "unknown": fit(lm, unknown)})
        model.train()

    train_cfg = lmk.TrainConfig(steps=per_epoch * cfg.finetune_epochs, batch=cfg.finetune_batch, lr=cfg.finetune_lr,
                                warmup=per_epoch, log_every=per_epoch, seed=cfg.seed + share)
    lmk.train(model, data, train_cfg, tokenizer.pad_token_id, on_log=on_log)
    return model, {"share_unknown": share, "n_known": len(known), "n_unknown": len(unknown),
                   "train_config": asdict(train_cfg), "fit": fits}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=Config.pretrain_steps)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(settings.ASSETS_DIR / "text_world"))
    parser.add_argument("--pretrained", default=None,
                        help="skip pretraining: start from this folder's pretrained model (its training log is kept)")
    parser.add_argument("--snapshots", type=lambda t: [int(x) for x in t.split(",") if x], default=[],
                        help="pretraining steps at which to also save the base model (under snapshots/)")
    return parser.parse_args()


def world_and_tokenizer(cfg: Config, out: Path):
    """Steps 1-2: the world (saved as ``people.jsonl``), its pretraining documents, and the
    word-level tokenizer over every word of the world's text (unseen people's names included)."""
    from demos.common import language_model as lmk

    world = tw.make_world(cfg.seed)
    tw.save_world(world, out / "people.jsonl")
    docs = tw.pretraining_text(world, cfg.seed, cfg.qa_repeats)
    every_text = docs + [q + a for p in world for q, a in tw.qa_pairs(p)]
    return world, docs, lmk.build_tokenizer(every_text)


def fresh_base_model(tokenizer, cfg: Config):
    """A ``LlamaForCausalLM`` (4 layers x 192, tied embeddings) initialised from ``cfg.seed``."""
    import torch
    from transformers import LlamaForCausalLM

    from demos.common import language_model as lmk

    torch.manual_seed(cfg.seed)
    return LlamaForCausalLM(lmk.llama_config(tokenizer))


def pretraining_probe(model, tokenizer, world, snapshots: list[int], out: Path):
    """``on_log`` of pretraining: greedy accuracy by f on 40 bio-only questions per frequency
    (10 people x 4 attributes), and a snapshot of the model at the steps in ``snapshots``."""
    from demos.common import language_model as lmk

    probe = [(p, a) for f in tw.FREQUENCIES for p in [q for q in world if q.split == "bio_only" and q.f == f][:10]
             for a in tw.ATTRIBUTES]

    def on_log(record):
        model.eval()
        answers = lmk.generate(lmk.LanguageModel(model, tokenizer), [tw.qa_prompt(tw.question(p.name, a)) for p, a in probe], 3)
        model.train()
        right = [tw.normalise_answer(ans) == p.fact(a).lower() for ans, (p, a) in zip(answers, probe)]
        record["bio_accuracy_by_f"] = {f: sum(r for r, (p, _) in zip(right, probe) if p.f == f) / 40 for f in tw.FREQUENCIES}
        print(f"pretrain {record}", flush=True)
        if record["step"] in snapshots:
            model.save_pretrained(out / "snapshots" / f"step-{record['step']}", safe_serialization=True)

    return on_log


def pretrained(folder: str, log: dict):
    """``--pretrained``: the model saved in ``folder``, and its pretraining record copied into ``log``."""
    from transformers import AutoModelForCausalLM

    old = json.loads((Path(folder).parent / "train_log.json").read_text())
    log.update({"pretrain_command": old.get("pretrain_command", old["command"]), "pretrain": old["pretrain"],
                "pretrain_seconds": old["pretrain_seconds"], "command": log["command"] + f" --pretrained {folder}"})
    return AutoModelForCausalLM.from_pretrained(folder)


def redraw_unread(model, tokenizer, data, cfg: Config, log: dict) -> None:
    """Step 3's end: the rows of words no pretraining text contains redrawn like trained rows."""
    from demos.common import language_model as lmk

    unread = lmk.unread_tokens(tokenizer, data)
    lmk.redraw_unread_rows(model, unread, cfg.seed)
    log["redrawn_rows"] = {"tokens": len(unread), "words": tokenizer.convert_ids_to_tokens(unread)}


def gekhman_finetunes(model, tokenizer, world, cfg: Config, out: Path) -> dict:
    """Step 4: one fine-tune per share of unknown examples, each saved with the tokenizer."""
    records = {}
    for share in SHARES:
        t0 = time.perf_counter()
        tuned, record = finetune(model, tokenizer, world, share, cfg)
        record["seconds"] = round(time.perf_counter() - t0, 1)
        tuned.save_pretrained(out / f"gekhman-{share}", safe_serialization=True)
        tokenizer.save_pretrained(out / f"gekhman-{share}")
        records[f"gekhman-{share}"] = record
        print(f"gekhman-{share}: {record['seconds']} s, fit {record['fit'][-1]}", flush=True)
    return records


def main() -> None:
    args = parse_args()
    import torch

    from demos.common import language_model as lmk

    torch.set_num_threads(args.threads)
    cfg, out, start = replace(Config(), pretrain_steps=args.steps), Path(args.out), time.perf_counter()
    world, docs, tokenizer = world_and_tokenizer(cfg, out)
    model = fresh_base_model(tokenizer, cfg)
    print(f"world: {len(world)} people, {len(docs)} documents, vocabulary {len(tokenizer)}, "
          f"{sum(p.numel() for p in model.parameters()):,} parameters", flush=True)
    # constant learning rate after the warm-up: a run of N steps is the first N steps of a longer one
    pre_cfg = lmk.TrainConfig(steps=cfg.pretrain_steps, seed=cfg.seed, min_lr_ratio=1.0)
    data = lmk.examples(tokenizer, [(d, "") for d in docs], response_only=False)
    log = {"command": f"python -m demos.hallucination.train --steps {args.steps} --threads {args.threads}",
           "config": asdict(cfg), "pretrain_config": asdict(pre_cfg), "n_documents": len(docs),
           "parameters": sum(p.numel() for p in model.parameters())}
    if args.pretrained:
        model = pretrained(args.pretrained, log)
    else:
        on_log = pretraining_probe(model, tokenizer, world, args.snapshots, out)
        log["pretrain"] = lmk.train(model, data, pre_cfg, tokenizer.pad_token_id, on_log=on_log)
        log["pretrain_seconds"] = round(time.perf_counter() - start, 1)
    redraw_unread(model, tokenizer, data, cfg, log)
    model.save_pretrained(out / "base", safe_serialization=True)
    tokenizer.save_pretrained(out / "base")
    log["finetunes"] = gekhman_finetunes(model, tokenizer, world, cfg, out)
    log["total_seconds"] = round(time.perf_counter() - start, 1)
    (out / "train_log.json").write_text(json.dumps(log, indent=1) + "\n")
    print(f"done in {log['total_seconds']:.0f} s")


if __name__ == "__main__":
    main()
