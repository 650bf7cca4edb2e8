"""RNN vs Transformer: the associative-recall task, its checks, and what each model answers.

The task (issue "Tab: RNN vs Transformer"): 1 to 8 key-value pairs with distinct keys
(``a 3 f 7 q 1``), then 0 to 128 filler tokens ``.``, then ``?`` and one of the keys; the target
is that key's value. The **distance** ``d`` is the number of tokens strictly between the queried
pair's value and ``?``: with ``n`` pairs, the queried pair at index ``i`` (0-based) and ``F``
filler tokens,

    d = 2 (n - 1 - i) + F.

This module is numpy only (no torch, no gradio): the task generator, parsing and validating a
typed sequence, and the parameters of the tab's sequence builder. The torch side (the four
models, saliency, timing) is ``demos.rnn_transformer.models``, imported lazily by ``answer_all``.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Any

import numpy as np

from playground import validate

KEYS = tuple(string.ascii_lowercase)  # 26 keys
VALUES = tuple(string.digits)  # 10 values; chance is 1/10
FILLER, QUERY, PAD = ".", "?", "<pad>"
VOCAB = (PAD, FILLER, QUERY, *KEYS, *VALUES)  # token id = index; PAD = 0
TOKEN_ID = {token: i for i, token in enumerate(VOCAB)}
VALUE_IDS = tuple(TOKEN_ID[v] for v in VALUES)

MIN_PAIRS, MAX_PAIRS = 1, 8
MAX_FILLER = 128
MAX_TOKENS = 160  # the Transformer's positions; the longest valid sequence has 2*8 + 128 + 2 = 146
MAX_DISTANCE = 2 * (MAX_PAIRS - 1) + MAX_FILLER  # 142
MODEL_KINDS = ("rnn", "lstm", "gru", "transformer")
MODEL_TITLES = {"rnn": "tanh RNN", "lstm": "LSTM", "gru": "GRU", "transformer": "Transformer"}


@dataclass(frozen=True)
class Sequence:
    """One recall sequence: its tokens, the target value and where things are."""

    tokens: tuple[str, ...]
    n_pairs: int
    query_index: int  # which pair is asked (0-based)
    n_filler: int

    @property
    def key(self) -> str:
        return self.tokens[2 * self.query_index]

    @property
    def target(self) -> str:
        return self.tokens[2 * self.query_index + 1]

    @property
    def distance(self) -> int:
        """Tokens strictly between the queried value and ``?``."""
        return 2 * (self.n_pairs - 1 - self.query_index) + self.n_filler

    @property
    def value_position(self) -> int:
        return 2 * self.query_index + 1

    def text(self) -> str:
        return " ".join(self.tokens)


def build_sequence(keys: list[str], values: list[str], query_index: int, n_filler: int) -> Sequence:
    """``k1 v1 ... kn vn`` + ``n_filler`` x ``.`` + ``? k_query``."""
    pairs = [t for kv in zip(keys, values) for t in kv]
    tokens = (*pairs, *[FILLER] * n_filler, QUERY, keys[query_index])
    return Sequence(tokens, len(keys), query_index, n_filler)


def random_pairs(rng: np.random.Generator, n_pairs: int) -> tuple[list[str], list[str]]:
    """``n_pairs`` distinct keys and a value for each (values may repeat)."""
    keys = [KEYS[i] for i in rng.choice(len(KEYS), size=n_pairs, replace=False)]
    values = [VALUES[i] for i in rng.integers(0, len(VALUES), size=n_pairs)]
    return keys, values


def layouts_for_distance(distance: int) -> list[tuple[int, int]]:
    """Every ``(n_pairs, query_index)`` that can have exactly ``distance``: ``F = d - 2(n-1-i)``
    must lie in ``0..MAX_FILLER``."""
    return [(n, i) for n in range(MIN_PAIRS, MAX_PAIRS + 1) for i in range(n)
            if 0 <= distance - 2 * (n - 1 - i) <= MAX_FILLER]


def sample_sequence(rng: np.random.Generator, distance: int | None = None,
                    n_pairs: int | None = None) -> Sequence:
    """A random sequence. Training mix (no ``distance``): ``n`` uniform in 1..8, the queried
    pair uniform, ``F`` uniform in 0..128. With ``distance`` (and optionally ``n_pairs``): a
    layout drawn uniformly among those that give exactly that distance."""
    if distance is None:
        n = int(rng.integers(MIN_PAIRS, MAX_PAIRS + 1)) if n_pairs is None else n_pairs
        i, f = int(rng.integers(0, n)), int(rng.integers(0, MAX_FILLER + 1))
    else:
        layouts = [(n, i) for n, i in layouts_for_distance(distance) if n_pairs in (None, n)]
        if not layouts:
            raise ValueError(f"no sequence with {n_pairs} pairs has distance {distance}")
        n, i = layouts[int(rng.integers(0, len(layouts)))]
        f = distance - 2 * (n - 1 - i)
    keys, values = random_pairs(rng, n)
    return build_sequence(keys, values, i, f)


def sample_batch(rng: np.random.Generator, batch: int) -> list[Sequence]:
    """A training batch of one length (no padding, so the recurrent models need no packing):
    the length L uniform in 4..146, then per sequence ``n`` uniform among the pair counts whose
    filler ``F = L - 2n - 2`` lies in 0..128, and the queried pair uniform."""
    length = int(rng.integers(2 * MIN_PAIRS + 2, 2 * MAX_PAIRS + MAX_FILLER + 3))
    counts = [n for n in range(MIN_PAIRS, MAX_PAIRS + 1) if 0 <= length - 2 * n - 2 <= MAX_FILLER]
    out = []
    for _ in range(batch):
        n = counts[int(rng.integers(0, len(counts)))]
        keys, values = random_pairs(rng, n)
        out.append(build_sequence(keys, values, int(rng.integers(0, n)), length - 2 * n - 2))
    return out


def encode(sequences: list[Sequence]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Right-padded token ids ``(B, T)``, the padding mask ``(B, T)`` (True = real token) and the
    target class ``(B,)`` (index into ``VALUES``). Padding never changes an answer: the recurrent
    models pack their input, the Transformer is causal, and both read the last real position."""
    length = max(len(s.tokens) for s in sequences)
    ids = np.zeros((len(sequences), length), dtype=np.int64)  # (B, T), PAD = 0
    for row, s in enumerate(sequences):
        ids[row, :len(s.tokens)] = [TOKEN_ID[t] for t in s.tokens]
    targets = np.array([VALUES.index(s.target) for s in sequences], dtype=np.int64)  # (B,)
    return ids, ids != 0, targets


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
