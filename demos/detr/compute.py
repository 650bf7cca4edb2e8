"""DETR tab: detection as set prediction, every query, and the Hungarian matching made visible.

DETR (Carion et al., 2020) maps an image to a fixed set of N object queries. Query j predicts a
class distribution ``p_j`` over K classes plus "no object" (the last index) and a box
``bhat_j = (cx, cy, w, h)`` as fractions of the image. At inference a query is a detection when
its best real class has ``max_c p_j(c) >= threshold``; no NMS is involved.

For a generated Shapes World scene the ground truth is known, so the tab also shows what training
does with the same predictions: the cost matrix ``C_ij = -w_class p_j(c_i) + w_L1 |b_i - bhat_j|_1
- w_GIoU GIoU(b_i, bhat_j)``, its optimal one-to-one assignment (``matching.py``), and the loss of
that assignment split into its terms (``model.set_loss``, the training code).

Torch and transformers are imported only inside the functions that run a model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from demos.detr.matching import (CostMatrix, CostWeights, cxcywh_to_xyxy, denormalize_boxes, hungarian_match,
                                 matching_cost, normalize_boxes, pairwise_giou, softmax, xyxy_to_cxcywh)
from demos.common.images import image_array, load_image  # noqa: F401 (load_image: the tab's UI and tests use it here)
from demos.common.shapes_world import SHAPES, scene_sample
from playground.validate import check_choice, check_float, check_int

MODEL_CHOICES = ("shapes-detr", "detr-resnet-50")
MAX_SEED = 2**31 - 1
BOX_COLOURS = ("#e11d48", "#2563eb", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777",
               "#4f46e5", "#059669", "#dc2626", "#7c3aed")


@dataclass(frozen=True)
class DetrParams:
    """The tab's controls (defaults are what it opens with)."""

    model: str = "shapes-detr"
    threshold: float = 0.5  # on max_c p_j(c)
    seed: int = 0
    query: int = 0
    w_class: float = 1.0
    w_l1: float = 5.0
    w_giou: float = 2.0

    def checked(self) -> "DetrParams":
        """A copy with every field validated (``ValueError`` names the bad field)."""
        return DetrParams(check_choice("model", self.model, MODEL_CHOICES),
                          check_float("threshold", self.threshold, 0.0, 1.0),
                          check_int("seed", self.seed, 0, MAX_SEED), check_int("query", self.query, 0, 999),
                          check_float("w_class", self.w_class, 0.0, 20.0),
                          check_float("w_L1", self.w_l1, 0.0, 20.0), check_float("w_GIoU", self.w_giou, 0.0, 20.0))

    @property
    def weights(self) -> CostWeights:
        return CostWeights(self.w_class, self.w_l1, self.w_giou)


# ---------------------------------------------------------------------------------------------
# Generated scenes (ground truth known)


@dataclass(frozen=True)
class GroundTruth:
    """Class ids (M,) and boxes (M, 4) xyxy in pixels of the scene image."""

    labels: np.ndarray
    boxes: np.ndarray


def random_scene(seed: int) -> tuple[np.ndarray, GroundTruth]:
    """A Shapes World detection scene (128 x 128) and its ground truth, fixed by ``seed``."""
    scene = scene_sample(np.random.default_rng(check_int("seed", seed, 0, MAX_SEED)))
    return scene.image, GroundTruth(scene.label_ids, scene.boxes.astype(np.float64))


# ---------------------------------------------------------------------------------------------
# Running DETR


@dataclass(frozen=True)
class QueryPredictions:
    """Every query's prediction for one image, boxes in that image's own pixels."""

    probs: np.ndarray  # (N, K+1) class probabilities, last column = "no object"
    boxes: np.ndarray  # (N, 4) xyxy pixels
    labels: np.ndarray  # (N,) most likely real class
    scores: np.ndarray  # (N,) its probability


def predict_queries(probs: np.ndarray, boxes_cxcywh: np.ndarray, width: float, height: float) -> QueryPredictions:
    """Per query: label = argmax_c p(c) over real classes, score = that p, box in pixels."""
    probs = np.asarray(probs, dtype=np.float64)
    labels = probs[:, :-1].argmax(-1)
    scores = probs[np.arange(len(probs)), labels]
    boxes = denormalize_boxes(cxcywh_to_xyxy(boxes_cxcywh), width, height)
    return QueryPredictions(probs, boxes, labels, scores)


def queries_to_detections(queries: QueryPredictions, threshold: float = 0.0) -> dict:
    """The queries with score >= threshold as ``{"boxes", "labels", "scores"}`` arrays."""
    keep = queries.scores >= threshold
    return {"boxes": queries.boxes[keep], "labels": queries.labels[keep], "scores": queries.scores[keep]}


@dataclass(frozen=True)
class DetrResult:
    """One forward pass: raw outputs (for matching) and per-query predictions (for display)."""

    image: np.ndarray  # (H, W, 3) uint8, the input
    class_names: tuple[str, ...]  # K names
    logits: np.ndarray  # (N, K+1)
    boxes_cxcywh: np.ndarray  # (N, 4) fractions of the image
    attention: np.ndarray  # (N, h, w) last decoder layer's cross-attention, mean over heads
    eos_coef: float
    queries: QueryPredictions
    model: str


def run_detr(image: np.ndarray, model_name: str = "shapes-detr") -> DetrResult:
    """Run a registered DETR (``playground.models``) on an RGB uint8 (H, W, 3) image."""
    from demos.detr.model import infer
    from playground import models

    model_name = check_choice("model", model_name, MODEL_CHOICES)
    bundle = models.get(model_name)
    logits, boxes, attention = infer(bundle, image)  # (N, K+1), (N, 4), (N, h, w)
    height, width = image.shape[:2]
    queries = predict_queries(softmax(logits), boxes, width, height)
    return DetrResult(image, bundle.class_names, logits, boxes, attention, bundle.eos_coef, queries, model_name)


def result_to_json(result: DetrResult, seed: int) -> str:
    """The raw outputs of a run on ``random_scene(seed)``, to open the tab without running torch."""
    return json.dumps({"seed": seed, "model": result.model, "class_names": list(result.class_names),
                       "eos_coef": result.eos_coef, "logits": result.logits.tolist(),
                       "boxes_cxcywh": result.boxes_cxcywh.tolist(), "attention": result.attention.tolist()})


def result_from_json(text: str) -> tuple[DetrResult, GroundTruth]:
    """``result_to_json``'s inverse (the scene is regenerated from its seed)."""
    data = json.loads(text)
    image, truth = random_scene(int(data["seed"]))
    logits, boxes = np.array(data["logits"]), np.array(data["boxes_cxcywh"])
    queries = predict_queries(softmax(logits), boxes, image.shape[1], image.shape[0])
    return DetrResult(image, tuple(data["class_names"]), logits, boxes, np.array(data["attention"]),
                      float(data["eos_coef"]), queries, data["model"]), truth


def detections_json(result: DetrResult, threshold: float) -> dict:
    """``{"detections": [{"label", "score", "box": [x0, y0, x1, y1]}]}``, best score first, in pixels."""
    threshold = check_float("threshold", threshold, 0.0, 1.0)
    q = result.queries
    order = [j for j in np.argsort(-q.scores, kind="stable") if q.scores[j] >= threshold]
    height, width = result.image.shape[:2]
    limits = np.array([width, height, width, height], dtype=np.float64)
    return {"detections": [{"label": result.class_names[q.labels[j]], "score": round(float(q.scores[j]), 4),
                            "box": [round(float(v), 2) for v in np.clip(q.boxes[j], 0, limits)]}
                           for j in order]}


def detect(image: Any, threshold: float, model_name: str = "shapes-detr") -> tuple[Image.Image, dict]:
    """The ``detect`` endpoint: an image (file or array) and a threshold -> annotated image, JSON."""
    threshold = check_float("threshold", threshold, 0.0, 1.0)
    result = run_detr(image_array(image), model_name)
    found = detections_json(result, threshold)
    return draw_detections(result.image, found), found


# ---------------------------------------------------------------------------------------------
# The matching (needs ground truth)


@dataclass(frozen=True)
class Matching:
    """Cost matrix (N queries x M objects), the optimal assignment and its loss terms."""

    cost: CostMatrix
    query_idx: np.ndarray  # (M,) query matched to each object
    target_idx: np.ndarray  # (M,)
    loss: dict[str, float]  # {"class", "L1", "GIoU", "total"} as in training (last decoder layer)


def match_scene(result: DetrResult, truth: GroundTruth, weights: CostWeights) -> Matching:
    """Hungarian matching of the predictions to the ground truth, and DETR's loss of that matching."""
    if result.model != "shapes-detr":
        raise ValueError("the matching needs the Shapes World model (its classes are the scene's classes)")
    height, width = result.image.shape[:2]
    target = xyxy_to_cxcywh(normalize_boxes(truth.boxes, width, height))  # (M, 4)
    cost = matching_cost(softmax(result.logits), result.boxes_cxcywh, truth.labels, target, weights)
    query_idx, target_idx = hungarian_match(cost.total)
    loss = loss_terms(result, truth.labels, target, weights, query_idx, target_idx)
    return Matching(cost, query_idx, target_idx, loss)


def loss_terms(result: DetrResult, labels: np.ndarray, target_cxcywh: np.ndarray, weights: CostWeights,
               query_idx: np.ndarray, target_idx: np.ndarray) -> dict:
    """DETR's set loss of one matching, in numpy (tested equal to the training code ``model.set_loss``).

    class: weighted cross-entropy, every unmatched query's target is "no object" (weight eos_coef);
    L1 and GIoU: means over the M matched pairs.
    """
    log_p = np.log(np.clip(softmax(result.logits), 1e-300, None))  # (N, K+1)
    n_queries, n_cls = log_p.shape
    target_cls = np.full(n_queries, n_cls - 1)
    target_cls[query_idx] = np.asarray(labels)[target_idx]
    w = np.where(target_cls == n_cls - 1, result.eos_coef, 1.0)  # (N,)
    cls = weights.w_class * float(-(w * log_p[np.arange(n_queries), target_cls]).sum() / w.sum())
    pred = np.asarray(result.boxes_cxcywh, dtype=np.float64)[query_idx]  # (M, 4)
    target = np.asarray(target_cxcywh, dtype=np.float64)[target_idx]
    m = max(len(query_idx), 1)
    l1 = weights.w_l1 * float(np.abs(pred - target).sum() / m)
    giou = np.array([pairwise_giou(cxcywh_to_xyxy(a), cxcywh_to_xyxy(b))[0, 0] for a, b in zip(pred, target)])
    giou_term = weights.w_giou * float((1 - giou).sum() / m)
    return {"class": cls, "L1": l1, "GIoU": giou_term, "total": cls + l1 + giou_term}


# ---------------------------------------------------------------------------------------------
# Pictures


def _canvas(image: np.ndarray, min_side: int = 384) -> tuple[Image.Image, float]:
    """The image upscaled (nearest) so its short side is at least ``min_side``; and the scale."""
    height, width = image.shape[:2]
    scale = max(1.0, min_side / min(height, width))
    scale = min(scale, 4096 / max(height, width))
    pil = Image.fromarray(image)
    if scale != 1.0:
        pil = pil.resize((max(1, round(width * scale)), max(1, round(height * scale))), Image.Resampling.NEAREST)
    return pil, scale


def _box(draw: ImageDraw.ImageDraw, box, scale: float, colour: str, text: str, width: int = 3) -> None:
    x0, y0, x1, y1 = (float(v) * scale for v in box)
    draw.rectangle([x0, y0, max(x0, x1), max(y0, y1)], outline=colour, width=width)
    if text:
        tx, ty = x0 + 2, max(0.0, y0 - 14)
        bbox = draw.textbbox((tx, ty), text)
        draw.rectangle(bbox, fill=colour)
        draw.text((tx, ty), text, fill="white")


def draw_detections(image: np.ndarray, found: dict) -> Image.Image:
    """Boxes with ``label score`` drawn on the image (upscaled for small images)."""
    pil, scale = _canvas(image)
    draw = ImageDraw.Draw(pil)
    for i, det in enumerate(found["detections"]):
        _box(draw, det["box"], scale, BOX_COLOURS[i % len(BOX_COLOURS)], f"{det['label']} {det['score']:.2f}")
    return pil


def draw_matching(result: DetrResult, truth: GroundTruth, matching: Matching) -> Image.Image:
    """Ground truth (dashed white-outlined) and the matched query's box, in one colour per pair."""
    pil, scale = _canvas(result.image)
    draw = ImageDraw.Draw(pil)
    for q, t in zip(matching.query_idx, matching.target_idx):
        colour = BOX_COLOURS[int(q) % len(BOX_COLOURS)]
        _box(draw, truth.boxes[t], scale, "white", "", width=5)
        _box(draw, truth.boxes[t], scale, colour, f"GT {SHAPES[truth.labels[t]]}", width=2)
        pred = result.queries.boxes[q]
        _box(draw, pred, scale, colour, f"q{q}", width=3)
        centre = lambda b: ((b[0] + b[2]) / 2 * scale, (b[1] + b[3]) / 2 * scale)  # noqa: E731
        draw.line([centre(truth.boxes[t]), centre(pred)], fill=colour, width=2)
    return pil


def heat_colours(heat: np.ndarray) -> np.ndarray:
    """Values in [0, 1] (H, W) -> RGB (H, W, 3) along black -> red -> yellow."""
    stops = np.array([[0, 0, 0], [205, 35, 35], [255, 225, 70]], dtype=np.float64)
    position = np.clip(heat, 0, 1) * (len(stops) - 1)
    low = np.minimum(position.astype(int), len(stops) - 2)
    frac = (position - low)[..., None]
    return stops[low] * (1 - frac) + stops[low + 1] * frac


def attention_overlay(result: DetrResult, query: int) -> Image.Image:
    """The selected query's cross-attention (h, w), upsampled over a grey copy of the image, and its box."""
    query = check_int("query", query, 0, len(result.logits) - 1)
    att = result.attention[query]  # (h, w)
    att = (att - att.min()) / max(float(att.max() - att.min()), 1e-12)
    pil, scale = _canvas(result.image)
    heat = Image.fromarray(np.uint8(255 * att)).resize(pil.size, Image.Resampling.BILINEAR)
    heat = np.asarray(heat, dtype=np.float64) / 255  # (H', W')
    grey = np.asarray(pil.convert("L"), dtype=np.float64)[..., None]  # (H', W', 1)
    blended = Image.fromarray(np.uint8(np.clip(0.4 * grey + 0.6 * heat_colours(heat), 0, 255)))
    q = result.queries
    _box(ImageDraw.Draw(blended), q.boxes[query], scale, "#22d3ee",
         f"q{query} {result.class_names[q.labels[query]]} {q.scores[query]:.2f}")
    return blended


# ---------------------------------------------------------------------------------------------
# Tables and downloads


def query_rows(result: DetrResult, threshold: float) -> tuple[list[str], list[list]]:
    """One row per query: index, best class, its p, p(no object), box, shown?"""
    q = result.queries
    header = ["query", "class", "p(class)", "p(no object)", "x0", "y0", "x1", "y1", "shown"]
    rows = [[j, result.class_names[q.labels[j]], round(float(q.scores[j]), 3), round(float(q.probs[j, -1]), 3),
             *[round(float(v), 1) for v in q.boxes[j]], bool(q.scores[j] >= threshold)]
            for j in range(len(q.scores))]
    return header, rows


def report_json(result: DetrResult, threshold: float, matching: Matching | None) -> str:
    """Everything the tab shows, as JSON text for download."""
    header, rows = query_rows(result, threshold)
    data = {"model": result.model, "threshold": threshold, **detections_json(result, threshold),
            "queries": [dict(zip(header, row)) for row in rows]}
    if matching is not None:
        data["matching"] = {"query_for_object": matching.query_idx.tolist(), "object": matching.target_idx.tolist(),
                            "cost": np.round(matching.cost.total, 4).tolist(), "loss": matching.loss}
    return json.dumps(data, indent=1)
