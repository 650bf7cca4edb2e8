"""The "inside the model" view the Guidance tab opens with, precomputed so opening runs no model.

    python -m demos.guidance.internals_defaults   # rewrite assets/guidance_internals/ from the embedded model

``load()`` reads it back with numpy and json only (no torch), as an ``internals.Internals`` and the
round trip of a Shapes World image. The per-step word maps are stored as uint8 with one scale per
(step, token) map (error <= 0.2% of each map's maximum).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from demos.guidance import internals
from playground import settings

FOLDER = "guidance_internals"
TRIP_SEED = 3  # the Shapes World image of the opening round trip


def _quantise(maps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(T, L, S, S) float -> uint8 codes and per-map scales (T, L)."""
    scales = maps.max(axis=(2, 3)) / 255 + 1e-12  # (T, L)
    return np.round(maps / scales[..., None, None]).astype(np.uint8), scales.astype(np.float32)


def _trip_arrays(trip: internals.RoundTrip, prefix: str) -> dict:
    return {f"{prefix}_image": trip.image, f"{prefix}_latent": trip.latent, f"{prefix}_reconstruction": trip.reconstruction}


def write(folder: Path | None = None) -> Path:
    folder = folder or settings.ASSETS_DIR / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    params = internals.InternalsParams()
    result = internals.generate(params, with_steps=True)
    trip = internals.autoencode(internals.shapes_world_image(TRIP_SEED))
    codes, scales = _quantise(result.step_maps)
    np.savez_compressed(folder / "default.npz", image=result.image, map_codes=codes, map_scales=scales,
                        latents=result.latents.astype(np.float32), latent_images=result.latent_images,
                        x0_images=result.x0_images, **_trip_arrays(result.round_trip, "own"),
                        **_trip_arrays(trip, "shapes"))
    meta = {"params": asdict(params), "tokens": result.tokens, "words": result.words,
            "word_tokens": result.word_tokens, "settings": result.settings, "timings": result.timings,
            "own_psnr_db": result.round_trip.psnr_db, "shapes_psnr_db": trip.psnr_db, "trip_seed": TRIP_SEED,
            "command": "python -m demos.guidance.internals_defaults"}
    (folder / "default.json").write_text(json.dumps(meta, indent=1) + "\n")
    return folder


def _trip(data, prefix: str, psnr: float) -> internals.RoundTrip:
    image, reconstruction = data[f"{prefix}_image"], data[f"{prefix}_reconstruction"]
    latent = data[f"{prefix}_latent"]
    error = np.abs(image.astype(np.float32) - reconstruction.astype(np.float32)).mean(axis=2) / 255
    return internals.RoundTrip(image, latent, reconstruction, error, psnr, image.size / latent.size)


def load(folder: Path | None = None) -> tuple[internals.Internals, internals.RoundTrip] | None:
    """(the default generation's internals, a Shapes World round trip), or None if never written."""
    folder = folder or settings.ASSETS_DIR / FOLDER
    if not (folder / "default.json").is_file() or not (folder / "default.npz").is_file():
        return None
    meta = json.loads((folder / "default.json").read_text())
    with np.load(folder / "default.npz", allow_pickle=False) as data:
        maps = data["map_codes"].astype(np.float32) * data["map_scales"][..., None, None]  # (T, L, S, S)
        result = internals.Internals(data["image"], meta["tokens"], meta["words"], meta["word_tokens"], maps,
                                     data["latents"], data["latent_images"], data["x0_images"],
                                     _trip(data, "own", meta["own_psnr_db"]), meta["settings"], meta["timings"])
        trip = _trip(data, "shapes", meta["shapes_psnr_db"])
    return result, trip


if __name__ == "__main__":
    print("wrote", write())
