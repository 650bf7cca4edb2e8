"""DETR's set-prediction pieces in numpy: box formats, IoU/GIoU, the Hungarian matcher, mAP.

DETR (Carion et al., 2020, arXiv:2005.12872) predicts a fixed set of N object queries, each a
class distribution over K classes plus "no object" (index K) and a box ``b = (cx, cy, w, h)``
normalised to [0, 1]. Training pairs predictions with ground truth one-to-one by the permutation

    sigma* = argmin_sigma  sum_i  C(y_i, yhat_sigma(i))
    C(y_i, yhat_j) = -w_class * p_j(c_i) + w_L1 * ||b_i - bhat_j||_1 - w_GIoU * GIoU(b_i, bhat_j)

with ``w_class, w_L1, w_GIoU = 1, 5, 2`` (section 3.1 and A.1 of the paper), solved exactly by the
Hungarian algorithm (``scipy.optimize.linear_sum_assignment``). Unmatched queries learn "no object".

The same code serves training (``demos/detr/train.py``), the tab, the tests and the benchmark.
No torch here: the matcher runs on detached numbers, as in the paper (it is not differentiated).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CostWeights:
    """Weights of the matching cost (and of the loss terms): the paper's 1, 5, 2."""

    w_class: float = 1.0
    w_l1: float = 5.0
    w_giou: float = 2.0


# ---------------------------------------------------------------------------------------------
# Box formats. Boxes are (..., 4) arrays.


def cxcywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    """``(cx, cy, w, h) -> (x0, y0, x1, y1) = (cx - w/2, cy - h/2, cx + w/2, cy + h/2)``."""
    boxes = np.asarray(boxes, dtype=np.float64)
    cx, cy, w, h = np.moveaxis(boxes, -1, 0)
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=-1)


def xyxy_to_cxcywh(boxes: np.ndarray) -> np.ndarray:
    """``(x0, y0, x1, y1) -> ((x0 + x1)/2, (y0 + y1)/2, x1 - x0, y1 - y0)``."""
    boxes = np.asarray(boxes, dtype=np.float64)
    x0, y0, x1, y1 = np.moveaxis(boxes, -1, 0)
    return np.stack([(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0], axis=-1)


def normalize_boxes(boxes: np.ndarray, width: float, height: float) -> np.ndarray:
    """Pixel boxes (either format) -> fractions of the image: divide x by W and y by H."""
    return np.asarray(boxes, dtype=np.float64) / np.array([width, height, width, height])


def denormalize_boxes(boxes: np.ndarray, width: float, height: float) -> np.ndarray:
    """Fractions of the image (either format) -> pixels: multiply x by W and y by H."""
    return np.asarray(boxes, dtype=np.float64) * np.array([width, height, width, height])


def box_area(boxes: np.ndarray) -> np.ndarray:
    """Area of xyxy boxes (..., 4) -> (...)."""
    return np.clip(boxes[..., 2] - boxes[..., 0], 0, None) * np.clip(boxes[..., 3] - boxes[..., 1], 0, None)


def pairwise_iou(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """IoU and union of every pair of xyxy boxes: a (N, 4), b (M, 4) -> (N, M), (N, M)."""
    a, b = np.asarray(a, dtype=np.float64).reshape(-1, 4), np.asarray(b, dtype=np.float64).reshape(-1, 4)
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])  # (N, M, 2)
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])  # (N, M, 2)
    inter = np.prod(np.clip(bottom_right - top_left, 0, None), axis=-1)  # (N, M)
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return inter / np.maximum(union, 1e-12), union


def pairwise_giou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Generalized IoU: ``GIoU = IoU - (|E| - |A u B|) / |E|``, E the smallest enclosing box. (N, M)."""
    a, b = np.asarray(a, dtype=np.float64).reshape(-1, 4), np.asarray(b, dtype=np.float64).reshape(-1, 4)
    iou, union = pairwise_iou(a, b)
    top_left = np.minimum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.maximum(a[:, None, 2:], b[None, :, 2:])
    enclosing = np.prod(np.clip(bottom_right - top_left, 0, None), axis=-1)  # (N, M)
    return iou - (enclosing - union) / np.maximum(enclosing, 1e-12)


# ---------------------------------------------------------------------------------------------
# The Hungarian matcher


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis."""
    z = np.asarray(logits, dtype=np.float64)
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


@dataclass(frozen=True)
class CostMatrix:
    """The matching cost C (N queries x M targets) and its three weighted terms."""

    total: np.ndarray  # (N, M)
    cls: np.ndarray  # (N, M)  -w_class * p_j(c_i)
    l1: np.ndarray  # (N, M)  w_L1 * ||b_i - bhat_j||_1
    giou: np.ndarray  # (N, M)  -w_GIoU * GIoU(b_i, bhat_j)


def matching_cost(probs: np.ndarray, pred_boxes: np.ndarray, labels: np.ndarray,
                  target_boxes: np.ndarray, weights: CostWeights = CostWeights()) -> CostMatrix:
    """DETR's pairwise cost for one image.

    probs (N, K+1) class probabilities; pred_boxes (N, 4) and target_boxes (M, 4) normalised
    cxcywh; labels (M,) class ids. ``C = -w_class p_j(c_i) + w_L1 |b_i - bhat_j|_1 - w_GIoU GIoU``.
    """
    probs = np.asarray(probs, dtype=np.float64)
    pred_boxes = np.asarray(pred_boxes, dtype=np.float64).reshape(-1, 4)
    target_boxes = np.asarray(target_boxes, dtype=np.float64).reshape(-1, 4)
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    cls = -weights.w_class * probs[:, labels]  # (N, M)
    l1 = weights.w_l1 * np.abs(pred_boxes[:, None, :] - target_boxes[None, :, :]).sum(-1)  # (N, M)
    giou = -weights.w_giou * pairwise_giou(cxcywh_to_xyxy(pred_boxes), cxcywh_to_xyxy(target_boxes))
    return CostMatrix(cls + l1 + giou, cls, l1, giou)


def hungarian_match(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The minimum-cost one-to-one assignment of an (N, M) cost, N >= M or not.

    Returns ``(query_idx, target_idx)``, each (min(N, M),), sorted by target index.
    """
    from scipy.optimize import linear_sum_assignment  # 0.4 s to import: not at the app's start-up

    cost = np.asarray(cost, dtype=np.float64)
    if not np.isfinite(cost).all():
        raise ValueError("the matching cost contains NaN or infinity")
    rows, cols = linear_sum_assignment(cost)
    order = np.argsort(cols)
    return rows[order].astype(np.int64), cols[order].astype(np.int64)


def match_batch(probs: np.ndarray, pred_boxes: np.ndarray, targets: list[tuple[np.ndarray, np.ndarray]],
                weights: CostWeights = CostWeights()) -> list[tuple[np.ndarray, np.ndarray]]:
    """Match a batch: probs (B, N, K+1), pred_boxes (B, N, 4), targets [(labels (M_b,), boxes (M_b, 4))].

    As in DETR's ``HungarianMatcher``, the cost of the whole batch is computed at once,
    (B*N, sum M_b), and each image's own block is assigned independently.
    """
    batch, n_queries = np.shape(probs)[:2]
    labels = np.concatenate([np.asarray(lab, dtype=np.int64).reshape(-1) for lab, _ in targets])
    boxes = np.concatenate([np.asarray(box, dtype=np.float64).reshape(-1, 4) for _, box in targets])
    flat = matching_cost(np.reshape(probs, (batch * n_queries, -1)), np.reshape(pred_boxes, (-1, 4)),
                         labels, boxes, weights).total.reshape(batch, n_queries, -1)  # (B, N, sum M)
    matches, start = [], 0
    for b, (lab, _) in enumerate(targets):
        stop = start + len(np.asarray(lab).reshape(-1))
        matches.append(hungarian_match(flat[b, :, start:stop]))
        start = stop
    return matches


# ---------------------------------------------------------------------------------------------
# Average precision (PASCAL VOC style, all-point interpolation)


def average_precision(scores: np.ndarray, is_true: np.ndarray, n_positives: int) -> float:
    """AP = area under the interpolated precision-recall curve.

    Detections sorted by score; precision at recall r is the max precision at any recall >= r.
    """
    if n_positives == 0:
        return float("nan")
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    hits = np.asarray(is_true, dtype=np.float64)[order]
    tp, fp = np.cumsum(hits), np.cumsum(1 - hits)
    recall = np.concatenate([[0.0], tp / n_positives, [1.0]])
    precision = np.concatenate([[1.0], tp / np.maximum(tp + fp, 1e-12), [0.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]  # the envelope
    return float(np.sum((recall[1:] - recall[:-1]) * precision[1:]))


def greedy_hits(pred_boxes: np.ndarray, scores: np.ndarray, gt_boxes: np.ndarray,
                iou_threshold: float = 0.5) -> np.ndarray:
    """For one image and one class: is each detection a true positive? (D,) bool.

    Detections, best score first, take the unclaimed ground-truth box of highest IoU if it is at
    least ``iou_threshold``; a second detection of the same object is a false positive.
    """
    hits = np.zeros(len(scores), dtype=bool)
    if len(gt_boxes) == 0 or len(scores) == 0:
        return hits
    iou, _ = pairwise_iou(pred_boxes, gt_boxes)  # (D, G)
    claimed = np.zeros(len(gt_boxes), dtype=bool)
    for d in np.argsort(-np.asarray(scores), kind="stable"):
        candidates = np.where(claimed, -1.0, iou[d])
        g = int(np.argmax(candidates))
        if candidates[g] >= iou_threshold:
            claimed[g], hits[d] = True, True
    return hits


def mean_average_precision(detections: list[dict], ground_truth: list[dict], n_classes: int,
                           iou_threshold: float = 0.5) -> tuple[float, np.ndarray]:
    """mAP over images: each item is ``{"boxes": (D, 4) xyxy, "labels": (D,), "scores": (D,)}``
    (ground truth without scores). Returns (mAP, per-class AP (n_classes,))."""
    aps = np.zeros(n_classes)
    for c in range(n_classes):
        scores, hits, n_pos = [], [], 0
        for det, gt in zip(detections, ground_truth):
            gt_boxes = np.asarray(gt["boxes"]).reshape(-1, 4)[np.asarray(gt["labels"]) == c]
            keep = np.asarray(det["labels"]) == c
            d_boxes, d_scores = np.asarray(det["boxes"]).reshape(-1, 4)[keep], np.asarray(det["scores"])[keep]
            hits.append(greedy_hits(d_boxes, d_scores, gt_boxes, iou_threshold))
            scores.append(d_scores)
            n_pos += len(gt_boxes)
        aps[c] = average_precision(np.concatenate(scores), np.concatenate(hits), n_pos)
    return float(np.nanmean(aps)), aps
