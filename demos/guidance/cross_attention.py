"""Recording the UNet's cross-attention per prompt token (torch; imported lazily, never by ``ui.py``).

In a latent diffusion model the prompt enters only through cross-attention: at every layer l and
head h, each latent position i (of an h_l x w_l feature map) attends over the text encoder's
token embeddings c_1..c_L with

    A^{l,h}_{i,j} = softmax_j( q_i . k_j / sqrt(d) ),   q = W_q z,  k = W_k c,   sum_j A_{i,j} = 1.

DAAM (Tang et al. 2022, "What the DAAM: Interpreting Stable Diffusion Using Cross Attention")
turns these into one heat map per word: upsample each A^{l,h}_{:,j} to the image size (bicubic,
clamped at 0) and sum over heads, layers and steps,

    D_j(x, y) = sum_t sum_l sum_h  up(A^{l,h,t}_{:,j})(x, y).

How it is recorded without touching other requests: ``install(unet)`` (once, at load) wraps every
``attn2`` processor in a ``RecordingAttnProcessor``. With no recorder active it only calls the
processor it wraps, so the model computes exactly what it did before. A call that wants maps runs
inside ``recording(recorder)``, which puts a per-call ``Recorder`` in a ``ContextVar``: only the
thread/context that set it sees it, so concurrent requests on the shared model never mix. The
recorder computes A from the layer's own ``to_q`` / ``to_k`` beside the unchanged attention
output, so recording cannot change the image. Training uses the same mechanism with a ``Capture``
(every row, with gradients) for a loss on the attention maps.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import threading

import torch
import torch.nn.functional as F
from diffusers.models.attention_processor import Attention

_RECORDER: contextvars.ContextVar[Recorder | None] = contextvars.ContextVar("cross_attention_recorder",
                                                                             default=None)
_INSTALL_LOCK = threading.Lock()


class Recorder:
    """Per-call sums of upsampled cross-attention maps, one (L, S, S) map per denoising step.

    ``row``: which row of the UNet's batch to record (with classifier-free guidance the batch is
    [uncond..., cond...], so image 0's conditional row is ``batch``). ``latent_hw``: the latent's
    (h, w), to recover each layer's map size from its number of positions. ``keep_raw``: also keep
    every layer's probabilities (heads, N, L) as computed (for tests).
    """

    def __init__(self, n_steps: int, n_tokens: int, size: int, latent_hw: tuple[int, int], row: int,
                 keep_raw: bool = False):
        self.maps = torch.zeros(n_steps, n_tokens, size, size)  # (T, L, S, S)
        self.size, self.latent_hw, self.row, self.keep_raw = size, latent_hw, row, keep_raw
        self.step = 0  # set by the sampling loop before each UNet call
        self.calls = 0
        self.raw: list[dict] = []
        self._upsample: dict[tuple[int, int], torch.Tensor] = {}

    def add(self, layer: str, probs: torch.Tensor) -> None:
        """probs (heads, N, L) of the recorded row in one attn2 call -> added to this step's (L, S, S) sum."""
        heads, n_positions, n_tokens = probs.shape
        probs = probs.detach().float().cpu()
        if self.keep_raw:
            self.raw.append({"layer": layer, "step": self.step, "probs": probs.clone()})
        per_token = probs.permute(0, 2, 1).reshape(heads * n_tokens, n_positions)  # (heads * L, h * w)
        up = (per_token @ self.upsampling(n_positions)).clamp_(min=0)  # (heads * L, S * S)
        self.maps[self.step] += up.reshape(heads, n_tokens, self.size, self.size).sum(dim=0)  # summed over heads
        self.calls += 1

    def upsampling(self, n_positions: int) -> torch.Tensor:
        """Bicubic upsampling (``F.interpolate``, align_corners=False) of an h x w map to S x S as a
        matrix U (h * w, S * S), so that up(A) = A U: interpolation is linear, and U is
        ``F.interpolate`` of the h * w unit images. One small matmul per call instead of the
        interpolation kernel (~7x faster on CPU; equal to float rounding, tested)."""
        h, w = self.layer_hw(n_positions)
        if (h, w) not in self._upsample:
            basis = torch.eye(h * w).reshape(h * w, 1, h, w)
            up = F.interpolate(basis, size=(self.size, self.size), mode="bicubic", align_corners=False)
            self._upsample[(h, w)] = up.reshape(h * w, self.size * self.size)
        return self._upsample[(h, w)]

    def layer_hw(self, n_positions: int) -> tuple[int, int]:
        """(h_l, w_l) of a feature map with ``n_positions`` = h_l * w_l, same aspect as the latent."""
        lh, lw = self.latent_hw
        factor = math.sqrt(lh * lw / n_positions)
        h, w = round(lh / factor), round(lw / factor)
        if h * w != n_positions:
            raise RuntimeError(f"cannot tell the map size of {n_positions} positions for a {lh}x{lw} latent")
        return h, w


class RecordingAttnProcessor:
    """Wraps a cross-attention processor; adds A = softmax(q k^T / sqrt(d)) to the active recorder."""

    def __init__(self, inner, layer: str):
        self.inner, self.layer = inner, layer

    def __call__(self, attn: Attention, hidden_states, encoder_hidden_states=None, attention_mask=None,
                 temb=None, *args, **kwargs):
        out = self.inner(attn, hidden_states, encoder_hidden_states, attention_mask, temb, *args, **kwargs)
        recorder = _RECORDER.get()
        if recorder is not None and encoder_hidden_states is not None:
            if recorder.row is None:  # every row, with gradients (a training loss on the attention)
                probs = attention_probs(attn, hidden_states, encoder_hidden_states)  # (B * heads, N, L)
                recorder.add(self.layer, probs.reshape(-1, attn.heads, *probs.shape[1:]))  # (B, heads, N, L)
            else:  # only the recorded row's attention is computed
                row = slice(recorder.row, recorder.row + 1)
                with torch.no_grad():
                    probs = attention_probs(attn, hidden_states[row], encoder_hidden_states[row])  # (heads, N, L)
                recorder.add(self.layer, probs)
        return out


class Capture:
    """A recorder for training: keeps every row's attention probabilities (B, heads, N, L) per
    layer, gradients included (``row = None``), in ``layers``; clear it before each forward pass."""

    row = None

    def __init__(self):
        self.layers: list[torch.Tensor] = []

    def add(self, layer: str, probs: torch.Tensor) -> None:
        self.layers.append(probs)


def attention_probs(attn: Attention, hidden_states: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
    """The layer's attention probabilities (B * heads, N, L) over the L tokens of ``context``."""
    if hidden_states.ndim == 4:  # (B, C, h, w) -> (B, N, C)
        hidden_states = hidden_states.flatten(2).transpose(1, 2)
    if attn.norm_cross:
        context = attn.norm_encoder_hidden_states(context)
    query = attn.head_to_batch_dim(attn.to_q(hidden_states))  # (B * heads, N, d)
    key = attn.head_to_batch_dim(attn.to_k(context))  # (B * heads, L, d)
    return attn.get_attention_scores(query, key, None)  # softmax over L


def install(unet) -> int:
    """Wrap every cross-attention (``attn2``) processor of ``unet`` once; returns how many are wrapped.

    Idempotent and behaviour-preserving (see the module docstring); called when a model loads.
    """
    with _INSTALL_LOCK:
        count = 0
        for name, module in unet.named_modules():
            if isinstance(module, Attention) and name.endswith("attn2"):
                if not isinstance(module.processor, RecordingAttnProcessor):
                    module.set_processor(RecordingAttnProcessor(module.processor, name))
                count += 1
        return count


@contextlib.contextmanager
def recording(recorder: Recorder):
    """Record into ``recorder`` the cross-attention of UNet calls made inside this block (this context only)."""
    token = _RECORDER.set(recorder)
    try:
        yield recorder
    finally:
        _RECORDER.reset(token)
