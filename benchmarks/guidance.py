"""Guidance tab benchmark: quality of the embedded model (independent checker) and speed.

    python -m benchmarks.guidance                 # quality table + speed table
    python -m benchmarks.guidance --write-curve   # also write assets/guidance_curve.json for the tab
    python -m benchmarks.guidance --speed-only

Quality: every one of the 18 prompts "a {colour} {shape}" x ``--seeds`` seeds, 25 DDIM steps;
an image counts as right when ``benchmarks.shapes_checker`` (pixels only, no training labels)
reads the prompt's colour and shape. Diversity: mean pairwise RMS pixel distance between the
images of one prompt, averaged over prompts.
Targets (issue 6): CFG at s = 5 >= 90%, s = 0 far fewer, classifier guidance at s = 5 >= 75%;
4 images x 25 steps with CFG <= 2 s; the 7-scale sweep as one batch >= 2x faster than 7 calls.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np

from benchmarks import shapes_checker
from demos.common import shapes_world
from demos.guidance import compute
from demos.guidance.compute import GuidanceParams
from playground import settings

PROMPTS = [shapes_world.caption(c, s) for c in shapes_world.COLOURS for s in shapes_world.SHAPES]
TABLE = [("cfg", 0.0), ("cfg", 1.0), ("cfg", 3.0), ("cfg", 5.0), ("cfg", 7.5), ("classifier", 5.0)]
CURVE = {"cfg": [0.0, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0], "classifier": [0.0, 1.0, 3.0, 5.0, 10.0]}
TARGETS = {("cfg", 5.0): ">= 90%", ("classifier", 5.0): ">= 75%", ("cfg", 0.0): "far fewer"}


def measure(mode: str, scale: float, seeds: int, steps: int = 25) -> dict:
    """Adherence and diversity over all 18 prompts, ``seeds`` images each."""
    right, diversities = [], []
    for prompt in PROMPTS:
        images = compute.generate(GuidanceParams(prompt=prompt, mode=mode, guidance_scale=scale, steps=steps,
                                                 n_images=seeds, seed=0)).images  # (seeds, 64, 64, 3)
        right += [shapes_checker.check(image).matches(prompt) for image in images]
        diversities.append(shapes_checker.diversity(images))
    return {"adherence": float(np.mean(right)), "diversity": float(np.mean(diversities)), "n_images": len(right)}


def quality(seeds: int) -> dict:
    print("| mode | s | right (checker) | diversity | n | target |\n|---|---|---|---|---|---|")
    results = {}
    for mode, scale in TABLE:
        r = results[(mode, scale)] = measure(mode, scale, seeds)
        print(f"| {compute.MODE_LABELS[mode]} | {scale:g} | {100 * r['adherence']:.1f}% | {r['diversity']:.3f} | "
              f"{r['n_images']} | {TARGETS.get((mode, scale), '')} |", flush=True)
    return results


def timed(fn, repeats: int) -> float:
    """Median wall seconds of ``fn()`` over ``repeats`` runs (after one warm-up)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def speed(repeats: int) -> None:
    base = GuidanceParams(prompt="a red circle", steps=25)
    four = timed(lambda: compute.generate(GuidanceParams(prompt="a red circle", steps=25, n_images=4)), repeats)
    batched = timed(lambda: compute.sweep(base), repeats)
    separate = timed(lambda: [compute.generate(GuidanceParams(prompt="a red circle", steps=25, n_images=1,
                                                              guidance_scale=s)) for s in compute.SWEEP_SCALES],
                     repeats)
    print("\n| measure | measured | target |\n|---|---|---|")
    print(f"| 4 images x 25 steps, CFG | {four:.2f} s | <= 2 s |")
    print(f"| sweep of 7 scales, one batch | {batched:.2f} s | |")
    print(f"| 7 separate calls | {separate:.2f} s | |")
    print(f"| speed-up of the batched sweep | {separate / batched:.1f}x | >= 2x |")


def write_curve(seeds: int, measured: dict) -> None:
    modes = {}
    for mode, scales in CURVE.items():
        points = [measured.get((mode, s)) or measure(mode, s, seeds) for s in scales]
        modes[mode] = {"scales": scales, "adherence": [p["adherence"] for p in points],
                       "diversity": [p["diversity"] for p in points]}
    data = {"modes": modes, "provenance": {
        "command": "python -m benchmarks.guidance --write-curve", "model": "assets/shapes_ldm",
        "prompts": len(PROMPTS), "images_per_prompt": seeds, "steps": 25, "scheduler": "ddim",
        "checker": "benchmarks/shapes_checker.py", "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}}
    path = settings.ASSETS_DIR / compute.CURVE_FILE
    path.write_text(json.dumps(data, indent=1) + "\n")
    print(f"\nwrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=4, help="images per prompt (x 18 prompts)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--speed-only", action="store_true")
    parser.add_argument("--write-curve", action="store_true")
    args = parser.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs\n")
    measured = {} if args.speed_only else quality(args.seeds)
    speed(args.repeats)
    if args.write_curve:
        write_curve(args.seeds, measured)


if __name__ == "__main__":
    main()
