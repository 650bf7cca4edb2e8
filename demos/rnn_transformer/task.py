"""The associative-recall task of RNN vs Transformer: its vocabulary, its sequences and their
random draws, and the encoding every model reads.

1 to 8 key-value pairs with distinct keys (``a 3 f 7 q 1``), then 0 to 128 filler tokens ``.``,
then ``?`` and one of the keys; the target is that key's value. The **distance** ``d`` is the
number of tokens strictly between the queried pair's value and ``?``: with ``n`` pairs, the
queried pair at index ``i`` (0-based) and ``F`` filler tokens, ``d = 2 (n - 1 - i) + F``.

numpy only: ``compute`` (typed sequences, the builder) and ``models`` (torch) both read it.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

import numpy as np

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
