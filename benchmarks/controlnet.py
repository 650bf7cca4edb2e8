"""ControlNet tab: does the generated shape fill an outline drawn by someone else? And how fast?

The outlines here come from this file's own freehand drawer, written independently of the
training generator (``shapes_world.sketch_sample``): shapes with their own irregularity (radial
harmonics, jittered and slightly rotated corners), a smoothed hand tremor, a random start with
overshoot or a gap, drawn with a round pen of 1.6-5 px in pure black on white paper, like the
browser canvas. For each outline and prompt ``a {colour} {shape}``:

* IoU between the generated shape's foreground (``benchmarks.shapes_checker``: pixels that differ
  from the border's background by > 60, largest component) and the filled outline, both 64 x 64;
* colour right: the checker's palette colour equals the prompt's.

Targets (issue 7): mean IoU >= 0.7 at conditioning scale 1.0, colour right >= 90%, IoU clearly
lower at scale 0; 25 steps within 2 s.

    python -m benchmarks.controlnet [--n 36] [--threads 1]
    python -m benchmarks.controlnet --write-examples   # the example PNGs of the tab
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np

from benchmarks import shapes_checker

ROOT = Path(__file__).resolve().parent.parent
CANVAS = 256
SHAPES = ("circle", "square", "triangle")
COLOURS = tuple(shapes_checker.PALETTE)


# ---------------------------------------------------------------------------------------------
# An independent freehand outline drawer


def ideal_outline(kind: str, rng: np.random.Generator, half: float, n: int = 360) -> np.ndarray:
    """Closed outline (n, 2) around the origin: irregular circle, jittered square or triangle."""
    theta = np.linspace(0, 2 * np.pi, n, endpoint=False)
    if kind == "circle":
        radius = half * np.ones(n)
        for k in (2, 3, 4):
            radius *= 1 + rng.uniform(-0.03, 0.03) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
        aspect = rng.uniform(0.94, 1.06)
        return np.stack([radius * np.cos(theta) * aspect, radius * np.sin(theta) / aspect], 1)
    corners = {"square": [(-1, -1), (1, -1), (1, 1), (-1, 1)], "triangle": [(0, -1), (1, 1), (-1, 1)]}[kind]
    corners = np.array(corners, dtype=np.float64) * half + rng.normal(0, 0.025 * half, (len(corners), 2))
    angle = np.deg2rad(rng.uniform(-3, 3))
    corners = corners @ np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]])
    closed = np.vstack([corners, corners[:1]])  # (K+1, 2)
    cumulative = np.concatenate([[0], np.cumsum(np.linalg.norm(np.diff(closed, axis=0), axis=1))])
    t = np.linspace(0, cumulative[-1], n, endpoint=False)
    return np.stack([np.interp(t, cumulative, closed[:, 0]), np.interp(t, cumulative, closed[:, 1])], 1)


def tremor(n: int, rng: np.random.Generator, amplitude: float) -> np.ndarray:
    """A smooth random closed offset curve (n, 2): white noise averaged over a circular window."""
    noise = rng.normal(0, 1, (n, 2))
    kernel = np.ones(25) / 25
    smooth = np.stack([np.convolve(np.concatenate([noise[-12:, a], noise[:, a], noise[:12, a]]), kernel, "valid")
                       for a in range(2)], 1)[:n]
    return amplitude * smooth / max(smooth.std(), 1e-9)


def pen_stroke(points: np.ndarray, radius: float) -> np.ndarray:
    """A round pen of ``radius`` px dragged along ``points``: grey (256, 256) uint8, black on white."""
    from PIL import Image, ImageDraw

    image = Image.new("L", (CANVAS, CANVAS), 255)
    draw = ImageDraw.Draw(image)
    for (x0, y0), (x1, y1) in zip(points[:-1], points[1:]):
        for f in np.linspace(0, 1, max(2, int(np.hypot(x1 - x0, y1 - y0)) + 1)):
            x, y = x0 + f * (x1 - x0), y0 + f * (y1 - y0)
            draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=0)
    return np.asarray(image)


def filled_mask(points: np.ndarray, size: int = 64) -> np.ndarray:
    """The region inside the closed outline ``points`` (at 256 px), as a (size, size) bool mask."""
    from PIL import Image, ImageDraw

    image = Image.new("L", (CANVAS, CANVAS), 0)
    ImageDraw.Draw(image).polygon([tuple(p) for p in points], fill=255)
    return np.asarray(image.resize((size, size), Image.Resampling.BOX)) >= 128


def freehand(kind: str, rng: np.random.Generator, tremor_px: float = 1.5,
             gap: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A freehand outline: sketch (256, 256) uint8 and the filled outline (64, 64) bool."""
    half = rng.uniform(40, 84)  # box side 80-168 px = 20-42 px at 64
    centre = rng.uniform(half + 10, CANVAS - half - 10, size=2)
    outline = ideal_outline(kind, rng, half) + centre  # (n, 2)
    outline = outline + tremor(len(outline), rng, tremor_px)
    path = np.roll(outline, int(rng.integers(len(outline))), axis=0)
    gap = rng.uniform(-0.05, 0.04) if gap is None else gap  # < 0: overshoot past the start
    n_draw = int(round(len(path) * (1 - gap)))
    path = np.concatenate([path, path[: max(0, n_draw - len(path))]])[:n_draw]
    sketch = pen_stroke(path, radius=rng.uniform(0.8, 2.5))
    return sketch, filled_mask(outline)


# ---------------------------------------------------------------------------------------------
# Measures


def foreground(image: np.ndarray) -> np.ndarray:
    """The generated object's mask (H, W): differs from the border background by > 60, largest part."""
    difference = np.abs(image.astype(np.float64) - shapes_checker.background_colour(image)).max(axis=2)
    return shapes_checker.largest_component(difference > shapes_checker.FOREGROUND_DIFF)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def quality(n: int, scales=(1.0, 0.0), steps: int = 25, guidance: float = 5.0) -> dict[float, dict]:
    """Mean IoU and colour accuracy at each conditioning scale over ``n`` freehand outlines."""
    from demos.controlnet import compute

    rows = {s: {"iou": [], "colour": [], "shape": []} for s in scales}
    for i in range(n):
        kind, colour = SHAPES[i % 3], COLOURS[(i // 3) % len(COLOURS)]
        sketch, filled = freehand(kind, np.random.default_rng([2024, i]))
        for s in scales:
            params = compute.ControlParams(prompt=f"a {colour} {kind}", conditioning_scale=s,
                                           guidance_scale=guidance, steps=steps, seed=1000 + i)
            image = compute.generate(sketch, params).image
            check = shapes_checker.check(image)
            rows[s]["iou"].append(iou(foreground(image), filled))
            rows[s]["colour"].append(check.colour == colour)
            rows[s]["shape"].append(check.shape == kind)
    return {s: {k: float(np.mean(v)) for k, v in r.items()} for s, r in rows.items()}


def speed(runs: int = 10, steps: int = 25) -> dict[str, float]:
    """Median seconds of a full 25-step generation (CFG on) and of its denoising loop alone."""
    from demos.controlnet import compute

    sketch, _ = freehand("circle", np.random.default_rng(7))
    params = compute.ControlParams(steps=steps)
    compute.generate(sketch, params)  # load and warm up
    totals, loops = [], []
    for seed in range(runs):
        result = compute.generate(sketch, compute.ControlParams(steps=steps, seed=seed))
        totals.append(result.timings["total"])
        loops.append(result.timings["denoise"])
    return {"total": statistics.median(totals), "denoise": statistics.median(loops)}


def write_examples(folder: Path = ROOT / "assets" / "examples" / "controlnet") -> None:
    """The tab's example outlines (freehand drawer, fixed seeds)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    specs = [("circle.png", "circle", 1, 1.5, 0.0), ("square.png", "square", 2, 1.5, 0.0),
             ("triangle.png", "triangle", 3, 1.5, -0.03), ("wobbly_circle.png", "circle", 4, 4.0, 0.0),
             ("open_triangle.png", "triangle", 5, 2.0, 0.06)]
    for name, kind, seed, tremor_px, gap in specs:
        sketch, _ = freehand(kind, np.random.default_rng([77, seed]), tremor_px, gap)
        Image.fromarray(sketch).save(folder / name, optimize=True)
        print("wrote", folder / name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=36, help="outlines (each of 3 shapes x 6 colours in turn)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (2 oversubscribes a shared 2-core machine)")
    parser.add_argument("--write-examples", action="store_true")
    args = parser.parse_args()
    if args.write_examples:
        return write_examples()
    import torch

    torch.set_num_threads(args.threads)
    print(f"machine load (1/5/15 min): {' '.join(f'{x:.2f}' for x in os.getloadavg())}, torch threads {args.threads}")
    start = time.perf_counter()
    table = quality(args.n)
    print(f"\nquality on {args.n} freehand outlines (25 DDIM steps, guidance 5), {time.perf_counter() - start:.0f} s")
    print(f"{'scale s':>8}{'mean IoU':>10}{'colour right':>14}{'shape right':>13}   target")
    for s, row in table.items():
        target = "IoU >= 0.70, colour >= 90%" if s == 1.0 else "IoU clearly lower than at s = 1"
        print(f"{s:>8.1f}{row['iou']:>10.3f}{row['colour']:>14.1%}{row['shape']:>13.1%}   {target}")
    ok = table[1.0]["iou"] >= 0.7 and table[1.0]["colour"] >= 0.9 and table[0.0]["iou"] < table[1.0]["iou"] - 0.15
    print(f"quality: {'PASS' if ok else 'FAIL'}")
    timing = speed()
    print(f"\nspeed (median of 10, embedded model, CFG on): 25 steps total {timing['total']:.3f} s "
          f"(denoising loop {timing['denoise']:.3f} s); target <= 2 s: {'PASS' if timing['total'] <= 2 else 'FAIL'}")


if __name__ == "__main__":
    main()
