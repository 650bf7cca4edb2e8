"""Train the embedded Shapes World DETR on CPU: ``python -m demos.detr.train [--minutes 90]``.

The budget is wall-clock time, so the schedule is a fraction of it:

1. a pool of detection scenes (docs/shapes-world.md) is drawn once; every step a few of them are
   replaced by fresh scenes, so the model keeps seeing new data at little generation cost;
2. each batch is augmented by a horizontal flip (all three shapes are left-right symmetric) and
   a random permutation of the RGB channels (the model should not care about colour);
3. AdamW, constant learning rate after a short warm-up, cosine decay only over the last
   ``--decay-frac`` of the budget (DETR learns to suppress duplicates late; do not decay early);
   the batch grows from ``--batch`` to ``--batch-late`` halfway through;
4. the set loss (Hungarian matching, cost 1 * class + 5 * L1 + 2 * GIoU) on every decoder layer;
5. every ``--eval-minutes`` the mAP@0.5 on held-out scenes is logged, and the best model so far
   is saved (``save_pretrained``, safetensors, plus its image processor) to ``--out``.

The run's arguments and its evaluations are written to ``<out>/training_log.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from demos.detr.matching import CostWeights, normalize_boxes, xyxy_to_cxcywh
from demos.detr.model import ShapesDetrSpec, build_shapes_detr, forward_layers, set_loss, to_pixel_values
from demos.common.shapes_world import SCENE_SIZE, SHAPES, scene_sample

DEFAULT_OUT = Path(__file__).resolve().parents[2] / "assets" / "shapes_detr"
EVAL_SEED = 1_000_003  # held-out scenes: a seed the training stream never uses


def scene_target(scene) -> tuple[np.ndarray, np.ndarray]:
    """(labels (M,), boxes (M, 4) normalised cxcywh) of a 128 x 128 scene."""
    return scene.label_ids, xyxy_to_cxcywh(normalize_boxes(scene.boxes, SCENE_SIZE, SCENE_SIZE))


def augment(image: np.ndarray, target, rng: np.random.Generator):
    """Random horizontal flip (cx -> 1 - cx) and RGB channel permutation."""
    labels, boxes = target
    if rng.uniform() < 0.5:
        image = image[:, ::-1]
        boxes = boxes * np.array([-1, 1, 1, 1]) + np.array([1, 0, 0, 0])
    return image[..., rng.permutation(3)], (labels, boxes)


def lr_at(progress: float, step: int, args) -> float:
    """Warm-up over ``args.warmup`` steps, constant, then cosine to 5% over the last ``decay_frac``."""
    warm = min(1.0, (step + 1) / args.warmup)
    start = 1 - args.decay_frac
    if progress <= start:
        return args.lr * warm
    t = min(1.0, (progress - start) / args.decay_frac)
    return args.lr * warm * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * t)))


def evaluate(model, scenes) -> tuple[float, list[float]]:
    """mAP@0.5 and per-class AP on held-out scenes (every query is a detection)."""
    from demos.detr.compute import predict_queries, queries_to_detections
    from demos.detr.matching import mean_average_precision

    model.eval()
    detections, truth = [], []
    with torch.no_grad():
        for start in range(0, len(scenes), 50):
            chunk = scenes[start:start + 50]
            out = forward_layers(model, to_pixel_values(np.stack([s.image for s in chunk])))
            probs = out.logits[-1].softmax(-1).numpy()
            for scene, p, b in zip(chunk, probs, out.boxes[-1].numpy()):
                detections.append(queries_to_detections(predict_queries(p, b, SCENE_SIZE, SCENE_SIZE)))
                truth.append({"boxes": scene.boxes, "labels": scene.label_ids})
    model.train()
    m_ap, per_class = mean_average_precision(detections, truth, n_classes=3)
    return m_ap, per_class.tolist()


def save(model, out: Path) -> None:
    """Save with frozen BatchNorm again (the layout ``DetrForObjectDetection`` loads) + processor."""
    from transformers import DetrForObjectDetection, DetrImageProcessorPil

    fresh = DetrForObjectDetection(model.config)
    state = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    fresh.load_state_dict(state, strict=True)
    fresh.save_pretrained(out, safe_serialization=True)
    DetrImageProcessorPil(size={"shortest_edge": SCENE_SIZE, "longest_edge": SCENE_SIZE}).save_pretrained(out)


class DenseHead(torch.nn.Module):
    """Training-only helper (Co-DETR's idea, simplified): every encoder token predicts a class and
    a box for the object whose centre region it lies in. It makes the encoder's features
    object-aware early, so the decoder's queries have something to read; it is not saved."""

    def __init__(self, d_model: int, n_classes: int):
        super().__init__()
        self.cls = torch.nn.Linear(d_model, n_classes + 1)
        self.box = torch.nn.Sequential(torch.nn.Linear(d_model, d_model), torch.nn.ReLU(), torch.nn.Linear(d_model, 4))

    def forward(self, memory: torch.Tensor, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
        """memory (B, h*w, d) -> logits (B, h*w, K+1), boxes (B, h*w, 4) cxcywh in [0, 1]."""
        raw = self.box(memory)  # (B, hw, 4)
        rows, cols = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        centre = torch.stack([(cols.flatten() + 0.5) / w, (rows.flatten() + 0.5) / h], -1)  # (hw, 2)
        cxcy = centre + torch.tanh(raw[..., :2]) * torch.tensor([2.0 / w, 2.0 / h])
        return self.cls(memory), torch.cat([cxcy, raw[..., 2:].sigmoid()], -1)


def dense_targets(targets, h: int, w: int, n_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per token: class (background = K) and box of the smallest object whose central half holds
    the token's centre, or whose centre lies in the token. (B, h*w), (B, h*w, 4)."""
    cls = torch.full((len(targets), h * w), n_classes, dtype=torch.long)
    boxes = torch.zeros(len(targets), h * w, 4)
    tx, ty = (np.arange(w) + 0.5) / w, (np.arange(h) + 0.5) / h
    for b, (labels, tboxes) in enumerate(targets):
        for i in np.argsort(-(tboxes[:, 2] * tboxes[:, 3])):  # largest first, smaller overwrite
            cx, cy, bw, bh = tboxes[i]
            inside = (np.abs(ty[:, None] - cy) < bh / 4) & (np.abs(tx[None, :] - cx) < bw / 4)  # (h, w)
            inside[min(int(cy * h), h - 1), min(int(cx * w), w - 1)] = True
            idx = torch.from_numpy(np.flatnonzero(inside))
            cls[b, idx] = int(labels[i])
            boxes[b, idx] = torch.tensor(tboxes[i], dtype=torch.float32)
    return cls, boxes


def dense_loss(head: DenseHead, out, targets, weights, eos_coef: float) -> torch.Tensor:
    """Class CE over tokens (background weighted by eos_coef) + w_L1 L1 + w_GIoU (1 - GIoU) on objects."""
    from demos.detr.model import paired_giou, xyxy

    h, w = out.feature_size
    logits, boxes = head(out.memory, h, w)
    n_cls = logits.shape[-1] - 1
    cls, tgt = dense_targets(targets, h, w, n_cls)
    class_weight = torch.ones(n_cls + 1)
    class_weight[-1] = eos_coef
    loss = weights.w_class * torch.nn.functional.cross_entropy(logits.flatten(0, 1), cls.flatten(), class_weight)
    pos = cls < n_cls
    if pos.any():
        pred, target = boxes[pos], tgt[pos]
        loss = loss + weights.w_l1 * (pred - target).abs().sum(-1).mean()
        loss = loss + weights.w_giou * (1 - paired_giou(xyxy(pred), xyxy(target))).mean()
    return loss


def train_step(model, head, optimizer, pool, rng, batch: int, lr: float, weights, eos_coef: float) -> dict:
    """One optimisation step on ``batch`` augmented scenes from the pool."""
    idx = rng.choice(len(pool), size=batch, replace=False)
    pairs = [augment(pool[i].image, scene_target(pool[i]), rng) for i in idx]
    out = forward_layers(model, to_pixel_values(np.stack([p[0] for p in pairs])))
    targets = [p[1] for p in pairs]
    losses = [set_loss(out.logits[l], out.boxes[l], targets, weights, eos_coef) for l in range(len(out.logits))]
    dense = dense_loss(head, out, targets, weights, eos_coef) if head is not None else torch.zeros(())
    total = sum(loss.total for loss in losses) + dense
    for group in optimizer.param_groups:
        group["lr"] = lr
    optimizer.zero_grad(set_to_none=True)
    total.backward()
    torch.nn.utils.clip_grad_norm_([p for group in optimizer.param_groups for p in group["params"]], 0.1)
    optimizer.step()
    last = losses[-1]
    return {"loss": total.item(), "cls": last.cls.item(), "l1": last.l1.item(), "giou": last.giou.item(),
            "dense": dense.item()}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    spec = ShapesDetrSpec(num_queries=args.queries, eos_coef=args.eos_coef)
    model = build_shapes_detr(spec, seed=args.seed)
    head = DenseHead(spec.d_model, len(SHAPES)) if args.dense else None
    params = list(model.parameters()) + (list(head.parameters()) if head is not None else [])
    optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=1e-4)
    # 1. data: a pool refreshed as we go, and fixed held-out scenes
    t0 = time.time()
    pool = [scene_sample(rng) for _ in range(args.pool)]
    held_out = [scene_sample(np.random.default_rng(EVAL_SEED + i)) for i in range(args.eval_scenes)]
    log = {"args": vars(args), "spec": spec.__dict__, "evals": []}
    data_seconds = time.time() - t0
    out, best, start, step = Path(args.out), -1.0, time.time(), 0
    next_eval, budget = args.eval_minutes * 60, args.minutes * 60
    print(f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters; data ready in "
          f"{data_seconds:.0f}s", flush=True)
    while (elapsed := time.time() - start) < budget and (args.steps == 0 or step < args.steps):
        progress = step / args.steps if args.steps else elapsed / budget
        batch = args.batch if progress < args.late_frac else args.batch_late
        stats = train_step(model, head, optimizer, pool, rng, batch, lr_at(progress, step, args),
                           CostWeights(), args.eos_coef)
        for i in rng.choice(len(pool), size=args.fresh, replace=False):
            pool[i] = scene_sample(rng)
        step += 1
        if step % 50 == 0:
            print(f"step {step} {elapsed / 60:.1f} min batch {batch} lr {lr_at(progress, step, args):.2e} "
                  + " ".join(f"{k} {v:.3f}" for k, v in stats.items()), flush=True)
        if elapsed >= next_eval:
            next_eval += args.eval_minutes * 60
            best = checkpoint(model, held_out, out, log, step, elapsed, best)
    checkpoint(model, held_out, out, log, step, time.time() - start, best)


def checkpoint(model, held_out, out: Path, log: dict, step: int, elapsed: float, best: float) -> float:
    """Evaluate; save the model if it is the best so far; write the log. Returns the best mAP."""
    m_ap, per_class = evaluate(model, held_out)
    log["evals"].append({"step": step, "minutes": round(elapsed / 60, 2), "map50": m_ap, "per_class_ap": per_class})
    print(f"EVAL step {step} {elapsed / 60:.1f} min mAP@0.5 {m_ap:.3f} per class {np.round(per_class, 3)}", flush=True)
    if m_ap > best:
        best = m_ap
        save(model, out)
        log["best"] = log["evals"][-1]
    out.mkdir(parents=True, exist_ok=True)
    (out / "training_log.json").write_text(json.dumps(log, indent=1))
    return best


def parse_args(argv: list[str] | None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=90.0, help="wall-clock training budget")
    p.add_argument("--steps", type=int, default=0,
                   help="if > 0: a step budget instead (the schedule follows steps; --minutes still caps the time)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--warmup", type=int, default=300)
    p.add_argument("--decay-frac", type=float, default=0.15)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--batch-late", type=int, default=16)
    p.add_argument("--late-frac", type=float, default=0.5)
    p.add_argument("--queries", type=int, default=12)
    p.add_argument("--dense", type=int, default=1, help="1: add the training-only dense encoder loss")
    p.add_argument("--eos-coef", type=float, default=0.4)
    p.add_argument("--pool", type=int, default=3000)
    p.add_argument("--fresh", type=int, default=4, help="pool scenes replaced per step")
    p.add_argument("--eval-scenes", type=int, default=300)
    p.add_argument("--eval-minutes", type=float, default=5.0)
    p.add_argument("--out", default=str(DEFAULT_OUT))
    return p.parse_args(argv)


if __name__ == "__main__":
    main()
