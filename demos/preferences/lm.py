"""RLHF vs DPO on the Text World language model: SFT, a Bradley-Terry reward model, PPO and DPO,
all scored by the known true reward ``r*`` of docs/text-world.md.

* **Instructions**: the four word tasks of docs/text-world.md (reverse, sort, count, first word) on
  2 to 5 words, in the five training phrasings of the Instruction tuning tab; the held-out
  evaluation uses new word lists, in the canonical and the held-out phrasing.
* **Demonstrations** (``DemoMix``): concise right responses (``goat pilot.``), right but verbose
  ones (the answer, then 2 to 6 filler words: ``goat pilot. That is the answer.``) and wrong ones
  (the Self-Instruct program teacher's mistakes, ``program_teacher.plausible_mistake``), in known proportions: the SFT policy
  learns all three, which leaves room for preferences to improve it.
* **Pairs**: two responses sampled from SFT (temperature 1) for one instruction, labelled by
  Bradley-Terry on r*: ``P(y1 > y2) = sigmoid((r*(y1) - r*(y2)) / tau)``.
* **Reward model**: the SFT model with a scalar head (``LlamaForSequenceClassification``, the
  score read at the last token, EOS), trained with ``-log sigmoid(r(y_w) - r(y_l))``.
* **PPO** (InstructGPT): samples from the policy, the reward model's score at the last token, a
  per-token KL penalty ``-beta (log pi - log pi_ref)``, a value head on the policy's last hidden
  state, GAE (gamma 1, lambda 0.95), whitened advantages, the clipped surrogate and clipped value loss.
* **DPO**: the paper's loss on the pairs (``rl.dpo_loss``, tested equal to TRL's ``DPOTrainer``).

A response's log-probability ``log pi(y | x)`` is the sum over its tokens **and its EOS** (stopping
is part of the response: the concise and the verbose answer differ first at the token after ``.``).

Imports torch and transformers when called.
"""

from __future__ import annotations

import copy
import math
import random
import time
from dataclasses import dataclass
from typing import Callable

from demos.common import program_teacher as teacher
from demos.common import text_world as tw

FAMILIES = ("reverse", "sort", "count", "first")  # the Text World specification's four word tasks
TRAIN_PHRASINGS = tuple(teacher.TEACHER_PHRASINGS)  # the held-out phrasing (index 5) is never trained on
FILLERS = {2: "Thank you.", 3: "Here it is.", 4: "Here is the answer.", 5: "Here is the answer, thanks.",
           6: "Thank you, that is the answer."}  # extra(y) words after the answer's full stop; every word is
# in the Instruction tuning base model's vocabulary (a test holds it), so none is read as [UNK]
MAX_NEW_TOKENS = 24  # the longest demonstration has 16 tokens with EOS


@dataclass(frozen=True)
class DemoMix:
    """Shares of the SFT demonstrations (shown in the tab)."""

    concise: float = 0.5
    verbose: float = 0.3
    wrong: float = 0.2


# ----------------------------------------------------------------------------- instructions and demonstrations
def instruction(rng: random.Random, family: str | None = None, phrasing: int | None = None) -> str:
    """A word-task instruction on 2 to 5 distinct words of the value sets."""
    family = family or rng.choice(FAMILIES)
    index = rng.choice(TRAIN_PHRASINGS) if phrasing is None else phrasing
    words = rng.sample(tw.WORD_VALUES, rng.randint(2, 5))
    return tw.PHRASINGS[family][index].format(words=tw.word_list(words))


def demonstration(text: str, kind: str, rng: random.Random, oracle) -> str:
    """A response of ``kind`` (concise | verbose | wrong) to the instruction ``text``."""
    parsed = tw.parse_instruction(text)
    truth = tw.program_answer(parsed, oracle)
    if kind == "wrong":
        wrong = teacher.plausible_mistake(parsed, truth, rng)
        return tw.response_text(wrong, parsed.family)
    response = tw.response_text(truth, parsed.family)
    return f"{response} {FILLERS[rng.randint(2, 6)]}" if kind == "verbose" else response


def demonstrations(n: int, mix: DemoMix, oracle, seed: int = 0) -> list[teacher.Task]:
    """``n`` SFT demonstrations with ``mix``'s shares of each kind (``Task.kind``; ``mistake`` when
    the response is wrong by the program's answer)."""
    rng = random.Random(seed)
    counts = {"concise": round(n * mix.concise), "verbose": round(n * mix.verbose)}
    counts["wrong"] = n - sum(counts.values())
    kinds = [k for k, c in counts.items() for _ in range(c)]
    rng.shuffle(kinds)
    out = []
    for kind in kinds:
        text = instruction(rng)
        response = demonstration(text, kind, rng, oracle)
        out.append(teacher.Task(text, response, tw.parse_instruction(text).family, "demonstration",
                           not tw.is_correct(tw.parse_instruction(text), response, oracle), kind))
    return out


def true_rewards(instructions: list[str], responses: list[str], oracle) -> list[float | None]:
    """r* of each response (None when the instruction is outside the families)."""
    out = []
    for text, response in zip(instructions, responses):
        parsed = tw.parse_instruction(text)
        out.append(None if parsed is None or tw.program_answer(parsed, oracle) is None
                   else round(tw.true_reward(parsed, response, oracle), 4))
    return out


# ----------------------------------------------------------------------------- batches and log-probabilities
def response_ids(tokenizer, text: str) -> list[int]:
    """A written response as the tokens a policy would emit: its words, then EOS."""
    return tokenizer.encode(text, add_special_tokens=False) + [tokenizer.eos_token_id]


def decode(tokenizer, ids: list[int]) -> str:
    """The text of sampled response tokens (EOS dropped, punctuation joined as written)."""
    from demos.common import language_model as lmk

    return lmk.detokenize(tokenizer.decode([t for t in ids if t != tokenizer.eos_token_id]))


def response_batch(tokenizer, instructions: list[str], responses: list[list[int]]):
    """Right-padded ``[BOS] prompt response`` ids (B, T), attention mask (B, T) and the response
    mask (B, T): 1 on the response tokens, EOS included when the response has it (TRL's
    ``completion_mask``). ``responses`` are token ids, exactly as sampled (``sample``) or from
    ``response_ids``: what is scored is what was generated."""
    import torch

    from demos.common import language_model as lmk

    rows, starts = [], []
    for text, response in zip(instructions, responses):
        prompt, n_prompt = lmk.encode(tokenizer, tw.alpaca_prompt(text))
        rows.append(prompt + list(response))
        starts.append(n_prompt)
    length = max(len(r) for r in rows)
    ids = torch.full((len(rows), length), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    response_mask = torch.zeros_like(ids)
    for i, (row, start) in enumerate(zip(rows, starts)):
        ids[i, :len(row)] = torch.tensor(row)
        mask[i, :len(row)] = 1
        response_mask[i, start:len(row)] = 1
    return ids, mask, response_mask


def response_logps(model, ids, mask, response_mask):
    """log pi(y | x) of each row, the sum over the response's tokens and EOS (B,)."""
    from demos.preferences import rl

    logits = model(input_ids=ids, attention_mask=mask).logits  # (B, T, V)
    return rl.response_logprob(logits, ids, response_mask)


def response_token_view(x, response_mask):
    """The response positions of a per-token tensor in ``token_logprobs`` layout (B, T-1) as a
    tensor whose ones come first (B, L), L the longest response: ``out[b, j]`` is the j-th response
    token's entry. Returns (out, mask (B, L))."""
    import torch

    m = response_mask[:, 1:].bool()  # (B, T-1): token t's entry sits at t-1
    lengths = m.sum(1)
    width = int(lengths.max())
    start = m.float().argmax(1)  # first response position of each row
    index = (start[:, None] + torch.arange(width)[None]).clamp(max=m.shape[1] - 1)  # (B, L)
    out_mask = torch.arange(width)[None] < lengths[:, None]
    return x.gather(1, index) * out_mask.to(x.dtype), out_mask.to(x.dtype)


# ----------------------------------------------------------------------------- sampling
def sample(lm, instructions: list[str], generator, temperature: float = 1.0, batch: int = 64) -> list[list[int]]:
    """Response tokens sampled from ``lm`` (to EOS, included, or ``MAX_NEW_TOKENS``), Alpaca-formatted
    prompts; ``decode`` gives their text."""
    from demos.common import language_model as lmk

    out = []
    for i in range(0, len(instructions), batch):
        prompts = [tw.alpaca_prompt(x) for x in instructions[i:i + batch]]
        out += lmk.generate(lm, prompts, max_new_tokens=MAX_NEW_TOKENS, temperature=temperature,
                            generator=generator, stop=(), return_ids=True)
    return out


def scored(lm, reference, reward_model, instructions: list[str], responses: list[list[int]],
           batch: int = 128) -> list[dict]:
    """For each response (token ids): log pi, log pi_ref (the whole response, EOS included when
    it has it) and the learned reward."""
    import torch

    rows = []
    with torch.no_grad():
        for i in range(0, len(responses), batch):
            ids, mask, rmask = response_batch(lm.tokenizer, instructions[i:i + batch], responses[i:i + batch])
            lp = response_logps(lm.model, ids, mask, rmask)
            lr = lp if reference is lm else response_logps(reference.model, ids, mask, rmask)
            score = reward_model(input_ids=ids, attention_mask=mask).logits[:, 0]
            rows += [{"logp_policy": round(float(a), 4), "logp_reference": round(float(b), 4),
                      "learned_reward": round(float(c), 4)} for a, b, c in zip(lp, lr, score)]
    return rows


# ----------------------------------------------------------------------------- preference pairs
@dataclass(frozen=True)
class Pair:
    instruction: str
    chosen: list  # token ids as sampled
    rejected: list
    reward_chosen: float
    reward_rejected: float
    p_label: float  # P(the label is this order) under Bradley-Terry: sigmoid(|r1 - r2| / tau) or 1 - it


def label_pairs(tokenizer, instructions: list[str], first: list[list[int]], second: list[list[int]], oracle,
                tau: float, rng: random.Random) -> list[Pair]:
    """Bradley-Terry labels on r* of the responses' text: ``first`` wins with probability
    ``sigmoid((r1 - r2) / tau)``."""
    out = []
    for text, a, b in zip(instructions, first, second):
        ra, rb = (tw.true_reward(tw.parse_instruction(text), decode(tokenizer, y), oracle) for y in (a, b))
        p = 1.0 / (1.0 + math.exp(-(ra - rb) / tau))
        if rng.random() < p:
            out.append(Pair(text, a, b, ra, rb, p))
        else:
            out.append(Pair(text, b, a, rb, ra, 1 - p))
    return out


def bradley_terry_ceiling(pairs: list[Pair], tau: float) -> float:
    """The best expected accuracy any reward model can reach on these noisy labels: the mean of
    ``max(p, 1 - p)``, ``p = sigmoid((r*(y_w) - r*(y_l)) / tau)``."""
    return sum(max(pr, 1 - pr) for pr in (1 / (1 + math.exp(-(p.reward_chosen - p.reward_rejected) / tau))
                                          for p in pairs)) / max(1, len(pairs))


# ----------------------------------------------------------------------------- reward model
@dataclass(frozen=True)
class RewardConfig:
    epochs: int = 4
    batch: int = 32  # pairs
    lr: float = 3e-4
    seed: int = 0


def reward_model_from(sft, seed: int = 0):
    """The SFT model with a scalar head: ``LlamaForSequenceClassification`` (num_labels 1, the score
    read at each row's last non-pad token), the backbone copied from SFT, the head seeded."""
    import torch
    from transformers import LlamaForSequenceClassification

    config = copy.deepcopy(sft.model.config)
    config.num_labels, config.architectures = 1, ["LlamaForSequenceClassification"]
    torch.manual_seed(seed)
    rm = LlamaForSequenceClassification(config).float()
    rm.model.load_state_dict(sft.model.model.state_dict())
    torch.nn.init.normal_(rm.score.weight, std=1e-3)
    return rm


def pair_scores(rm, tokenizer, pairs: list[Pair]):
    """(r(y_w), r(y_l)) of a batch of pairs, each (B,)."""
    ids, mask, _ = response_batch(tokenizer, [p.instruction for p in pairs] * 2,
                                  [p.chosen for p in pairs] + [p.rejected for p in pairs])
    score = rm(input_ids=ids, attention_mask=mask).logits[:, 0]
    return score[:len(pairs)], score[len(pairs):]


def shuffled_pairs(n: int, batch: int, rng: random.Random) -> Callable[[], list[int]]:
    """``next_indices()``: ``min(batch, n)`` indices of pairs a call, popped from a shuffled order of
    ``range(n)`` that is reshuffled (``rng``) when fewer than a batch remain."""
    size, order = min(batch, n), []

    def next_indices() -> list[int]:
        nonlocal order
        if len(order) < size:
            order = list(range(n))
            rng.shuffle(order)
        return [order.pop() for _ in range(size)]

    return next_indices


def gradient_step(optimiser, loss, parameters, schedule=None) -> None:
    """One optimiser step on ``loss`` with the gradient norm of ``parameters`` clipped to 1."""
    import torch

    optimiser.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(parameters, 1.0)
    optimiser.step()
    if schedule is not None:
        schedule.step()


def train_reward_model(sft, pairs: list[Pair], cfg: RewardConfig, on_log: Callable | None = None):
    """Bradley-Terry reward model fitted to ``pairs`` (AdamW, cosine); returns (model, log)."""
    import torch

    from demos.preferences import rl

    rm = reward_model_from(sft, cfg.seed).train()
    next_indices = shuffled_pairs(len(pairs), cfg.batch, random.Random(cfg.seed))
    steps = max(1, len(pairs) * cfg.epochs // cfg.batch)
    optimiser = torch.optim.AdamW(rm.parameters(), lr=cfg.lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda s: 0.5 * (1 + math.cos(math.pi * s / steps)))
    log, t0 = [], time.perf_counter()
    for step in range(steps):
        batch = [pairs[i] for i in next_indices()]
        chosen, rejected = pair_scores(rm, sft.tokenizer, batch)
        loss = rl.reward_model_loss(chosen, rejected).mean()
        gradient_step(optimiser, loss, rm.parameters(), schedule)
        if (step + 1) % max(1, steps // 20) == 0 or step + 1 == steps:
            record = {"step": step + 1, "loss": round(loss.item(), 4),
                      "accuracy": round(float((chosen > rejected).float().mean()), 4),
                      "seconds": round(time.perf_counter() - t0, 1)}
            log.append(record)
            if on_log:
                on_log(record)
    return rm.eval(), log


def reward_model_accuracy(rm, tokenizer, pairs: list[Pair]) -> float:
    """Share of ``pairs`` whose label the reward model agrees with (a tie counts half)."""
    import torch

    hits = 0.0
    with torch.no_grad():
        for i in range(0, len(pairs), 128):
            chosen, rejected = pair_scores(rm, tokenizer, pairs[i:i + 128])
            hits += float((chosen > rejected).float().sum() + 0.5 * (chosen == rejected).float().sum())
    return hits / max(1, len(pairs))


PAIR_KINDS = ("right vs wrong", "extra words", "tie")


def pair_kind(tokenizer, pair: Pair, oracle) -> str:
    """What separates a pair's two responses under r* = correct - 0.1 extra: one is right and the
    other wrong (``right vs wrong``), both right or both wrong with different extra words
    (``extra words``), or nothing (``tie``: equal r*, a coin-flip label)."""
    if pair.reward_chosen == pair.reward_rejected:
        return "tie"
    parsed = tw.parse_instruction(pair.instruction)
    right = [bool(tw.is_correct(parsed, decode(tokenizer, y), oracle)) for y in (pair.chosen, pair.rejected)]
    return "right vs wrong" if right[0] != right[1] else "extra words"


def reward_model_by_kind(rm, tokenizer, pairs: list[Pair], oracle, tau: float) -> list[dict]:
    """The reward model on ``pairs`` by ``pair_kind`` and task family (``scores_by_kind``)."""
    import torch

    with torch.no_grad():
        scored = [pair_scores(rm, tokenizer, pairs[i:i + 128]) for i in range(0, len(pairs), 128)]
    return scores_by_kind([x for c, _ in scored for x in c.tolist()], [x for _, r in scored for x in r.tolist()],
                          tokenizer, pairs, oracle, tau)


def implied_reward_by_kind(policy, reference, tokenizer, pairs: list[Pair], oracle, tau: float,
                           beta: float) -> list[dict]:
    """A policy's implied reward ``beta log(pi(y)/pi_ref(y))`` (DPO's reward, up to ``beta log Z(x)``,
    which cancels within a pair) used as a reward model on ``pairs`` (``scores_by_kind``)."""
    import torch

    from demos.preferences import rl

    chosen, rejected = [], []
    with torch.no_grad():
        for i in range(0, len(pairs), 128):
            batch = pairs[i:i + 128]
            ids, mask, rmask = response_batch(tokenizer, [p.instruction for p in batch] * 2,
                                              [p.chosen for p in batch] + [p.rejected for p in batch])
            implied = rl.dpo_implied_reward(response_logps(policy, ids, mask, rmask),
                                            response_logps(reference, ids, mask, rmask), beta)  # (2B,)
            chosen += implied[:len(batch)].tolist()
            rejected += implied[len(batch):].tolist()
    return scores_by_kind(chosen, rejected, tokenizer, pairs, oracle, tau)


def scores_by_kind(chosen: list[float], rejected: list[float], tokenizer, pairs: list[Pair], oracle,
                   tau: float) -> list[dict]:
    """A reward's scores of each pair's two responses, by ``pair_kind`` and task family: how many
    pairs, its accuracy against their labels (a tie counts half) beside those pairs' Bradley-Terry
    ceiling, and how often it orders the two responses as r* does (pairs with unequal r*). Where a
    learned reward can be gamed is where it orders pairs unlike r*."""
    groups: dict[tuple[str, str], list] = {}
    for pair, a, b in zip(pairs, chosen, rejected):
        kind, family = pair_kind(tokenizer, pair, oracle), tw.parse_instruction(pair.instruction).family
        for key in ((kind, "all"), (kind, family)):
            groups.setdefault(key, []).append((pair, a, b))
    rows = []
    for kind in PAIR_KINDS:
        for family in ("all",) + FAMILIES:
            items = groups.get((kind, family))
            if not items:
                continue
            ordered = [(a > b) == (p.reward_chosen > p.reward_rejected) for p, a, b in items
                       if p.reward_chosen != p.reward_rejected]
            rows.append({"kind": kind, "family": family, "pairs": len(items),
                         "accuracy": round(sum(1.0 if a > b else 0.5 if a == b else 0.0 for _, a, b in items) / len(items), 4),
                         "ceiling": round(bradley_terry_ceiling([p for p, _, _ in items], tau), 4),
                         "orders_as_r_star": round(sum(ordered) / len(ordered), 4) if ordered else None})
    return rows


def overall_by_kind(rows: list[dict]) -> dict:
    """From ``scores_by_kind`` rows: accuracy over every pair and its ceiling (the kinds weighted by
    their pairs), and how often the two kinds with unequal r* are ordered as r* orders them."""
    kinds = {r["kind"]: r for r in rows if r["family"] == "all"}
    n = max(1, sum(r["pairs"] for r in kinds.values()))
    return {"accuracy": sum(r["accuracy"] * r["pairs"] for r in kinds.values()) / n,
            "ceiling": sum(r["ceiling"] * r["pairs"] for r in kinds.values()) / n,
            "right vs wrong": kinds.get("right vs wrong", {}).get("orders_as_r_star"),
            "extra words": kinds.get("extra words", {}).get("orders_as_r_star")}


# ----------------------------------------------------------------------------- DPO
@dataclass(frozen=True)
class DPOConfig:
    beta: float = 0.1
    steps: int = 250
    batch: int = 32
    lr: float = 3e-4
    seed: int = 0


def reference_logps(sft, pairs: list[Pair]) -> list[tuple[float, float]]:
    """``(log pi_ref(y_w | x), log pi_ref(y_l | x))`` of every pair, the reference being ``sft``."""
    import torch

    ref = []
    with torch.no_grad():
        for i in range(0, len(pairs), 128):
            chunk = pairs[i:i + 128]
            ids, mask, rmask = response_batch(sft.tokenizer, [p.instruction for p in chunk] * 2,
                                              [p.chosen for p in chunk] + [p.rejected for p in chunk])
            lp = response_logps(sft.model, ids, mask, rmask)
            ref += list(zip(lp[:len(chunk)].tolist(), lp[len(chunk):].tolist()))
    return ref


def dpo_batch_loss(policy, tokenizer, batch: list[Pair], ref_w, ref_l, beta: float):
    """DPO's loss on one batch, ``-log sigmoid(beta log(pi(y_w)/pi_ref(y_w)) - beta log(pi(y_l)/pi_ref(y_l)))``
    averaged over the pairs, and the margin of implied rewards of each pair (B,), detached."""
    from demos.preferences import rl

    ids, mask, rmask = response_batch(tokenizer, [p.instruction for p in batch] * 2,
                                      [p.chosen for p in batch] + [p.rejected for p in batch])
    lp = response_logps(policy, ids, mask, rmask)  # (2B,): the chosen responses, then the rejected
    loss = rl.dpo_loss(lp[:len(batch)], lp[len(batch):], ref_w, ref_l, beta).mean()
    margin = (rl.dpo_implied_reward(lp[:len(batch)], ref_w, beta) -
              rl.dpo_implied_reward(lp[len(batch):], ref_l, beta)).detach()
    return loss, margin


def train_dpo(sft, pairs: list[Pair], cfg: DPOConfig, on_log: Callable | None = None):
    """A copy of ``sft`` trained with DPO's loss on ``pairs`` against ``sft`` as the reference
    (AdamW, 20 steps of warm-up times a cosine)."""
    import torch

    policy = copy.deepcopy(sft.model).train()
    ref = reference_logps(sft, pairs)  # the reference's log-probabilities, once
    next_indices = shuffled_pairs(len(pairs), cfg.batch, random.Random(cfg.seed))
    optimiser = torch.optim.AdamW(policy.parameters(), lr=cfg.lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: min(1.0, (s + 1) / 20) * 0.5 * (1 + math.cos(math.pi * s / cfg.steps)))
    log, t0 = [], time.perf_counter()
    for step in range(cfg.steps):
        index = next_indices()
        ref_w, ref_l = torch.tensor([ref[i][0] for i in index]), torch.tensor([ref[i][1] for i in index])
        loss, margin = dpo_batch_loss(policy, sft.tokenizer, [pairs[i] for i in index], ref_w, ref_l, cfg.beta)
        gradient_step(optimiser, loss, policy.parameters(), schedule)
        if (step + 1) % max(1, cfg.steps // 30) == 0 or step + 1 == cfg.steps:
            record = {"step": step + 1, "loss": round(loss.item(), 4),
                      "accuracy": round(float((margin > 0).float().mean()), 4),
                      "margin": round(float(margin.mean()), 4), "seconds": round(time.perf_counter() - t0, 1)}
            log.append(record)
            if on_log:
                on_log(record)
    return type(sft)(policy.eval(), sft.tokenizer), log


# ----------------------------------------------------------------------------- PPO (InstructGPT)
@dataclass(frozen=True)
class PPOConfig:
    beta: float = 0.1  # per-token KL coefficient
    iterations: int = 60
    rollouts: int = 64  # responses sampled per iteration
    epochs: int = 2  # passes over each rollout batch
    minibatch: int = 32
    lr: float = 1e-4
    clip_eps: float = 0.2
    value_coef: float = 0.5
    gamma: float = 1.0
    lam: float = 0.95
    seed: int = 0


class ValueHead:
    """V(s_t): a linear map of the policy's last hidden state (shared backbone)."""

    def __init__(self, hidden: int, seed: int):
        import torch

        torch.manual_seed(seed)
        self.linear = torch.nn.Linear(hidden, 1)
        torch.nn.init.zeros_(self.linear.weight)
        torch.nn.init.zeros_(self.linear.bias)


def policy_forward(model, head: ValueHead, ids, mask):
    """Token log-probabilities (B, T-1) and values (B, T-1), both in ``token_logprobs`` layout:
    position t-1 holds token t's log-probability and the value of the state before it."""
    from demos.preferences import rl

    out = model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
    values = head.linear(out.hidden_states[-1][:, :-1].float()).squeeze(-1)  # (B, T-1)
    return rl.token_logprobs(out.logits, ids), values


def rollout(lm, sft, head: ValueHead, reward_model, texts: list[str], generator, cfg: PPOConfig) -> dict:
    """One iteration's experience: responses sampled from the policy ``lm`` for ``texts``, and per
    response token (B, L) the old log-probabilities, values, reference log-probabilities, the
    KL-penalised rewards ``r_t = -beta (log pi - log pi_ref) (+ r_phi at the last token)``, GAE
    advantages (whitened) and returns; ``score`` (B,) is the reward model's."""
    import torch

    from demos.preferences import rl

    responses = sample(lm, texts, generator)
    ids, mask, rmask = response_batch(lm.tokenizer, texts, responses)
    with torch.no_grad():
        old_tok_logps, old_tok_values = policy_forward(lm.model, head, ids, mask)
        ref_tok_logps = rl.token_logprobs(sft.model(input_ids=ids, attention_mask=mask).logits, ids)
        score = reward_model(input_ids=ids, attention_mask=mask).logits[:, 0]
        old_logps, rm_mask = response_token_view(old_tok_logps, rmask)
        old_values, _ = response_token_view(old_tok_values, rmask)
        ref_logps, _ = response_token_view(ref_tok_logps, rmask)
        rewards = rl.kl_penalised_rewards(score, old_logps, ref_logps, rm_mask, cfg.beta)
        advantages, returns = rl.generalized_advantage_estimation(rewards, old_values, rm_mask, cfg.gamma, cfg.lam)
        advantages = rl.whiten(advantages, rm_mask)
    return {"responses": responses, "ids": ids, "mask": mask, "rmask": rmask, "old_logps": old_logps,
            "old_values": old_values, "ref_logps": ref_logps, "rm_mask": rm_mask, "score": score,
            "advantages": advantages, "returns": returns}


def ppo_loss(policy, head: ValueHead, run: dict, b, cfg: PPOConfig):
    """The clipped surrogate plus ``value_coef`` times the clipped value loss on the rollouts ``b``."""
    from demos.preferences import rl

    tok_logps, tok_values = policy_forward(policy, head, run["ids"][b], run["mask"][b])
    logps, m = response_token_view(tok_logps, run["rmask"][b])
    values, _ = response_token_view(tok_values, run["rmask"][b])
    width = m.shape[1]
    old_logps, old_values = run["old_logps"][b, :width], run["old_values"][b, :width]
    advantages, returns = run["advantages"][b, :width], run["returns"][b, :width]
    return rl.ppo_clipped_loss(logps, old_logps, advantages, m, cfg.clip_eps) + \
        cfg.value_coef * rl.ppo_value_loss(values, old_values, returns, m, cfg.clip_eps)


def ppo_update(policy, head: ValueHead, run: dict, optimiser, params, generator, cfg: PPOConfig) -> None:
    """``cfg.epochs`` passes over the rollouts in shuffled minibatches (the order from ``generator``)."""
    import torch

    policy.train()
    for _ in range(cfg.epochs):
        order = torch.randperm(cfg.rollouts, generator=generator)
        for start in range(0, cfg.rollouts, cfg.minibatch):
            gradient_step(optimiser, ppo_loss(policy, head, run, order[start:start + cfg.minibatch], cfg), params)


def ppo_record(iteration: int, run: dict, texts: list[str], tokenizer, oracle, seconds: float) -> dict:
    """The log of one iteration: the reward model's mean score, the KL to SFT and, with ``oracle``,
    the rollouts' true reward r* (which training never sees)."""
    from demos.preferences import rl

    kl = rl.approximate_kl(run["old_logps"], run["ref_logps"], run["rm_mask"])
    record = {"iteration": iteration, "score": round(float(run["score"].mean()), 4), "kl": round(float(kl.mean()), 4),
              "seconds": round(seconds, 1)}
    if oracle is not None:
        true = true_rewards(texts, [decode(tokenizer, r) for r in run["responses"]], oracle)
        record["true_reward"] = round(sum(true) / len(true), 4)
    return record


def train_ppo(sft, reward_model, instructions: Callable[[random.Random, int], list[str]], cfg: PPOConfig,
              oracle=None, on_log: Callable | None = None):
    """RLHF's third stage: PPO on ``E[r_phi(x, y)] - beta KL(pi || pi_sft)`` with per-token KL
    rewards; ``instructions(rng, n)`` draws the prompts of each iteration. With ``oracle`` the log
    also records the rollouts' true reward r* (which training never sees)."""
    import torch

    policy = copy.deepcopy(sft.model)
    head = ValueHead(policy.config.hidden_size, cfg.seed)
    params = list(policy.parameters()) + list(head.linear.parameters())
    optimiser = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
    rng, generator = random.Random(cfg.seed), torch.Generator().manual_seed(cfg.seed)
    log, t0 = [], time.perf_counter()
    lm = type(sft)(policy, sft.tokenizer)
    for it in range(cfg.iterations):
        policy.eval()
        texts = instructions(rng, cfg.rollouts)
        run = rollout(lm, sft, head, reward_model, texts, generator, cfg)
        ppo_update(policy, head, run, optimiser, params, generator, cfg)
        log.append(ppo_record(it + 1, run, texts, sft.tokenizer, oracle, time.perf_counter() - t0))
        if on_log:
            on_log(log[-1])
    return type(sft)(policy.eval(), sft.tokenizer), log


# ----------------------------------------------------------------------------- evaluation
def evaluation_instructions(n_per_cell: int = 25, seed: int = 4321, exclude: frozenset = frozenset()) -> list[tuple[str, str]]:
    """Held-out instructions: per family ``n_per_cell`` canonical and as many in the held-out
    phrasing, on fresh word lists; ``(instruction, phrasing)``."""
    rng = random.Random(seed)
    out = []
    for family in FAMILIES:
        for name, index in (("canonical", 0), ("held-out", teacher.HELD_OUT_PHRASING)):
            made = 0
            while made < n_per_cell:
                text = instruction(rng, family, index)
                if text not in exclude:
                    out.append((text, name))
                    made += 1
    return out


def evaluate_policy(lm, reference, reward_model, texts: list[str], oracle, n_samples: int, seed: int) -> dict:
    """Samples ``n_samples`` responses per instruction; returns their r*, learned reward, KL to the
    reference (the mean of log pi - log pi_ref over the samples) and the responses."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    repeated = [t for t in texts for _ in range(n_samples)]
    ids = sample(lm, repeated, generator)
    rows = scored(lm, reference, reward_model, repeated, ids)
    responses = [decode(lm.tokenizer, r) for r in ids]
    true = true_rewards(repeated, responses, oracle)
    parsed = [tw.parse_instruction(t) for t in repeated]
    correct = [bool(tw.is_correct(p, r, oracle)) for p, r in zip(parsed, responses)]
    extra = [tw.extra_words(p, r) for p, r in zip(parsed, responses)]
    n = len(repeated)
    return {"true_reward": sum(true) / n, "learned_reward": sum(r["learned_reward"] for r in rows) / n,
            "kl": sum(r["logp_policy"] - r["logp_reference"] for r in rows) / n,
            "correct": sum(correct) / n, "extra_words": sum(extra) / n,
            "ended": sum(tok_ids[-1:] == [lm.tokenizer.eos_token_id] for tok_ids in ids) / n,
            "responses": responses, "rewards": true}


def win_rate(policy_rewards: list[float], sft_rewards: list[float]) -> dict:
    """Per sample, the policy's r* against SFT's on the same instruction: wins, ties, losses, and
    the win rate with ties counting half and without ties."""
    wins = sum(a > b for a, b in zip(policy_rewards, sft_rewards))
    losses = sum(a < b for a, b in zip(policy_rewards, sft_rewards))
    n = len(policy_rewards)
    return {"wins": wins, "ties": n - wins - losses, "losses": losses,
            "win_rate": round((wins + 0.5 * (n - wins - losses)) / max(1, n), 4),
            "win_rate_without_ties": round(wins / max(1, wins + losses), 4)}


def win_rate_ceiling(sft_rewards: list[float], best: float = 1.0) -> dict:
    """The win rate against SFT of a policy whose every sample scores the best r* there is (right
    and concise: 1): it wins wherever SFT's sample scored less and ties where it scored ``best``,
    so with ties counting half no policy can exceed ``1 - share / 2``."""
    share = sum(r >= best for r in sft_rewards) / max(1, len(sft_rewards))
    return {"sft_samples_at_best": round(share, 4), **win_rate([best] * len(sft_rewards), sft_rewards)}


def load_reward_model(source, device: str, dtype):
    """``ModelSpec`` loader of a reward model: ``AutoModelForSequenceClassification`` (one label)
    and ``AutoTokenizer``; returns a ``LanguageModel`` whose ``model`` gives a score per sequence."""
    from transformers import AutoModelForSequenceClassification

    from demos.common import language_model as lmk

    rm = lmk.load_pretrained(source, device, dtype, AutoModelForSequenceClassification)
    rm.model.config.pad_token_id = rm.tokenizer.pad_token_id  # the score is read at the last non-pad token
    return rm
