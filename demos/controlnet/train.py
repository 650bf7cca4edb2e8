"""Train the embedded ControlNet on Shapes World outline sketches, base model frozen, on CPU.

    python -m demos.controlnet.train                        # the recorded run (assets/PROVENANCE.md)
    python -m demos.controlnet.train --smoke --out /tmp/cn  # a few steps, to check it runs

1. Load the Guidance tab's embedded pipeline (``assets/shapes_ldm``) and freeze all of it.
2. ``ControlNetModel.from_unet(unet)``: the UNet's encoder and middle block copied, every
   zero convolution Z at 0, so at step 0 the model is exactly the frozen UNet.
3. Data: ``n_samples`` Shapes World sketches (``shapes_world.sketch_sample``: outlines with
   wobble, gaps, stroke widths 1-4 px at 256 px, grey ink on light paper), each turned into the
   condition c_f by the *same* function the app uses (``compute.sketch_to_condition``), paired
   with the filled 64 x 64 image (encoded once by the frozen VAE) and its caption.
4. Loss, only the ControlNet learns:
   ``|eps - eps_theta(z_t, t, c, ControlNet(z_t, t, c, c_f))|^2`` with
   ``z_t = sqrt(abar_t) z_0 + sqrt(1 - abar_t) eps``; the caption is replaced by ``""`` with
   probability ``caption_dropout`` so the control also works in the unconditional branch of
   classifier-free guidance. Weights averaged by EMA.
   With ``--init-from DIR`` the ControlNet starts instead from the one trained in DIR for the
   base UNet before it was grown (cross-attention added at 8 x 8,
   ``demos.common.shapes_ldm.grow_attention_8x8``): the same growth is applied to its copy
   of the encoder, so at step 0 it is exactly that ControlNet, and training adapts it to the
   grown UNet.
5. Save (EMA weights, safetensors) every ``save_minutes`` and at the end, so a run cut short
   leaves a usable model; the steps actually run and held-out losses go to
   ``<out>/training_metrics.json``. Rerunning with ``--steps`` set to the recorded count and
   ``--minutes 0`` reproduces the run.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from demos.common import shapes_world
from demos.common.ldm_training import (Ema, adamw_with_warmup, add_noise, fit, log, sample_latents, to_tensor,
                                       token_ids)
from demos.controlnet import compute
from demos.controlnet.model import build_controlnet

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_BASE = ROOT / "assets" / "shapes_ldm"
DEFAULT_OUT = ROOT / "assets" / "shapes_controlnet"
N_HELD_OUT = 512


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 0
    n_samples: int = 24576  # sketches generated and encoded once
    steps: int = 30000
    minutes: float = 38.0  # time budget; whichever of steps / minutes comes first
    batch: int = 32
    lr: float = 5e-4
    warmup: int = 100
    caption_dropout: float = 0.2
    ema_decay: float = 0.995
    save_minutes: float = 4.0
    threads: int = 0  # 0: 2 threads when no other job loads the machine, else 1; rechecked as it runs
    log_every: int = 50


# ---------------------------------------------------------------------------------------------
# Data


def sketch_data(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``n`` sketches: conditions (n, 64, 64) uint8 (strokes 255), images (n, 64, 64, 3), captions."""
    conditions = np.empty((n, 64, 64), dtype=np.uint8)
    images = np.empty((n, 64, 64, 3), dtype=np.uint8)
    captions = []
    for i in range(n):
        sample = shapes_world.sketch_sample(rng)
        conditions[i] = np.round(compute.sketch_to_condition(sample.sketch, 64) * 255)
        images[i] = sample.image
        captions.append(sample.shape.caption)
    return conditions, images, captions


@torch.no_grad()
def encode(base, cfg: TrainConfig) -> dict:
    """The training set: latents q(z|x) (mean, std, scaled), conditions, caption ids, text table."""
    rng = np.random.default_rng([cfg.seed, 7])
    conditions, images, captions = sketch_data(cfg.n_samples, rng)
    means, stds = [], []
    for start in range(0, len(images), 512):
        posterior = base.vae.encode(to_tensor(images[start:start + 512])).latent_dist
        means.append(posterior.mean)
        stds.append(posterior.std)
    scale = base.vae.config.scaling_factor
    table = sorted(set(captions)) + [""]  # the last entry is the empty prompt
    text = base.text_encoder(token_ids(base.tokenizer, table)).last_hidden_state  # (19, 8, 64)
    return {"mean": torch.cat(means) * scale, "std": torch.cat(stds) * scale,
            "conditions": torch.from_numpy(conditions),
            "caption_ids": torch.tensor([table.index(c) for c in captions]), "text": text}


# ---------------------------------------------------------------------------------------------
# Loss and training


def controlnet_loss(controlnet, unet, data: dict, index: torch.Tensor, dropout: float,
                    alphas_cumprod: torch.Tensor, use_control: bool = True) -> torch.Tensor:
    """``mean |eps - eps_theta(z_t, t, c, ControlNet(z_t, t, c, c_f))|^2`` for the samples at index."""
    z0 = sample_latents(data, index)  # (B, 4, 8, 8)
    t = torch.randint(0, len(alphas_cumprod), (len(index),))
    z_t, eps = add_noise(z0, t, alphas_cumprod)
    ids = data["caption_ids"][index].clone()
    ids[torch.rand(len(index)) < dropout] = len(data["text"]) - 1  # "" prompt
    c = data["text"][ids]  # (B, 8, 64)
    residuals = {}
    if use_control:
        c_f = (data["conditions"][index].float() / 255)[:, None].expand(-1, 3, -1, -1)  # (B, 3, 64, 64)
        down, mid = controlnet(z_t, t, c, controlnet_cond=c_f, return_dict=False)
        residuals = {"down_block_additional_residuals": down, "mid_block_additional_residual": mid}
    return (unet(z_t, t, c, **residuals).sample - eps).pow(2).mean()


@torch.no_grad()
def held_out_losses(controlnet, unet, data: dict, seed: int) -> dict:
    """Held-out eps loss with and without the control (same z_0, t and noise for both)."""
    alphas_cumprod = unet_scheduler_alphas()
    index = torch.arange(len(data["caption_ids"]) - N_HELD_OUT, len(data["caption_ids"]))
    result = {}
    for name, use in (("with_control", True), ("without_control", False)):
        torch.manual_seed(seed + 11)
        result[f"held_out_loss_{name}"] = round(
            controlnet_loss(controlnet, unet, data, index, 0.0, alphas_cumprod, use).item(), 4)
    return result


def unet_scheduler_alphas() -> torch.Tensor:
    from demos.common import shapes_ldm

    return shapes_ldm.build_scheduler().alphas_cumprod


def file_sha256(path: Path) -> str:
    """The base UNet's weights hash: the ControlNet only fits the exact UNet it was trained on."""
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "missing"


def save(out: Path, controlnet, record: dict) -> None:
    """``ControlNetModel.save_pretrained`` (safetensors) and the training record."""
    out.mkdir(parents=True, exist_ok=True)
    controlnet.save_pretrained(out, safe_serialization=True)
    (out / "training_metrics.json").write_text(json.dumps(record, indent=2) + "\n")


def pick_threads(cfg: TrainConfig) -> int:
    """``cfg.threads``, or for 0: 2 on a quiet machine, 1 while other jobs share the 2 cores."""
    import os

    others = os.getloadavg()[0] - torch.get_num_threads()  # 1-min load minus this run's own threads
    threads = cfg.threads or (2 if others < 1.0 else 1)
    torch.set_num_threads(threads)
    return threads


def periodic_save(out: Path, ema, record: dict, minutes: float) -> Callable[[int], None]:
    """``fit``'s ``on_step``: save the EMA ControlNet (marked incomplete) every ``minutes``, so a run
    cut short leaves a usable model."""
    last_save = [time.perf_counter()]

    def on_step(steps: int) -> None:
        if minutes > 0 and time.perf_counter() - last_save[0] > 60 * minutes:
            save(out, ema, {**record, "steps": steps, "complete": False})
            last_save[0] = time.perf_counter()

    return on_step


def train_loop(controlnet, unet, data: dict, cfg: TrainConfig, out: Path, record: dict):
    """AdamW on the ControlNet only, EMA, periodic saves; returns (EMA ControlNet, steps)."""
    ema = copy.deepcopy(controlnet).eval()
    params, ema_params = list(controlnet.parameters()), list(ema.parameters())
    optimizer, warmup = adamw_with_warmup(params, cfg.lr, weight_decay=0.0, warmup=cfg.warmup)
    alphas_cumprod = unet_scheduler_alphas()
    n_train = len(data["caption_ids"]) - N_HELD_OUT

    def loss_at() -> torch.Tensor:
        index = torch.randint(0, n_train, (cfg.batch,))
        return controlnet_loss(controlnet, unet, data, index, cfg.caption_dropout, alphas_cumprod)

    def on_log(steps: int, _, mean: float) -> None:
        log(f"step {steps} loss {mean:.4f} threads {torch.get_num_threads()}")
        pick_threads(cfg)

    steps = fit(loss_at, optimizer, cfg.steps, cfg.minutes, cfg.log_every, on_log, schedule=warmup,
                ema=Ema(ema_params, params, cfg.ema_decay), on_step=periodic_save(out, ema, record, cfg.save_minutes))
    return ema, steps


def train(cfg: TrainConfig, base_dir: Path, out: Path, init_from: Path | None = None) -> dict:
    from diffusers import StableDiffusionPipeline

    pick_threads(cfg)
    start = time.perf_counter()
    base = StableDiffusionPipeline.from_pretrained(base_dir, use_safetensors=True, local_files_only=True,
                                                   safety_checker=None, requires_safety_checker=False)
    for module in (base.vae, base.text_encoder, base.unet):
        module.eval().requires_grad_(False)
    data = encode(base, cfg)
    log(f"encoded {cfg.n_samples} sketches in {time.perf_counter() - start:.0f} s")
    torch.manual_seed(cfg.seed)
    controlnet = build_controlnet(base.unet)
    if init_from is not None:
        from diffusers import ControlNetModel

        from demos.common.shapes_ldm import grow_attention_8x8

        trained = ControlNetModel.from_pretrained(init_from, use_safetensors=True, local_files_only=True)
        controlnet = grow_attention_8x8(trained, controlnet)
    controlnet.train()
    record = {"config": asdict(cfg), "init_from": None if init_from is None else str(init_from),
              "base": str(base_dir.relative_to(ROOT) if base_dir.is_relative_to(ROOT) else base_dir),
              "base_unet_sha256": file_sha256(base_dir / "unet" / "diffusion_pytorch_model.safetensors"),
              "torch": torch.__version__, "n_parameters": sum(p.numel() for p in controlnet.parameters())}
    ema, steps = train_loop(controlnet, base.unet, data, cfg, out, record)
    record.update(steps=steps, complete=True, **held_out_losses(ema, base.unet, data, cfg.seed),
                  wall_minutes=round((time.perf_counter() - start) / 60, 2))
    save(out, ema, record)
    log(f"saved to {out}: {json.dumps(record)}")
    return record


def parse_args(argv=None) -> tuple[TrainConfig, Path, Path, Path | None]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, default=DEFAULT_BASE, help="the frozen shapes_ldm pipeline folder")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--smoke", action="store_true", help="a few steps, to check that it runs")
    parser.add_argument("--init-from", type=Path, default=None,
                        help="start from this ControlNet (trained for the UNet before its 8x8 attention was added)")
    for name, default in asdict(TrainConfig()).items():
        parser.add_argument("--" + name.replace("_", "-"), type=type(default), default=default)
    args = vars(parser.parse_args(argv))
    base, out, smoke, init_from = args.pop("base"), args.pop("out"), args.pop("smoke"), args.pop("init_from")
    if smoke:
        args.update(n_samples=1024, steps=5, log_every=1)
    return TrainConfig(**args), base.resolve(), out, init_from


if __name__ == "__main__":
    train(*parse_args())
