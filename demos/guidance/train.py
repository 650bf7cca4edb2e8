"""Train the embedded Shapes World latent diffusion model from a fixed seed, on CPU.

    python -m demos.guidance.train                      # the recorded run (see assets/PROVENANCE.md)
    python -m demos.guidance.train --smoke --out /tmp/x # a few steps of every stage

Stages (each seeded on its own, so any one can be rerun with ``--stages``):

1. ``vae``: ``AutoencoderKL`` on fresh Shapes World images, loss ``|x - D(z)|^2 + beta KL``,
   z ~ q(z|x); then ``scaling_factor = 1 / std(z)`` so the diffusion sees unit-variance latents.
2. ``unet``: text encoder and UNet jointly, the DDPM loss ``|eps - eps_theta(z_t, t, c)|^2`` with
   ``z_t = sqrt(abar_t) z_0 + sqrt(1 - abar_t) eps``; the caption is replaced by ``""`` with
   probability 0.1 so one network learns both eps(z_t, c) and eps(z_t, {}) (classifier-free
   guidance, Ho & Salimans 2022); weights averaged by EMA.
3. ``classifier``: ``p_phi(y | z_t, t)`` over the 18 (colour, shape) classes, cross-entropy on
   noisy latents at uniformly random t (classifier guidance, Dhariwal & Nichol 2021).

Each stage stops at its step count or its time budget, whichever comes first; the steps actually
run and the final metrics are written to ``<out>/training_metrics.json``. Rerunning with
``--*-steps`` set to the recorded counts and no time budget reproduces the run.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from demos.common import shapes_ldm, shapes_world
from demos.common.ldm_training import (Ema, adamw_with_warmup, add_noise, fit, log, sample_latents, to_tensor,
                                       token_ids)

DEFAULT_OUT = Path(__file__).resolve().parents[2] / "assets" / "shapes_ldm"


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 0
    vae_steps: int = 4000
    vae_minutes: float = 10.0
    vae_batch: int = 32
    n_latents: int = 32768  # images encoded once for the UNet and classifier stages
    unet_steps: int = 12000
    unet_minutes: float = 35.0
    unet_batch: int = 64
    unet_lr: float = 5e-4
    caption_dropout: float = 0.1
    ema_decay: float = 0.999
    clf_steps: int = 6000
    clf_minutes: float = 7.0
    clf_batch: int = 256
    decoder_steps: int = 4000
    decoder_minutes: float = 12.0
    grow_steps: int = 2500  # stage 5: fine-tune after adding cross-attention at 8 x 8
    grow_minutes: float = 0.0
    grow_lr: float = 2e-4
    grow_grounding: float = 0.02  # weight of TokenCompose's token grounding loss in stage 5
    log_every: int = 100
    threads: int = 2  # torch threads; 1 is faster when other jobs share the 2 cores


def images_and_captions(n: int, rng: np.random.Generator, with_coverage: bool = False):
    """``n`` generation images (n, 64, 64, 3), their captions and class indices (n,); with
    ``with_coverage`` also each shape's coverage of the 8 x 8 latent grid (n, 8, 8) in [0, 1]."""
    samples = [shapes_world.generation_sample(rng) for _ in range(n)]
    images = np.stack([image for image, _ in samples])
    captions = [shape.caption for _, shape in samples]
    labels = np.array([shapes_ldm.class_index(s.colour, s.kind) for _, s in samples])
    if not with_coverage:
        return images, captions, labels
    return images, captions, labels, np.stack([latent_coverage(shape) for _, shape in samples])


def latent_coverage(shape: shapes_world.Shape, side: int = 8) -> np.ndarray:
    """The fraction of each cell of a ``side`` x ``side`` grid over the 64 x 64 image that the shape
    covers, (side, side) float32: the shape's own geometry, rasterised at the latent's resolution."""
    cell = shapes_world.GEN_SIZE / side
    return shapes_world.coverage(shape.kind, shape.x0 / cell, shape.y0 / cell, shape.size / cell,
                                 side, side).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# 1. Autoencoder


def vae_loss(vae, x: torch.Tensor, beta: float = 1e-6) -> torch.Tensor:
    """``mean |x - D(z)|^2 + beta * KL(q(z|x) || N(0, I))``, z ~ q(z|x); x (B, 3, 64, 64)."""
    posterior = vae.encode(x).latent_dist
    reconstruction = vae.decode(posterior.sample()).sample  # (B, 3, 64, 64)
    return (reconstruction - x).pow(2).mean() + beta * posterior.kl().mean()


@torch.no_grad()
def psnr(vae, x: torch.Tensor) -> float:
    """Reconstruction PSNR in dB of x (B, 3, 64, 64) in [-1, 1] through the posterior mode."""
    reconstruction = vae.decode(vae.encode(x).latent_dist.mode()).sample.clamp(-1, 1)
    mse = ((reconstruction - x) / 2).pow(2).mean().item()
    return 10 * np.log10(1 / mse)


def train_vae(cfg: TrainConfig) -> tuple[torch.nn.Module, dict]:
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng([cfg.seed, 1])
    vae = shapes_ldm.build_vae()
    optimizer = torch.optim.AdamW(vae.parameters(), lr=1e-3, weight_decay=0.0)
    held_out = to_tensor(images_and_captions(256, np.random.default_rng([cfg.seed, 99]))[0])
    steps = fit(lambda: vae_loss(vae, to_tensor(images_and_captions(cfg.vae_batch, rng)[0])), optimizer,
                cfg.vae_steps, cfg.vae_minutes, cfg.log_every,
                lambda done, loss, _: log(f"vae step {done} loss {loss:.5f}"))
    vae.eval()
    metrics = {"steps": steps, "held_out_psnr_db": round(psnr(vae, held_out), 2)}
    log(f"vae done {metrics}")
    return vae, metrics


@torch.no_grad()
def encode_dataset(vae, cfg: TrainConfig, keep_scaling: bool = False) -> dict:
    """Encode ``n_latents`` fresh images: posterior means/stds (N, 4, 8, 8), token ids, labels.

    Sets the VAE's ``scaling_factor`` to 1 / std(z), unless ``keep_scaling`` (a saved model's).
    """
    rng = np.random.default_rng([cfg.seed, 2])
    images, captions, labels, coverage = images_and_captions(cfg.n_latents, rng, with_coverage=True)
    means, stds = [], []
    for start in range(0, len(images), 512):
        posterior = vae.encode(to_tensor(images[start:start + 512])).latent_dist
        means.append(posterior.mean)
        stds.append(posterior.std)
    mean, std = torch.cat(means), torch.cat(stds)
    if not keep_scaling:
        scaling_factor = 1.0 / (mean + std * torch.randn_like(std)).std().item()
        vae.register_to_config(scaling_factor=scaling_factor)
    scaling_factor = vae.config.scaling_factor
    return {"mean": mean * scaling_factor, "std": std * scaling_factor, "captions": captions,
            "labels": torch.from_numpy(labels), "coverage": torch.from_numpy(coverage)}


def decoder_loss(vae, x: torch.Tensor) -> torch.Tensor:
    """``mean |x - D(z)|^2`` with z ~ q(z|x) from the frozen encoder; x (B, 3, 64, 64)."""
    with torch.no_grad():
        z = vae.encode(x).latent_dist.sample()  # (B, 4, 8, 8), encoder frozen
    return (vae.decode(z).sample - x).pow(2).mean()


def finetune_decoder(vae, cfg: TrainConfig) -> dict:
    """Train only the decoder on ``|x - D(z)|^2``, z ~ q(z|x) from the frozen encoder.

    The latents (and so the UNet and classifier trained on them) are unchanged; only how they
    are turned back into pixels improves (as in Stable Diffusion's fine-tuned ft-MSE decoder).
    """
    torch.manual_seed(cfg.seed + 6)
    rng = np.random.default_rng([cfg.seed, 6])
    decoder = list(vae.post_quant_conv.parameters()) + list(vae.decoder.parameters())
    optimizer = torch.optim.AdamW(decoder, lr=1e-3, weight_decay=0.0)
    held_out = to_tensor(images_and_captions(256, np.random.default_rng([cfg.seed, 99]))[0])
    vae.train()
    steps = fit(lambda: decoder_loss(vae, to_tensor(images_and_captions(cfg.vae_batch, rng)[0])), optimizer,
                cfg.decoder_steps, cfg.decoder_minutes, cfg.log_every,
                lambda done, loss, _: log(f"decoder step {done} loss {loss:.5f}"))
    vae.eval()
    metrics = {"steps": steps, "held_out_psnr_db": round(float(psnr(vae, held_out)), 2)}
    log(f"decoder done {metrics}")
    return metrics


# ---------------------------------------------------------------------------------------------
# 2. Text encoder + UNet


def unet_loss(unet, text_encoder, tokenizer, data, index, cfg, alphas_cumprod, grounding: float = 0.0,
              capture=None) -> torch.Tensor:
    """DDPM loss with caption dropout: ``mean |eps - eps_theta(z_t, t, c)|^2``, plus
    ``grounding * L_token`` (``token_grounding_loss``, captioned rows only) when a
    ``cross_attention.Capture`` collects the UNet's cross-attention."""
    from demos.guidance import cross_attention

    z0 = sample_latents(data, index)
    t = torch.randint(0, len(alphas_cumprod), (len(index),))
    z_t, eps = add_noise(z0, t, alphas_cumprod)
    drop = torch.rand(len(index)) < cfg.caption_dropout
    captions = ["" if d else data["captions"][i] for d, i in zip(drop.tolist(), index.tolist())]
    c = text_encoder(token_ids(tokenizer, captions)).last_hidden_state  # (B, 8, 64)
    if capture is None:
        return (unet(z_t, t, c).sample - eps).pow(2).mean()
    capture.layers.clear()
    with cross_attention.recording(capture):
        loss = (unet(z_t, t, c).sample - eps).pow(2).mean()
    if grounding > 0 and not drop.all():
        loss = loss + grounding * token_grounding_loss(capture.layers, data["coverage"][index], ~drop)
    return loss


GROUNDED_TOKENS = (2, 3)  # the colour and shape words: "<start> a {colour} {shape} <end> <pad>..."


def token_grounding_loss(layers: list[torch.Tensor], coverage: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """TokenCompose's token loss (Wang et al., CVPR 2024), over every cross-attention layer l and
    each grounded word j (the colour and the shape):

        L_token = mean_{l, j} (1 - sum_u A^l_{u,j} M^l_u / sum_u A^l_{u,j})^2

    A^l_{:,j}: the attention every latent position u pays to token j (mean over heads);
    M^l: the shape's coverage of layer l's grid (``coverage`` (B, 8, 8) average-pooled to 8 x 8 or
    4 x 4). It is 0 when all of the word's attention lies on the shape. ``layers``: each layer's
    probabilities (B, heads, N, L); ``keep`` (B,): rows that had a caption.
    """
    import torch.nn.functional as F

    losses = []
    for probs in layers:
        side = round(probs.shape[2] ** 0.5)
        a = probs[:, :, :, list(GROUNDED_TOKENS)].mean(1)  # (B, N, 2)
        m = F.adaptive_avg_pool2d(coverage[:, None], side).flatten(1)  # (B, N)
        inside = (a * m[:, :, None]).sum(1) / a.sum(1).clamp_min(1e-8)  # (B, 2)
        losses.append((1 - inside[keep]).pow(2).mean())
    return torch.stack(losses).mean()


def train_unet(data: dict, tokenizer, cfg: TrainConfig) -> tuple[torch.nn.Module, torch.nn.Module, dict]:
    """Stage 2: text encoder and UNet (cross-attention at 4 x 4 only) from random init."""
    torch.manual_seed(cfg.seed + 2)
    unet = shapes_ldm.build_unet(attention_8x8=False)
    text_encoder = shapes_ldm.build_text_encoder(tokenizer)
    return fit_unet(unet, text_encoder, tokenizer, data, cfg, cfg.unet_steps, cfg.unet_minutes, cfg.unet_lr, "unet")


def grow_unet(unet, text_encoder, tokenizer, data: dict, cfg: TrainConfig) -> tuple[torch.nn.Module, torch.nn.Module, dict]:
    """Stage 5: add cross-attention at 8 x 8 (``shapes_ldm.grow_attention_8x8``, exactly the same
    function at step 0), then fine-tune text encoder and UNet on the DDPM loss plus
    ``grow_grounding`` times TokenCompose's token grounding loss on the colour and shape words."""
    torch.manual_seed(cfg.seed + 7)
    grown = shapes_ldm.grow_attention_8x8(unet, shapes_ldm.build_unet(attention_8x8=True)).train()
    return fit_unet(grown, text_encoder.train(), tokenizer, data, cfg, cfg.grow_steps, cfg.grow_minutes,
                    cfg.grow_lr, "grow", grounding=cfg.grow_grounding)


def fit_unet(unet, text_encoder, tokenizer, data: dict, cfg: TrainConfig, n_steps: int, minutes: float,
             lr: float, name: str, grounding: float = 0.0) -> tuple[torch.nn.Module, torch.nn.Module, dict]:
    """AdamW on the DDPM loss (plus ``grounding`` * L_token) for UNet and text encoder together,
    EMA; returns the EMA copies."""
    from demos.guidance import cross_attention

    ema_unet, ema_text = copy.deepcopy(unet), copy.deepcopy(text_encoder)
    capture = cross_attention.Capture() if grounding > 0 else None
    if capture is not None:
        cross_attention.install(unet)  # the same wrapped processors the app records with
    params = list(unet.parameters()) + list(text_encoder.parameters())
    ema_params = list(ema_unet.parameters()) + list(ema_text.parameters())
    optimizer, warmup = adamw_with_warmup(params, lr, weight_decay=0.01, warmup=200)
    alphas_cumprod = shapes_ldm.build_scheduler().alphas_cumprod
    n_train = len(data["captions"]) - 1024  # last 1024 held out

    def loss_at() -> torch.Tensor:
        index = torch.randint(0, n_train, (cfg.unet_batch,))
        return unet_loss(unet, text_encoder, tokenizer, data, index, cfg, alphas_cumprod, grounding, capture)

    steps = fit(loss_at, optimizer, n_steps, minutes, cfg.log_every,
                lambda done, _, mean: log(f"{name} step {done} loss {mean:.4f}"),
                schedule=warmup, ema=Ema(ema_params, params, cfg.ema_decay))
    metrics = {"steps": steps, "held_out_loss_ema": held_out_unet_loss(ema_unet, ema_text, tokenizer, data, cfg)}
    if grounding > 0:
        metrics["held_out_grounding_loss_ema"] = held_out_grounding(ema_unet, ema_text, tokenizer, data, cfg)
    log(f"{name} done {metrics}")
    return ema_unet.eval(), ema_text.eval(), metrics


@torch.no_grad()
def held_out_unet_loss(unet, text_encoder, tokenizer, data, cfg) -> float:
    torch.manual_seed(cfg.seed + 3)
    alphas_cumprod = shapes_ldm.build_scheduler().alphas_cumprod
    index = torch.arange(len(data["captions"]) - 1024, len(data["captions"]))
    no_dropout = TrainConfig(caption_dropout=0.0)
    return round(unet_loss(unet, text_encoder, tokenizer, data, index, no_dropout, alphas_cumprod).item(), 4)


@torch.no_grad()
def held_out_grounding(unet, text_encoder, tokenizer, data, cfg) -> float:
    """L_token of ``unet`` on the held-out latents (no caption dropout)."""
    from demos.guidance import cross_attention

    torch.manual_seed(cfg.seed + 8)
    capture = cross_attention.Capture()
    cross_attention.install(unet)
    alphas_cumprod = shapes_ldm.build_scheduler().alphas_cumprod
    index = torch.arange(len(data["captions"]) - 1024, len(data["captions"]))
    unet_loss(unet, text_encoder, tokenizer, data, index, TrainConfig(caption_dropout=0.0), alphas_cumprod, 0.0, capture)
    value = token_grounding_loss(capture.layers, data["coverage"][index], torch.ones(len(index), dtype=torch.bool))
    return round(value.item(), 4)


# ---------------------------------------------------------------------------------------------
# 3. Noise-conditional classifier


def classifier_loss(classifier, data, index, alphas_cumprod) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy of p_phi(y | z_t, t) at uniform t; also returns per-sample correctness."""
    t = torch.randint(0, len(alphas_cumprod), (len(index),))
    z_t, _ = add_noise(sample_latents(data, index), t, alphas_cumprod)
    logits = classifier(z_t, t)  # (B, 18)
    labels = data["labels"][index]
    return torch.nn.functional.cross_entropy(logits, labels), (logits.argmax(1) == labels)


def train_classifier(data: dict, cfg: TrainConfig) -> tuple[torch.nn.Module, dict]:
    torch.manual_seed(cfg.seed + 4)
    classifier = shapes_ldm.NoisyLatentClassifier()
    optimizer = torch.optim.AdamW(classifier.parameters(), lr=1e-3, weight_decay=0.01)
    alphas_cumprod = shapes_ldm.build_scheduler().alphas_cumprod
    n_train = len(data["captions"]) - 1024

    def loss_at() -> torch.Tensor:
        return classifier_loss(classifier, data, torch.randint(0, n_train, (cfg.clf_batch,)), alphas_cumprod)[0]

    steps = fit(loss_at, optimizer, cfg.clf_steps, cfg.clf_minutes, cfg.log_every,
                lambda done, loss, _: log(f"classifier step {done} loss {loss:.4f}"))
    classifier.eval()
    metrics = {"steps": steps, **held_out_accuracy(classifier, data, cfg)}
    log(f"classifier done {metrics}")
    return classifier, metrics


@torch.no_grad()
def held_out_accuracy(classifier, data, cfg) -> dict:
    """Accuracy of p_phi on held-out latents at t = 0, 250, 500, 750."""
    torch.manual_seed(cfg.seed + 5)
    alphas_cumprod = shapes_ldm.build_scheduler().alphas_cumprod
    index = torch.arange(len(data["captions"]) - 1024, len(data["captions"]))
    result = {}
    for t_value in (0, 250, 500, 750):
        t = torch.full((len(index),), t_value)
        z_t, _ = add_noise(sample_latents(data, index), t, alphas_cumprod)
        correct = classifier(z_t, t).argmax(1) == data["labels"][index]
        result[f"held_out_accuracy_t{t_value}"] = round(correct.float().mean().item(), 3)
    return result


# ---------------------------------------------------------------------------------------------
# Saving and the command line


def save(out: Path, vae, text_encoder, tokenizer, unet, classifier) -> None:
    """``StableDiffusionPipeline.save_pretrained`` (safetensors) plus ``classifier/``."""
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                   scheduler=shapes_ldm.build_scheduler(), safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(out, safe_serialization=True)
    classifier.save_pretrained(out / "classifier", safe_serialization=True)


def train(cfg: TrainConfig, out: Path) -> dict:
    torch.set_num_threads(cfg.threads)
    start = time.perf_counter()
    tokenizer = shapes_ldm.build_tokenizer()
    vae, vae_metrics = train_vae(cfg)
    data = encode_dataset(vae, cfg)
    log(f"encoded {cfg.n_latents} latents, scaling_factor {vae.config.scaling_factor:.4f}")
    unet, text_encoder, unet_metrics = train_unet(data, tokenizer, cfg)
    classifier, clf_metrics = train_classifier(data, cfg)
    decoder_metrics = finetune_decoder(vae, cfg)
    unet, text_encoder, grow_metrics = grow_unet(unet, text_encoder, tokenizer, data, cfg)
    save(out, vae, text_encoder, tokenizer, unet, classifier)
    record = {"config": asdict(cfg), "vae": vae_metrics, "unet": unet_metrics, "classifier": clf_metrics,
              "decoder_finetune": decoder_metrics, "grow_attention_8x8": grow_metrics,
              "scaling_factor": vae.config.scaling_factor, "torch": torch.__version__,
              "wall_minutes": round((time.perf_counter() - start) / 60, 2)}
    (out / "training_metrics.json").write_text(json.dumps(record, indent=2) + "\n")
    log(f"saved to {out}: {json.dumps(record)}")
    return record


def finetune_saved_decoder(cfg: TrainConfig, out: Path) -> dict:
    """Stage 4 alone, on a saved checkpoint: fine-tune ``out/vae``'s decoder and save it back."""
    from diffusers import AutoencoderKL

    torch.set_num_threads(cfg.threads)
    vae = AutoencoderKL.from_pretrained(out / "vae", use_safetensors=True)
    metrics = finetune_decoder(vae, cfg)
    vae.save_pretrained(out / "vae", safe_serialization=True)
    record = json.loads((out / "training_metrics.json").read_text())
    record["decoder_finetune"] = {**metrics, "decoder_minutes": cfg.decoder_minutes, "threads": cfg.threads}
    (out / "training_metrics.json").write_text(json.dumps(record, indent=2) + "\n")
    return metrics


def grow_saved_unet(cfg: TrainConfig, out: Path) -> dict:
    """Stage 5 alone, on a saved checkpoint whose UNet has cross-attention at 4 x 4 only: encode
    the same latents with its VAE (its scaling factor kept), grow and fine-tune; save UNet and
    text encoder back (VAE and classifier are unchanged: they never see the UNet)."""
    from diffusers import StableDiffusionPipeline

    torch.set_num_threads(cfg.threads)
    start = time.perf_counter()
    pipe = StableDiffusionPipeline.from_pretrained(out, use_safetensors=True, local_files_only=True,
                                                   safety_checker=None, requires_safety_checker=False)
    if pipe.unet.config.down_block_types[0] != "DownBlock2D":
        raise SystemExit(f"{out}/unet already has cross-attention at 8x8")
    pipe.vae.eval().requires_grad_(False)
    data = encode_dataset(pipe.vae, cfg, keep_scaling=True)
    log(f"encoded {cfg.n_latents} latents in {time.perf_counter() - start:.0f} s")
    unet, text_encoder, metrics = grow_unet(pipe.unet, pipe.text_encoder, pipe.tokenizer, data, cfg)
    unet.save_pretrained(out / "unet", safe_serialization=True)
    text_encoder.save_pretrained(out / "text_encoder", safe_serialization=True)
    record = json.loads((out / "training_metrics.json").read_text())
    record["grow_attention_8x8"] = {**metrics, "grow_lr": cfg.grow_lr, "grow_grounding": cfg.grow_grounding,
                                    "threads": cfg.threads,
                                    "wall_minutes": round((time.perf_counter() - start) / 60, 2)}
    (out / "training_metrics.json").write_text(json.dumps(record, indent=2) + "\n")
    log(f"saved to {out}: {json.dumps(record['grow_attention_8x8'])}")
    return metrics


def parse_args(argv=None) -> tuple[TrainConfig, Path, str]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--smoke", action="store_true", help="a few steps of every stage")
    parser.add_argument("--decoder-only", action="store_true",
                        help="only stage 4: fine-tune the decoder of the checkpoint in --out")
    parser.add_argument("--grow-only", action="store_true",
                        help="only stage 5: add cross-attention at 8x8 to the checkpoint in --out and fine-tune")
    for field, default in asdict(TrainConfig()).items():
        parser.add_argument("--" + field.replace("_", "-"), type=type(default), default=default)
    args = vars(parser.parse_args(argv))
    out, smoke = args.pop("out"), args.pop("smoke")
    decoder_only, grow_only = args.pop("decoder_only"), args.pop("grow_only")
    stage = "decoder" if decoder_only else "grow" if grow_only else "all"
    if smoke:
        args.update(vae_steps=5, unet_steps=5, clf_steps=5, decoder_steps=5, grow_steps=5, n_latents=2048,
                    log_every=1)
    return TrainConfig(**args), out, stage


if __name__ == "__main__":
    config, folder, stage = parse_args()
    {"decoder": finetune_saved_decoder, "grow": grow_saved_unet, "all": train}[stage](config, folder)
