"""Per-request pieces of a Stable-Diffusion-style pipeline, shared by the tabs that run one (the
Shapes World LDM of ``shapes_ldm.py`` or Stable Diffusion 1.5): the prompt encoder c = tau(y)
and a fresh scheduler for the reverse process.

The loaded pipeline is shared read-only between requests; what keeps state (the scheduler's
timesteps, the fast tokenizer's padding settings) is made per request or taken under a lock here.
This module imports torch and diffusers: import it lazily (never from ``ui.py``).
"""

from __future__ import annotations

import threading

import torch
from diffusers import DDIMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler

SCHEDULERS = {
    "ddim": (DDIMScheduler, {}),
    "dpm++": (DPMSolverMultistepScheduler, {"algorithm_type": "dpmsolver++"}),
    "euler": (EulerDiscreteScheduler, {}),
}

# Fast tokenizers keep their padding/truncation settings as state that each call rewrites, so two
# requests tokenizing at once can get each other's settings: tokenize under one lock.
_TOKENIZER_LOCK = threading.Lock()


def encode_prompts(pipe, texts: list[str]) -> torch.Tensor:
    """Texts -> CLIP hidden states c (B, L, D), padded as the pipeline pads them."""
    with _TOKENIZER_LOCK:
        ids = pipe.tokenizer(texts, padding="max_length", max_length=pipe.tokenizer.model_max_length,
                             truncation=True, return_tensors="pt").input_ids.to(pipe.device)
    return pipe.text_encoder(ids)[0]


def make_scheduler(pipe, name: str, steps: int):
    """A fresh scheduler for this request (``name`` in ``SCHEDULERS``), from the pipeline's config."""
    cls, extra = SCHEDULERS[name]
    scheduler = cls.from_config(pipe.scheduler.config, **extra)
    scheduler.set_timesteps(steps, device=pipe.device)
    return scheduler
