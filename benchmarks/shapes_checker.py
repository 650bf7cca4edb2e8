"""An independent Shapes World checker: which colour and which shape does an image show?

It looks only at pixels (never at the generator's or the training code's labels), so it can
grade images from any model:

1. background = the median colour of the 1-pixel border;
2. foreground = pixels whose largest channel difference from the background exceeds 60
   (the background is >= 225 in every channel and each palette colour has a channel <= 80,
   so a shape differs by >= 135, background noise by ~15);
3. the largest 4-connected foreground component is the object (none if under 30 pixels);
4. colour = the palette colour nearest (Euclidean RGB) to the median of its core pixels
   (difference > 100, i.e. away from the anti-aliased edge);
5. shape = the template with the highest IoU with the object inside its bounding box:
   a disk, the full box, or an upright triangle with its apex at the top centre.

Usage: ``check(image) -> Check(colour, shape, ...)``, ``check(image).matches("a red circle")``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

# The palette and shape names are the spec (docs/shapes-world.md), not labels.
PALETTE = {"red": (220, 50, 47), "green": (46, 160, 67), "blue": (38, 110, 230),
           "yellow": (240, 200, 30), "purple": (150, 70, 200), "orange": (245, 130, 40)}
SHAPES = ("circle", "square", "triangle")
FOREGROUND_DIFF, CORE_DIFF, MIN_AREA = 60, 100, 30


@dataclass(frozen=True)
class Check:
    colour: str | None  # None when no object was found
    shape: str | None
    area: int
    colour_distance: float  # RGB distance from the median core colour to the chosen palette colour
    ious: dict[str, float]

    def matches(self, prompt: str) -> bool:
        """True when every colour and shape word of ``prompt`` is what the image shows."""
        words = set(prompt.lower().split())
        wanted_colour = words & set(PALETTE)
        wanted_shape = words & set(SHAPES)
        colour_ok = not wanted_colour or self.colour in wanted_colour
        shape_ok = not wanted_shape or self.shape in wanted_shape
        return self.colour is not None and colour_ok and shape_ok


def background_colour(image: np.ndarray) -> np.ndarray:
    """Median RGB (3,) of the 1-pixel border of image (H, W, 3)."""
    border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]]).astype(np.float64)
    return np.median(border, axis=0)


def foreground_mask(image: np.ndarray) -> np.ndarray:
    """Pixels (H, W) bool whose largest channel difference from the border's median colour exceeds
    ``FOREGROUND_DIFF``: the shape(s) on the light background, from pixels alone (steps 1-2)."""
    image = np.asarray(image)[..., :3]
    return np.abs(image.astype(np.float64) - background_colour(image)).max(axis=2) > FOREGROUND_DIFF


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 4-connected component of a boolean mask (H, W)."""
    labels, n = ndimage.label(mask)
    if n == 0:
        return mask
    sizes = ndimage.sum(mask, labels, index=np.arange(1, n + 1))  # (n,)
    return labels == (1 + int(np.argmax(sizes)))


def templates(height: int, width: int) -> dict[str, np.ndarray]:
    """Ideal masks (height, width) of each shape filling a box, sampled at pixel centres."""
    y, x = np.mgrid[0:height, 0:width] + 0.5
    u, v = x / width, y / height  # (H, W) in (0, 1)
    return {"circle": (u - 0.5) ** 2 + (v - 0.5) ** 2 <= 0.25,
            "square": np.ones((height, width), dtype=bool),
            "triangle": np.abs(u - 0.5) <= v / 2}


def shape_ious(component: np.ndarray) -> dict[str, float]:
    """IoU of the object's mask (inside its bounding box) with each template."""
    rows, cols = np.nonzero(component)
    box = component[rows.min():rows.max() + 1, cols.min():cols.max() + 1]  # (h, w)
    ious = {}
    for name, template in templates(*box.shape).items():
        ious[name] = float((box & template).sum() / max((box | template).sum(), 1))
    return ious


def nearest_palette(rgb: np.ndarray) -> tuple[str, float]:
    names = list(PALETTE)
    distances = np.linalg.norm(np.array([PALETTE[n] for n in names]) - rgb, axis=1)  # (6,)
    return names[int(np.argmin(distances))], float(distances.min())


def check(image: np.ndarray) -> Check:
    """Colour and shape shown by a uint8 image (H, W, 3)."""
    image = np.asarray(image)[..., :3]
    difference = np.abs(image.astype(np.float64) - background_colour(image)).max(axis=2)  # (H, W)
    component = largest_component(difference > FOREGROUND_DIFF)
    area = int(component.sum())
    if area < MIN_AREA:
        return Check(None, None, area, float("nan"), {})
    core = component & (difference > CORE_DIFF)
    pixels = image[core if core.sum() >= 5 else component].astype(np.float64)  # (P, 3)
    colour, distance = nearest_palette(np.median(pixels, axis=0))
    ious = shape_ious(component)
    return Check(colour, max(ious, key=ious.get), area, distance, ious)


def adherence(images: np.ndarray, prompt: str) -> float:
    """Fraction of images (N, H, W, 3) that show the prompt's colour and shape."""
    return float(np.mean([check(image).matches(prompt) for image in images]))


def diversity(images: np.ndarray) -> float:
    """Mean pairwise RMS pixel distance (0-1 scale) between images (N, H, W, 3)."""
    flat = images.reshape(len(images), -1).astype(np.float64) / 255.0  # (N, D)
    n = len(flat)
    if n < 2:
        return 0.0
    distances = [np.sqrt(np.mean((flat[i] - flat[j]) ** 2)) for i in range(n) for j in range(i + 1, n)]
    return float(np.mean(distances))
