"""The pictures the Guidance tab opens with, precomputed so opening the tab runs no model.

    python -m demos.guidance.defaults    # rewrite assets/guidance_default/ from the embedded model

``load()`` reads them back with PIL and json only (no torch), as a ``compute.Generation``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from demos.guidance import compute
from playground import settings

FOLDER = "guidance_default"


def _save_png(array: np.ndarray, path: Path) -> str:
    from PIL import Image

    Image.fromarray(array).save(path)
    return path.name


def write(folder: Path | None = None) -> Path:
    """Run the default generation (with its step view) and the default sweep; save PNGs + JSON."""
    folder = folder or settings.ASSETS_DIR / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    params = compute.GuidanceParams()
    result = compute.generate(params, compute.default_view_steps(params.steps))
    sweep = compute.sweep(params)
    records = [{"step": r["step"], "t": r["t"], "x0_image": _save_png(r["x0_image"], folder / f"x0_step{r['step']}.png"),
                **{k: np.round(r[k], 3).tolist() for k in ("eps_hat", "eps_uncond", "eps_cond", "direction")}}
               for r in result.records]
    data = {"settings": result.settings, "timings": result.timings, "records": records,
            "images": [_save_png(im, folder / f"image_{i}.png") for i, im in enumerate(result.images)],
            "sweep": {"scales": sweep.scales, "timings": sweep.timings,
                      "images": [_save_png(im, folder / f"sweep_{i}.png") for i, im in enumerate(sweep.images)]}}
    (folder / "default.json").write_text(json.dumps(data) + "\n")
    return folder


def _read_png(path: Path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB"))


def load(folder: Path | None = None) -> tuple[compute.Generation, compute.Generation] | None:
    """(default generation, default sweep) from disk, or None if they were never written."""
    folder = folder or settings.ASSETS_DIR / FOLDER
    if not (folder / "default.json").is_file():
        return None
    data = json.loads((folder / "default.json").read_text())
    records = [{**r, "x0_image": _read_png(folder / r["x0_image"]),
                **{k: np.array(r[k], dtype=np.float32) for k in ("eps_hat", "eps_uncond", "eps_cond", "direction")}}
               for r in data["records"]]
    images = np.stack([_read_png(folder / name) for name in data["images"]])
    sweep_images = np.stack([_read_png(folder / name) for name in data["sweep"]["images"]])
    generation = compute.Generation(images, [data["settings"]["guidance_scale"]] * len(images), data["settings"],
                                    data["timings"], records, None, None)
    sweep_settings = {**data["settings"], "scales": data["sweep"]["scales"]}
    sweep = compute.Generation(sweep_images, data["sweep"]["scales"], sweep_settings, data["sweep"]["timings"],
                               [], None, None)
    return generation, sweep


if __name__ == "__main__":
    print("wrote", write())
