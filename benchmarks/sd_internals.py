"""Inside the latent diffusion model (issue 20): where each word's cross-attention lands, the
autoencoder's PSNR, and what recording the attention costs.

    python -m benchmarks.sd_internals                # all three tables
    python -m benchmarks.sd_internals --seeds 2 --repeats 3 --psnr-images 128

1. Localisation. Each of the 18 prompts "a {colour} {shape}" x ``--seeds`` seeds, 25 DDIM steps,
   CFG s = 5, with cross-attention recorded (``demos/guidance/cross_attention.py``). A word's DAAM
   heat map (sum over steps, layers, heads of the bicubically upsampled attention) is thresholded
   at its mean and compared with the shape's foreground mask, which comes from the pixels alone
   (``benchmarks.shapes_checker.foreground_mask``: differs from the border's colour by > 60).
   Target: the shape word's IoU >= 0.5 on average, clearly above the IoU of "a". For scale, the
   last two columns are what a perfect map at the UNet's cross-attention resolutions (4 x 4, and
   8 x 8 since the UNet was grown) would reach.
2. Autoencoder: PSNR of E then D on ``--psnr-images`` fresh Shapes World images (a seed stream
   training never drew from), the same ``internals.round_trip`` the tab uses.
3. Speed: 25 steps of one image with CFG, with and without recording (the same sampler call,
   interleaved, median of ``--repeats``). Target: with <= 1.5x without.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

from benchmarks import shapes_checker
from demos.common import shapes_world
from demos.guidance import compute, internals

PROMPTS = [shapes_world.caption(c, s) for c in shapes_world.COLOURS for s in shapes_world.SHAPES]
SPECIALS = ("<start>", "<end>", "<pad>")


def iou(heatmap: np.ndarray, mask: np.ndarray) -> float:
    """IoU of ``heatmap > mean(heatmap)`` with a boolean mask (H, W)."""
    region = heatmap > heatmap.mean()
    return float((region & mask).sum() / max((region | mask).sum(), 1))


def perfect_map_iou(mask: np.ndarray, grid: int) -> float:
    """The IoU a perfect attention map at a ``grid`` x ``grid`` cross-attention resolution would
    reach: each cell's share of shape pixels, upsampled like the recorded maps, thresholded at its mean."""
    import torch
    import torch.nn.functional as F

    cell = mask.shape[0] // grid
    coverage = mask.reshape(grid, cell, grid, cell).mean(axis=(1, 3)).astype(np.float32)  # (grid, grid)
    up = F.interpolate(torch.from_numpy(coverage)[None, None], size=mask.shape, mode="bicubic", align_corners=False)
    return iou(up[0, 0].clamp(min=0).numpy(), mask)


def token_ious(result: internals.Internals, mask: np.ndarray) -> dict[str, float]:
    """IoU per role: 'a', the colour word, the shape word, and each special token (pads averaged)."""
    summed = result.step_maps.sum(axis=0)  # (L, S, S)
    colour, shape = result.words[1], result.words[2]
    out = {"a": iou(summed[result.word_tokens["a"]].sum(0), mask),
           "colour": iou(summed[result.word_tokens[colour]].sum(0), mask),
           "shape": iou(summed[result.word_tokens[shape]].sum(0), mask)}
    for special in SPECIALS:
        values = [iou(summed[j], mask) for j, t in enumerate(result.tokens) if t == special]
        out[special] = float(np.mean(values)) if values else float("nan")
    out["perfect 4x4 map"] = perfect_map_iou(mask, 4)
    out["perfect 8x8 map"] = perfect_map_iou(mask, 8)
    return out


def localisation(seeds: int, steps: int) -> dict:
    roles = ["shape", "colour", "a", *SPECIALS, "perfect 4x4 map", "perfect 8x8 map"]
    print(f"| prompt | {' | '.join(roles)} | attention share of 'a' | checker reads |")
    print("|---|" + "---|" * (len(roles) + 2))
    rows = {}
    for prompt in PROMPTS:
        per_seed, shares, right = [], [], 0
        for seed in range(seeds):
            result = internals.generate(internals.InternalsParams(prompt=prompt, steps=steps, seed=seed),
                                        with_steps=False)
            per_seed.append(token_ious(result, shapes_checker.foreground_mask(result.image)))
            shares.append(result.attention_share()[result.word_tokens["a"][0]])
            right += shapes_checker.check(result.image).matches(prompt)
        rows[prompt] = {role: float(np.mean([s[role] for s in per_seed])) for role in roles}
        print(f"| {prompt} | " + " | ".join(f"{rows[prompt][r]:.2f}" for r in roles)
              + f" | {np.mean(shares):.2f} | {right}/{seeds} |", flush=True)
    means = {role: float(np.mean([row[role] for row in rows.values()])) for role in roles}
    print("| **mean** | " + " | ".join(f"**{means[r]:.2f}**" for r in roles) + " | | |")
    print(f"\nshape word IoU {means['shape']:.3f} (target >= 0.5), 'a' {means['a']:.3f}; "
          f"{len(PROMPTS)} prompts x {seeds} seeds, {steps} DDIM steps, CFG s = 5")
    return means


def autoencoder(n_images: int) -> float:
    model = compute.get_model(compute.EMBEDDED)
    rng = np.random.default_rng([2026, 12, 1, 20])  # training used default_rng([0, k]) streams
    values = [internals.round_trip(model, shapes_world.generation_sample(rng)[0]).psnr_db for _ in range(n_images)]
    print(f"\n| autoencoder round trip | value |\n|---|---|\n| held-out Shapes World images | {n_images} |")
    print(f"| PSNR mean | {np.mean(values):.2f} dB |\n| PSNR min / median | {np.min(values):.2f} / "
          f"{np.median(values):.2f} dB |\n| compression (64*64*3 / 4*8*8) | 48x |")
    return float(np.mean(values))


def speed(repeats: int, steps: int = 25) -> None:
    from demos.guidance import cross_attention, sampler

    model = compute.get_model(compute.EMBEDDED)
    request = sampler.Request("a red circle", "", "cfg", [5.0], steps, "ddim", 0)

    def plain():
        return sampler.sample(model, request)

    def recorded():
        recorder = cross_attention.Recorder(steps, 8, 64, (8, 8), row=1)

        def on_step(i, total):
            recorder.step = min(i, total - 1)
        with cross_attention.recording(recorder):
            return sampler.sample(model, request, on_step)

    def full():
        return internals.generate(internals.InternalsParams(steps=steps), with_steps=True)

    plain(), recorded(), full()  # warm-up
    times = {"plain": [], "recorded": [], "full": []}
    for _ in range(repeats):  # interleaved, so load changes hit both alike
        for name, fn in (("plain", plain), ("recorded", recorded), ("full", full)):
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"\n| {steps} steps, 1 image, CFG | median of {repeats} | target |\n|---|---|---|")
    print(f"| without recording | {med['plain']:.3f} s | |")
    print(f"| with cross-attention recording | {med['recorded']:.3f} s | |")
    print(f"| ratio | **{med['recorded'] / med['plain']:.2f}x** | <= 1.5x |")
    print(f"| the tab's full view (also every step's latent decoded, round trip) | {med['full']:.3f} s | |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=4, help="images per prompt (x 18 prompts)")
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--psnr-images", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--only", choices=("localisation", "autoencoder", "speed"), default=None)
    args = parser.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs\n")
    if args.only in (None, "localisation"):
        localisation(args.seeds, args.steps)
    if args.only in (None, "autoencoder"):
        autoencoder(args.psnr_images)
    if args.only in (None, "speed"):
        speed(args.repeats)


if __name__ == "__main__":
    main()
