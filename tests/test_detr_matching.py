"""DETR's matcher and box formats against trusted references (no model, no torch needed)."""

import itertools

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from demos.detr import matching as M


def random_boxes(rng, n):
    """(n, 4) normalised cxcywh boxes inside the unit square."""
    wh = rng.uniform(0.05, 0.5, (n, 2))
    centre = rng.uniform(wh / 2, 1 - wh / 2)
    return np.concatenate([centre, wh], 1)


def random_problem(rng, n_queries, n_targets, n_classes=3):
    probs = M.softmax(rng.normal(0, 2, (n_queries, n_classes + 1)))
    return probs, random_boxes(rng, n_queries), rng.integers(0, n_classes, n_targets), random_boxes(rng, n_targets)


def brute_force(cost):
    """Minimum over every injective map targets -> queries (itertools.permutations)."""
    n, m = cost.shape
    best = min(itertools.permutations(range(n), m), key=lambda perm: sum(cost[q, t] for t, q in enumerate(perm)))
    return np.array(best), sum(cost[q, t] for t, q in enumerate(best))


@pytest.mark.parametrize("n_queries,n_targets", [(1, 1), (3, 2), (4, 4), (5, 3), (6, 1), (7, 4)])
def test_matching_is_optimal_and_equals_scipy(n_queries, n_targets):
    rng = np.random.default_rng(n_queries * 10 + n_targets)
    for _ in range(5):
        cost = M.matching_cost(*random_problem(rng, n_queries, n_targets)).total
        queries, targets = M.hungarian_match(cost)
        assert list(targets) == list(range(n_targets))
        assert len(set(queries)) == n_targets  # one-to-one
        best_perm, best_cost = brute_force(cost)
        assert cost[queries, targets].sum() == pytest.approx(best_cost, abs=1e-9)
        rows, cols = linear_sum_assignment(cost)
        assert cost[rows, cols].sum() == pytest.approx(cost[queries, targets].sum(), abs=1e-12)
        # with continuous random costs the optimum is unique: the same assignment
        assert dict(zip(cols, rows)) == dict(zip(targets, queries)) == dict(enumerate(best_perm))


def test_cost_terms_follow_the_formula():
    rng = np.random.default_rng(0)
    probs, pred, labels, target = random_problem(rng, 4, 3)
    w = M.CostWeights(1.5, 3.0, 0.5)
    cost = M.matching_cost(probs, pred, labels, target, w)
    j, i = 2, 1
    giou = M.pairwise_giou(M.cxcywh_to_xyxy(target[i]), M.cxcywh_to_xyxy(pred[j]))[0, 0]
    expected = -1.5 * probs[j, labels[i]] + 3.0 * np.abs(target[i] - pred[j]).sum() - 0.5 * giou
    assert cost.total[j, i] == pytest.approx(expected)
    np.testing.assert_allclose(cost.total, cost.cls + cost.l1 + cost.giou)


def test_batched_and_single_matching_agree():
    rng = np.random.default_rng(1)
    n_queries, sizes = 8, [3, 0, 5, 1]
    probs = M.softmax(rng.normal(0, 2, (len(sizes), n_queries, 4)))
    pred = np.stack([random_boxes(rng, n_queries) for _ in sizes])
    targets = [(rng.integers(0, 3, m), random_boxes(rng, m)) for m in sizes]
    batched = M.match_batch(probs, pred, targets)
    for b, (labels, boxes) in enumerate(targets):
        single = M.hungarian_match(M.matching_cost(probs[b], pred[b], labels, boxes).total)
        np.testing.assert_array_equal(batched[b][0], single[0])
        np.testing.assert_array_equal(batched[b][1], single[1])
    assert len(batched[1][0]) == 0


def test_box_formats_round_trip():
    rng = np.random.default_rng(2)
    cxcywh = random_boxes(rng, 50)
    np.testing.assert_allclose(M.xyxy_to_cxcywh(M.cxcywh_to_xyxy(cxcywh)), cxcywh, atol=1e-12)
    xyxy_px = M.denormalize_boxes(M.cxcywh_to_xyxy(cxcywh), 640, 480)
    assert (xyxy_px[:, [0, 2]] <= 640 + 1e-9).all() and (xyxy_px[:, [1, 3]] <= 480 + 1e-9).all()
    np.testing.assert_allclose(M.normalize_boxes(xyxy_px, 640, 480), M.cxcywh_to_xyxy(cxcywh), atol=1e-12)
    np.testing.assert_allclose(M.cxcywh_to_xyxy([[0.5, 0.5, 0.2, 0.4]]), [[0.4, 0.3, 0.6, 0.7]])


def test_iou_and_giou_known_values():
    a = np.array([[0, 0, 2, 2]])
    b = np.array([[1, 1, 3, 3], [0, 0, 2, 2], [4, 0, 6, 2]])
    iou, _ = M.pairwise_iou(a, b)
    np.testing.assert_allclose(iou[0], [1 / 7, 1, 0])
    giou = M.pairwise_giou(a, b)[0]
    np.testing.assert_allclose(giou, [1 / 7 - (9 - 7) / 9, 1, 0 - (12 - 8) / 12])


def test_average_precision():
    # two objects; ranked detections: hit, miss, hit -> AP = 1 * 0.5 + 2/3 * 0.5
    assert M.average_precision([0.9, 0.8, 0.7], [1, 0, 1], 2) == pytest.approx(0.5 + 1 / 3)
    truth = [{"boxes": np.array([[0, 0, 10, 10], [20, 20, 30, 30]]), "labels": np.array([0, 1])}]
    dup = [{"boxes": np.array([[0, 0, 10, 10], [1, 0, 10, 10], [20, 20, 30, 31]]), "labels": np.array([0, 0, 1]),
            "scores": np.array([0.9, 0.95, 0.5])}]
    m_ap, per_class = M.mean_average_precision(dup, truth, 2)
    # class 0: the duplicate with the higher score is the hit, the other a false positive after it
    assert per_class[0] == pytest.approx(1.0) and per_class[1] == pytest.approx(1.0) and m_ap == 1.0
    dup[0]["scores"] = np.array([0.9, 0.95, 0.99])
    dup[0]["labels"] = np.array([0, 0, 0])  # the square is called a circle: class 1 is missed
    _, per_class = M.mean_average_precision(dup, truth, 2)
    assert per_class[1] == 0.0 and per_class[0] == pytest.approx(1 / 2)


def test_non_finite_cost_is_refused():
    with pytest.raises(ValueError, match="NaN"):
        M.hungarian_match(np.array([[np.nan, 1.0]]))
