"""What the DETR lesson asks, computed with the embedded shapes-detr on the view's scene (no gradio).

Each function takes the tab's ``compute.DetrParams`` for a step's view (``demos/detr/lesson.md``):
the scene is ``compute.random_scene(seed)``, run through the model as the tab's link does."""

import numpy as np

from demos.detr import compute
from demos.detr.matching import CostWeights, pairwise_iou


def _run(p):
    """The scene of ``p.seed``, its ground truth and DETR's result on it."""
    p = p.checked()
    image, truth = compute.random_scene(p.seed)
    return compute.run_detr(image, p.model), truth


def _says_nothing(result) -> np.ndarray:
    """(N,) bool: the query's most likely class, "no object" included, is "no object"."""
    return result.queries.probs.argmax(-1) == result.queries.probs.shape[1] - 1


def no_object_queries(p) -> float:
    """How many of the N queries put their highest probability on "no object" (the table's
    p(no object) column above every class)."""
    result, _ = _run(p)
    return float(_says_nothing(result).sum())


def what_query_says(p) -> str:
    """What query ``p.query`` predicts, against the shown query (score >= threshold) whose box
    overlaps its box most: "no object (∅)", the same shape as that query, or a different shape."""
    result, _ = _run(p)
    q = result.queries
    if _says_nothing(result)[p.query]:
        return "no object (∅)"
    shown = [j for j in np.flatnonzero(q.scores >= p.threshold) if j != p.query]
    iou, _ = pairwise_iou(q.boxes[[p.query]], q.boxes[shown])
    other = shown[int(iou[0].argmax())]
    return "the same shape, about as sure" if q.labels[other] == q.labels[p.query] else "a different shape"


def duplicate_shown(p) -> bool:
    """Some object of the scene gets two or more shown boxes (score >= threshold, IoU >= 0.5)."""
    result, truth = _run(p)
    q = result.queries
    keep = q.scores >= p.threshold
    if not keep.any():
        return False
    iou, _ = pairwise_iou(q.boxes[keep], truth.boxes)  # (shown, M)
    return bool(((iou >= 0.5).sum(axis=0) >= 2).any())


def rematched_objects(p) -> str:
    """How many objects are matched to a different query at the view's weights than at the paper's
    (1, 5, 2): none, 1 or 2, or 3 or more."""
    result, truth = _run(p)
    here = compute.match_scene(result, truth, p.weights).query_idx
    paper = compute.match_scene(result, truth, CostWeights()).query_idx
    changed = int((here != paper).sum())  # both sorted by object
    return "none" if changed == 0 else "1 or 2" if changed <= 2 else "3 or more"


def matches_a_no_object_query(p) -> str:
    """Whether the optimal assignment at the view's weights pairs an object with a query whose most
    likely class is "no object"."""
    result, truth = _run(p)
    matched = compute.match_scene(result, truth, p.weights).query_idx
    return "yes" if _says_nothing(result)[matched].any() else "no"
