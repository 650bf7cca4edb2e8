"""RNN vs Transformer: the associative-recall task, its checks, and what each model answers.

The task (issue "Tab: RNN vs Transformer"): 1 to 8 key-value pairs with distinct keys
(``a 3 f 7 q 1``), then 0 to 128 filler tokens ``.``, then ``?`` and one of the keys; the target
is that key's value. The **distance** ``d`` is the number of tokens strictly between the queried
pair's value and ``?``: with ``n`` pairs, the queried pair at index ``i`` (0-based) and ``F``
filler tokens,

    d = 2 (n - 1 - i) + F.

This module is numpy only (no torch, no gradio): the task generator (``task``, whose names it
also offers), parsing and validating a typed sequence, and the parameters of the tab's sequence
builder. The torch side (the four
models, saliency, timing) is ``demos.rnn_transformer.models``, imported lazily by ``answer_all``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from demos.rnn_transformer.task import (  # noqa: F401 (the task's names, read here by the UI and tests)
    KEYS, VALUES, FILLER, QUERY, PAD, VOCAB, TOKEN_ID, VALUE_IDS,
    MIN_PAIRS, MAX_PAIRS, MAX_FILLER, MAX_TOKENS, MAX_DISTANCE, MODEL_KINDS, MODEL_TITLES,
    Sequence, build_sequence, random_pairs, layouts_for_distance, sample_sequence, sample_batch, encode)
from playground import validate


# ----------------------------------------------------------------------------- typed sequences
def parse_sequence(text: Any) -> Sequence:
    """A typed, space-separated sequence checked against the task's format; a ``ValueError``
    names the problem (unknown tokens, repeated keys, no ``?``, a key not among the pairs, ...)."""
    if not isinstance(text, str):
        raise ValueError(f"sequence must be text (space-separated tokens), got {validate.shown(text)}")
    tokens = text.split()
    if not tokens:
        raise ValueError("sequence is empty: type pairs like 'a 3 f 7', filler '.', then '? a'")
    if len(tokens) > MAX_TOKENS:
        raise ValueError(f"sequence has {len(tokens)} tokens; at most {MAX_TOKENS} are allowed")
    unknown = sorted({t for t in tokens if t not in TOKEN_ID or t == PAD})
    if unknown:
        raise ValueError(f"unknown token(s) {', '.join(validate.shown(t, 12) for t in unknown[:5])}: "
                         "keys are a..z, values 0..9, filler '.', query mark '?'")
    if tokens.count(QUERY) != 1:
        raise ValueError("the sequence needs exactly one '?' followed by a key"
                         if QUERY not in tokens else "the sequence has more than one '?'")
    q = tokens.index(QUERY)
    if q != len(tokens) - 2 or tokens[-1] not in KEYS:
        raise ValueError("'?' must be followed by exactly one key (a..z) and nothing after it")
    body, key = tokens[:q], tokens[-1]
    n_filler = len(body) - len(body[: _pairs_end(body)])
    pairs = body[: len(body) - n_filler]
    if any(t != FILLER for t in body[len(pairs):]):
        raise ValueError("filler '.' may only come after all the pairs, before '?'")
    keys, values = pairs[0::2], pairs[1::2]
    _check_pairs(keys, values)
    if n_filler > MAX_FILLER:
        raise ValueError(f"{n_filler} filler tokens; at most {MAX_FILLER} are allowed")
    if key not in keys:
        raise ValueError(f"the query key {key!r} is not among the pairs' keys ({' '.join(keys)})")
    return build_sequence(keys, values, keys.index(key), n_filler)


def _pairs_end(body: list[str]) -> int:
    """Index of the first filler token (the pairs are everything before it)."""
    return body.index(FILLER) if FILLER in body else len(body)


def _check_pairs(keys: list[str], values: list[str]) -> None:
    if len(keys) != len(values) or not keys:
        raise ValueError("the sequence must start with key-value pairs ('a 3 f 7 ...'): "
                         f"found {len(keys) + len(values)} token(s) before the filler")
    if len(keys) > MAX_PAIRS:
        raise ValueError(f"{len(keys)} pairs; at most {MAX_PAIRS} are allowed")
    for k, v in zip(keys, values):
        if k not in KEYS or v not in VALUES:
            raise ValueError(f"each pair is a key a..z then a value 0..9; got {k!r} {v!r}")
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        raise ValueError(f"repeated key(s) {', '.join(repeated)}: every key may appear once")


# ----------------------------------------------------------------------------- the tab's builder
@dataclass(frozen=True)
class BuilderParams:
    """The sequence builder: ``n_pairs`` pairs from ``seed``, the pair asked (1-based), and the
    distance ``d``, which sets the filler count ``F = d - 2 (n - query)``."""

    n_pairs: int = 4
    query: int = 2
    distance: int = 24
    seed: int = 0


def check_builder(p: BuilderParams) -> BuilderParams:
    n = validate.check_int("n_pairs", p.n_pairs, MIN_PAIRS, MAX_PAIRS)
    query = validate.check_int("query (which pair is asked)", p.query, 1, n)
    low = 2 * (n - query)
    distance = validate.check_int(f"distance (with pair {query} of {n} asked)", p.distance, low,
                                  low + MAX_FILLER)
    return BuilderParams(n, query, distance, validate.check_int("seed", p.seed, 0, 2**31 - 1))


def built_sequence(p: BuilderParams) -> Sequence:
    """The builder's sequence: keys and values drawn from ``seed`` (the same pairs at every
    distance, so moving the distance slider changes only the filler)."""
    p = check_builder(p)
    keys, values = random_pairs(np.random.default_rng(p.seed), p.n_pairs)
    return build_sequence(keys, values, p.query - 1, p.distance - 2 * (p.n_pairs - p.query))


def answer_all(sequence: Sequence, details: bool = False) -> dict:
    """Every model's answer, its probability and the saliency per input position (the API's
    ``recall``); with ``details``, also hidden states and attention (see ``models.explain``)."""
    from demos.rnn_transformer import models  # torch, only when a model is asked

    return {"distance": sequence.distance,
            "models": {kind: models.explain(models.get_model(kind), sequence, details)
                       for kind in MODEL_KINDS}}
