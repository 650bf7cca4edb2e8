"""What the Flows lesson asks, computed from the tab's own flows (no gradio; torch inside).

Each function takes the tab's ``Controls`` for a step's view (``demos/flows/lesson.md``). The views
use the tab's fast settings (300 training steps): the functions train the flow exactly as the
Train button does (same seed, data, split, optimiser) but skip the per-layer views it precomputes,
and evaluate only the numbers they need."""

import numpy as np

from demos.flows import compute

RING_POINTS = np.array([[2.0, 0.0], [0.0, 2.0], [-2.0, 0.0], [0.0, -2.0]])  # on the ring |x| = 2
CENTRE = np.array([[0.0, 0.0]])


def _trained(p):
    """(model, train points, held-out points) of the flow the tab trains for ``p`` (FlowParams)."""
    from demos.flows import fit

    points, _ = compute.load_points(p.data, p.seed)
    train, heldout = compute.split(points, p.seed)
    model = None
    for model, _step, _history in fit.train_flow(p.flow, p.n_layers, train, heldout, p.train_steps, p.seed):
        pass
    return model, train, heldout


def _grid_log_density(model, train, heldout):
    """(x, y, log p on the API grid (len(y), len(x))) of a trained flow."""
    from demos.flows import fit

    x, y = compute.grid_axes(np.concatenate([train, heldout]), compute.GRID_SIZE)
    return x, y, fit.log_density(model, compute.grid_points(x, y)).reshape(len(y), len(x))


def grid_mass(controls) -> str:
    """The trained flow's density summed over the tab's grid (cell area times exp log p):
    within 0.02 of 1 reads "1"; otherwise the band it falls in."""
    x, y, log_p = _grid_log_density(*_trained(controls.params()))
    mass = float(np.exp(log_p).sum() * (x[1] - x[0]) * (y[1] - y[0]))
    if abs(mass - 1) < 0.02:
        return "1, up to the grid's edges"
    return "well below 1 - training has not finished" if mass < 0.98 else "far above 1 - it is unnormalised"


def centre_share(controls) -> str:
    """The learned density at the ring's centre (0, 0) over its mean density at four points on the
    ring |x| = 2: under 1e-6 "under one in a million", 0.3%-30% "a few percent", over 0.5 "about the same"."""
    from demos.flows import fit

    model, _, _ = _trained(controls.params())
    ratio = float(np.exp(fit.log_density(model, CENTRE))[0] / np.exp(fit.log_density(model, RING_POINTS)).mean())
    if ratio < 1e-6:
        return "under one in a million, as in the true density"
    if 0.003 <= ratio <= 0.3:
        return "a few percent"
    if ratio > 0.5:
        return "about the same as on the ring"
    return f"{ratio:.2%}"


def centre_log_det(controls) -> str:
    """log|det dz/dx| of the whole flow (the tab's log-det view at the last layer) at the ring's
    centre minus its mean at four points on the ring: below -1 "well below", above 1 "well above"."""
    from demos.flows import fit

    model, _, _ = _trained(controls.params())
    _, log_det = fit.stage_densities(model, np.concatenate([CENTRE, RING_POINTS]))
    gap = float(log_det[-1, 0] - log_det[-1, 1:].mean())
    if gap < -1:
        return "well below - the flow stretches space there"
    if gap > 1:
        return "well above - the flow squeezes space there"
    return "about the same as on the ring"


def same_as_eight_slices(controls) -> str:
    """Flow matching: the held-out mean log-likelihood at the view's K against K = 8 (same seed and
    steps): equal to 3 decimals reads "the same"; otherwise higher or lower."""
    from demos.flows import fit

    p = controls.params()
    scores = []
    for k in (p.n_layers, 8):
        model, _, heldout = _trained(compute.FlowParams(p.data, p.flow, k, p.train_steps, p.seed))
        scores.append(float(fit.log_density(model, heldout).mean()))
    if round(scores[0], 3) == round(scores[1], 3):
        return "the same, to three decimals"
    return "lower than with K = 8" if scores[0] < scores[1] else "higher than with K = 8"


def kl_below_01(controls) -> bool:
    """KL(true || learned) on the tab's grid is below 0.1 nats (analytic targets only)."""
    from demos.flows.targets import TARGETS

    p = controls.params()
    if p.data not in TARGETS:
        return False
    x, y, log_q = _grid_log_density(*_trained(p))
    log_p = TARGETS[p.data].log_pdf(compute.grid_points(x, y)).reshape(len(y), len(x))
    return compute.grid_kl(log_p, log_q, x, y) < 0.1
