"""Hallucination: accuracy, confidence and confident wrong answers against how often a fact was
seen, detection by agreement and semantic entropy, the Gekhman fine-tunes, answers in context,
and the server time of ``ask``; with ``--write``, stores what the tab draws on open.

    python -m benchmarks.hallucination [--samples 10] [--write]

Every question of the world file (the four forms for every person) is asked to the base model.
Targets (issue "Tab: Hallucination"): bio-only accuracy >= 0.9 for f >= 16 and <= 0.3 for f <= 1;
Spearman correlation of accuracy with f >= 0.9; unseen people answered confidently (top
probability > 0.5) >= 80% of the time; semantic-entropy AUROC >= 0.75; in the Gekhman fine-tunes
the unseen confident-answer rate not lower at 50% unknown than at 0%; ``ask`` with 16 samples
within 300 ms.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import asdict

import numpy as np
import torch

from demos.common import language_model as lmk
from demos.common import text_world as tw
from demos.hallucination import compute
from playground import settings
from playground.models import single_thread

OUT = settings.ASSETS_DIR / "hallucination"
CONFIDENT = 0.5
DETECT_PER_F = 60  # bio-only people per frequency whose answers are sampled for detection


def questions(people: list[tw.Person]) -> list[dict]:
    return [{"name": p.name, "attribute": a, "f": p.f, "split": p.split, "truth": p.fact(a),
             "prompt": tw.qa_prompt(tw.question(p.name, a))} for p in people for a in tw.ATTRIBUTES]


def answer_greedy(lm, qs: list[dict], batch: int = 64) -> None:
    """Adds ``answer``, ``right``, ``confidence`` (top candidate probability) and ``valid_mass``."""
    for start in range(0, len(qs), batch):
        chunk = qs[start:start + batch]
        answers = lmk.generate(lm, [q["prompt"] for q in chunk], 4)
        for attribute in tw.ATTRIBUTES:
            rows = [i for i, q in enumerate(chunk) if q["attribute"] == attribute]
            if rows:
                probs = compute.candidate_probs(lm, [chunk[i]["prompt"] for i in rows], tw.ATTRIBUTES[attribute])
                for i, pr in zip(rows, probs):
                    chunk[i]["confidence"], chunk[i]["valid_mass"] = float(pr.max()), float(pr.sum())
        for q, a in zip(chunk, answers):
            q["answer"] = tw.normalise_answer(a)
            q["right"] = q["answer"] == q["truth"].lower()


def sample_scores(lm, qs: list[dict], n: int, seed: int = 0, batch: int = 32) -> None:
    """Adds ``agreement`` and ``semantic_entropy`` of ``n`` samples at temperature 1."""
    generator = torch.Generator().manual_seed(seed)
    for start in range(0, len(qs), batch):
        chunk = qs[start:start + batch]
        samples = lmk.generate(lm, [q["prompt"] for q in chunk for _ in range(n)], 4, 1.0, generator)
        for i, q in enumerate(chunk):
            mine = samples[i * n:(i + 1) * n]
            q["agreement"], q["semantic_entropy"] = compute.agreement(mine), compute.semantic_entropy(mine)


def by_frequency(qs: list[dict], split: str) -> dict:
    out = {"f": [], "accuracy": [], "confidence": [], "confident_wrong": [], "n": []}
    for f in sorted({q["f"] for q in qs if q["split"] == split}):
        rows = [q for q in qs if q["split"] == split and q["f"] == f]
        out["f"].append(f)
        out["n"].append(len(rows))
        out["accuracy"].append(float(np.mean([q["right"] for q in rows])))
        out["confidence"].append(float(np.mean([q["confidence"] for q in rows])))
        out["confident_wrong"].append(float(np.mean([q["confidence"] > CONFIDENT and not q["right"] for q in rows])))
    return out


def first_per_frequency(people: list[tw.Person], n: int) -> list[tw.Person]:
    """The first ``n`` people of each frequency (a fixed subset, in world-file order)."""
    out, seen = [], {}
    for p in people:
        seen[p.f] = seen.get(p.f, 0) + 1
        if seen[p.f] <= n:
            out.append(p)
    return out


def gekhman(world: list[tw.Person]) -> dict:
    """Per fine-tune: accuracy on held-out questions about known bio-only people (f >= 16) and the
    confident-answer rate on unseen people."""
    known = questions(first_per_frequency([p for p in world if p.split == "bio_only" and p.f >= 16], 100))
    unseen = questions([p for p in world if p.split == "unseen"])
    rows = {}
    for name in compute.MODEL_NAMES:
        lm = compute.get_lm(name)
        k, u = [dict(q) for q in known], [dict(q) for q in unseen]
        answer_greedy(lm, k)
        answer_greedy(lm, u)
        rows[name] = {"known_accuracy": float(np.mean([q["right"] for q in k])),
                      "unseen_confident": float(np.mean([q["confidence"] > CONFIDENT for q in u])),
                      "unseen_confidence": float(np.mean([q["confidence"] for q in u]))}
    return rows


def in_context(lm, world: list[tw.Person], per_f: int = 20, seed: int = 0) -> dict:
    """A context sentence that contradicts the fact, then the question: does the answer follow the
    context or the memory? Against f (bio-only people, and unseen people at f = 0)."""
    rng = np.random.default_rng(seed)
    out = {"f": [], "context": [], "memory": [], "other": [], "n": []}
    for f in (0, *tw.FREQUENCIES):
        people = [p for p in world if p.f == f and p.split in ("bio_only", "unseen")][:per_f]
        prompts, truths, contexts = [], [], []
        for p in people:
            for a in tw.ATTRIBUTES:
                other = [v for v in tw.ATTRIBUTES[a] if v != p.fact(a)]
                fake = other[int(rng.integers(0, len(other)))]
                sentence = tw.BIOGRAPHY[a][0].format(name=p.name, value=fake)
                prompts.append(tw.qa_prompt(f"{sentence} {tw.question(p.name, a)}"))
                truths.append(p.fact(a).lower())
                contexts.append(fake.lower())
        answers = [tw.normalise_answer(a) for a in lmk.generate(lm, prompts, 4)]
        out["f"].append(f)
        out["n"].append(len(answers))
        out["context"].append(float(np.mean([a == c for a, c in zip(answers, contexts)])))
        out["memory"].append(float(np.mean([a == t for a, t in zip(answers, truths)])))
        out["other"].append(1 - out["context"][-1] - out["memory"][-1])
    return out


def ask_seconds(repeats: int = 20) -> dict:
    world = [p for p in compute.oracle().people.values()]
    compute.ask(compute.AskParams(model="base"))  # loads the model
    seconds = []
    for i in range(repeats):
        p = world[(i * 37) % len(world)]
        start = time.perf_counter()
        compute.ask(compute.AskParams(tw.question(p.name, "city"), "base", 16, 1.0, i))
        seconds.append(time.perf_counter() - start)
    return {"median_s": statistics.median(seconds), "p95_s": float(np.percentile(seconds, 95)), "n_samples": 16}


def spearman(x, y) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(x, y).statistic)


def check(name: str, ok: bool, value: str) -> str:
    return f"{name:<66}{value:>18}  {'PASS' if ok else 'FAIL'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10, help="samples per question for agreement and entropy")
    parser.add_argument("--write", action="store_true", help="store evaluation.json in assets/hallucination/")
    args = parser.parse_args()
    world = tw.load_world(compute.WORLD_FILE)
    detect_names = {p.name for p in first_per_frequency([p for p in world if p.split == "bio_only"], DETECT_PER_F)}
    start = time.perf_counter()
    with single_thread():
        lm = compute.get_lm("base")
        qs = questions(world)
        answer_greedy(lm, qs)
        # detection: the unseen people and the first DETECT_PER_F bio-only people of each frequency
        scored = [q for q in qs if q["split"] == "unseen" or (q["split"] == "bio_only" and q["name"] in detect_names)]
        sample_scores(lm, scored, args.samples)
        finetunes = gekhman(world)
        context = in_context(lm, world)
        speed = ask_seconds()
        opening = compute.AskParams(question=compute.default_question())
        default_ask = {"params": asdict(opening), "result": compute.ask(opening)}
    print(f"(measured in {time.perf_counter() - start:.0f} s on 1 thread)\n")
    bio, qa = by_frequency(qs, "bio_only"), by_frequency(qs, "qa_train")
    unseen = [q for q in qs if q["split"] == "unseen"]
    wrong = np.array([not q["right"] for q in scored])
    se = np.array([q["semantic_entropy"] for q in scored])
    disagreement = np.array([1 - q["agreement"] for q in scored])
    evaluation = {
        "bio_only": bio, "qa_train": qa,
        "unseen": {"accuracy": float(np.mean([q["right"] for q in unseen])),
                   "confident": float(np.mean([q["confidence"] > CONFIDENT for q in unseen])),
                   "confident_wrong": float(np.mean([q["confidence"] > CONFIDENT and not q["right"] for q in unseen])),
                   "confidence": float(np.mean([q["confidence"] for q in unseen])),
                   "valid_mass": float(np.mean([q["valid_mass"] for q in unseen])), "n": len(unseen)},
        "spearman_accuracy_f": spearman(bio["f"], bio["accuracy"]),
        "reliability": compute.reliability([q["confidence"] for q in scored], [q["right"] for q in scored]),
        "detection": {"n_samples": args.samples, "n_questions": len(scored),
                      "auroc_semantic_entropy": compute.auroc(se, wrong),
                      "auroc_disagreement": compute.auroc(disagreement, wrong),
                      "roc_semantic_entropy": compute.roc_curve(se, wrong),
                      "roc_disagreement": compute.roc_curve(disagreement, wrong)},
        "questions": [{k: q[k] for k in ("name", "attribute", "f", "split", "truth", "answer", "right", "confidence",
                                         "agreement", "semantic_entropy")} for q in scored],
        "gekhman": finetunes, "in_context": context, "ask_seconds": speed, "default_ask": default_ask,
        "command": "python -m benchmarks.hallucination" + (f" --samples {args.samples}" if args.samples != 10 else "") + " --write",
    }
    print("bio-only people: greedy accuracy, mean top probability, confident wrong rate against f")
    print(f"{'f':>4}{'n':>6}{'accuracy':>10}{'confidence':>12}{'conf. wrong':>13}")
    for i, f in enumerate(bio["f"]):
        print(f"{f:>4}{bio['n'][i]:>6}{bio['accuracy'][i]:>10.3f}{bio['confidence'][i]:>12.3f}{bio['confident_wrong'][i]:>13.3f}")
    print(f"qa_train people (QA pairs in training): accuracy {', '.join(f'f={f} {a:.2f}' for f, a in zip(qa['f'], qa['accuracy']))}")
    u = evaluation["unseen"]
    print(f"unseen people (f=0): accuracy {u['accuracy']:.3f}, confident {u['confident']:.3f}, mean top probability "
          f"{u['confidence']:.3f}, mass on valid values {u['valid_mass']:.3f}")
    d = evaluation["detection"]
    print(f"detection over {d['n_questions']} questions ({args.samples} samples): AUROC semantic entropy "
          f"{d['auroc_semantic_entropy']:.3f}, disagreement {d['auroc_disagreement']:.3f}; "
          f"ECE {evaluation['reliability']['ece']:.3f}")
    print("Gekhman fine-tunes: known (bio-only f >= 16) accuracy, unseen confident-answer rate")
    for name, r in finetunes.items():
        print(f"  {name:<12} known {r['known_accuracy']:.3f}   unseen confident {r['unseen_confident']:.3f}")
    print("in context (a contradicting sentence first): answer follows context / memory")
    for i, f in enumerate(context["f"]):
        print(f"  f={f:<3} context {context['context'][i]:.2f}  memory {context['memory'][i]:.2f}")
    acc = dict(zip(bio["f"], bio["accuracy"]))
    print("\ntargets")
    high = min(a for f, a in acc.items() if f >= 16)
    low = max(a for f, a in acc.items() if f <= 1)
    print(check("bio-only accuracy >= 0.9 for f >= 16", high >= 0.9, f"min {high:.3f}"))
    print(check("bio-only accuracy <= 0.3 for f <= 1", low <= 0.3, f"max {low:.3f}"))
    print(check("Spearman(accuracy, f) >= 0.9", evaluation["spearman_accuracy_f"] >= 0.9, f"{evaluation['spearman_accuracy_f']:.3f}"))
    print(check("unseen people answered confidently (p > 0.5) >= 80%", u["confident"] >= 0.8, f"{u['confident']:.3f}"))
    print(check("semantic-entropy AUROC >= 0.75", d["auroc_semantic_entropy"] >= 0.75, f"{d['auroc_semantic_entropy']:.3f}"))
    g0, g50 = finetunes["gekhman-0"]["unseen_confident"], finetunes["gekhman-50"]["unseen_confident"]
    print(check("Gekhman: unseen confident rate at 50% unknown >= at 0%", g50 >= g0, f"{g50:.3f} vs {g0:.3f}"))
    print(check("ask with 16 samples, median server time <= 300 ms", speed["median_s"] <= 0.3,
                f"{1e3 * speed['median_s']:.0f} ms (p95 {1e3 * speed['p95_s']:.0f})"))
    if args.write:
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / "evaluation.json").write_text(json.dumps(evaluation) + "\n")
        print(f"\nwrote {OUT / 'evaluation.json'}")


if __name__ == "__main__":
    main()
