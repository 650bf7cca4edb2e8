"""The ``preference`` endpoint (the Text World policies) through gradio_client, its bad inputs,
and the language-model section's Reproduce-in-Python snippet run against the live app."""

import json

import pytest
from gradio_client.exceptions import AppError

from demos.preferences import compute
from playground import sharing
from tests.test_sharing import bindings_of, comparable


def test_preference_through_the_client_is_what_compute_gives(client):
    result = client.predict("Sort the words: pilot goat blue", "dpo", 0.1, 4, 2, api_name="/preference")
    assert set(result) == {"samples"} and len(result["samples"]) == 4
    assert all(set(s) == {"text", "logp_policy", "logp_reference", "learned_reward"} for s in result["samples"])
    expected = compute.preference(compute.PreferenceParams("Sort the words: pilot goat blue", "dpo", 0.1, 4, 2))
    assert result == json.loads(json.dumps(expected))


@pytest.mark.parametrize("method, beta", [("sft", 0.03), ("rlhf", 0.03), ("rlhf", 1.0), ("dpo", 0.3)])
def test_every_trained_policy_answers(client, method, beta):
    result = client.predict("What is the first word of: red cat", method, beta, 2, 0, api_name="/preference")
    assert len(result["samples"]) == 2


@pytest.mark.parametrize("args, message", [
    (("Sort the words: a b", "dpo", 0.0, 4, 0), "beta must be positive"),
    (("Sort the words: a b", "dpo", -0.1, 4, 0), "beta must be positive"),
    (("Sort the words: a b", "dpo", 0.5, 4, 0), "beta 0.5 was not trained: the language models exist for beta = 0.03, 0.1, 0.3, 1"),
    (("Sort the words: a b", "ppo", 0.1, 4, 0), "method must be one of sft, rlhf, dpo"),
    (("Sort the words: a b", "dpo", 0.1, 500, 0), "n_samples must be in 1..32"),
    (("", "dpo", 0.1, 4, 0), "instruction must be a non-empty text"),
])
def test_bad_preference_input_through_the_client(client, args, message):
    with pytest.raises(AppError) as err:
        client.predict(*args, api_name="/preference")
    assert message in str(err.value)


def test_the_language_model_snippet_runs(app_url, client):
    bindings = bindings_of("preferences")
    assert [b.prefix for b in bindings] == ["", "lm_"]
    binding = bindings[1]
    params = compute.PreferenceParams("Reverse the words: cat red", "rlhf", 0.3, 3, 5)
    namespace = {"print": lambda *a, **k: None}
    exec(compile(sharing.snippet(binding, params, app_url + "/"), "snippet", "exec"), namespace)  # noqa: S102
    assert comparable(namespace["result"]) == comparable(
        client.predict("Reverse the words: cat red", "rlhf", 0.3, 3, 5, api_name="/preference"))


def test_a_link_sets_the_language_model_s_fields():
    bindings = bindings_of("preferences")
    _, fields, _ = sharing.read_link(sharing.search_items(
        "?tab=preferences&beta=1&lm_beta=0.3&lm_method=rlhf&lm_n_samples=99&lm_seed=2"), ["preferences"])
    kept, problems = sharing.tab_values(bindings, fields)
    assert kept[1] == {"beta": 0.3, "method": "rlhf", "seed": 2}
    assert any(p.startswith("lm_n_samples") for p in problems)
