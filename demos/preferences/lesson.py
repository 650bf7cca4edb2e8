"""What the RLHF vs DPO lesson asks, computed from the tab's compute (no gradio).

Steps on the exact problem get ``BanditParams`` and train both methods (``compute.run``, about a
second); steps on the language model get ``PreferenceParams`` and either sample the shipped policies
(``compute.side_by_side``) or read the stored evaluation the tab's frontier is drawn from."""

import numpy as np

from demos.preferences import compute, lm


def same_policy(p) -> str:
    """Whether DPO and RLHF end at the same policy (KL between them below 0.001), else which is nearer pi*."""
    r = compute.run(p)
    between = compute.kl(np.log(np.maximum(r.dpo, 1e-300)), np.log(np.maximum(r.rlhf, 1e-300)))
    if between < 1e-3:
        return "the same policy (KL between them below 0.001)"
    return "RLHF is nearer π*" if r.kl_rlhf_to_optimal < r.kl_dpo_to_optimal else "DPO is nearer π*"


def small_beta_reward(p) -> str:
    """How far DPO's expected true reward falls short of pi*'s: within 0.05, 0.05-0.1, or more than 0.1."""
    s = compute.run(p).stats
    gap = s["expected_reward_optimal"] - s["expected_reward_dpo"]
    if gap < 0.05:
        return "close to π*'s (within 0.05)"
    return "well below π*'s (more than 0.1 less)" if gap > 0.1 else "0.05 to 0.1 below π*'s"


def clean_labels(p) -> str:
    """Which method ends nearer pi* (KL); within a factor 2 of each other counts as equally near."""
    r = compute.run(p)
    d, h = r.kl_dpo_to_optimal, r.kl_rlhf_to_optimal
    if max(d, h) <= 2 * min(d, h):
        return "both equally near"
    return "RLHF" if h < d else "DPO"


def dpo_near_optimum(p) -> bool:
    """DPO's policy ends within 0.1 nats of pi* (KL(pi_DPO || pi*) < 0.1)."""
    return compute.run(p).kl_dpo_to_optimal < 0.1


def reward_hacked(p) -> str:
    """Whether, among the three policies' samples at this view, the reward model scores some wrong
    response (r* <= 0) above some right and concise one (r* = 1)."""
    samples = [s for rows in compute.side_by_side(p).values() for s in rows]
    wrong = [s["learned_reward"] for s in samples if s["true_reward"] is not None and s["true_reward"] <= 0]
    right = [s["learned_reward"] for s in samples if s["true_reward"] == 1]
    if wrong and right and max(wrong) > min(right):
        return "yes - a wrong answer outscores the right one"
    return "no - every wrong answer scores below the right one"


def _policy(method: str, beta) -> dict:
    rows = compute.lm_stored("evaluation.json")["policies"]
    return next(r for r in rows if r["method"] == method and (method == "sft" or np.isclose(r["beta"], beta)))


def over_optimised(p) -> str:
    """The stored true reward r* of the view's policy against SFT's (0.02 either way counts as the same)."""
    diff = _policy(p.method, p.beta)["true_reward"] - _policy("sft", None)["true_reward"]
    if diff > 0.02:
        return "it rises too"
    return "it falls below SFT's" if diff < -0.02 else "about the same"


def implied_vs_reward_model(p) -> str:
    """How often the view's policy's implied reward beta log(pi/pi_SFT) orders a right against a wrong
    answer as r* does, against the reward model (stored; 5 points either way counts as the same)."""
    ev = compute.lm_stored("evaluation.json")
    rm = lm.overall_by_kind(ev["reward_model_by_kind"])["right vs wrong"]
    item = next(i for i in ev["implied_reward_by_kind"] if i["method"] == p.method and np.isclose(i["beta"], p.beta))
    mine = lm.overall_by_kind(item["rows"])["right vs wrong"]
    if mine > rm + 0.05:
        return "more often than the reward model"
    return "less often than the reward model" if mine < rm - 0.05 else "about as often"
