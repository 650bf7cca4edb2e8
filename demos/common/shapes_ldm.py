"""The embedded model: Stable Diffusion's architecture at toy size, for Shapes World.

Every part is a stock diffusers / transformers class built from a config, so the same pipeline
code runs it and real Stable Diffusion 1.5:

* ``AutoencoderKL``: 64 x 64 x 3 images <-> 8 x 8 x 4 latents ``z = E(x) * scaling_factor``;
* ``CLIPTokenizer`` with a closed word-level vocabulary, built in memory (no files, no network);
* ``CLIPTextModel``: 2 layers, 64 wide, tokens -> ``c`` of shape (B, 8, 64);
* ``UNet2DConditionModel`` ``eps_theta(z_t, t, c)`` on 8 x 8 latents, cross-attention at 8 x 8,
  at 4 x 4 and in the mid block (trained first with attention at 4 x 4 only, then grown: see
  ``grow_attention_8x8``);
* ``NoisyLatentClassifier`` ``p_phi(y | z_t, t)`` over the 18 (colour, shape) classes, for
  classifier guidance (Dhariwal & Nichol 2021).

This module imports torch and diffusers: import it lazily (never from ``ui.py``).
"""

from __future__ import annotations

import math

import torch
from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from demos.common.shapes_world import COLOURS, SHAPES, VOCABULARY

MAX_TOKENS = 8  # <bos> a colour shape <eos> + padding
SPECIAL_TOKENS = ("<pad>", "<|startoftext|>", "<|endoftext|>", "<unk>")
CLASSES: tuple[tuple[str, str], ...] = tuple((c, s) for c in COLOURS for s in SHAPES)  # 18 classes
TEXT_WIDTH = 64


# ---------------------------------------------------------------------------------------------
# Tokenizer: a byte-pair tokenizer whose merges rebuild exactly the vocabulary's words


def _bpe_pieces(word: str, ranks: dict[tuple[str, str], int]) -> list[str]:
    """Byte-pair encoding of ``word`` with merge ``ranks`` (lowest rank merges first)."""
    pieces = list(word[:-1]) + [word[-1] + "</w>"]
    while len(pieces) > 1:
        pairs = [(ranks.get(pair, math.inf), i) for i, pair in enumerate(zip(pieces, pieces[1:]))]
        rank, i = min(pairs)
        if rank == math.inf:
            break
        pieces = pieces[:i] + [pieces[i] + pieces[i + 1]] + pieces[i + 2:]
    return pieces


def word_level_vocab(words=VOCABULARY) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Vocab and merges such that each word of ``words`` becomes exactly one token.

    Each word's merges are appended after simulating BPE on it with the merges so far, so later
    words never change how earlier words are merged.
    """
    vocab: dict[str, int] = {token: i for i, token in enumerate(SPECIAL_TOKENS)}
    merges: list[tuple[str, str]] = []
    for word in words:
        for piece in list(word[:-1]) + [word[-1] + "</w>"]:
            vocab.setdefault(piece, len(vocab))
        pieces = _bpe_pieces(word, {m: r for r, m in enumerate(merges)})
        while len(pieces) > 1:
            merges.append((pieces[0], pieces[1]))
            pieces = [pieces[0] + pieces[1]] + pieces[2:]
            vocab.setdefault(pieces[0], len(vocab))
    return vocab, merges


def build_tokenizer() -> CLIPTokenizer:
    """A ``CLIPTokenizer`` for the closed vocabulary, padded to ``MAX_TOKENS``."""
    vocab, merges = word_level_vocab()
    tokenizer = CLIPTokenizer(vocab=vocab, merges=merges, unk_token="<unk>", pad_token="<pad>",
                              model_max_length=MAX_TOKENS)
    for word in VOCABULARY:  # fail loudly if a word is not one token
        ids = tokenizer(word).input_ids
        if len(ids) != 3:
            raise RuntimeError(f"tokenizer splits {word!r} into {ids}")
    return tokenizer


def build_text_encoder(tokenizer: CLIPTokenizer) -> CLIPTextModel:
    """A 2-layer, 64-wide ``CLIPTextModel``: token ids (B, 8) -> hidden states c (B, 8, 64)."""
    config = CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=TEXT_WIDTH, intermediate_size=4 * TEXT_WIDTH,
        num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=MAX_TOKENS,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, projection_dim=TEXT_WIDTH)
    return CLIPTextModel(config)


# ---------------------------------------------------------------------------------------------
# Autoencoder, UNet, scheduler


def build_vae() -> AutoencoderKL:
    """~0.7M-param ``AutoencoderKL``: (B, 3, 64, 64) in [-1, 1] <-> (B, 4, 8, 8) latents."""
    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, sample_size=64,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(16, 16, 32, 64), layers_per_block=1, norm_num_groups=8)


def build_unet(attention_8x8: bool = True) -> UNet2DConditionModel:
    """``UNet2DConditionModel`` eps_theta(z_t, t, c) on (B, 4, 8, 8) latents (3.48M params).

    4 x 4 and mid block: ResNet + self- and cross-attention to c; 8 x 8: the same, or ResNet
    blocks only with ``attention_8x8=False`` (3.22M params, the first training stage).
    """
    outer = ("CrossAttnDownBlock2D", "CrossAttnUpBlock2D") if attention_8x8 else ("DownBlock2D", "UpBlock2D")
    return UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=2,
        block_out_channels=(48, 96), down_block_types=(outer[0], "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", outer[1]), cross_attention_dim=TEXT_WIDTH,
        attention_head_dim=4, norm_num_groups=16)


ATTENTION_8X8_BLOCKS = ("down_blocks.0.", "up_blocks.1.")  # the UNet's (and ControlNet's) 8 x 8 blocks


def grow_attention_8x8(trained: torch.nn.Module, grown: torch.nn.Module) -> torch.nn.Module:
    """Copy ``trained`` (attention at 4 x 4 only) into ``grown`` (the same plus attention at 8 x 8).

    Function-preserving growth (Net2Net, Chen et al. 2016): every weight the two share is copied,
    and each new 8 x 8 ``Transformer2DModel`` gets ``proj_out = 0``. A transformer block computes
    ``h + proj_out(T(norm(h)))``, so with ``proj_out = 0`` it is the identity and ``grown``
    computes exactly what ``trained`` did; fine-tuning then teaches the new layers where each word
    belongs at 8 x 8, the resolution at which the cross-attention maps can follow a shape's outline.
    Works for a ``UNet2DConditionModel`` and for a ``ControlNetModel`` (its ``down_blocks.0``).
    """
    missing, unexpected = grown.load_state_dict(trained.state_dict(), strict=False)
    new = [k for k in missing if not (k.startswith(ATTENTION_8X8_BLOCKS) and ".attentions." in k)]
    if new or unexpected:
        raise ValueError(f"not a 4x4 -> 8x8 attention growth: missing {new[:3]}, unexpected {unexpected[:3]}")
    with torch.no_grad():
        for name, module in grown.named_modules():
            if name.startswith(ATTENTION_8X8_BLOCKS) and name.endswith("proj_out"):
                module.weight.zero_()
                module.bias.zero_()
    return grown


def build_scheduler() -> DDIMScheduler:
    """Stable Diffusion's noise schedule: 1000 steps, scaled-linear betas 0.00085 -> 0.012."""
    return DDIMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                         beta_schedule="scaled_linear", clip_sample=False, set_alpha_to_one=False,
                         steps_offset=1, prediction_type="epsilon")


# ---------------------------------------------------------------------------------------------
# Noise-conditional classifier for classifier guidance


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of timesteps t (B,) -> (B, dim), as in the DDPM UNet."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device) / half)  # (half,)
    angles = t.float()[:, None] * freqs[None, :]  # (B, half)
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv twice, with the time embedding added in between, plus a skip."""

    def __init__(self, channels: int, time_dim: int):
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(8, channels), nn.Conv2d(channels, channels, 3, padding=1)
        self.time = nn.Linear(time_dim, channels)
        self.norm2, self.conv2 = nn.GroupNorm(8, channels), nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, h: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        x = self.conv1(nn.functional.silu(self.norm1(h)))  # (B, C, H, W)
        x = x + self.time(temb)[:, :, None, None]
        return h + self.conv2(nn.functional.silu(self.norm2(x)))


class NoisyLatentClassifier(ModelMixin, ConfigMixin):
    """p_phi(y | z_t, t): logits over ``n_classes`` from a noisy latent (B, 4, 8, 8) and t (B,)."""

    @register_to_config
    def __init__(self, in_channels: int = 4, channels: int = 64, n_classes: int = len(CLASSES),
                 time_dim: int = 64):
        super().__init__()
        self.time_mlp = nn.Sequential(nn.Linear(time_dim, time_dim), nn.SiLU(), nn.Linear(time_dim, time_dim))
        self.conv_in = nn.Conv2d(in_channels, channels, 3, padding=1)
        self.block1, self.block2 = ResBlock(channels, time_dim), ResBlock(channels, time_dim)
        self.down = nn.Conv2d(channels, channels, 3, stride=2, padding=1)  # 8x8 -> 4x4
        self.block3 = ResBlock(channels, time_dim)
        self.head = nn.Sequential(nn.GroupNorm(8, channels), nn.SiLU(), nn.Flatten(),
                                  nn.Linear(channels * 16, n_classes))

    def forward(self, z_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        temb = self.time_mlp(timestep_embedding(t, self.config.time_dim))  # (B, time_dim)
        h = self.block2(self.block1(self.conv_in(z_t), temb), temb)  # (B, C, 8, 8)
        h = self.block3(self.down(h), temb)  # (B, C, 4, 4)
        return self.head(h)  # (B, n_classes)


def class_index(colour: str, shape: str) -> int:
    """Index of (colour, shape) in ``CLASSES``."""
    return CLASSES.index((colour, shape))
