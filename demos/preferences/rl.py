"""The losses and estimators of learning from preferences, as plain torch functions.

Every function takes and returns tensors, follows its paper's notation, and is tested against
hand-computed small cases (``tests/test_preferences_rl.py``); the DPO loss also against TRL's
``DPOTrainer`` on a batch. The bandit (``compute.py``) and the language-model training use these.

| symbol | here | paper |
| --- | --- | --- |
| beta | ``beta`` | KL coefficient (DPO, InstructGPT) |
| log pi(y|x) | ``*_logps`` | summed token log-probabilities of a response |
| r_phi | ``reward_*`` | reward model (Bradley-Terry) |
| A_t | ``advantages`` | GAE advantage (Schulman et al. 2016) |
| epsilon | ``clip_eps`` | PPO clip range (Schulman et al. 2017) |
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


# ----------------------------------------------------------------------------- log-probabilities
def token_logprobs(logits: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
    """log p(x_t | x_<t) of every token after the first, from a causal LM's logits:
    logits (B, T, V), input_ids (B, T) -> (B, T - 1), position t - 1 holding token t's log-probability."""
    logp = logits[:, :-1].float().log_softmax(-1)  # (B, T-1, V): the logits at t-1 predict token t
    return logp.gather(-1, input_ids[:, 1:, None]).squeeze(-1)


def response_logprob(logits: torch.Tensor, input_ids: torch.Tensor, response_mask: torch.Tensor) -> torch.Tensor:
    """log pi(y | x) of each row's response: the sum of its tokens' log-probabilities.
    ``response_mask`` (B, T) is 1 on the response tokens of ``input_ids`` (as TRL's ``completion_mask``);
    padding anywhere else is ignored. Returns (B,)."""
    return (token_logprobs(logits, input_ids) * response_mask[:, 1:].to(torch.float32)).sum(-1)


# ----------------------------------------------------------------------------- preferences
def bradley_terry_probability(reward_1: torch.Tensor, reward_2: torch.Tensor, tau: float = 1.0) -> torch.Tensor:
    """P(y1 preferred to y2) = sigmoid((r(y1) - r(y2)) / tau) (Bradley and Terry 1952)."""
    return torch.sigmoid((reward_1 - reward_2) / tau)


def reward_model_loss(reward_chosen: torch.Tensor, reward_rejected: torch.Tensor) -> torch.Tensor:
    """The Bradley-Terry negative log-likelihood of each pair, ``-log sigmoid(r(y_w) - r(y_l))``
    (InstructGPT eq. 1 for one pair; take the mean over a batch). Shapes: (B,) -> (B,)."""
    return -F.logsigmoid(reward_chosen - reward_rejected)


def dpo_loss(policy_chosen_logps: torch.Tensor, policy_rejected_logps: torch.Tensor,
             reference_chosen_logps: torch.Tensor, reference_rejected_logps: torch.Tensor,
             beta: float) -> torch.Tensor:
    """The DPO loss of each pair (Rafailov et al. 2023, eq. 7):

        -log sigmoid(beta * (log pi(y_w)/pi_ref(y_w) - log pi(y_l)/pi_ref(y_l)))

    Each argument holds one log-probability of a whole response per pair, shape (B,); returns (B,)
    (TRL's ``loss_type="sigmoid"``, whose loss is the mean of these)."""
    chosen_logratios = policy_chosen_logps - reference_chosen_logps  # (B,)
    rejected_logratios = policy_rejected_logps - reference_rejected_logps  # (B,)
    return -F.logsigmoid(beta * (chosen_logratios - rejected_logratios))


def dpo_implied_reward(policy_logps: torch.Tensor, reference_logps: torch.Tensor, beta: float) -> torch.Tensor:
    """The reward a DPO policy implies, ``beta * log(pi(y)/pi_ref(y))`` (equal to the reward up to
    ``beta * log Z(x)``, a constant per prompt)."""
    return beta * (policy_logps - reference_logps)


# ----------------------------------------------------------------------------- RLHF with PPO
def kl_penalised_rewards(score: torch.Tensor, policy_logps: torch.Tensor, reference_logps: torch.Tensor,
                         mask: torch.Tensor, beta: float) -> torch.Tensor:
    """Per-token rewards of InstructGPT's objective (Ouyang et al. 2022, eq. 2; Ziegler et al. 2019):
    every response token t gets ``-beta * (log pi(y_t|.) - log pi_ref(y_t|.))``, and the last
    response token also gets the reward model's ``score`` of the whole response.

    score (B,); policy_logps, reference_logps, mask (B, T) with ``mask`` 1 on response tokens
    (right-padded: each row's ones come first). Returns (B, T), zero where ``mask`` is 0."""
    mask = mask.to(policy_logps.dtype)
    rewards = -beta * (policy_logps - reference_logps) * mask  # (B, T)
    last = (mask.sum(dim=1).long() - 1).clamp(min=0)  # (B,) index of each row's last response token
    has_tokens = mask.sum(dim=1) > 0
    rows = torch.arange(rewards.shape[0], device=rewards.device)
    rewards[rows, last] += torch.where(has_tokens, score.to(rewards.dtype), torch.zeros_like(score, dtype=rewards.dtype))
    return rewards


def generalized_advantage_estimation(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor,
                                     gamma: float = 1.0, lam: float = 0.95) -> tuple[torch.Tensor, torch.Tensor]:
    """GAE (Schulman et al. 2016, eq. 16): ``delta_t = r_t + gamma V(s_{t+1}) - V(s_t)`` and
    ``A_t = sum_l (gamma lam)^l delta_{t+l}``, computed backwards as ``A_t = delta_t + gamma lam A_{t+1}``.

    rewards, values, mask (B, T), right-padded; the episode ends after each row's last masked
    token (the value after it is 0). Returns ``(advantages, returns)``, each (B, T), with
    ``returns = advantages + values`` (the value head's targets); zero where ``mask`` is 0."""
    mask = mask.to(values.dtype)
    values, rewards = values * mask, rewards * mask
    advantages = torch.zeros_like(values)
    next_advantage = torch.zeros_like(values[:, 0])  # (B,)
    next_value = torch.zeros_like(values[:, 0])
    for t in reversed(range(values.shape[1])):
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        next_advantage = (delta + gamma * lam * next_advantage) * mask[:, t]
        advantages[:, t] = next_advantage
        next_value = values[:, t]
    return advantages, (advantages + values) * mask


def masked_mean(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean of ``x`` over the positions where ``mask`` is 1 (all positions when it is None)."""
    if mask is None:
        return x.mean()
    mask = mask.to(x.dtype)
    return (x * mask).sum() / mask.sum().clamp(min=1)


def whiten(x: torch.Tensor, mask: torch.Tensor | None = None, eps: float = 1e-8) -> torch.Tensor:
    """``(x - mean) / std`` over the masked positions (PPO's advantage normalisation)."""
    mean = masked_mean(x, mask)
    var = masked_mean((x - mean) ** 2, mask)
    out = (x - mean) * torch.rsqrt(var + eps)
    return out if mask is None else out * mask.to(x.dtype)


def ppo_clipped_loss(logps: torch.Tensor, old_logps: torch.Tensor, advantages: torch.Tensor,
                     mask: torch.Tensor | None = None, clip_eps: float = 0.2) -> torch.Tensor:
    """The negative of PPO's clipped surrogate objective (Schulman et al. 2017, eq. 7):

        L^CLIP = E_t[min(rho_t A_t, clip(rho_t, 1 - eps, 1 + eps) A_t)],  rho_t = pi(a_t|s_t) / pi_old(a_t|s_t)

    averaged over the positions where ``mask`` is 1. Shapes (B, T) or (N,); returns a scalar to minimise."""
    ratio = torch.exp(logps - old_logps)
    unclipped = ratio * advantages
    clipped = torch.clamp(ratio, 1.0 - clip_eps, 1.0 + clip_eps) * advantages
    return -masked_mean(torch.minimum(unclipped, clipped), mask)


def ppo_value_loss(values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor,
                   mask: torch.Tensor | None = None, clip_eps: float = 0.2) -> torch.Tensor:
    """The clipped value loss of PPO's reference implementations (OpenAI baselines, Ziegler et al.
    2019): ``0.5 * max((V - R)^2, (clip(V, V_old - eps, V_old + eps) - R)^2)``, masked mean."""
    clipped = old_values + torch.clamp(values - old_values, -clip_eps, clip_eps)
    return 0.5 * masked_mean(torch.maximum((values - returns) ** 2, (clipped - returns) ** 2), mask)


def approximate_kl(logps: torch.Tensor, reference_logps: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """The sampled estimate of KL(pi || pi_ref) per response: the sum over its tokens of
    ``log pi - log pi_ref`` (unbiased for responses sampled from pi). (B, T) -> (B,)."""
    diff = logps - reference_logps
    return (diff if mask is None else diff * mask.to(diff.dtype)).sum(dim=-1)
