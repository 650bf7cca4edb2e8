"""RLHF vs DPO on the exact problem: one prompt, K candidate responses, a known true reward.

No gradio here; torch is imported by the training functions only (``rl.py``), so importing this
module is cheap. Notation (Rafailov et al. 2023; Ouyang et al. 2022):

| symbol | here | meaning |
| --- | --- | --- |
| pi_ref | ``logp_ref`` | the reference (SFT) policy over the K responses, as log-probabilities |
| r | ``reward`` | the true reward of each response, in [0, 1] |
| tau | ``tau`` | label noise: P(y1 > y2) = sigmoid((r(y1) - r(y2)) / tau) (Bradley-Terry) |
| beta | ``beta`` | the KL coefficient of max_pi E_pi[r / tau] - beta KL(pi || pi_ref) |
| pi* | ``optimal_logp`` | that objective's maximiser, pi_ref exp(r / (tau beta)) / Z |
| r_hat | ``reward_model`` | the Bradley-Terry reward model fitted to the pairs (RLHF's stage 1) |

The labels carry the reward only as ``r / tau`` (the rest is lost), so ``pi*`` is what both
methods aim at, from the same pairs:

- **DPO**: the paper's loss on the pairs, full batch, on the K logits of a softmax policy that
  starts at pi_ref; Adam with a cosine schedule.
- **RLHF**: a Bradley-Terry reward model (K scalars, a weak Gaussian prior) fitted to the same
  pairs by L-BFGS, then policy-gradient RL maximising E_pi[r_hat] - beta KL(pi || pi_ref) from pi_ref.
  The gradient is the exact expected policy gradient over the K responses (no sampling), and
  each step is its natural-gradient version (Kakade 2001): for a softmax policy that is the
  KL-shaped advantage A(y) = r_hat(y) - beta log(pi(y)/pi_ref(y)) - E_pi[...] itself (the update
  that PPO's trust region approximates).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np

from demos.common import text_world as tw
from demos.common.text_world import oracle as _oracle
from playground import settings, validate

MIN_CANDIDATES, MAX_CANDIDATES = 2, 64
MIN_PAIRS, MAX_PAIRS = 1, 20_000
BETA_RANGE = (0.01, 10.0)
TAU_RANGE = (0.01, 10.0)
MAX_SEED = 2**31 - 1
TRAIN_STEPS = 1000  # optimiser steps of each method
DPO_LR = 0.1  # Adam on the logits with learning rate DPO_LR / beta: the implied reward moves at most ~0.1 a step
RL_STEP = 0.02  # natural policy gradient step on the logits: RL_STEP / beta times the advantage
REWARD_PRIOR_SD = 10.0  # the reward model's Gaussian prior N(0, 10^2) on each r_hat (keeps it finite)
CURVE_POINTS = 200  # points of each training curve that are kept


@dataclass(frozen=True)
class BanditParams:
    """The exact problem's settings (the API's inputs, in its order)."""

    beta: float = 0.5
    n_candidates: int = 16
    n_pairs: int = 5000
    tau: float = 1.0
    seed: int = 0


def check_params(p: BanditParams) -> BanditParams:
    """``p`` with every field checked (a ``ValueError`` naming the field and its range) and typed."""
    return BanditParams(
        beta=check_positive("beta", p.beta, *BETA_RANGE),
        n_candidates=validate.check_int("n_candidates", p.n_candidates, MIN_CANDIDATES, MAX_CANDIDATES),
        n_pairs=validate.check_int("n_pairs", p.n_pairs, MIN_PAIRS, MAX_PAIRS),
        tau=check_positive("tau", p.tau, *TAU_RANGE),
        seed=validate.check_int("seed", p.seed, 0, MAX_SEED))


def check_positive(name: str, value, low: float, high: float) -> float:
    """A finite number in [low, high] (low > 0); zero or a negative number is told it must be positive."""
    try:
        return validate.check_float(name, value, low, high)
    except ValueError:
        number = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan
        if number <= 0:  # False for NaN: that keeps check_float's message
            raise ValueError(f"{name} must be positive, in [{low}, {high}]; got {number:g}") from None
        raise


# ----------------------------------------------------------------------------- the problem
@dataclass(frozen=True)
class Problem:
    """One prompt's K responses: the reference policy (log-probabilities) and the true reward."""

    logp_ref: np.ndarray  # (K,)
    reward: np.ndarray  # (K,), in [0, 1]


def make_problem(n_candidates: int, seed: int) -> Problem:
    """pi_ref = softmax(z), z ~ N(0, 1); r ~ U(0, 1), independently per response (from ``seed``)."""
    rng = np.random.default_rng([seed, 0])
    z = rng.normal(0.0, 1.0, n_candidates)
    return Problem(logp_ref=log_normalize(z), reward=rng.uniform(0.0, 1.0, n_candidates))


def log_normalize(logits: np.ndarray) -> np.ndarray:
    """log softmax."""
    return logits - np.logaddexp.reduce(logits)


def optimal_logp(logp_ref: np.ndarray, reward: np.ndarray, beta: float, tau: float = 1.0) -> np.ndarray:
    """log pi*, the maximiser of E_pi[r / tau] - beta KL(pi || pi_ref): pi_ref exp(r / (tau beta)) / Z
    (Rafailov et al. 2023, eq. 4), in log space (exact for any beta and tau)."""
    return log_normalize(logp_ref + reward / (tau * beta))


def regularised_objective(logp: np.ndarray, logp_ref: np.ndarray, reward: np.ndarray, beta: float,
                          tau: float = 1.0) -> float:
    """E_pi[r / tau] - beta KL(pi || pi_ref) for pi = exp(logp)."""
    return float(np.exp(logp) @ (reward / tau)) - beta * kl(logp, logp_ref)


def kl(logp: np.ndarray, logq: np.ndarray) -> float:
    """KL(p || q) in nats, from log-probabilities (terms with p = 0 count 0)."""
    p = np.exp(logp)
    mask = p > 0
    return float(max(0.0, np.sum(p[mask] * (logp[mask] - logq[mask]))))


@dataclass(frozen=True)
class Pairs:
    """Labelled preference pairs: ``winners[i]`` was preferred to ``losers[i]``."""

    winners: np.ndarray  # (N,) response indices
    losers: np.ndarray  # (N,)

    def counts(self, n_candidates: int) -> np.ndarray:
        """C[w, l] = how many times w was preferred to l. (K, K)"""
        c = np.zeros((n_candidates, n_candidates))
        np.add.at(c, (self.winners, self.losers), 1.0)
        return c


def sample_pairs(problem: Problem, n_pairs: int, tau: float, rng: np.random.Generator) -> Pairs:
    """Pairs as DPO's are made: two different responses from pi_ref (y1 ~ pi_ref, y2 ~ pi_ref
    given y2 != y1), labelled by Bradley-Terry, y1 wins with probability sigmoid((r1 - r2) / tau).

    The draws do not depend on ``tau`` (one uniform per label), so two noise levels label the same pairs."""
    p = np.exp(problem.logp_ref)
    k = len(p)
    first = np.minimum(np.searchsorted(np.cumsum(p), rng.random(n_pairs) * p.sum()), k - 1)  # (N,)
    q = np.tile(p, (n_pairs, 1))  # (N, K): pi_ref without the first response
    q[np.arange(n_pairs), first] = 0.0
    cdf = np.cumsum(q, axis=1)
    second = np.minimum((cdf < rng.random(n_pairs)[:, None] * cdf[:, -1:]).sum(axis=1), k - 1)
    second = np.where(second == first, (first + 1) % k, second)  # only on round-off at the top of the CDF
    margin = (problem.reward[first] - problem.reward[second]) / tau
    first_wins = rng.random(n_pairs) < 1.0 / (1.0 + np.exp(-margin))
    return Pairs(winners=np.where(first_wins, first, second), losers=np.where(first_wins, second, first))


def mle_exists(counts: np.ndarray) -> bool:
    """Whether the Bradley-Terry maximum-likelihood reward is finite (Ford 1957): among the
    responses that appear in a pair, every one must beat, through a chain of wins, every other.
    If not, the likelihood keeps rising as some rewards go to +-infinity, and so does DPO's
    (it has no prior to stop it)."""
    seen = (counts.sum(axis=0) + counts.sum(axis=1)) > 0
    reach = (counts[np.ix_(seen, seen)] > 0) | np.eye(int(seen.sum()), dtype=bool)
    for _ in range(int(np.ceil(np.log2(max(2, len(reach))))) + 1):
        reach = reach | ((reach.astype(np.int64) @ reach.astype(np.int64)) > 0)
    return bool(reach.all())


def preference_accuracy(scores: np.ndarray, problem: Problem, tau: float) -> tuple[float, float]:
    """(expected accuracy, ceiling) on fresh pairs from the same distribution: the probability that
    ``scores`` order a new pair as its label does, and the Bradley-Terry ceiling (the more likely label)."""
    p = np.exp(problem.logp_ref)
    q = p[:, None] * p[None, :] / (1.0 - p[:, None])  # P(first = a, second = b), b != a
    np.fill_diagonal(q, 0.0)
    p_first = 1.0 / (1.0 + np.exp(-(problem.reward[:, None] - problem.reward[None, :]) / tau))  # P(a beats b)
    agrees = np.where(scores[:, None] > scores[None, :], p_first, np.where(scores[:, None] < scores[None, :],
                                                                           1 - p_first, 0.5))
    return float((q * agrees).sum() / q.sum()), float((q * np.maximum(p_first, 1 - p_first)).sum() / q.sum())


# ----------------------------------------------------------------------------- training
Report = Callable[[float, str], None]


def _curve_steps(steps: int) -> set[int]:
    return set(np.unique(np.linspace(0, steps, min(steps + 1, CURVE_POINTS)).round().astype(int)).tolist())


def _unique_pairs(counts: np.ndarray):
    """The distinct (winner, loser) pairs and how often each was labelled so (full-batch weights)."""
    import torch

    w, l = np.nonzero(counts)
    return torch.from_numpy(w), torch.from_numpy(l), torch.from_numpy(counts[w, l])


def train_dpo(logp_ref: np.ndarray, counts: np.ndarray, beta: float, target: np.ndarray,
              steps: int = TRAIN_STEPS, report: Report | None = None) -> dict:
    """DPO on the pairs: minimise the mean over pairs of ``rl.dpo_loss`` (full batch) over the K
    logits of pi, starting at pi_ref; Adam (learning rate ``DPO_LR / beta``, cosine decay to 0).
    Returns the final log-policy, the curve of KL(pi_t || target) and the final loss and gradient."""
    import torch

    from demos.preferences import rl

    w, l, weight = _unique_pairs(counts)
    ref = torch.from_numpy(logp_ref)
    logits = ref.clone().requires_grad_(True)
    optimiser = torch.optim.Adam([logits], lr=DPO_LR / beta)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda t: 0.5 * (1 + math.cos(math.pi * t / steps)))
    keep, curve = _curve_steps(steps), {"step": [], "kl_to_optimal": [], "loss": []}

    def loss_of(logits):
        logp = logits.log_softmax(0)  # (K,)
        return (weight * rl.dpo_loss(logp[w], logp[l], ref[w], ref[l], beta)).sum() / weight.sum()

    for step in range(steps + 1):
        loss = loss_of(logits)
        if step in keep:
            _record(curve, step, logits, target, loss.item())
        if report and step % 100 == 0:
            report(step / steps, f"DPO: step {step} of {steps}")
        if step == steps:
            break
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
    optimiser.zero_grad()
    loss.backward()
    grad_reward_units = float(logits.grad.abs().max()) / beta  # d loss / d (beta log pi): scale-free
    return {"logp": logits.detach().log_softmax(0).numpy(), "curve": curve, "loss": loss.item(),
            "grad": grad_reward_units}


def _record(curve: dict, step: int, logits, target: np.ndarray, loss: float) -> None:
    curve["step"].append(step)
    curve["kl_to_optimal"].append(kl(logits.detach().log_softmax(0).numpy(), target))
    curve["loss"].append(loss)


def fit_reward_model(counts: np.ndarray, prior_sd: float = REWARD_PRIOR_SD) -> dict:
    """RLHF's stage 1: the Bradley-Terry reward model, one scalar r_hat(y) per response, fitted to
    the pairs by maximum a posteriori with a N(0, prior_sd^2) prior: minimise
    sum over pairs of ``rl.reward_model_loss`` + |r_hat|^2 / (2 prior_sd^2). Strictly convex;
    L-BFGS to convergence. Returns r_hat (K,), the mean loss per pair and the iterations."""
    import torch

    from demos.preferences import rl

    w, l, weight = _unique_pairs(counts)
    r_hat = torch.zeros(counts.shape[0], dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS([r_hat], lr=1.0, max_iter=500, history_size=20, tolerance_grad=1e-10,
                                  tolerance_change=1e-14, line_search_fn="strong_wolfe")

    def closure():
        optimiser.zero_grad()
        loss = (weight * rl.reward_model_loss(r_hat[w], r_hat[l])).sum() + (r_hat ** 2).sum() / (2 * prior_sd ** 2)
        loss.backward()
        return loss

    optimiser.step(closure)
    with torch.no_grad():
        nll = float((weight * rl.reward_model_loss(r_hat[w], r_hat[l])).sum() / weight.sum())
    return {"r_hat": r_hat.detach().numpy().copy(), "loss": nll,
            "iterations": int(optimiser.state[optimiser._params[0]]["n_iter"])}


def policy_gradient(logits, logp_ref, r_hat, beta: float):
    """The exact policy gradient of J(pi) = E_pi[r_hat] - beta KL(pi || pi_ref) over the K
    responses, in its REINFORCE form sum_y pi(y) grad log pi(y) A(y), with the KL-shaped reward
    minus its mean as the advantage: A(y) = r_hat(y) - beta log(pi(y)/pi_ref(y)) - E_pi[...].
    Returns (gradient wrt the logits (K,), advantage (K,)); torch float64 tensors."""
    import torch

    logits = logits.detach().requires_grad_(True)
    logp = logits.log_softmax(0)
    pi = logp.exp().detach()
    shaped = (r_hat - beta * (logp - logp_ref)).detach()  # InstructGPT's reward with its KL penalty
    advantage = shaped - (pi * shaped).sum()
    (grad,) = torch.autograd.grad((pi * advantage * logp).sum(), logits)  # E_pi[A grad log pi]
    return grad, advantage


def train_rlhf(logp_ref: np.ndarray, r_hat: np.ndarray, beta: float, target: np.ndarray,
               steps: int = TRAIN_STEPS, report: Report | None = None) -> dict:
    """RLHF's stage 2: from pi_ref, natural policy gradient ascent on E_pi[r_hat] - beta KL(pi || pi_ref)
    with the exact expected gradient (``policy_gradient``); the natural gradient of a softmax
    policy is its advantage, so each step adds ``RL_STEP / beta`` times A(y) to the logits: the
    log-ratio to the optimum shrinks by (1 - RL_STEP) a step. Returns the final log-policy, the
    curve of KL(pi_t || target), and the gap KL(pi || pi_ref exp(r_hat / beta) / Z) left at the end."""
    import torch

    ref, reward = torch.from_numpy(logp_ref), torch.from_numpy(r_hat)
    logits = ref.clone()
    keep, curve = _curve_steps(steps), {"step": [], "kl_to_optimal": [], "objective": []}
    for step in range(steps + 1):
        if step in keep:
            logp = logits.log_softmax(0).numpy()
            curve["step"].append(step)
            curve["kl_to_optimal"].append(kl(logp, target))
            curve["objective"].append(float(np.exp(logp) @ r_hat) - beta * kl(logp, logp_ref))
        if report and step % 100 == 0:
            report(step / steps, f"RLHF: policy-gradient step {step} of {steps}")
        if step == steps:
            break
        _, advantage = policy_gradient(logits, ref, reward, beta)
        logits = logits + (RL_STEP / beta) * advantage
    logp = logits.log_softmax(0).numpy()
    return {"logp": logp, "curve": curve, "gap": kl(logp, optimal_logp(logp_ref, r_hat, beta))}


# ----------------------------------------------------------------------------- one run
@dataclass
class BanditResult:
    """Everything one run computes; ``api()`` is the endpoint's JSON."""

    params: BanditParams
    reference: np.ndarray  # pi_ref (K,)
    true_reward: np.ndarray  # r (K,)
    optimal: np.ndarray  # pi* (K,)
    dpo: np.ndarray
    rlhf: np.ndarray
    reward_model: np.ndarray  # r_hat (K,)
    dpo_curve: dict
    rlhf_curve: dict
    counts: np.ndarray  # (K, K) win counts
    kl_dpo_to_optimal: float  # KL(pi_DPO || pi*), nats (from the log-policies: exact where p underflows)
    kl_rlhf_to_optimal: float
    stats: dict = field(default_factory=dict)

    def api(self) -> dict:
        return {"reference": self.reference.tolist(), "true_reward": self.true_reward.tolist(),
                "optimal": self.optimal.tolist(), "dpo": self.dpo.tolist(), "rlhf": self.rlhf.tolist(),
                "kl_dpo_to_optimal": self.kl_dpo_to_optimal, "kl_rlhf_to_optimal": self.kl_rlhf_to_optimal}

    def export(self) -> dict:
        """Everything, as JSON-ready data (the tab's download)."""
        return {"params": asdict(self.params), **self.api(), "reward_model": self.reward_model.tolist(),
                "dpo_curve": self.dpo_curve, "rlhf_curve": self.rlhf_curve, "stats": self.stats,
                "win_counts": self.counts.astype(int).tolist()}


def run(p: BanditParams, report: Report | None = None) -> BanditResult:
    """Check ``p``, make the problem, sample the pairs (per-request generator from ``seed``),
    compute pi* in closed form, train DPO and RLHF on the same pairs. ``report(fraction, desc)``
    is called as training goes (it may raise to stop the run)."""
    p = check_params(p)
    from playground.models import single_thread

    with single_thread():  # K-sized tensors: more threads only wait on each other
        return _run(p, report or (lambda fraction, desc: None))


def _run(p: BanditParams, report: Report) -> BanditResult:
    # 1. the problem, its optimum, the pairs
    problem = make_problem(p.n_candidates, p.seed)
    target = optimal_logp(problem.logp_ref, problem.reward, p.beta, p.tau)
    pairs = sample_pairs(problem, p.n_pairs, p.tau, np.random.default_rng([p.seed, 1]))
    counts = pairs.counts(p.n_candidates)
    report(0.0, "DPO")
    # 2. DPO on the pairs
    start = time.perf_counter()
    dpo = train_dpo(problem.logp_ref, counts, p.beta, target,
                    report=lambda f, d: report(0.5 * f, d))
    dpo_seconds = time.perf_counter() - start
    # 3. RLHF: the reward model, then RL against it
    start = time.perf_counter()
    rm = fit_reward_model(counts)
    rlhf = train_rlhf(problem.logp_ref, rm["r_hat"], p.beta, target, report=lambda f, d: report(0.5 + 0.5 * f, d))
    rlhf_seconds = time.perf_counter() - start
    report(1.0, "done")
    # 4. what the tab reports beside the policies
    implied = p.beta * (dpo["logp"] - problem.logp_ref)
    rm_accuracy, ceiling = preference_accuracy(rm["r_hat"], problem, p.tau)
    dpo_accuracy, _ = preference_accuracy(implied, problem, p.tau)
    seen = (counts.sum(0) + counts.sum(1)) > 0
    stats = {"mle_exists": mle_exists(counts), "responses_in_pairs": int(seen.sum()),
             "dpo_loss": dpo["loss"], "dpo_grad": dpo["grad"], "reward_model_loss": rm["loss"],
             "reward_model_iterations": rm["iterations"], "rl_gap": rlhf["gap"],
             "reward_model_accuracy": rm_accuracy, "dpo_accuracy": dpo_accuracy, "accuracy_ceiling": ceiling,
             "kl_optimal_to_reference": kl(target, problem.logp_ref),
             "kl_reference_to_optimal": kl(problem.logp_ref, target),
             "kl_dpo_to_reference": kl(dpo["logp"], problem.logp_ref),
             "kl_rlhf_to_reference": kl(rlhf["logp"], problem.logp_ref),
             "train_seconds": {"dpo": dpo_seconds, "rlhf": rlhf_seconds}, "steps": TRAIN_STEPS}
    for name, logp in (("reference", problem.logp_ref), ("optimal", target), ("dpo", dpo["logp"]),
                       ("rlhf", rlhf["logp"])):
        stats[f"expected_reward_{name}"] = float(np.exp(logp) @ problem.reward)
    return BanditResult(params=p, reference=np.exp(problem.logp_ref), true_reward=problem.reward,
                        optimal=np.exp(target), dpo=np.exp(dpo["logp"]), rlhf=np.exp(rlhf["logp"]),
                        reward_model=rm["r_hat"], dpo_curve=dpo["curve"], rlhf_curve=rlhf["curve"],
                        counts=counts, kl_dpo_to_optimal=kl(dpo["logp"], target),
                        kl_rlhf_to_optimal=kl(rlhf["logp"], target), stats=stats)


# ----------------------------------------------------------------------------- the language model (Text World)
LM_ASSETS = settings.ASSETS_DIR / "preferences" / "lm"
LM_BETAS = (0.03, 0.1, 0.3, 1.0)  # the betas trained by ``python -m demos.preferences.train``
METHODS = ("sft", "rlhf", "dpo")
MAX_SAMPLES = 32
LM_EXAMPLES = ("Sort the words: pilot goat blue ostmar", "Reverse the words: cat red baker",
               "How many words are in: dog green tailor fish", "What is the first word of: teacher owl purple",
               "Put these words in alphabetical order: zebra lime cook")


@dataclass(frozen=True)
class PreferenceParams:
    """The ``preference`` endpoint's inputs, in its order."""

    instruction: str = LM_EXAMPLES[0]
    method: str = "dpo"
    beta: float = 0.1
    n_samples: int = 4
    seed: int = 0


def check_trained_beta(beta) -> float:
    """``beta`` if it is one of the trained values; else a message naming them."""
    trained = ", ".join(f"{b:g}" for b in LM_BETAS)
    try:
        value = float(beta) if not isinstance(beta, bool) else math.nan
    except (TypeError, ValueError):
        value = math.nan
    if not value > 0 or not math.isfinite(value):  # NaN fails both
        raise ValueError(f"beta must be positive, one of the trained values {trained}; got {validate.shown(beta)}")
    match = next((b for b in LM_BETAS if math.isclose(b, value, rel_tol=1e-6)), None)
    if match is None:
        raise ValueError(f"beta {value:g} was not trained: the language models exist for beta = {trained}")
    return match


def check_preference(p: PreferenceParams) -> PreferenceParams:
    return PreferenceParams(tw.check_instruction(p.instruction), validate.check_choice("method", p.method, METHODS),
                            check_trained_beta(p.beta), validate.check_int("n_samples", p.n_samples, 1, MAX_SAMPLES),
                            validate.check_int("seed", p.seed, 0, MAX_SEED))


def lm_registry_name(method: str, beta: float) -> str:
    return "textworld-pref-sft" if method == "sft" else f"textworld-pref-{method}-beta{beta:g}"


def preference_samples(p: PreferenceParams) -> list[dict]:
    """``n_samples`` responses sampled (temperature 1, per-request generator from ``seed``) from the
    policy of ``method`` and ``beta``; each with log pi(y|x) and log pi_SFT(y|x) of the whole
    response (its tokens and EOS) and the reward model's score."""
    import torch

    from demos.preferences import lm
    from playground import models
    from playground.models import single_thread

    p = check_preference(p)
    policy = models.get(lm_registry_name(p.method, p.beta))
    reference = models.get("textworld-pref-sft")
    reward_model = models.get("textworld-pref-reward")
    texts = [p.instruction] * p.n_samples
    with single_thread():
        ids = lm.sample(policy, texts, torch.Generator().manual_seed(p.seed))
        rows = lm.scored(policy, reference, reward_model.model, texts, ids)
    return [{"text": lm.decode(policy.tokenizer, r), **row} for r, row in zip(ids, rows)]


def preference(p: PreferenceParams) -> dict:
    """The API's ``preference``: ``{"samples": [{text, logp_policy, logp_reference, learned_reward}]}``."""
    return {"samples": preference_samples(p)}


def side_by_side(p: PreferenceParams) -> dict:
    """SFT, RLHF and DPO at ``p.beta`` on the same instruction and seed, each sample graded by the
    program (``true_reward`` r*, None when the instruction has no programmatic answer)."""
    from demos.preferences import lm

    p = check_preference(p)
    out = {}
    for method in METHODS:
        samples = preference_samples(PreferenceParams(p.instruction, method, p.beta, p.n_samples, p.seed))
        rewards = lm.true_rewards([p.instruction] * len(samples), [s["text"] for s in samples], _oracle())
        out[method] = [{**s, "true_reward": r} for s, r in zip(samples, rewards)]
    return out


def lm_stored(name: str) -> dict | None:
    """``training_log.json`` or ``evaluation.json`` of the language models, or None."""
    try:
        return json.loads((LM_ASSETS / name).read_text())
    except (OSError, ValueError):
        return None
