"""The RL building blocks of the RLHF vs DPO tab (``demos/preferences/rl.py``) against values
computed by hand, and the DPO loss against TRL's ``DPOTrainer`` on a batch."""

import math

import pytest
import torch

from demos.preferences import rl


def t(*values):
    return torch.tensor(values, dtype=torch.float64)


def close(actual, expected, atol=1e-9):
    torch.testing.assert_close(actual, torch.as_tensor(expected, dtype=actual.dtype), atol=atol, rtol=0)


# ----------------------------------------------------------------------------- log-probabilities
def test_token_and_response_logprobs_by_hand():
    # one row, vocabulary 2, tokens (0, 1, 1): p(1 | .) at step 0 from logits (0, 0) is 1/2,
    # at step 1 from logits (0, log 3) it is 3/4; the last logits predict nothing
    logits = torch.tensor([[[0.0, 0.0], [0.0, math.log(3)], [5.0, -5.0]]])
    ids = torch.tensor([[0, 1, 1]])
    close(rl.token_logprobs(logits, ids), [[math.log(0.5), math.log(0.75)]], atol=1e-6)
    close(rl.response_logprob(logits, ids, torch.tensor([[0, 0, 1]])), [math.log(0.75)], atol=1e-6)
    close(rl.response_logprob(logits, ids, torch.tensor([[0, 1, 1]])), [math.log(0.5 * 0.75)], atol=1e-6)


# ----------------------------------------------------------------------------- preferences
def test_bradley_terry_probability_by_hand():
    close(rl.bradley_terry_probability(t(1.0), t(0.0), tau=0.5), [1 / (1 + math.exp(-2))])  # sigmoid(2) = 0.8808
    close(rl.bradley_terry_probability(t(0.3), t(0.3)), [0.5])


def test_reward_model_loss_by_hand():
    # -log sigmoid(2 - 1) = log(1 + e^-1) = 0.3133; equal rewards give log 2
    close(rl.reward_model_loss(t(2.0, 0.0), t(1.0, 0.0)), [math.log(1 + math.exp(-1)), math.log(2)])


def test_dpo_loss_by_hand():
    # log-ratios: chosen -1 - (-1.5) = 0.5, rejected -2 - (-1.5) = -0.5; beta * (0.5 + 0.5) = 0.5
    loss = rl.dpo_loss(t(-1.0), t(-2.0), t(-1.5), t(-1.5), beta=0.5)
    close(loss, [math.log(1 + math.exp(-0.5))])  # 0.4741
    # the policy equal to the reference: log 2 whatever the beta
    close(rl.dpo_loss(t(-3.0, -1.0), t(-0.2, -7.0), t(-3.0, -1.0), t(-0.2, -7.0), beta=5.0), [math.log(2)] * 2)


def test_dpo_loss_gradient_raises_the_chosen_and_lowers_the_rejected():
    chosen, rejected = t(-1.0).requires_grad_(), t(-1.0).requires_grad_()
    rl.dpo_loss(chosen, rejected, t(-1.0), t(-1.0), beta=0.1).sum().backward()
    # d/dx -log sigmoid(beta x) at x = 0 is -beta / 2
    close(chosen.grad, [-0.05])
    close(rejected.grad, [0.05])


def test_dpo_implied_reward():
    close(rl.dpo_implied_reward(t(-1.0, -3.0), t(-2.0, -2.0), beta=0.1), [0.1, -0.1])


# ----------------------------------------------------------------------------- PPO pieces
def test_kl_penalised_rewards_by_hand():
    logp = t(-1.0, -2.0, -0.5, -1.0, -1.0, -9.0).reshape(2, 3)
    ref = t(-1.5, -1.0, -0.5, -2.0, -1.0, -1.0).reshape(2, 3)
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    rewards = rl.kl_penalised_rewards(t(1.0, 2.0), logp, ref, mask, beta=0.1)
    # row 1: -0.1 * (0.5, -1, 0) and the score 1 on the last token; row 2: -0.1 * (1, 0), score 2 on token 2,
    # nothing on the padding (whose log-probabilities are ignored)
    close(rewards, [[-0.05, 0.1, 1.0], [-0.1, 2.0, 0.0]])


def test_gae_by_hand():
    rewards, values = t(0.0, 0.0, 1.0).reshape(1, 3), t(0.5, 0.6, 0.7).reshape(1, 3)
    advantages, returns = rl.generalized_advantage_estimation(rewards, values, torch.ones(1, 3), gamma=1.0, lam=0.5)
    # delta = (0 + 0.6 - 0.5, 0 + 0.7 - 0.6, 1 + 0 - 0.7) = (0.1, 0.1, 0.3)
    # A_2 = 0.3, A_1 = 0.1 + 0.5 * 0.3 = 0.25, A_0 = 0.1 + 0.5 * 0.25 = 0.225
    close(advantages, [[0.225, 0.25, 0.3]])
    close(returns, [[0.725, 0.85, 1.0]])


def test_gae_with_discount_and_padding_by_hand():
    rewards = t(1.0, 2.0, 99.0).reshape(1, 3)
    values = t(1.0, 1.0, 50.0).reshape(1, 3)  # the padded step's value and reward must not count
    advantages, returns = rl.generalized_advantage_estimation(rewards, values, torch.tensor([[1, 1, 0]]),
                                                              gamma=0.9, lam=0.8)
    # delta_1 = 2 + 0 - 1 = 1; delta_0 = 1 + 0.9 * 1 - 1 = 0.9; A_0 = 0.9 + 0.72 * 1 = 1.62
    close(advantages, [[1.62, 1.0, 0.0]])
    close(returns, [[2.62, 2.0, 0.0]])


def test_gae_limits_are_td_residuals_and_monte_carlo_returns():
    g = torch.Generator().manual_seed(0)
    rewards, values = torch.randn(3, 5, generator=g, dtype=torch.float64), torch.randn(3, 5, generator=g, dtype=torch.float64)
    mask = torch.ones(3, 5)
    td, _ = rl.generalized_advantage_estimation(rewards, values, mask, gamma=0.9, lam=0.0)
    next_values = torch.cat([values[:, 1:], torch.zeros(3, 1, dtype=torch.float64)], dim=1)
    close(td, rewards + 0.9 * next_values - values)
    mc, returns = rl.generalized_advantage_estimation(rewards, values, mask, gamma=0.9, lam=1.0)
    discounted = torch.stack([sum(0.9 ** (k - j) * rewards[:, k] for k in range(j, 5)) for j in range(5)], dim=1)
    close(returns, discounted)
    close(mc, discounted - values)


def test_ppo_clipped_loss_by_hand():
    ratios = t(1.5, 0.5, 1.1)
    advantages = t(1.0, -1.0, 2.0)
    loss = rl.ppo_clipped_loss(torch.log(ratios), torch.zeros(3, dtype=torch.float64), advantages, clip_eps=0.2)
    # min(1.5, 1.2) = 1.2; min(-0.5, -0.8) = -0.8; min(2.2, 2.2) = 2.2; mean 0.8667, negated
    close(loss, -(1.2 - 0.8 + 2.2) / 3)


def test_ppo_clipped_loss_has_no_gradient_beyond_the_clip_and_respects_the_mask():
    logps = torch.log(t(1.5, 0.5, 1.1)).requires_grad_()
    mask = torch.tensor([1, 1, 0])
    loss = rl.ppo_clipped_loss(logps, torch.zeros(3, dtype=torch.float64), t(1.0, 1.0, 5.0), mask=mask)
    loss.backward()
    # ratio 1.5 with A > 0 is clipped (no gradient); ratio 0.5 with A > 0 is not: d/dlogp -(ratio A)/2 = -0.25
    close(logps.grad, [0.0, -0.25, 0.0])
    close(loss.detach(), -(1.2 + 0.5) / 2)


def test_ppo_value_loss_by_hand():
    loss = rl.ppo_value_loss(t(1.0, 0.0), t(0.5, 0.1), t(0.0, 1.0), clip_eps=0.2)
    # first: V clipped to 0.7, max((1 - 0)^2, (0.7 - 0)^2) = 1; second: V clipped to 0.0, max(1, 1) = 1
    close(loss, 0.5 * (1.0 + 1.0) / 2)
    loss = rl.ppo_value_loss(t(0.0), t(0.5), t(1.0), clip_eps=0.2)  # clipped V = 0.3: max(1, 0.49) = 1
    close(loss, 0.5)
    loss = rl.ppo_value_loss(t(2.0), t(0.5), t(1.0), clip_eps=0.2)  # clipped V = 0.7: max(1, 0.09) = 1
    close(loss, 0.5)
    loss = rl.ppo_value_loss(t(1.2), t(0.5), t(2.0), clip_eps=0.2)  # clipped V = 0.7: max(0.64, 1.69) = 1.69
    close(loss, 0.5 * 1.69)


def test_whiten_and_masked_mean():
    x, mask = t(1.0, 2.0, 3.0, 100.0), torch.tensor([1, 1, 1, 0])
    close(rl.masked_mean(x, mask), 2.0)
    w = rl.whiten(x, mask, eps=0.0)
    close(w, [-math.sqrt(1.5), 0.0, math.sqrt(1.5), 0.0])  # variance 2/3 over the three masked values


def test_approximate_kl():
    close(rl.approximate_kl(t(-1.0, -2.0, -5.0).reshape(1, 3), t(-1.5, -1.0, 0.0).reshape(1, 3),
                            torch.tensor([[1, 1, 0]])), [0.5 - 1.0])


# ----------------------------------------------------------------------------- TRL
@pytest.fixture(scope="module")
def trl_batch(tmp_path_factory):
    """A 2-layer Llama policy (perturbed) and its reference, TRL's DPOTrainer on four
    instruction pairs, and the collated batch TRL computes its loss on."""
    from datasets import Dataset
    from transformers import LlamaForCausalLM
    from trl import DPOConfig, DPOTrainer

    from demos.common import language_model as lm

    rows = [("Reverse the words: red cat", "cat red .", "red cat ."),
            ("Sort the words: dog blue", "blue dog .", "dog blue . extra words"),
            ("How many words are in: red cat dog", "3 .", "2 ."),
            ("What is the first word of: pilot nurse", "pilot .", "nurse . nurse")]
    tokenizer = lm.build_tokenizer([text for row in rows for text in row])
    torch.manual_seed(0)
    config = lm.llama_config(tokenizer, hidden=32, layers=2, heads=2, intermediate=64)
    reference = LlamaForCausalLM(config).eval()
    policy = LlamaForCausalLM(config)
    policy.load_state_dict(reference.state_dict())
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(0.05 * torch.randn_like(p))
    policy.eval()
    data = Dataset.from_dict({"prompt": [r[0] for r in rows], "chosen": [" " + r[1] for r in rows],
                              "rejected": [" " + r[2] for r in rows]})
    args = DPOConfig(output_dir=str(tmp_path_factory.mktemp("dpo")), beta=0.3, bf16=False, use_cpu=True,
                     report_to=[], per_device_train_batch_size=len(rows), logging_strategy="no", save_strategy="no")
    trainer = DPOTrainer(model=policy, ref_model=reference, args=args, train_dataset=data, processing_class=tokenizer)
    examples = [trainer.train_dataset[i] for i in range(len(rows))]
    return trainer, policy, reference, examples


def response_logp(model, example: dict, key: str) -> torch.Tensor:
    """log p(response | prompt) from one plain forward pass: the sum of the response tokens' log-probabilities."""
    ids = torch.tensor([example["prompt_ids"] + example[key]])
    logp = model(input_ids=ids).logits.log_softmax(-1)[0]  # (T, V)
    start = len(example["prompt_ids"])
    return logp[torch.arange(start - 1, ids.shape[1] - 1), ids[0, start:]].sum()


def test_dpo_loss_equals_trl_dpo_trainer_on_a_batch(trl_batch):
    trainer, policy, reference, examples = trl_batch
    with torch.no_grad():
        trl_loss = trainer.compute_loss(trainer.model, trainer.data_collator(examples))
        logps = {(name, key): torch.stack([response_logp(model, e, key) for e in examples])
                 for name, model in (("policy", policy), ("reference", reference))
                 for key in ("chosen_ids", "rejected_ids")}
    ours = rl.dpo_loss(logps["policy", "chosen_ids"], logps["policy", "rejected_ids"],
                       logps["reference", "chosen_ids"], logps["reference", "rejected_ids"], beta=0.3).mean()
    assert abs(float(ours) - math.log(2)) > 1e-3  # the policy is not the reference: a real test
    torch.testing.assert_close(ours.float(), trl_loss.float(), atol=1e-5, rtol=1e-5)


def test_response_logprob_of_trls_padded_batch_equals_one_forward_per_response(trl_batch):
    """TRL's collated batch (chosen rows, then rejected rows, right-padded): our batched log pi(y|x)
    equals the sum of token log-probabilities of each response alone, and gives TRL's loss."""
    trainer, policy, reference, examples = trl_batch
    batch = trainer.data_collator(examples)
    with torch.no_grad():
        def batched(model):
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            return rl.response_logprob(logits, batch["input_ids"], batch["completion_mask"]).chunk(2)

        (pw, pl), (rw, rl_) = batched(policy), batched(reference)
        one_by_one = torch.stack([response_logp(policy, e, "chosen_ids") for e in examples])
        trl_loss = trainer.compute_loss(trainer.model, batch)
    torch.testing.assert_close(pw, one_by_one, atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(rl.dpo_loss(pw, pl, rw, rl_, beta=0.3).mean(), trl_loss.float(), atol=1e-5, rtol=1e-5)
