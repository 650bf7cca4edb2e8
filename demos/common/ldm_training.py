"""Training the Shapes World latent diffusion models on CPU: the pieces the Guidance tab's LDM
(``demos/guidance/train.py``) and the ControlNet tab's ControlNet (``demos/controlnet/train.py``)
share, once each.

* the forward process ``z_t = sqrt(abar_t) z_0 + sqrt(1 - abar_t) eps`` (``add_noise``) on latents
  ``z_0 ~ q(z|x)`` drawn from stored posterior means and stds (``sample_latents``);
* captions -> token ids padded like the pipeline pads them (``token_ids``);
* one loop, ``fit``: AdamW steps on a fresh batch's loss until a step count or a time budget,
  with an optional learning-rate warm-up (``adamw_with_warmup``) and an exponential moving
  average of the weights (``Ema``), logging as it goes.

Training code only (it imports torch): never imported by a ``ui.py``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import torch


def log(message: str) -> None:
    print(time.strftime("%H:%M:%S"), message, flush=True)


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (B, H, W, 3) -> float (B, 3, H, W) in [-1, 1]."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1


def run_for(steps: int, minutes: float) -> Iterator[int]:
    """Yield step numbers until ``steps`` are done or ``minutes`` have passed."""
    start = time.perf_counter()
    for step in range(steps):
        if minutes > 0 and time.perf_counter() - start > 60 * minutes:
            return
        yield step


def add_noise(z0: torch.Tensor, t: torch.Tensor, alphas_cumprod: torch.Tensor):
    """``z_t = sqrt(abar_t) z_0 + sqrt(1 - abar_t) eps``; returns (z_t, eps), each (B, 4, 8, 8)."""
    eps = torch.randn_like(z0)
    abar = alphas_cumprod[t][:, None, None, None]  # (B, 1, 1, 1)
    return abar.sqrt() * z0 + (1 - abar).sqrt() * eps, eps


def sample_latents(data: dict, index: torch.Tensor) -> torch.Tensor:
    """z_0 ~ q(z|x) for the images at ``index``: mean + std * noise, (B, 4, 8, 8)."""
    return data["mean"][index] + data["std"][index] * torch.randn_like(data["std"][index])


def token_ids(tokenizer, captions: list[str]) -> torch.Tensor:
    """Captions -> (B, 8) token ids, padded like the pipeline pads them."""
    return tokenizer(captions, padding="max_length", max_length=tokenizer.model_max_length,
                     truncation=True, return_tensors="pt").input_ids


# ---------------------------------------------------------------------------------------------
# Optimiser, weight average, the loop


def adamw_with_warmup(params, lr: float, weight_decay: float, warmup: int):
    """AdamW and its linear warm-up ``lr_s = lr * min(1, (s + 1) / warmup)``: (optimizer, schedule)."""
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warmup))


@torch.no_grad()
def ema_update(ema_params: list[torch.Tensor], params: list[torch.Tensor], decay: float) -> None:
    """``theta_ema <- decay * theta_ema + (1 - decay) * theta``."""
    for ema, param in zip(ema_params, params):
        ema.lerp_(param, 1 - decay)


@dataclass(frozen=True)
class Ema:
    """An exponential moving average of ``params`` kept in ``averaged`` (a copy's parameters)."""

    averaged: list[torch.Tensor]
    params: list[torch.Tensor]
    decay: float

    def update(self, step: int) -> None:
        """``ema_update`` after step ``step`` with ``d_t = min(decay, (1 + t) / (10 + t))``, so the
        average forgets its random start within the first steps."""
        ema_update(self.averaged, self.params, min(self.decay, (1 + step) / (10 + step)))


def descend(optimizer, loss: torch.Tensor, schedule=None) -> None:
    """One optimiser step on ``loss``: clear the gradients, backpropagate, step (then the schedule)."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    if schedule is not None:
        schedule.step()


def fit(loss_at: Callable[[], torch.Tensor], optimizer, steps: int, minutes: float, log_every: int,
        on_log: Callable[[int, float, float], None], schedule=None, ema: Ema | None = None,
        on_step: Callable[[int], None] | None = None) -> int:
    """Minimise ``loss_at()`` (a fresh batch's loss at each call) for ``steps`` steps or ``minutes``.

    Each step: ``descend``, then ``ema.update``; every ``log_every`` steps
    ``on_log(steps done, this step's loss, mean loss since the last log)``; then ``on_step(steps
    done)``. Returns the number of steps run.
    """
    done, running = 0, 0.0
    for step in run_for(steps, minutes):
        loss = loss_at()
        descend(optimizer, loss, schedule)
        if ema is not None:
            ema.update(step)
        done, running = step + 1, running + loss.item()
        if done % log_every == 0:
            on_log(done, loss.item(), running / log_every)
            running = 0.0
        if on_step is not None:
            on_step(done)
    return done
