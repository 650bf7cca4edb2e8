"""2-D toy data shared by the SDE vs ODE and Flows tabs: built-in sets and user points.

Every sampler takes ``(n, seed)`` and returns a float64 array of shape (n, 2), roughly
centred with a spread of a few units, so both tabs can use one default plot range.
"""

from __future__ import annotations

import csv
import io
import math

import numpy as np

from playground.validate import parse_json, shown

MAX_POINTS = 10_000


def two_moons(n: int, rng: np.random.Generator) -> np.ndarray:
    n_top = n // 2
    t = rng.uniform(0, math.pi, n)
    top = np.stack([np.cos(t[:n_top]), np.sin(t[:n_top])], 1)
    bottom = np.stack([1 - np.cos(t[n_top:]), 0.5 - np.sin(t[n_top:])], 1)
    points = np.concatenate([top, bottom]) - [0.5, 0.25]
    return 1.6 * points + rng.normal(0, 0.08, (n, 2))


def eight_gaussians(n: int, rng: np.random.Generator) -> np.ndarray:
    angles = 2 * math.pi * rng.integers(0, 8, n) / 8
    centres = 2.0 * np.stack([np.cos(angles), np.sin(angles)], 1)
    return centres + rng.normal(0, 0.15, (n, 2))


def checkerboard(n: int, rng: np.random.Generator) -> np.ndarray:
    """Uniform on the dark squares of a 4 x 4 board over [-2, 2]^2."""
    x = rng.uniform(-2, 2, n)
    column = np.floor(x) + 2  # 0..3
    row = rng.integers(0, 2, n) * 2 + (column % 2)  # rows of the same parity as the column
    y = row - 2 + rng.uniform(0, 1, n)
    return np.stack([x, y], 1)


def spiral(n: int, rng: np.random.Generator) -> np.ndarray:
    t = np.sqrt(rng.uniform(0, 1, n)) * 3 * math.pi
    points = np.stack([t * np.cos(t), t * np.sin(t)], 1) / (3 * math.pi) * 2.2
    return points + rng.normal(0, 0.06, (n, 2))


def rings(n: int, rng: np.random.Generator) -> np.ndarray:
    radius = rng.choice([0.8, 1.7, 2.5], n)
    angle = rng.uniform(0, 2 * math.pi, n)
    return radius[:, None] * np.stack([np.cos(angle), np.sin(angle)], 1) + rng.normal(0, 0.06, (n, 2))


def gaussian(n: int, rng: np.random.Generator) -> np.ndarray:
    """A correlated Gaussian: the case where the exact answer is known in closed form."""
    cov = np.array([[1.0, 0.6], [0.6, 0.5]])
    return rng.multivariate_normal([0.5, -0.3], cov, n)


DATASETS = {
    "two_moons": two_moons,
    "8_gaussians": eight_gaussians,
    "checkerboard": checkerboard,
    "spiral": spiral,
    "rings": rings,
    "gaussian": gaussian,
}


def sample(name: str, n: int, seed: int) -> np.ndarray:
    """``n`` points of a built-in set, reproducible from ``seed``."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {shown(name)}; built-in sets: {', '.join(DATASETS)}")
    if not 1 <= n <= MAX_POINTS:
        raise ValueError(f"number of points must be in 1..{MAX_POINTS}, got {n}")
    return DATASETS[name](n, np.random.default_rng(seed))


def check_points(points) -> np.ndarray:
    """Validate user points: a non-empty list of finite ``[x, y]``, at most ``MAX_POINTS``."""
    try:
        array = np.asarray(points, dtype=float)
    except (TypeError, ValueError):
        raise ValueError("points must be a list of [x, y] pairs of numbers") from None
    if array.ndim != 2 or array.shape[1] != 2:
        raise ValueError(f"points must be a list of [x, y] pairs, got an array of shape {array.shape}")
    if len(array) == 0:
        raise ValueError("no points given: add at least one [x, y] point")
    if len(array) > MAX_POINTS:
        raise ValueError(f"at most {MAX_POINTS} points are allowed, got {len(array)}")
    if not np.isfinite(array).all():
        raise ValueError("points must be finite numbers (no NaN or infinity)")
    if np.abs(array).max() > 1e6:
        raise ValueError("point coordinates must be within +-1e6")
    return array


def parse_points(text: str) -> np.ndarray:
    """Points from pasted or uploaded text: JSON ``[[x, y], ...]`` or CSV with two columns.

    A CSV header row (non-numeric first line) is skipped.
    """
    text = (text or "").strip()
    if not text:
        raise ValueError("no points given: paste JSON [[x, y], ...] or two CSV columns x,y")
    if text[0] in "[{":
        data = parse_json("points", text)
        if isinstance(data, dict):
            data = data.get("points", data.get("data"))
        return check_points(data)
    rows = [r for r in csv.reader(io.StringIO(text)) if r and any(c.strip() for c in r)]
    if rows and not _is_number(rows[0][0]):
        rows = rows[1:]
    try:
        return check_points([[float(r[0]), float(r[1])] for r in rows])
    except (IndexError, ValueError) as err:
        if "points" in str(err) or "no points" in str(err):
            raise
        raise ValueError("CSV points need two numeric columns x,y on every line") from None


def load_data(data, n: int, seed: int) -> np.ndarray:
    """The one entry point for both tabs: a built-in name, a JSON/CSV string, or a list."""
    if isinstance(data, str):
        stripped = data.strip()
        if stripped in DATASETS:
            return sample(stripped, n, seed)
        if stripped and stripped[0] not in "[{" and "," not in stripped and "\n" not in stripped:
            raise ValueError(f"unknown dataset {shown(stripped)}; built-in sets: {', '.join(DATASETS)}, "
                             "or a JSON list of [x, y] points")
        return parse_points(stripped)
    return check_points(data)


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def pixel_to_point(px: float, py: float, size: int, extent: float = 3.0) -> list[float]:
    """A click at pixel ``(px, py)`` of a ``size`` x ``size`` canvas showing ``[-extent, extent]^2``
    (y up) as a data point ``[x, y]``, rounded to 3 decimals."""
    x = -extent + 2 * extent * px / (size - 1)
    y = extent - 2 * extent * py / (size - 1)
    return [round(float(x), 3), round(float(y), 3)]
