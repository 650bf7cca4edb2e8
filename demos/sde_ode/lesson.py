"""What the SDE vs ODE lesson asks, computed from the tab's compute (no gradio).

Each function takes the tab's ``Controls`` for a step's view (``demos/sde_ode/lesson.md``) and
runs the tab's own samplers from the same ``x_T`` the tab uses (its seed, its defaults)."""

import numpy as np

from demos.sde_ode import compute


def _mode(x: np.ndarray) -> np.ndarray:
    """Which of the 8 Gaussians (on a circle, one every 45 degrees) a point is nearest in angle."""
    return np.round(np.arctan2(x[:, 1], x[:, 0]) / (np.pi / 4)).astype(int) % 8


def same_mode(controls) -> str:
    """The share of particles whose SDE sample and ODE sample (same x_T) fall in the same Gaussian:
    over 90% "nearly all", 35-65% "about half", under 25% "about 1 in 8"."""
    run = compute.simulate(controls.params())
    rate = float((_mode(run.sde_final) == _mode(run.ode_final)).mean())
    if rate > 0.9:
        return "nearly all (over 90%)"
    if 0.35 <= rate <= 0.65:
        return "about half"
    if rate < 0.25:
        return "about 1 in 8, as if by chance"
    return f"{rate:.0%}"


def share_gap(controls) -> str:
    """The largest difference, over the 8 Gaussians, between the SDE's and the ODE's share of samples
    in that Gaussian, in percentage points: under 5, 5-20 or over 20."""
    run = compute.simulate(controls.params())
    share = [np.bincount(_mode(x), minlength=8) / len(x) for x in (run.sde_final, run.ode_final)]
    gap = 100 * float(np.abs(share[0] - share[1]).max())
    return "under 5 points" if gap < 5 else "5 to 20 points" if gap <= 20 else "over 20 points"


def prior_width(controls) -> str:
    """The prior's standard deviation (sigma_T = sigma_max for VE), against the data's spread:
    about 1, about the data's per-axis std, or about the data's diameter (largest pairwise distance)."""
    p = controls.params().checked()
    data = compute.load_points(p)
    std = compute.build_sde(p, data).prior_std()
    diameter = float(np.sqrt(((data[:, None] - data[None]) ** 2).sum(-1)).max())
    if abs(std - 1) < 0.1:
        return "1, as for VP"
    if abs(std - diameter) < 0.1 * diameter:
        return "about the data's diameter, 5"
    if data.std(0).min() <= std <= data.std(0).max():
        return "about the data's spread, 1 to 1.5"
    return f"{std:.2f}"


def roundtrip_error(controls) -> str:
    """The mean distance between a data point and its ODE encode-then-decode (the tab's
    "encoded to noise and decoded back" view): under 0.05, 0.05-0.5, or over 0.5."""
    err = compute.encode_decode(compute.simulate(controls.params()))["mean_error"]
    return "under 0.05" if err < 0.05 else "between 0.05 and 0.5" if err <= 0.5 else "over 0.5"


def nearer_sampler(controls) -> str:
    """Which final cloud has the smaller sliced W1 to the data (the stats table's last column);
    "about equally" when the two differ by less than 10%."""
    run = compute.simulate(controls.params())
    sde = compute.sliced_wasserstein(run.sde_final, run.data)
    ode = compute.sliced_wasserstein(run.ode_final, run.data)
    if abs(sde - ode) < 0.1 * max(sde, ode):
        return "about equally near"
    return "the SDE's" if sde < ode else "the ODE's"


def ode_near_data(controls) -> bool:
    """The probability-flow ODE's sliced W1 to the data is below 0.04 (only the ODE is run)."""
    p = controls.params().checked()
    data = compute.load_points(p)
    sde = compute.build_sde(p, data)
    score = compute.build_score(p, data, sde)
    x_ode = compute.run_ode(p, sde, score, compute.prior_noise(sde, p.n_samples, p.seed))[0]
    return compute.sliced_wasserstein(x_ode, data) < 0.04
