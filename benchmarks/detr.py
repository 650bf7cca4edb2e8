"""DETR tab: detection quality of the embedded model and single-image latency.

Quality (issue 8, item 5): mAP at IoU 0.5 on held-out Shapes World scenes (seeds the training
stream never uses), as drawn (128 px) and resized to 2x (256 px, boxes scaled), each through the
tab's own path (``compute.run_detr``: image processor, model, boxes in the image's pixels). Every
query is a detection scored by its best class probability (no threshold, no NMS). Target >= 0.9.

Latency (item 8): ``compute.detect`` on a 128 x 128 image (preprocess, model, annotated image,
JSON), median of ``--repeats`` after a warm-up. Target <= 150 ms.

    python -m benchmarks.detr [--scenes 300] [--repeats 30]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
from PIL import Image

os.environ.setdefault("HF_HUB_OFFLINE", "1")

BENCH_SEED = 3_000_000
TARGET_MAP, TARGET_MS = 0.9, 150.0


def quality(n_scenes: int, scale: int) -> tuple[float, np.ndarray]:
    """mAP@0.5 and per-class AP on ``n_scenes`` held-out scenes resized by ``scale``."""
    from demos.detr import compute
    from demos.detr.matching import mean_average_precision
    from demos.common.shapes_world import SCENE_SIZE, SHAPES, scene_sample

    detections, truth = [], []
    for i in range(n_scenes):
        scene = scene_sample(np.random.default_rng(BENCH_SEED + i))
        image = scene.image
        if scale != 1:
            size = SCENE_SIZE * scale
            image = np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.BICUBIC))
        result = compute.run_detr(image, "shapes-detr")
        detections.append(compute.queries_to_detections(result.queries))
        truth.append({"boxes": scene.boxes * scale, "labels": scene.label_ids})
    return mean_average_precision(detections, truth, n_classes=len(SHAPES))


def latency_ms(repeats: int) -> float:
    """Median wall time of ``compute.detect`` on a 128 x 128 scene."""
    from demos.detr import compute

    image, _ = compute.random_scene(BENCH_SEED - 1)
    compute.detect(image, 0.5)  # load the model, warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        compute.detect(image, 0.5)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description="DETR tab benchmark")
    parser.add_argument("--scenes", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    from demos.common.shapes_world import SHAPES

    load = os.getloadavg()[0]
    ms = latency_ms(args.repeats)
    rows = []
    for scale in (1, 2):
        m_ap, per_class = quality(args.scenes, scale)
        rows.append((f"{128 * scale} px ({scale}x)", m_ap, per_class))
    all_map = float(np.mean([r[1] for r in rows]))
    print(f"machine load average (1 min) at start: {load:.2f}; cpu count {os.cpu_count()}\n")
    print(f"{'held-out scenes':<18} {'mAP@0.5':>8} " + " ".join(f"{'AP ' + s:>12}" for s in SHAPES) + f" {'target':>8}")
    for name, m_ap, per_class in rows:
        print(f"{name:<18} {m_ap:>8.3f} " + " ".join(f"{ap:>12.3f}" for ap in per_class) + f" {'>= 0.9':>8}")
    print(f"{'both':<18} {all_map:>8.3f}\n")
    print(f"{'latency':<18} {'median ms':>10} {'target ms':>10}")
    print(f"{'detect 128x128':<18} {ms:>10.1f} {TARGET_MS:>10.0f}")


if __name__ == "__main__":
    main()
