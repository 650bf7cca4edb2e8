"""RLHF vs DPO on the Text World language model: the demonstrations, the log-probabilities, the
pairs' labels, the reward model, the ``preference`` endpoint's compute and its bad inputs, and the
committed checkpoints' stored evaluation."""

import math
import random

import pytest
import torch

from demos.common import language_model as lmk
from demos.common import text_world as tw
from demos.preferences import compute, lm, rl
from playground import models


@pytest.fixture(scope="module")
def world():
    return compute._oracle()


@pytest.fixture(scope="module")
def sft():
    return models.get("textworld-pref-sft")


def test_demonstrations_mix_concise_verbose_and_wrong_in_the_stated_shares(world):
    demos = lm.demonstrations(1000, lm.DemoMix(0.5, 0.3, 0.2), world, seed=3)
    kinds = [d.kind for d in demos]
    assert (kinds.count("concise"), kinds.count("verbose"), kinds.count("wrong")) == (500, 300, 200)
    for d in demos:
        parsed = tw.parse_instruction(d.instruction)
        assert parsed.family in lm.FAMILIES and 2 <= len(parsed.words) <= 5
        right, extra = tw.is_correct(parsed, d.response, world), tw.extra_words(parsed, d.response)
        if d.kind == "concise":
            assert right and extra == 0 and tw.true_reward(parsed, d.response, world) == 1.0
        elif d.kind == "verbose":
            assert right and 2 <= extra <= 6
        else:
            assert d.mistake == (not right)
    assert sum(d.mistake for d in demos if d.kind == "wrong") >= 190  # sorting a sorted list cannot be wrong


def test_every_demonstration_word_is_in_the_sft_vocabulary(world, sft):
    demos = lm.demonstrations(300, lm.DemoMix(), world, seed=0)
    unk = sft.tokenizer.unk_token_id
    for d in demos:
        ids, _ = lmk.encode(sft.tokenizer, tw.alpaca_prompt(d.instruction), d.response)
        assert unk not in ids, d


def test_response_logprob_is_the_sum_of_its_token_logprobs_from_a_plain_forward_pass(sft):
    """Batched and right-padded, EOS included, equal to one unpadded forward per response."""
    instructions = ["Sort the words: pilot goat", "How many words are in: red cat dog blue owl", "Reverse the words: a"]
    responses = [lm.response_ids(sft.tokenizer, "goat pilot."), lm.response_ids(sft.tokenizer, "5. Here it is."),
                 lm.response_ids(sft.tokenizer, "")]
    responses[1] = responses[1][:-1]  # a response cut at the token limit: no EOS
    ids, mask, rmask = lm.response_batch(sft.tokenizer, instructions, responses)
    with torch.no_grad():
        batched = lm.response_logps(sft.model, ids, mask, rmask)
    for b, (x, y) in enumerate(zip(instructions, responses)):
        prompt, n_prompt = lmk.encode(sft.tokenizer, tw.alpaca_prompt(x))
        row = prompt + y
        with torch.no_grad():
            logp = sft.model(input_ids=torch.tensor([row])).logits[0].log_softmax(-1)
        expected = sum(float(logp[t - 1, row[t]]) for t in range(n_prompt, len(row)))
        assert math.isclose(float(batched[b]), expected, rel_tol=1e-4, abs_tol=1e-4)


def test_response_token_view_puts_each_rows_response_first():
    x = torch.tensor([[1., 2., 3., 4.], [5., 6., 7., 8.]])  # token_logprobs layout (B, T-1)
    response_mask = torch.tensor([[0, 0, 1, 1, 0], [0, 1, 1, 1, 1]])  # (B, T): tokens 2-3 and 1-4
    out, mask = lm.response_token_view(x, response_mask)
    assert out.tolist() == [[2., 3., 0., 0.], [5., 6., 7., 8.]]
    assert mask.tolist() == [[1., 1., 0., 0.], [1., 1., 1., 1.]]


def test_pairs_are_labelled_by_bradley_terry_on_the_true_reward(world, sft):
    texts = ["Sort the words: pilot goat"] * 4000
    concise, verbose = (lm.response_ids(sft.tokenizer, t) for t in ("goat pilot.", "goat pilot. Here it is."))
    tau = 0.3  # r* 1.0 against 0.7
    pairs = lm.label_pairs(sft.tokenizer, texts, [concise] * 4000, [verbose] * 4000, world, tau, random.Random(0))
    share = sum(p.chosen == concise for p in pairs) / len(pairs)
    assert abs(share - 1 / (1 + math.exp(-0.3 / tau))) < 0.02  # sigmoid(1) = 0.731
    assert math.isclose(lm.bradley_terry_ceiling(pairs, tau), 1 / (1 + math.exp(-1)), rel_tol=1e-9)
    sure = lm.label_pairs(sft.tokenizer, texts[:50], [verbose] * 50, [concise] * 50, world, 0.001, random.Random(0))
    assert all(p.chosen == concise and p.reward_chosen == 1.0 for p in sure)


def test_the_reward_model_ranks_right_concise_above_verbose_above_wrong():
    rm = models.get("textworld-pref-reward")
    instructions = [lm.instruction(random.Random(i), family) for i in range(10) for family in lm.FAMILIES]
    world = compute._oracle()
    kinds = {kind: [lm.demonstration(x, kind, random.Random(7), world) for x in instructions]
             for kind in ("concise", "verbose", "wrong")}
    scores = {}
    with torch.no_grad():
        for kind, responses in kinds.items():
            ids, mask, _ = lm.response_batch(rm.tokenizer, instructions, [lm.response_ids(rm.tokenizer, r) for r in responses])
            scores[kind] = float(rm.model(input_ids=ids, attention_mask=mask).logits[:, 0].mean())
    assert scores["concise"] > scores["verbose"] and scores["concise"] > scores["wrong"], scores


class ShorterIsBetter(torch.nn.Module):
    """A stand-in reward model that scores a row by minus its length: it knows brevity, not truth."""

    def forward(self, input_ids, attention_mask):
        from types import SimpleNamespace

        return SimpleNamespace(logits=-attention_mask.sum(1, keepdim=True).float())


def test_the_reward_model_breakdown_sorts_pairs_by_what_separates_them(world, sft):
    ids = lambda text: lm.response_ids(sft.tokenizer, text)  # noqa: E731
    make = lambda x, a, b: lm.Pair(x, ids(a), ids(b), tw.true_reward(tw.parse_instruction(x), a, world),  # noqa: E731
                                   tw.true_reward(tw.parse_instruction(x), b, world), 0.5)
    pairs = [make("Sort the words: pilot goat", "goat pilot.", "goat pilot. Here it is."),  # extra words, as r*
             make("Sort the words: pilot goat", "goat pilot. Here it is.", "pilot."),  # right vs wrong, longer wins
             make("Reverse the words: red cat", "cat red.", "red cat."),  # right vs wrong, same length
             make("What is the first word of: red cat", "red.", "red.")]  # a tie
    assert [lm.pair_kind(sft.tokenizer, p, world) for p in pairs] == ["extra words", "right vs wrong",
                                                                      "right vs wrong", "tie"]
    rows = {(r["kind"], r["family"]): r for r in lm.reward_model_by_kind(ShorterIsBetter(), sft.tokenizer, pairs,
                                                                          world, tau=0.1)}
    assert rows[("extra words", "all")]["orders_as_r_star"] == 1.0
    wrong = rows[("right vs wrong", "all")]
    assert wrong["pairs"] == 2 and wrong["accuracy"] == 0.25  # the longer right answer loses; equal lengths tie
    assert rows[("right vs wrong", "reverse")]["accuracy"] == 0.5 and rows[("right vs wrong", "sort")]["accuracy"] == 0
    assert rows[("tie", "all")]["orders_as_r_star"] is None and rows[("tie", "all")]["ceiling"] == 0.5
    assert sum(r["pairs"] for r in rows.values() if r["family"] == "all") == len(pairs)


def test_preference_samples_are_reproducible_and_sft_is_its_own_reference():
    p = compute.PreferenceParams("Reverse the words: cat red baker", "sft", 0.1, 5, 3)
    first = compute.preference(p)
    assert set(first) == {"samples"} and len(first["samples"]) == 5
    assert all(set(s) == {"text", "logp_policy", "logp_reference", "learned_reward"} for s in first["samples"])
    assert all(s["logp_policy"] == s["logp_reference"] for s in first["samples"])
    assert compute.preference(p) == first
    dpo = compute.preference(compute.PreferenceParams(p.instruction, "dpo", 0.03, 5, 3))["samples"]
    assert any(s["logp_policy"] != s["logp_reference"] for s in dpo)


def test_preference_log_probabilities_are_those_of_the_sampled_tokens_under_the_policy_and_sft():
    p = compute.PreferenceParams("Sort the words: pilot goat blue", "rlhf", 0.3, 3, 1)
    samples = compute.preference(p)["samples"]
    policy, sft = models.get("textworld-pref-rlhf-beta0.3"), models.get("textworld-pref-sft")
    sampled = lm.sample(policy, [p.instruction] * 3, torch.Generator().manual_seed(1))  # the same draw
    assert [lm.decode(policy.tokenizer, r) for r in sampled] == [s["text"] for s in samples]
    prompt, n_prompt = lmk.encode(sft.tokenizer, tw.alpaca_prompt(p.instruction))
    with torch.no_grad():
        for model, key in ((policy.model, "logp_policy"), (sft.model, "logp_reference")):
            for response, s in zip(sampled, samples):
                row = prompt + response
                logp = model(input_ids=torch.tensor([row])).logits[0].log_softmax(-1)
                expected = sum(float(logp[t - 1, row[t]]) for t in range(n_prompt, len(row)))
                assert math.isclose(expected, s[key], abs_tol=1e-3)


def test_side_by_side_grades_every_sample_with_the_true_reward(world):
    out = compute.side_by_side(compute.PreferenceParams("What is the first word of: teacher owl purple", "dpo", 1.0, 2, 0))
    assert set(out) == set(compute.METHODS)
    for samples in out.values():
        for s in samples:
            assert s["true_reward"] == tw.true_reward(tw.parse_instruction("What is the first word of: teacher owl purple"),
                                                      s["text"], world)
    free = compute.side_by_side(compute.PreferenceParams("Write a poem about cats", "sft", 0.1, 1, 0))
    assert free["sft"][0]["true_reward"] is None


@pytest.mark.parametrize("changes, message", [
    ({"beta": 0.0}, "beta must be positive"),
    ({"beta": -1.0}, "beta must be positive"),
    ({"beta": float("nan")}, "beta must be positive"),
    ({"beta": 0.2}, "beta 0.2 was not trained: the language models exist for beta = 0.03, 0.1, 0.3, 1"),
    ({"method": "ppo"}, "method must be one of sft, rlhf, dpo"),
    ({"n_samples": 0}, "n_samples must be in 1..32"),
    ({"n_samples": 33}, "n_samples must be in 1..32"),
    ({"seed": -1}, "seed must be in 0..2147483647"),
    ({"instruction": "  "}, "instruction must be a non-empty text"),
    ({"instruction": "x" * 301}, "at most 300"),
])
def test_bad_preference_input_names_the_field_and_its_range(changes, message):
    p = compute.PreferenceParams(**{**compute.PreferenceParams().__dict__, **changes})
    with pytest.raises(ValueError) as err:
        compute.check_preference(p)
    assert message in str(err.value)


def test_the_stored_evaluation_covers_every_policy_and_kl_grows_as_beta_falls():
    evaluation = compute.lm_stored("evaluation.json")
    rows = {(r["method"], r["beta"]): r for r in evaluation["policies"]}
    assert set(rows) == {("sft", None)} | {(m, b) for m in ("rlhf", "dpo") for b in compute.LM_BETAS}
    for method in ("rlhf", "dpo"):
        kls = [rows[(method, b)]["kl"] for b in compute.LM_BETAS]  # beta ascending
        assert kls[0] > kls[-1], (method, kls)
    log = compute.lm_stored("training_log.json")
    assert log["total_cpu_seconds"] <= 60 * 60  # the budget: 60 CPU-minutes
    assert set(log["stages"]["policies"]) == {str(b) for b in compute.LM_BETAS}


def test_ppo_loss_on_the_rollouts_it_just_sampled_starts_at_the_clipped_objectives_unclipped_value(sft):
    """At the first minibatch the policy equals the sampling policy: every ratio is 1, so the clipped
    surrogate is minus the mean advantage, which whitening makes 0."""
    ids, mask, rmask = lm.response_batch(sft.tokenizer, ["Sort the words: pilot goat"] * 2,
                                         [lm.response_ids(sft.tokenizer, t) for t in ("goat pilot.", "pilot goat. Thank you.")])
    head = lm.ValueHead(sft.model.config.hidden_size, 0)
    with torch.no_grad():
        tok_logps, tok_values = lm.policy_forward(sft.model, head, ids, mask)
        logps, m = lm.response_token_view(tok_logps, rmask)
        advantages, _ = rl.generalized_advantage_estimation(torch.randn(m.shape) * m, torch.zeros(m.shape), m)
        advantages = rl.whiten(advantages, m)
        loss = rl.ppo_clipped_loss(logps, logps.clone(), advantages, m)
    assert abs(float(loss)) < 1e-5
    assert m.sum(1).tolist() == [4.0, 7.0]  # "goat pilot ." + EOS; "pilot goat . Thank you ." + EOS


def test_the_win_rate_ceiling_is_what_a_policy_always_right_and_concise_would_score():
    sft_rewards = [1.0, 0.5, 0.0, 1.0, 0.9, 1.0]  # three samples already at the best r*
    ceiling = lm.win_rate_ceiling(sft_rewards)
    assert ceiling["sft_samples_at_best"] == 0.5
    assert (ceiling["wins"], ceiling["ties"], ceiling["losses"]) == (3, 3, 0)
    assert ceiling["win_rate"] == 0.75 and ceiling["win_rate_without_ties"] == 1.0
    worse = lm.win_rate([1.0, 1.0, 0.0, 0.0, 1.0, 1.0], sft_rewards)  # any other policy scores at most that
    assert worse["win_rate"] < ceiling["win_rate"]


def test_no_stored_policy_beats_the_stored_win_rate_ceiling_and_the_tab_says_it():
    from demos.preferences import ui

    evaluation = compute.lm_stored("evaluation.json")
    ceiling = evaluation["win_rate_ceiling"]
    assert 0 < ceiling["sft_samples_at_best"] < 1
    assert all(r["win_rate"] <= ceiling["win_rate"] for r in evaluation["policies"])
    text = ui.frontier_markdown(evaluation)
    assert f"**{ceiling['win_rate']:.3f}**" in text and "without ties" in text


def test_a_policys_implied_reward_ranks_pairs_by_its_log_ratio_and_swapping_the_models_reverses_it(world, sft):
    """beta log(pi/pi_ref) as a reward model: with pi_ref as the policy every pair ties; swapping the
    two models negates every implied reward, so each pair is ordered the other way."""
    pairs = [lm.Pair(**p) for p in compute.lm_stored("pairs.json")["held_out"][:48]]
    dpo = models.get(compute.lm_registry_name("dpo", 1.0)).model
    same = lm.implied_reward_by_kind(sft.model, sft.model, sft.tokenizer, pairs, world, 0.1, beta=1.0)
    assert all(r["accuracy"] == 0.5 for r in same)  # every implied reward is 0: ties, counted half
    forward = {(r["kind"], r["family"]): r for r in
               lm.implied_reward_by_kind(dpo, sft.model, sft.tokenizer, pairs, world, 0.1, beta=1.0)}
    backward = {(r["kind"], r["family"]): r for r in
                lm.implied_reward_by_kind(sft.model, dpo, sft.tokenizer, pairs, world, 0.1, beta=0.5)}
    assert forward.keys() == backward.keys()
    for key, row in forward.items():
        assert backward[key]["pairs"] == row["pairs"]
        assert backward[key]["accuracy"] == pytest.approx(1 - row["accuracy"], abs=1e-3)
        if row["orders_as_r_star"] is not None:
            assert backward[key]["orders_as_r_star"] == pytest.approx(1 - row["orders_as_r_star"], abs=1e-3)
    # the breakdown is the same one the reward model's scores go through
    ids, mask, rmask = lm.response_batch(sft.tokenizer, [p.instruction for p in pairs] * 2,
                                         [p.chosen for p in pairs] + [p.rejected for p in pairs])
    with torch.no_grad():
        ratio = lm.response_logps(dpo, ids, mask, rmask) - lm.response_logps(sft.model, ids, mask, rmask)
    by_hand = lm.scores_by_kind(ratio[:len(pairs)].tolist(), ratio[len(pairs):].tolist(), sft.tokenizer, pairs,
                                world, 0.1)
    assert {(r["kind"], r["family"]): r["accuracy"] for r in by_hand} == \
        pytest.approx({k: r["accuracy"] for k, r in forward.items()})


def test_the_tab_compares_the_reward_model_with_the_implied_rewards_from_the_stored_numbers():
    from demos.preferences import ui

    evaluation = compute.lm_stored("evaluation.json")
    implied = evaluation["implied_reward_by_kind"]
    assert {(i["method"], i["beta"]) for i in implied} == {(m, b) for m in ("dpo", "rlhf") for b in compute.LM_BETAS}
    text = ui.implied_reward_markdown(evaluation["reward_model_by_kind"], implied)
    assert text.count("β log π/π_SFT |") == len(implied) and "| reward model r̂ |" in text
    assert ui.implied_reward_markdown([], implied) == "" and ui.implied_reward_markdown(evaluation["reward_model_by_kind"], []) == ""


def test_the_overall_accuracy_weights_each_kind_by_its_pairs():
    rows = [{"kind": "right vs wrong", "family": "all", "pairs": 1, "accuracy": 1.0, "ceiling": 1.0, "orders_as_r_star": 1.0},
            {"kind": "right vs wrong", "family": "sort", "pairs": 1, "accuracy": 1.0, "ceiling": 1.0, "orders_as_r_star": 1.0},
            {"kind": "tie", "family": "all", "pairs": 3, "accuracy": 0.5, "ceiling": 0.5, "orders_as_r_star": None}]
    overall = lm.overall_by_kind(rows)  # the per-family row is not counted twice
    assert overall["accuracy"] == pytest.approx((1.0 + 3 * 0.5) / 4) and overall["ceiling"] == pytest.approx(0.625)
    assert overall["right vs wrong"] == 1.0 and overall["extra words"] is None
