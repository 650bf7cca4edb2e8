"""Instruction tuning tab: Self-Instruct's pipeline live (``self_instruct``), and the base model
against its Alpaca-style fine-tunes (``instruct``).

No gradio, no torch at import. The models are Text World fine-tunes trained by
``python -m demos.instruction_tuning.train`` and loaded through ``playground.models``; the teacher
is a program (``self_instruct.ProgramTeacher``) standing in for text-davinci-003.
"""

from __future__ import annotations

import functools
import json
import math
from collections import Counter
from dataclasses import dataclass

import numpy as np

from demos.common import text_world as tw
from demos.common.text_world import check_instruction, oracle
from demos.instruction_tuning import self_instruct as si
from playground import settings, validate

ASSETS = settings.ASSETS_DIR / "instruction_tuning"
# name in the API -> (registry name, what it was tuned on)
FINETUNES = {
    "n500": "500 filtered, clean examples",
    "n2000": "2,000 filtered, clean examples",
    "n8000": "8,000 filtered, clean examples (the default fine-tune)",
    "n8000-unfiltered": "8,000 clean examples, ROUGE-L filter off (threshold 1.0)",
    "n8000-noisy": "8,000 filtered examples with the teacher's mistakes kept",
}
DEFAULT_TUNED = "n8000"
MODEL_NAMES = ("base", "tuned", *FINETUNES)
MAX_CANDIDATES = 2000
SHOWN_MODELS = ("base", "n500", "n2000", "n8000", "n8000-unfiltered", "n8000-noisy")


@functools.lru_cache(maxsize=1)
def seeds() -> tuple[si.Task, ...]:
    return tuple(si.seed_tasks(oracle()))


def registry_name(model: str) -> str:
    return "textworld-instruct-" + (DEFAULT_TUNED if model == "tuned" else model)


# ----------------------------------------------------------------------------- instruct
@dataclass(frozen=True)
class InstructParams:
    instruction: str = "Sort the words: pilot goat blue ostmar"
    model: str = "tuned"
    seed: int = 0


def check_instruct(p: InstructParams) -> InstructParams:
    return InstructParams(check_instruction(p.instruction), validate.check_choice("model", p.model, MODEL_NAMES),
                          validate.check_int("seed", p.seed, 0, 2**31 - 1))


def instruct(p: InstructParams) -> dict:
    """The API's ``instruct``: the Alpaca prompt and the model's greedy response (at most 32 new
    tokens, to EOS). Greedy decoding does not use ``seed``; it is taken for the contract's sake
    and so that sampled decoding can be added without changing it."""
    from demos.instruction_tuning import tuning
    from playground import models
    from playground.models import single_thread

    p = check_instruct(p)
    lm = models.get(registry_name(p.model))
    with single_thread():
        response = tuning.respond(lm, [p.instruction])[0]
    return {"response": response, "prompt": tw.alpaca_prompt(p.instruction)}


def grade(instruction: str, response: str) -> dict:
    """What the program knows of a response: the family, the right answer, whether it is right and
    the Text World specification's true reward; ``checkable`` False when the instruction has no programmatic answer."""
    parsed = tw.parse_instruction(instruction)
    if parsed is None:
        return {"checkable": False}
    truth = tw.program_answer(parsed, oracle())
    if truth is None:
        return {"checkable": False, "family": parsed.family, "why": f"{parsed.name} is not in Text World"}
    return {"checkable": True, "family": parsed.family, "truth": tw.response_text(truth, parsed.family),
            "right": bool(tw.is_correct(parsed, response, oracle())),
            "true_reward": tw.true_reward(parsed, response, oracle())}


# ----------------------------------------------------------------------------- self-instruct
@dataclass(frozen=True)
class SelfInstructParams:
    threshold: float = 0.7
    n_candidates: int = 64
    seed: int = 0


def check_self_instruct(p: SelfInstructParams) -> SelfInstructParams:
    return SelfInstructParams(validate.check_float("threshold", p.threshold, 0.0, 1.0),
                              validate.check_int("n_candidates", p.n_candidates, 1, MAX_CANDIDATES),
                              validate.check_int("seed", p.seed, 0, 2**31 - 1))


def run_self_instruct(p: SelfInstructParams) -> si.Run:
    p = check_self_instruct(p)
    return si.self_instruct(list(seeds()), si.ProgramTeacher(oracle()), p.n_candidates, p.threshold, p.seed)


def self_instruct_result(run: si.Run) -> dict:
    """The API's output: the kept instructions, and every candidate the ROUGE-L filter rejected
    with its most similar kept instruction and the score (candidates that the length, keyword
    or output filters dropped are in neither list)."""
    return {"kept": [c.task.instruction for c in run.candidates if c.kept],
            "rejected": [{"instruction": c.task.instruction, "most_similar": c.most_similar,
                          "rouge_l": round(c.rouge_l, 6)}
                         for c in run.candidates if not c.kept and not c.invalid]}


def self_instruct(p: SelfInstructParams) -> dict:
    return self_instruct_result(run_self_instruct(p))


@dataclass(frozen=True)
class PoolSummary:
    """What the threshold did to the candidates: counts, the teacher's error rate, diversity."""

    n_candidates: int
    n_invalid: int
    n_rejected: int
    n_kept: int
    kept_mistake_rate: float  # among kept tasks, responses the program marks wrong
    teacher_mistake_rate: float  # among every valid candidate
    families: dict
    highest_similarity: list  # each valid candidate's highest ROUGE-L against the pool when filtered
    distinct_phrasings: int


def summarise(run: si.Run) -> PoolSummary:
    valid = [c for c in run.candidates if not c.invalid]
    kept = [c for c in valid if c.kept]
    phrasings = {_phrasing_key(c.task.instruction) for c in kept}
    return PoolSummary(len(run.candidates), len(run.candidates) - len(valid), len(valid) - len(kept), len(kept),
                       _rate([c.task.mistake for c in kept]), _rate([c.task.mistake for c in valid]),
                       dict(Counter(c.task.family or "other" for c in kept)), [c.rouge_l for c in valid],
                       len(phrasings))


def threshold_sweep(run: si.Run, thresholds) -> list[dict]:
    """Kept tasks and distinct phrasings when the same candidates are re-filtered at each threshold."""
    out = []
    for t in thresholds:
        r = si.refilter(run, float(t))
        out.append({"threshold": float(t), "kept": len(r.kept), "phrasings": summarise(r).distinct_phrasings})
    return out


def _rate(flags: list[bool]) -> float:
    return float(np.mean(flags)) if flags else math.nan


def _phrasing_key(instruction: str) -> str:
    """An instruction with its arguments blanked: which phrasing (and courtesy) it uses."""
    parsed = tw.parse_instruction(instruction)
    if parsed is None:
        return instruction
    text = instruction.replace(parsed.name, "{name}") if parsed.name else instruction
    return text[: text.rindex(":") + 1] if parsed.words else text


# ----------------------------------------------------------------------------- precomputed results
@functools.lru_cache(maxsize=1)
def evaluation() -> dict | None:
    """``assets/instruction_tuning/evaluation.json`` (``python -m benchmarks.instruction_tuning
    --write``), or None when it has not been written."""
    path = ASSETS / "evaluation.json"
    return json.loads(path.read_text()) if path.exists() else None


@functools.lru_cache(maxsize=1)
def training_log() -> dict | None:
    path = ASSETS / "training_log.json"
    return json.loads(path.read_text()) if path.exists() else None
