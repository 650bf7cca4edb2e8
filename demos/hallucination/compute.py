"""Hallucination tab: ask a Text World language model, measure agreement and semantic entropy,
and score how well they tell wrong answers from right ones.

No gradio, no torch at import: the models run through ``demos.common.language_model`` (imported when a
model is asked) and ``playground.models``.

* **Agreement** of N sampled answers: the share of the largest group of equal answers.
* **Discrete semantic entropy** (Farquhar et al. 2024): answers clustered by meaning, here exactly
  by their normalised answer word (single values), ``SE = - sum_c p_c log p_c`` with
  ``p_c = |c| / N`` (nats): 0 when every sample agrees, ``log N`` when all differ.
* **AUROC** of a score for "this answer is wrong": the probability that a wrong answer scores higher
  than a right one, ``U / (n_wrong n_right)`` with ``U`` the Mann-Whitney statistic
  (``scipy.stats.mannwhitneyu``; ties count one half).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np

from demos.common import text_world as tw
from demos.common.text_world import WORLD_FILE, oracle  # noqa: F401 (WORLD_FILE: the tab's UI reads it here)
from playground import validate

MODEL_NAMES = ("base", "gekhman-0", "gekhman-25", "gekhman-50", "gekhman-75")
MAX_QUESTION_CHARS = 300
MAX_SAMPLES = 64
TEMPERATURE_RANGE = (0.05, 5.0)
MAX_NEW_TOKENS = 8


@dataclass(frozen=True)
class AskParams:
    question: str = "Where was Kalo Renmis born?"
    model: str = "base"
    n_samples: int = 16
    temperature: float = 1.0
    seed: int = 0


def check_ask(p: AskParams) -> AskParams:
    question = validate.check_text("question", p.question, MAX_QUESTION_CHARS, "Where was Kalo Renmis born?")
    return AskParams(question, validate.check_choice("model", p.model, MODEL_NAMES),
                     validate.check_int("n_samples", p.n_samples, 1, MAX_SAMPLES),
                     validate.check_float("temperature", p.temperature, *TEMPERATURE_RANGE),
                     validate.check_int("seed", p.seed, 0, 2**31 - 1))


def registry_name(model: str) -> str:
    return f"textworld-{model}"


def get_lm(model: str):
    from playground import models

    return models.get(registry_name(model))


def default_question() -> str:
    """The tab's opening question: the city of the first bio-only person seen 32 times."""
    person = next(p for p in oracle().people.values() if p.split == "bio_only" and p.f == max(tw.FREQUENCIES))
    return tw.question(person.name, "city")


# ----------------------------------------------------------------------------- scores
def agreement(samples: list[str]) -> float:
    counts = Counter(tw.normalise_answer(s) for s in samples)
    return max(counts.values()) / len(samples)


def semantic_entropy(samples: list[str]) -> float:
    """Discrete semantic entropy of the samples' answer clusters, in nats."""
    counts = Counter(tw.normalise_answer(s) for s in samples)
    n = len(samples)
    return max(0.0, float(-sum(c / n * math.log(c / n) for c in counts.values())))  # never -0.0


def auroc(wrongness: np.ndarray, wrong: np.ndarray) -> float:
    """P(score of a wrong answer > score of a right one), ties 1/2 (Mann-Whitney U)."""
    from scipy.stats import mannwhitneyu

    wrongness, wrong = np.asarray(wrongness, float), np.asarray(wrong, bool)
    if wrong.all() or not wrong.any():
        return float("nan")
    u = mannwhitneyu(wrongness[wrong], wrongness[~wrong], alternative="two-sided").statistic
    return float(u / (wrong.sum() * (~wrong).sum()))


def roc_curve(wrongness: np.ndarray, wrong: np.ndarray) -> dict:
    """False- and true-positive rates of flagging ``score >= threshold`` at every distinct threshold."""
    wrongness, wrong = np.asarray(wrongness, float), np.asarray(wrong, bool)
    thresholds = np.r_[np.inf, np.unique(wrongness)[::-1]]
    tpr = [float((wrongness[wrong] >= t).mean()) for t in thresholds]
    fpr = [float((wrongness[~wrong] >= t).mean()) for t in thresholds]
    return {"threshold": [float(t) for t in thresholds], "fpr": fpr, "tpr": tpr}


def reliability(confidence: np.ndarray, right: np.ndarray, bins: int = 10) -> dict:
    """Accuracy against confidence in equal-width bins, and the expected calibration error
    ``ECE = sum_b |B_b| / n * |acc(B_b) - conf(B_b)|``."""
    confidence, right = np.asarray(confidence, float), np.asarray(right, float)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    rows, ece = [], 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            acc, conf = float(right[inside].mean()), float(confidence[inside].mean())
            ece += inside.mean() * abs(acc - conf)
            rows.append({"low": float(edges[b]), "high": float(edges[b + 1]), "n": int(inside.sum()),
                         "accuracy": acc, "confidence": conf})
    return {"bins": rows, "ece": float(ece)}


# ----------------------------------------------------------------------------- the model
def candidate_probs(lm, prompts: list[str], values: tuple[str, ...]) -> np.ndarray:
    """p(value | prompt) for every value: (len(prompts), len(values)). One forward pass when every
    value is a single token (the embedded word-level models), else each value's sequence
    log-probability (a real checkpoint's subword tokenizer)."""
    import torch

    from demos.common import language_model as lmk

    tok = lm.tokenizer
    ids = [tok.encode(" " + v, add_special_tokens=False) for v in values]
    if all(len(i) == 1 for i in ids):
        batch, mask, position = lmk.left_padded([lmk.encode(tok, p)[0] for p in prompts], tok.pad_token_id)
        with torch.no_grad():
            logits = lm.model(input_ids=batch, attention_mask=mask, position_ids=position).logits[:, -1].float()
        return logits.softmax(-1)[:, [i[0] for i in ids]].numpy()
    return np.exp(np.array([lmk.sequence_logprob(lm, p, [" " + v for v in values]) for p in prompts]))


def ask(p: AskParams) -> dict:
    """The API's ``ask``: greedy answer, its probability, every candidate value's probability (for
    the four question forms), ``n_samples`` sampled answers, their agreement and semantic entropy.
    Same inputs, same output (the samples come from a generator seeded with ``seed``)."""
    import torch

    from demos.common import language_model as lmk
    from playground.models import single_thread

    p = check_ask(p)
    lm = get_lm(p.model)
    prompt = tw.qa_prompt(p.question)
    parsed = tw.parse_question(p.question)
    with single_thread():
        greedy = lmk.generate(lm, [prompt], MAX_NEW_TOKENS)[0]
        answer = (greedy.split() or [""])[0].strip(".,;:!?")
        candidates = {}
        if parsed:
            values = tw.ATTRIBUTES[parsed[1]]
            candidates = dict(zip(values, map(float, candidate_probs(lm, [prompt], values)[0])))
        p_answer = float(np.exp(lmk.sequence_logprob(lm, prompt, [" " + answer])[0])) if answer else 0.0
        generator = torch.Generator().manual_seed(p.seed)
        samples = lmk.generate(lm, [prompt] * p.n_samples, MAX_NEW_TOKENS, p.temperature, generator)
    return {"answer": answer, "p_answer": p_answer, "candidates": candidates, "samples": samples,
            "agreement": agreement(samples), "semantic_entropy": semantic_entropy(samples)}


def check_answer(question: str, answer: str) -> dict:
    """What the oracle says of an answer: ``checkable`` (one of the four forms), the person's
    frequency and split if they are in the world, the truth and whether the answer is right."""
    parsed = tw.parse_question(question)
    if not parsed:
        return {"checkable": False}
    name, attribute = parsed
    person = oracle().person(name)
    if person is None:
        return {"checkable": True, "in_world": False, "name": name, "attribute": attribute}
    return {"checkable": True, "in_world": True, "name": name, "attribute": attribute, "f": person.f,
            "split": person.split, "truth": person.fact(attribute),
            "right": tw.normalise_answer(answer) == person.fact(attribute).lower()}
