"""The four recall models, their checkpoints, and what each one looks at.

Imported lazily (never by ``ui.py`` at import time): it pulls in torch.

Every model maps left-padded token ids ``(B, T)`` to logits over the 10 values, read at the last
position (the queried key):

* ``RecurrentRecall`` with ``torch.nn.RNN`` (tanh), ``torch.nn.LSTM`` or ``torch.nn.GRU``:

      tanh RNN  h_t = tanh(W h_{t-1} + U x_t + b)
      LSTM      i,f,o = sigma(W_{i,f,o} [h_{t-1}, x_t]),  g = tanh(W_g [h_{t-1}, x_t])
                c_t = f * c_{t-1} + i * g,  h_t = o * tanh(c_t)
      GRU       z,r = sigma(W_{z,r} [h_{t-1}, x_t]),  n = tanh(W_n x_t + r * (U_n h_{t-1}))
                h_t = (1 - z) * n + z * h_{t-1}

  T steps one after another: h_t needs h_{t-1}.
* ``CausalTransformer``: 2 pre-norm blocks of causal multi-head self-attention
  ``softmax(Q K^T / sqrt(d_h) + causal mask) V`` and an MLP, learned positions (up to 160). Written
  out (not ``nn.TransformerEncoder``, whose eval fast path gave chance-level answers here, see
  FIELD_NOTES) so the attention probabilities can be shown. Batches are right-padded; every
  model reads its answer at the sequence's last real token (the queried key). 2 sequential steps (its layers),
  each parallel over all T positions.

Saliency of input position t is ``||d log p(answer) / d e_t||_2``, the gradient of the log
probability of the model's answer with respect to the token embedding ``e_t``.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from demos.common import language_model as lmk
from demos.rnn_transformer.task import (MAX_TOKENS, MODEL_KINDS, VALUES, VOCAB, Sequence, encode, sample_batch,
                                        sample_sequence)
from playground import models as registry
from playground.models import single_thread


@dataclass(frozen=True)
class RecallConfig:
    """Architecture of one recall model (saved as ``config.json`` beside its weights)."""

    kind: str  # rnn | lstm | gru | transformer
    vocab_size: int = len(VOCAB)
    n_classes: int = len(VALUES)
    d_embed: int = 64
    hidden: int = 128  # recurrent state size; the Transformer's d_model
    n_layers: int = 1  # recurrent layers; the Transformer's blocks
    n_heads: int = 4
    max_positions: int = MAX_TOKENS


# Each around 50k-150k parameters (counted in tests/test_rnn_transformer_models.py).
CONFIGS = {
    "rnn": RecallConfig("rnn", d_embed=64, hidden=200),
    "lstm": RecallConfig("lstm", d_embed=32, hidden=160),
    "gru": RecallConfig("gru", d_embed=32, hidden=176),
    "transformer": RecallConfig("transformer", d_embed=64, hidden=64, n_layers=2, n_heads=4),
}


class RecurrentRecall(nn.Module):
    """Embedding -> ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` -> linear head on the last state."""

    CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}

    def __init__(self, config: RecallConfig):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.d_embed)
        cell = self.CELLS[config.kind]
        kwargs = {"nonlinearity": "tanh"} if config.kind == "rnn" else {}
        self.cell = cell(config.d_embed, config.hidden, num_layers=config.n_layers, batch_first=True, **kwargs)
        self.head = nn.Linear(config.hidden, config.n_classes)

    def forward_embedded(self, e: torch.Tensor, mask: torch.Tensor) -> dict:
        """``e``: (B, T, d_embed), ``mask``: (B, T) -> logits (B, 10) and the hidden states (B, T, H).
        A padded batch is packed, so each sequence ends on its own last token."""
        lengths = mask.sum(dim=1)  # (B,)
        if bool(mask.all()):
            states, _ = self.cell(e)  # (B, T, H)
        else:
            packed = nn.utils.rnn.pack_padded_sequence(e, lengths.cpu(), batch_first=True, enforce_sorted=False)
            states, _ = nn.utils.rnn.pad_packed_sequence(self.cell(packed)[0], batch_first=True,
                                                         total_length=e.shape[1])  # (B, T, H)
        return {"logits": self.head(last(states, lengths)), "states": states}

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.forward_embedded(self.embed(ids), mask)["logits"]


def last(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """``x[b, lengths[b] - 1]``: (B, T, D) -> (B, D), each sequence's last real position."""
    return x[torch.arange(x.shape[0], device=x.device), lengths - 1]


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention that also returns its probabilities."""

    def __init__(self, d_model: int, n_heads: int):
        super().__init__()
        self.n_heads, self.d_head = n_heads, d_model // n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        B, T, D = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.n_heads, self.d_head).permute(2, 0, 3, 1, 4)  # 3 x (B, nh, T, hs)
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.d_head)  # (B, nh, T, T)
        probs = scores.masked_fill(~allowed[:, None], float("-inf")).softmax(dim=-1)
        y = (probs @ v).transpose(1, 2).reshape(B, T, D)  # (B, T, D)
        return self.out(y), probs


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, d_model: int, n_heads: int):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.attn = CausalSelfAttention(d_model, n_heads)
        self.mlp = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model))

    def forward(self, x, allowed):
        a, probs = self.attn(self.ln1(x), allowed)
        x = x + a
        return x + self.mlp(self.ln2(x)), probs


class CausalTransformer(nn.Module):
    """Token + learned position embeddings -> blocks -> LayerNorm -> head at the last position."""

    def __init__(self, config: RecallConfig):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.d_embed)
        self.positions = nn.Embedding(config.max_positions, config.hidden)
        self.blocks = nn.ModuleList(Block(config.hidden, config.n_heads) for _ in range(config.n_layers))
        self.ln = nn.LayerNorm(config.hidden)
        self.head = nn.Linear(config.hidden, config.n_classes)

    def hidden(self, e: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``e``: (B, T, d_embed) -> the final states (B, T, D) and the attention probabilities,
        one (B, nh, T, T) per layer. Causal: position t depends on positions <= t only, so the
        right padding never reaches a real token."""
        T = e.shape[1]
        allowed = torch.ones(T, T, dtype=torch.bool, device=e.device).tril()[None]  # (1, T, T)
        x = e + self.positions(torch.arange(T, device=e.device))
        attention = []
        for block in self.blocks:
            x, probs = block(x, allowed)
            attention.append(probs)
        return self.ln(x), attention

    def forward_embedded(self, e: torch.Tensor, mask: torch.Tensor) -> dict:
        """``e``: (B, T, d_embed), ``mask``: (B, T) True at real tokens -> logits (B, 10), attention."""
        x, attention = self.hidden(e)
        return {"logits": self.head(last(x, mask.sum(dim=1))), "attention": attention}

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.forward_embedded(self.embed(ids), mask)["logits"]


def build_model(config: RecallConfig) -> nn.Module:
    return CausalTransformer(config) if config.kind == "transformer" else RecurrentRecall(config)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def sequential_steps(config: RecallConfig, length: int) -> int:
    """Steps that must run one after another for a sequence of ``length`` tokens."""
    return config.n_layers if config.kind == "transformer" else length * config.n_layers


# ----------------------------------------------------------------------------- checkpoints
def save(model: nn.Module, folder: Path) -> None:
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(asdict(model.config), indent=2) + "\n")


def load_recall(source: registry.Source, device: str, dtype) -> nn.Module:
    """``ModelSpec`` loader: ``config.json`` + ``model.safetensors`` from a folder (always fp32 on
    the CPU: these models are tiny, and fp16 RNNs gain nothing)."""
    from safetensors.torch import load_file

    folder = Path(source.location)
    config = RecallConfig(**json.loads((folder / "config.json").read_text()))
    model = build_model(config)
    model.load_state_dict(load_file(str(folder / "model.safetensors")))
    return model.eval()


def model_name(kind: str) -> str:
    return f"recall-{kind}"


def get_model(kind: str) -> nn.Module:
    """The embedded checkpoint of ``kind`` through the model registry (``ModelUnavailable`` if missing)."""
    return registry.get(model_name(kind))


# ----------------------------------------------------------------------------- what a model does
def tensors(sequences: list[Sequence]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    ids, mask, targets = encode(sequences)
    return torch.from_numpy(ids), torch.from_numpy(mask), torch.from_numpy(targets)


def explain(model: nn.Module, sequence: Sequence, details: bool = False) -> dict:
    """The model's answer, its probability and the saliency ``||d log p(answer)/d e_t||`` per
    position; with ``details``, the hidden states (T, H) of a recurrent model or the attention
    (layers, heads, T, T) of the Transformer, and the probability of every value."""
    ids, mask, _ = tensors([sequence])
    with single_thread(), torch.enable_grad():
        e = model.embed(ids).detach().requires_grad_(True)  # (1, T, d_embed)
        out = model.forward_embedded(e, mask)
        logp = out["logits"].log_softmax(-1)[0]  # (10,)
        best = int(logp.argmax())
        (grad,) = torch.autograd.grad(logp[best], e)  # (1, T, d_embed)
    result = {"answer": VALUES[best], "p": float(logp[best].detach().exp()),
              "saliency": [float(s) for s in grad[0].norm(dim=-1)]}
    if details:
        result["probs"] = {v: float(p) for v, p in zip(VALUES, logp.detach().exp())}
        if "states" in out:
            result["states"] = out["states"][0].detach().numpy()  # (T, H)
        else:
            result["attention"] = torch.stack([a[0] for a in out["attention"]]).detach().numpy()  # (L, nh, T, T)
    return result


@torch.no_grad()
def accuracy(model: nn.Module, sequences: list[Sequence], batch: int = 256) -> float:
    """Share of ``sequences`` answered right (greedy)."""
    right = 0
    for start in range(0, len(sequences), batch):
        ids, mask, targets = tensors(sequences[start:start + batch])
        right += int((model(ids, mask).argmax(-1) == targets).sum())
    return right / len(sequences)


EVAL_DISTANCES = (0, 2, 4, 8, 16, 32, 48, 64, 96, 128)


def accuracy_by_distance(model: nn.Module, distances: tuple[int, ...] = EVAL_DISTANCES,
                         n_per_point: int = 500, seed: int = 12_345) -> dict:
    """Held-out accuracy at each distance (a seed apart from training's and validation's): at
    distance d the layout (n pairs, which pair asked) is drawn among those that give exactly d."""
    rng = np.random.default_rng(seed)
    acc = [accuracy(model, [sample_sequence(rng, distance=d) for _ in range(n_per_point)]) for d in distances]
    return {"x": list(distances), "accuracy": acc, "n_per_point": n_per_point}


# ----------------------------------------------------------------------------- training
@dataclass(frozen=True)
class TrainConfig:
    """The same budget for every model (``train.py`` and the tab's "train live")."""

    steps: int = 3000
    batch: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.01
    warmup: int = 100
    clip: float = 1.0
    eval_every: int = 100
    eval_size: int = 512
    seed: int = 0


def toolkit_config(cfg: TrainConfig) -> lmk.TrainConfig:
    """``cfg`` as the language-model toolkit's loop reads it: linear warm-up, then cosine decay to
    10% of ``lr`` (``language_model.lr_at`` with ``min_lr_ratio`` 0.1)."""
    return lmk.TrainConfig(steps=cfg.steps, batch=cfg.batch, lr=cfg.lr, min_lr_ratio=0.1, warmup=cfg.warmup,
                           weight_decay=cfg.weight_decay, clip=cfg.clip, log_every=cfg.eval_every, seed=cfg.seed)


def recall_loss(model: nn.Module, batch: list[Sequence]) -> torch.Tensor:
    """Cross-entropy of the queried value: ``-log p(target | sequence)``, mean over the batch."""
    ids, mask, targets = tensors(batch)
    return F.cross_entropy(model(ids, mask), targets)


def train(kind: str, cfg: TrainConfig, on_eval=None, should_stop=lambda: False,
          seconds: float | None = None) -> tuple[nn.Module, list[dict]]:
    """Train a fresh model of ``kind`` on fresh batches of the training mix (``sample_batch``: one
    length per batch, every length and layout covered) with the language-model toolkit's loop
    (``language_model.training_loop``: AdamW, warm-up then cosine, gradient clipping), cross-entropy
    on the queried value. Evaluates on a fixed validation set every ``eval_every`` steps
    (``on_eval(record)``); stops after ``cfg.steps``, after ``seconds`` of training, or when
    ``should_stop()``. Returns the model (eval mode) and the log."""
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    model = build_model(CONFIGS[kind])
    valid_rng = np.random.default_rng(10_000 + cfg.seed)  # a fixed validation set, apart from training
    valid = [sample_sequence(valid_rng) for _ in range(cfg.eval_size)]
    log, start, losses = [], time.perf_counter(), []

    def after_step(step: int, loss: float) -> None:
        losses.append(loss)
        if (step + 1) % cfg.eval_every == 0:
            model.eval()
            record = {"step": step + 1, "seconds": round(time.perf_counter() - start, 2),
                      "loss": float(np.mean(losses)), "val_accuracy": accuracy(model, valid)}
            model.train()
            losses.clear()
            log.append(record)
            if on_eval is not None:
                on_eval(record)

    def stop() -> bool:
        return should_stop() or (seconds is not None and time.perf_counter() - start > seconds)

    lmk.training_loop(model, toolkit_config(cfg), lambda step: sample_batch(rng, cfg.batch), recall_loss, after_step,
                      should_stop=stop)
    return model.eval(), log


# ----------------------------------------------------------------------------- the cost of recurrence
def time_model(model: nn.Module, length: int, batch: int = 32, repeats: int = 3) -> dict:
    """Fastest of ``repeats`` forward passes and training steps (forward + backward) on a batch of
    sequences of ``length`` tokens, in seconds."""
    ids = torch.randint(1, len(VOCAB), (batch, length))
    mask = torch.ones(batch, length, dtype=torch.bool)
    targets = torch.zeros(batch, dtype=torch.long)
    forward, step = [], []
    for _ in range(repeats):
        with torch.no_grad():
            t0 = time.perf_counter()
            model(ids, mask)
            forward.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        F.cross_entropy(model(ids, mask), targets).backward()
        step.append(time.perf_counter() - t0)
    model.zero_grad(set_to_none=True)
    return {"forward_s": min(forward), "train_step_s": min(step)}


def recurrence_cost(lengths: tuple[int, ...] = (16, 32, 64, 96, 128, 160), batch: int = 32,
                    repeats: int = 3, report=None) -> dict:
    """Forward and training-step time against sequence length for fresh models of each kind (the
    weights do not change the time), and the sequential steps each needs."""
    result = {"lengths": list(lengths), "batch": batch, "threads": torch.get_num_threads(), "models": {}}
    for k, kind in enumerate(MODEL_KINDS):
        torch.manual_seed(0)
        model = build_model(CONFIGS[kind]).train()
        rows = [time_model(model, n, batch, repeats) for n in lengths]
        result["models"][kind] = {"forward_s": [r["forward_s"] for r in rows],
                                  "train_step_s": [r["train_step_s"] for r in rows],
                                  "sequential_steps": [sequential_steps(CONFIGS[kind], n) for n in lengths]}
        if report is not None:
            report((k + 1) / len(MODEL_KINDS), f"timed the {kind}")
    return result
