"""Supervised fine-tuning (SFT) of a Text World model on instruction tasks, Stanford Alpaca's recipe
at toy size: what the Instruction tuning tab's fine-tunes and RLHF vs DPO's SFT policy are trained with.

* **Data**: tasks (``program_teacher.Task``), each formatted with Alpaca's prompt
  (``text_world.alpaca_prompt``) and its response, ending in EOS.
* **Loss**: cross-entropy on the response tokens only (Alpaca's ``IGNORE_INDEX`` on the prompt):
  ``L = - sum_{t in response} log p(y_t | prompt, y_<t) / |response tokens|``.
* **Pretraining mix** (``TuneConfig.replay``; InstructGPT's "ptx", not Alpaca's recipe): a share of
  the base model's pretraining documents, loss on every token, shuffled in with the tasks.
* **Schedule**: the language-model toolkit's one training loop (``language_model.train``),
  warm-up ``warmup_ratio`` of the steps then cosine to 0.

Imports torch and transformers (through ``demos.common.language_model``) when called.
"""

from __future__ import annotations

import copy
import random
from collections import Counter
from dataclasses import dataclass

from demos.common import text_world as tw
from demos.common.program_teacher import Task


def training_examples(tokenizer, tasks: list[Task]):
    """Alpaca-formatted examples with the loss on the response tokens (and EOS) only."""
    from demos.common import language_model as lmk

    return lmk.examples(tokenizer, [(tw.alpaca_prompt(t.instruction), t.response) for t in tasks], response_only=True)


@dataclass(frozen=True)
class TuneConfig:
    epochs: int = 7  # Alpaca: 3; at 3 this model had not yet learned to copy words from the prompt, at 5 to reverse
    batch: int = 32
    lr: float = 1e-3  # Alpaca: 2e-5 for 7B parameters; a 2.6M-parameter model needs a larger step
    warmup_ratio: float = 0.03  # Alpaca: 0.03, cosine
    seed: int = 0
    replay: float = 0.25  # pretraining documents mixed in per instruction example (InstructGPT's "ptx"; Alpaca: 0)


def replay_examples(tokenizer, n: int, seed: int):
    """``n`` of the base model's pretraining documents (the biographies and question-answer pairs,
    ``text_world.pretraining_text``), drawn at random, as examples with the loss on every token:
    mixing them into the tuning batches (InstructGPT's PPO-ptx mixes pretraining gradients the same
    way) keeps the facts the base model learned from being overwritten by a long fine-tune."""
    if n <= 0:
        return []
    from demos.common import language_model as lmk

    base = tw.BaseModelConfig()  # the documents exactly as the base model read them
    docs = tw.pretraining_text(list(tw.oracle().people.values()), base.seed, base.qa_repeats)
    chosen = random.Random(seed).sample(docs, min(n, len(docs)))
    return lmk.examples(tokenizer, [(d, "") for d in chosen], response_only=False)


def tuning_data(tokenizer, tasks: list[Task], cfg: TuneConfig):
    """What one epoch of ``finetune`` goes through (shuffled): every task in Alpaca's format with the
    loss on its response, and ``round(cfg.replay * len(tasks))`` pretraining documents with the
    loss on every token."""
    return training_examples(tokenizer, tasks) + replay_examples(tokenizer, round(cfg.replay * len(tasks)), cfg.seed)


def finetune(base, tasks: list[Task], cfg: TuneConfig, on_log=None):
    """A copy of ``base`` (a ``prepare_base`` model) fine-tuned on ``tasks``; returns (lm, log)."""
    from demos.common import language_model as lmk

    lm = lmk.LanguageModel(copy.deepcopy(base.model), base.tokenizer)
    if not tasks:
        return lm, []
    data = tuning_data(lm.tokenizer, tasks, cfg)
    steps = max(1, -(-len(data) * cfg.epochs // cfg.batch))
    train_cfg = lmk.TrainConfig(steps=steps, batch=min(cfg.batch, len(data)), lr=cfg.lr, min_lr_ratio=0.0,
                                warmup=max(1, round(cfg.warmup_ratio * steps)), log_every=max(1, steps // 20),
                                seed=cfg.seed)
    log = lmk.train(lm.model, data, train_cfg, lm.tokenizer.pad_token_id, on_log=on_log)
    return lm, log


def family_counts(tasks: list[Task]) -> dict[str, int]:
    return dict(Counter(t.family or "other" for t in tasks))
