"""Instruction tuning: exact match of the base model and every fine-tune on held-out instructions,
the share of the base model's knowledge the fine-tunes keep, the speed of ``instruct``, of a
filter re-run and of ROUGE-L pruning; with ``--write``, stores what the tab draws on open.

    python -m benchmarks.instruction_tuning [--per-cell 40] [--write]

Held-out instructions (``tuning.evaluation_set``): every family of ``text_world.PHRASINGS`` in its
docs/text-world.md form and in a phrasing no training task used, word lists of 2 to 5 words never in
the training pools, questions about bio-only people with f >= 16 (no training task asks about them).
Targets (issue "Tab: Instruction tuning", stated on held-out instructions of the forms in
docs/text-world.md): base <= 0.1 exact match; the 8,000-example fine-tune >= 0.8 on the four word tasks and
>= 0.8 of what the base model knows on the four questions, both read on docs/text-world.md form of
each family (``by_phrasing["canonical"]``; the held-out phrasing is reported beside it); accuracy
rising with the number of examples; ``instruct`` within 300 ms; a filter re-run within 1 s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from demos.instruction_tuning import compute, tuning
from demos.instruction_tuning import self_instruct as si
from demos.instruction_tuning.train import N_LARGEST
from playground import models
from playground.models import single_thread

OUT = compute.ASSETS
REQUIRED_WORD_TASKS = ("reverse", "sort", "count", "first")  # the Text World specification's four


def training_instructions() -> set[str]:
    out = set()
    for name in ("pool_threshold_0.7.jsonl", "pool_threshold_1.0.jsonl"):
        path = OUT / name
        if path.exists():
            out |= {json.loads(line)["instruction"] for line in path.read_text().splitlines()}
    return out | {t.instruction for t in compute.seeds()}


def training_sets() -> dict[str, list[si.Task]]:
    """The tasks ``n8000`` and ``n8000-unfiltered`` were tuned on, read back from the stored pools
    (the first ``N_LARGEST`` with a right response, as ``train.datasets`` takes them)."""
    out = {}
    for model, name in (("n8000", "pool_threshold_0.7.jsonl"), ("n8000-unfiltered", "pool_threshold_1.0.jsonl")):
        path = OUT / name
        if path.exists():
            rows = [json.loads(line) for line in path.read_text().splitlines()]
            out[model] = [si.Task(r["instruction"], r["response"], r["family"], "teacher", r["mistake"], r["kind"])
                          for r in rows if not r["mistake"]][:N_LARGEST]
    return out


def by_phrasing(items, responses, known, oracle) -> dict:
    """The two target measures per phrasing: ``canonical`` is the form docs/text-world.md gives each
    family (what the issue's targets are stated on), ``held-out`` a phrasing no training task used."""
    out = {}
    for phrasing in ("canonical", "held-out"):
        chosen = [(i, r) for i, r in zip(items, responses) if i.phrasing == phrasing]
        em = tuning.exact_match([i for i, _ in chosen], [r for _, r in chosen], oracle)
        out[phrasing] = {"word_tasks": round(sum(em[f"family:{f}"] for f in REQUIRED_WORD_TASKS) / len(REQUIRED_WORD_TASKS), 4),
                         "share_of_base_knowledge": tuning.share_of_base_knowledge(
                             [i for i, _ in chosen], [r for _, r in chosen], known, oracle)}
    return out


def evaluate(per_cell: int) -> dict:
    oracle = compute.oracle()
    items = tuning.evaluation_set(oracle, per_cell, exclude=training_instructions())
    known = tuning.base_knowledge(models.get("textworld-base"), items, oracle)
    log = compute.training_log() or {"finetunes": {}}
    rows = []
    for model in compute.SHOWN_MODELS:
        lm = models.get(compute.registry_name(model))
        responses = tuning.respond(lm, [i.instruction for i in items])
        em = tuning.exact_match(items, responses, oracle)
        words = [v for k, v in em.items() if k in {f"family:{f}" for f in REQUIRED_WORD_TASKS}]
        rows.append({"model": model, "examples": log["finetunes"].get(model, {}).get("examples", 0),
                     "exact_match": em, "required_word_tasks": round(sum(words) / len(words), 4),
                     "share_of_base_knowledge": tuning.share_of_base_knowledge(items, responses, known, oracle),
                     "by_phrasing": by_phrasing(items, responses, known, oracle),
                     "by_list_length": tuning.exact_match_by_length(items, responses, oracle, REQUIRED_WORD_TASKS),
                     "samples": [{"instruction": i.instruction, "response": r}
                                 for i, r in list(zip(items, responses))[::41]]})
        print(f"{model:18s} all {em['all']:.3f}  words {em['group:words']:.3f}  questions {em['group:questions']:.3f}  "
              f"held-out phrasing {em['phrasing:held-out']:.3f}  "
              f"base knowledge kept {rows[-1]['share_of_base_knowledge']}", flush=True)
    return {"n_items": len(items), "base_knows": round(sum(known.values()) / max(1, len(known)), 4), "models": rows,
            "training_list_lengths": {m: tuning.list_length_counts(t) for m, t in training_sets().items()}}


def speed() -> dict:
    """Server time of ``instruct`` (median of 20 after a warm-up), of a filter re-run over the
    tab's largest pool and the API's, and of ROUGE-L with and without pruning."""
    out = {}
    p = compute.InstructParams("Sort the words: pilot goat blue ostmar", "tuned")
    compute.instruct(p)
    times = []
    for _ in range(20):
        t0 = time.perf_counter()
        compute.instruct(p)
        times.append(time.perf_counter() - t0)
    out["instruct_ms"] = round(1000 * statistics.median(times), 1)
    for n in (512, compute.MAX_CANDIDATES):
        run = compute.run_self_instruct(compute.SelfInstructParams(0.7, n, 0))
        t0 = time.perf_counter()
        si.refilter(run, 0.5)
        out[f"refilter_{n}_ms"] = round(1000 * (time.perf_counter() - t0), 1)
        t0 = time.perf_counter()
        pruned = si.refilter(run, 0.7)
        t_pruned = time.perf_counter() - t0
        t0 = time.perf_counter()
        full = si.refilter(run, 0.7, prune=False)
        t_full = time.perf_counter() - t0
        assert [c.kept for c in pruned.candidates] == [c.kept for c in full.candidates]
        out[f"pruning_{n}"] = {"pairs_pruned": pruned.pairs_scored, "pairs_unpruned": full.pairs_scored,
                               "seconds_pruned": round(t_pruned, 3), "seconds_unpruned": round(t_full, 3),
                               "speed_up": round(t_full / t_pruned, 1)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-cell", type=int, default=40, help="held-out instructions per family and phrasing")
    parser.add_argument("--write", action="store_true", help="store evaluation.json in assets/instruction_tuning/")
    args = parser.parse_args()
    start = time.perf_counter()
    with single_thread():
        ev = evaluate(args.per_cell)
        ev["speed"] = speed()
        instruction = compute.InstructParams.instruction
        from demos.instruction_tuning.ui import compare_rows

        ev["compare"] = {"instruction": instruction, "rows": compare_rows(instruction)}
    ev["command"] = f"python -m benchmarks.instruction_tuning --per-cell {args.per_cell}"
    print(json.dumps(ev["speed"], indent=1))
    rows = {r["model"]: r for r in ev["models"]}
    big, base = rows["n8000"], rows["base"]
    ladder = [rows[m]["exact_match"]["all"] for m in ("base", "n500", "n2000", "n8000")]
    forms = big["by_phrasing"]["canonical"]  # the targets are stated on the forms in docs/text-world.md
    targets = [("base exact match <= 0.1", base["exact_match"]["all"], base["exact_match"]["all"] <= 0.1),
               ("n8000 on TEXT_WORLD's four word tasks, in its forms, >= 0.8", forms["word_tasks"],
                forms["word_tasks"] >= 0.8),
               ("n8000 keeps >= 0.8 of the base model's knowledge, in TEXT_WORLD's forms",
                forms["share_of_base_knowledge"], (forms["share_of_base_knowledge"] or 0) >= 0.8),
               ("accuracy rises with examples", ladder, all(a <= b for a, b in zip(ladder, ladder[1:]))),
               ("instruct <= 300 ms", ev["speed"]["instruct_ms"], ev["speed"]["instruct_ms"] <= 300),
               ("filter re-run (2,000 candidates) <= 1 s", ev["speed"][f"refilter_{compute.MAX_CANDIDATES}_ms"],
                ev["speed"][f"refilter_{compute.MAX_CANDIDATES}_ms"] <= 1000)]
    ev["targets"] = [{"target": t, "measured": m, "pass": bool(ok)} for t, m, ok in targets]
    print(f"\n(measured in {time.perf_counter() - start:.0f} s on 1 thread)")
    for t, m, ok in targets:
        print(f"{'PASS' if ok else 'MISS'}  {t}: {m}")
    held = big["by_phrasing"]["held-out"]
    print(f"      (n8000 on the held-out phrasing: word tasks {held['word_tasks']}, "
          f"knowledge kept {held['share_of_base_knowledge']}; all phrasings: {big['required_word_tasks']}, "
          f"{big['share_of_base_knowledge']})")
    lengths = ev["training_list_lengths"]
    for model in ("n8000", "n8000-unfiltered"):
        print(f"      {model}: trained on word lists of length {lengths.get(model)}; "
              f"exact match by length {rows[model]['by_list_length']}")
    if args.write:
        (OUT / "evaluation.json").write_text(json.dumps(ev, indent=1) + "\n")
        print(f"wrote {OUT / 'evaluation.json'}")


if __name__ == "__main__":
    main()
