"""The associative-recall task: the generator's distance, parsing and the builder (no torch)."""

import numpy as np
import pytest

from demos.rnn_transformer import compute


def counted_distance(tokens) -> int:
    """Tokens strictly between the queried key's value and '?', counted from the tokens alone."""
    query = tokens.index("?")
    key = tokens[query + 1]
    pairs_keys = [tokens[i] for i in range(0, query, 2) if tokens[i] in compute.KEYS]
    value_position = 2 * pairs_keys.index(key) + 1
    return query - value_position - 1


def test_the_generators_distance_is_what_it_claims():
    rng = np.random.default_rng(0)
    for _ in range(500):
        s = compute.sample_sequence(rng)
        assert counted_distance(list(s.tokens)) == s.distance
        assert s.tokens[s.value_position] == s.target and s.tokens[-1] == s.key
    for d in (0, 1, 2, 7, 32, 64, 128, compute.MAX_DISTANCE):
        for _ in range(50):
            s = compute.sample_sequence(rng, distance=d)
            assert s.distance == d == counted_distance(list(s.tokens))
            assert len(s.tokens) <= compute.MAX_TOKENS


def test_sequences_follow_the_task_format():
    rng = np.random.default_rng(1)
    for _ in range(300):
        s = compute.sample_sequence(rng)
        keys = s.tokens[0:2 * s.n_pairs:2]
        assert 1 <= s.n_pairs <= 8 and len(set(keys)) == len(keys)
        assert all(v in compute.VALUES for v in s.tokens[1:2 * s.n_pairs:2])
        assert 0 <= s.n_filler <= 128
        assert compute.parse_sequence(s.text()) == s


def test_every_distance_has_layouts_and_both_ends_are_reachable():
    assert compute.layouts_for_distance(0) == [(n, n - 1) for n in range(1, 9)]
    assert compute.layouts_for_distance(compute.MAX_DISTANCE) == [(8, 0)]
    assert compute.layouts_for_distance(compute.MAX_DISTANCE + 1) == []


def test_encode_right_pads_and_targets_are_value_indices():
    seqs = [compute.parse_sequence("a 3 ? a"), compute.parse_sequence("b 7 c 1 . . ? c")]
    ids, mask, targets = compute.encode(seqs)
    assert ids.shape == (2, 8) and mask.sum(axis=1).tolist() == [4, 8]
    assert (ids[0, 4:] == 0).all() and ids[0, 0] == compute.TOKEN_ID["a"]
    assert targets.tolist() == [3, 1]


@pytest.mark.parametrize("text,message", [
    ("", "empty"),
    ("a 3 f 7 ? x", "not among the pairs"),
    ("a 3 a 7 ? a", "repeated key(s) a"),
    ("a 3 f 7 . .", "exactly one '?'"),
    ("a 3 ? a ? a", "more than one '?'"),
    ("a 3 f 7 ? a b", "followed by exactly one key"),
    ("a 3 ? 3", "followed by exactly one key"),
    ("a 3 Z 7 ? a", "unknown token(s) 'Z'"),
    ("a 3 <pad> ? a", "unknown token(s)"),
    ("a 3 . f 7 ? a", "filler '.' may only come after all the pairs"),
    ("a 3 f ? a", "must start with key-value pairs"),
    ("3 a ? a", "each pair is a key a..z then a value 0..9"),
    (" ".join(f"{k} 1" for k in "abcdefghi") + " ? a", "9 pairs; at most 8"),
    ("a 3 " + ". " * 200 + "? a", "at most 160 are allowed"),
    ("a 3 " + ". " * 129 + "? a", "129 filler tokens; at most 128"),
    (None, "sequence must be text"),
])
def test_bad_sequences_say_what_is_wrong(text, message):
    with pytest.raises(ValueError) as err:
        compute.parse_sequence(text)
    assert message in str(err.value)


def test_the_builder_keeps_the_pairs_when_the_distance_moves():
    near = compute.built_sequence(compute.BuilderParams(n_pairs=4, query=2, distance=4, seed=3))
    far = compute.built_sequence(compute.BuilderParams(n_pairs=4, query=2, distance=100, seed=3))
    assert near.tokens[:8] == far.tokens[:8] and near.distance == 4 and far.distance == 100
    assert far.n_filler - near.n_filler == 96


@pytest.mark.parametrize("params,message", [
    (dict(n_pairs=9), "n_pairs must be in 1..8"),
    (dict(n_pairs=3, query=4), "query (which pair is asked) must be in 1..3"),
    (dict(n_pairs=4, query=1, distance=2), "must be in 6..134"),
    (dict(distance=float("nan")), "must be an integer"),
    (dict(seed=-1), "seed must be in"),
])
def test_bad_builder_settings_name_the_field(params, message):
    with pytest.raises(ValueError) as err:
        compute.built_sequence(compute.BuilderParams(**{**compute.BuilderParams().__dict__, **params}))
    assert message in str(err.value)


def test_training_batches_have_one_length_and_cover_every_layout():
    rng = np.random.default_rng(5)
    lengths, pairs, distances = set(), set(), set()
    for _ in range(400):
        batch = compute.sample_batch(rng, 16)
        assert len({len(s.tokens) for s in batch}) == 1
        for s in batch:
            assert compute.parse_sequence(s.text()) == s
            lengths.add(len(s.tokens)), pairs.add(s.n_pairs), distances.add(s.distance)
    assert min(lengths) <= 6 and max(lengths) >= 140 and pairs == set(range(1, 9))
    assert min(distances) == 0 and max(distances) >= 128
