"""The one small-LM toolkit every language tab uses: the word-level tokenizer, a Llama config,
one training loop (pretraining or fine-tuning with the loss masked to response tokens),
``generate`` with a per-request ``torch.Generator``, and ``sequence_logprob``.

Imported lazily by the tabs (it pulls in torch and transformers). Every model, embedded or a
user's real checkpoint, is loaded through ``playground.models`` with ``load_causal_lm``
(``AutoModelForCausalLM`` / ``AutoTokenizer``), so the same code runs a real Hugging Face causal LM.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from typing import Callable, Iterable

import torch

SPECIAL = {"pad_token": "[PAD]", "unk_token": "[UNK]", "bos_token": "[BOS]", "eos_token": "[EOS]"}


@dataclass
class LanguageModel:
    """A causal LM and its tokenizer (what the registry's loader returns)."""

    model: object  # transformers PreTrainedModel
    tokenizer: object  # transformers PreTrainedTokenizerBase


# ----------------------------------------------------------------------------- tokenizer and config
def build_tokenizer(texts: Iterable[str]):
    """A word-level ``PreTrainedTokenizerFast`` over every word and punctuation mark of ``texts``
    (the ``tokenizers`` library; saved with ``save_pretrained``, loadable by ``AutoTokenizer``)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    pre = pre_tokenizers.Whitespace()  # \w+ | [^\w\s]+
    words = sorted({w for text in texts for w, _ in pre.pre_tokenize_str(text)})
    vocab = {token: i for i, token in enumerate([*SPECIAL.values(), *words])}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=SPECIAL["unk_token"]))
    core.pre_tokenizer = pre
    return PreTrainedTokenizerFast(tokenizer_object=core, **SPECIAL)


def llama_config(tokenizer, hidden: int = 192, layers: int = 4, heads: int = 4, intermediate: int = 512,
                 max_positions: int = 128):
    """A small ``LlamaConfig`` (tied embeddings) for ``tokenizer``'s vocabulary."""
    from transformers import LlamaConfig

    return LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=intermediate,
                       num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=heads,
                       max_position_embeddings=max_positions, tie_word_embeddings=True,
                       bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                       pad_token_id=tokenizer.pad_token_id)


def detokenize(text: str) -> str:
    """Undo the word-level decoder's spaces around punctuation: ``Renmis ' s job .`` -> ``Renmis's job.``"""
    text = re.sub(r" ' s\b", "'s", text)
    return re.sub(r" ([.,:;?!])", r"\1", text).strip()


def load_pretrained(source, device: str, dtype, auto_class) -> LanguageModel:
    """``auto_class.from_pretrained`` (an ``AutoModelFor...``) + ``AutoTokenizer`` from a folder or
    hub id (``source``: a ``playground.models.Source`` or a ``LocalFolder``), in eval mode; a
    tokenizer without a pad token pads with EOS."""
    from transformers import AutoTokenizer

    kwargs = source.pretrained_kwargs()
    tokenizer = AutoTokenizer.from_pretrained(source.location, local_files_only=kwargs["local_files_only"],
                                              **({"revision": kwargs["revision"]} if "revision" in kwargs else {}))
    model = auto_class.from_pretrained(source.location, dtype=dtype, **kwargs).to(device).eval()
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return LanguageModel(model, tokenizer)


def load_causal_lm(source, device: str, dtype) -> LanguageModel:
    """``ModelSpec`` loader: ``AutoModelForCausalLM`` + ``AutoTokenizer`` from a folder or hub id."""
    from transformers import AutoModelForCausalLM

    return load_pretrained(source, device, dtype, AutoModelForCausalLM)


class LocalFolder:
    """A local folder as ``load_pretrained`` expects its source (what a training script loads
    without the model registry)."""

    def __init__(self, path):
        self.location = str(path)

    @staticmethod
    def pretrained_kwargs() -> dict:
        return {"local_files_only": True, "use_safetensors": True}


def save_float16(model, tokenizer, folder) -> None:
    """``model`` saved as float16 safetensors beside ``tokenizer``; the model stays float32."""
    model.half().save_pretrained(folder, safe_serialization=True)
    model.float()
    tokenizer.save_pretrained(folder)


# ----------------------------------------------------------------------------- batches
def encode(tokenizer, prompt: str, response: str = "") -> tuple[list[int], int]:
    """``[BOS] prompt response`` ids and the number of prompt tokens (BOS included)."""
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    prompt_ids = bos + tokenizer.encode(prompt, add_special_tokens=False)
    response_ids = tokenizer.encode(response, add_special_tokens=False) if response else []
    return prompt_ids + response_ids, len(prompt_ids)


def left_padded(rows: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Left-padded ids (B, T), attention mask (B, T) and position ids (B, T)."""
    length = max(len(r) for r in rows)
    ids = torch.full((len(rows), length), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), length), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, length - len(r):] = torch.tensor(r)
        mask[i, length - len(r):] = 1
    return ids, mask, (mask.cumsum(-1) - 1).clamp(min=0)


@dataclass(frozen=True)
class Example:
    """One training sequence: ``ids`` and from which position the loss counts (0 = all)."""

    ids: tuple[int, ...]
    loss_from: int = 0


def examples(tokenizer, pairs: Iterable[tuple[str, str]], response_only: bool) -> list[Example]:
    """``(prompt, response)`` pairs as examples ending in EOS; ``response_only`` masks the loss to the
    response tokens (and EOS), as instruction and question fine-tuning do."""
    out = []
    for prompt, response in pairs:
        ids, n_prompt = encode(tokenizer, prompt, response)
        out.append(Example(tuple(ids + [tokenizer.eos_token_id]), n_prompt if response_only else 1))
    return out


def batch_tensors(batch: list[Example], pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded ids, attention mask and labels (-100 where the loss does not count)."""
    length = max(len(e.ids) for e in batch)
    ids = torch.full((len(batch), length), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), length), -100, dtype=torch.long)
    for i, e in enumerate(batch):
        ids[i, :len(e.ids)] = torch.tensor(e.ids)
        labels[i, e.loss_from:len(e.ids)] = torch.tensor(e.ids[e.loss_from:])
    return ids, (ids != pad_id).long() | (labels != -100).long(), labels


# ----------------------------------------------------------------------------- training
@dataclass(frozen=True)
class TrainConfig:
    steps: int = 2000
    batch: int = 64
    lr: float = 2e-3
    min_lr_ratio: float = 0.1
    warmup: int = 100
    weight_decay: float = 0.01
    clip: float = 1.0
    log_every: int = 100
    seed: int = 0


def lr_at(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def training_loop(model, cfg: TrainConfig, next_batch: Callable[[int], object],
                  loss_of: Callable[[object, object], torch.Tensor], after_step: Callable[[int, float], None],
                  should_stop: Callable[[], bool] | None = None) -> None:
    """The one training loop: for each step ``s < cfg.steps`` (until ``should_stop()``), AdamW at
    ``lr_at(s)`` on ``loss_of(model, next_batch(s))`` with the gradient norm clipped to ``cfg.clip``,
    then ``after_step(s, loss)``. Draws no random numbers itself: seeding and batches are the caller's."""
    optimiser = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    for step in range(cfg.steps):
        if should_stop is not None and should_stop():
            break
        for group in optimiser.param_groups:
            group["lr"] = lr_at(step, cfg)
        loss = loss_of(model, next_batch(step))
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
        optimiser.step()
        after_step(step, loss.item())


def epoch_batches(data: list, batch: int, generator: torch.Generator) -> Callable[[int], list]:
    """``next_batch`` over shuffled epochs of ``data``: ``batch`` examples a step, a fresh
    permutation (from ``generator``) when the epoch has fewer left."""
    state = {"order": torch.randperm(len(data), generator=generator), "cursor": 0}

    def next_batch(step: int) -> list:
        if state["cursor"] + batch > len(state["order"]):
            state["order"], state["cursor"] = torch.randperm(len(data), generator=generator), 0
        chosen = state["order"][state["cursor"]:state["cursor"] + batch]
        state["cursor"] += batch
        return [data[int(i)] for i in chosen]

    return next_batch


def causal_lm_loss(pad_id: int) -> Callable[[object, list[Example]], torch.Tensor]:
    """``loss_of`` for a causal LM: cross-entropy on the unmasked tokens of a batch of examples
    (the next-token shift done by the model)."""
    def loss_of(model, batch: list[Example]) -> torch.Tensor:
        ids, mask, labels = batch_tensors(batch, pad_id)
        return model(input_ids=ids, attention_mask=mask, labels=labels).loss

    return loss_of


def train(model, data: list[Example], cfg: TrainConfig, pad_id: int,
          on_log: Callable[[dict], None] | None = None) -> list[dict]:
    """AdamW over shuffled epochs of ``data`` (cross-entropy on the unmasked tokens, next-token
    shift done by the model), warm-up then cosine; returns the log (mean loss every ``log_every``)."""
    generator = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    model.train()
    losses, log, start = [], [], time.perf_counter()

    def after_step(step: int, loss: float) -> None:
        nonlocal losses
        losses.append(loss)
        if (step + 1) % cfg.log_every == 0 or step + 1 == cfg.steps:
            record = {"step": step + 1, "loss": sum(losses) / len(losses), "seconds": round(time.perf_counter() - start, 1)}
            losses = []
            log.append(record)
            if on_log:
                on_log(record)

    training_loop(model, cfg, epoch_batches(data, cfg.batch, generator), causal_lm_loss(pad_id), after_step)
    model.eval()
    return log


def cpu_seconds() -> float:
    """CPU seconds of this process and of its finished worker processes (training logs record them)."""
    import resource

    return sum(u.ru_utime + u.ru_stime for u in (resource.getrusage(resource.RUSAGE_SELF),
                                                  resource.getrusage(resource.RUSAGE_CHILDREN)))


# ----------------------------------------------------------------------------- inference
@torch.no_grad()
def sequence_logprob(lm: LanguageModel, prompt: str, responses: list[str]) -> list[float]:
    """``log p(response | prompt)`` for each response: the sum of its tokens' log-probabilities
    from one forward pass (batched, left-padded)."""
    rows, starts = [], []
    for r in responses:
        ids, n_prompt = encode(lm.tokenizer, prompt, r)
        rows.append(ids)
        starts.append(n_prompt)
    ids, mask, position = left_padded(rows, lm.tokenizer.pad_token_id)
    logp = lm.model(input_ids=ids, attention_mask=mask, position_ids=position).logits.float().log_softmax(-1)  # (B, T, V)
    out = []
    for b, (row, start) in enumerate(zip(rows, starts)):
        offset = ids.shape[1] - len(row)
        targets = torch.tensor(row[start:])  # the response tokens
        positions = torch.arange(offset + start - 1, offset + len(row) - 1)  # the logits predicting them
        out.append(float(logp[b, positions, targets].sum()))
    return out


@torch.no_grad()
def generate(lm: LanguageModel, prompts: list[str], max_new_tokens: int = 8, temperature: float = 1.0,
             generator: torch.Generator | None = None, stop: tuple[str, ...] = (".",),
             return_ids: bool = False) -> list[str] | list[list[int]]:
    """Continue each prompt (greedy when ``generator`` is None, else sampled at ``temperature``
    from the per-request ``generator``) until a ``stop`` token, EOS, or ``max_new_tokens``;
    returns the decoded continuations (stop token included), or with ``return_ids`` the tokens
    generated (EOS included when it came). Left-padded batch, KV cache."""
    tok = lm.tokenizer
    ids, mask, position = left_padded([encode(tok, p)[0] for p in prompts], tok.pad_token_id)
    stop_ids = {tok.convert_tokens_to_ids(s) for s in stop} | {tok.eos_token_id}
    out = lm.model(input_ids=ids, attention_mask=mask, position_ids=position, use_cache=True)
    new = torch.full((len(prompts), 0), tok.pad_token_id, dtype=torch.long)
    done = torch.zeros(len(prompts), dtype=torch.bool)
    for _ in range(max_new_tokens):
        logits = out.logits[:, -1].float()  # (B, V)
        if generator is None:
            token = logits.argmax(-1)
        else:
            token = torch.multinomial((logits / temperature).softmax(-1), 1, generator=generator)[:, 0]
        token = torch.where(done, torch.full_like(token, tok.pad_token_id), token)
        new = torch.cat([new, token[:, None]], dim=1)
        done |= torch.tensor([int(t) in stop_ids for t in token])
        if bool(done.all()):
            break
        mask = torch.cat([mask, torch.ones(len(prompts), 1, dtype=torch.long)], dim=1)
        position = position[:, -1:] + 1
        out = lm.model(input_ids=token[:, None], attention_mask=mask, position_ids=position,
                       past_key_values=out.past_key_values, use_cache=True)
    if return_ids:
        return [[t for t in row if t != tok.pad_token_id] for row in new.tolist()]
    texts = []
    for row in new.tolist():
        kept = [t for t in row if t != tok.pad_token_id and t != tok.eos_token_id]
        texts.append(detokenize(tok.decode(kept)))
    return texts


# ----------------------------------------------------------------------------- new words for a trained model
def extend_tokenizer(tokenizer, texts: Iterable[str]):
    """A word-level tokenizer with every word of ``texts`` that ``tokenizer`` lacks appended: old ids
    are kept, so a model trained with ``tokenizer`` reads its old tokens unchanged."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    pre = pre_tokenizers.Whitespace()
    vocab = dict(tokenizer.get_vocab())
    for word in sorted({w for text in texts for w, _ in pre.pre_tokenize_str(text)}):
        vocab.setdefault(word, len(vocab))
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=SPECIAL["unk_token"]))
    core.pre_tokenizer = pre
    return PreTrainedTokenizerFast(tokenizer_object=core, **SPECIAL)


def resize_embeddings(model, tokenizer, old_tokenizer, seed: int = 0, noise: float = 0.02) -> int:
    """Grow the (tied) embeddings to ``tokenizer``'s vocabulary; returns how many rows were added.

    A new word that the old vocabulary has in another case (``veltra`` for ``Veltra``) starts from
    that word's row; any other starts at the mean of the old rows (Stanford Alpaca's
    ``smart_tokenizer_and_embedding_resize``) plus a little seeded noise, so that new words do not
    all start identical (a copy task cannot tell ``veltra`` from ``ostmar`` while they are)."""
    old_vocab, vocab = old_tokenizer.get_vocab(), tokenizer.get_vocab()
    old_lower = {w.lower(): i for w, i in sorted(old_vocab.items(), key=lambda kv: kv[1])}
    old = len(old_vocab)
    model.resize_token_embeddings(len(vocab), mean_resizing=False)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for emb in {id(e): e for e in (model.get_input_embeddings(), model.get_output_embeddings())}.values():
            w = emb.weight
            mean, scale = w[:old].mean(0), noise
            for word, i in sorted(vocab.items(), key=lambda kv: kv[1]):  # id order: get_vocab's order varies
                if i >= old:
                    source = old_lower.get(word.lower())
                    w[i] = w[source] if source is not None else mean + scale * torch.randn(w.shape[1], generator=generator)
    return len(vocab) - old


def unread_tokens(tokenizer, data: Iterable[Example]) -> list[int]:
    """Ids of the vocabulary's tokens that no example of ``data`` contains (special tokens aside):
    rows of the embedding that training never used as input."""
    read = {i for e in data for i in e.ids}
    return sorted(set(range(len(tokenizer))) - read - set(tokenizer.all_special_ids))


def redraw_unread_rows(model, unread: list[int], seed: int = 0) -> None:
    """Give the rows of never-read tokens the look of trained rows, in place.

    A row no text used as input only ever gets the softmax's push-down as an output (tied
    embeddings) and weight decay, so it ends up unlike any trained row (for Text World's unseen
    last names, norm 0.43 against 1.07) and the network treats such a name as noise. Each such row
    is drawn from a diagonal Gaussian fitted to the trained rows, ``w_u ~ N(mean_r w_r, std_r w_r)``
    per dimension (seeded): the mean of the trained rows, as for new tokens in Alpaca's
    ``smart_tokenizer_and_embedding_resize`` (Hewitt 2021), with their spread so that the names
    differ. It carries no fact of anyone, like a real model's subword name it never read about."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for emb in {id(e): e for e in (model.get_input_embeddings(), model.get_output_embeddings())}.values():
            w = emb.weight  # (V, d)
            keep = torch.ones(w.shape[0], dtype=torch.bool)
            keep[unread] = False
            mean, std = w[keep].mean(0), w[keep].std(0)  # (d,)
            w[unread] = mean + std * torch.randn(len(unread), w.shape[1], generator=generator)
