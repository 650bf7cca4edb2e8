"""What a Shapes World picture shows, read from its pixels by the simplest rule that separates its
images (a light background and one flat-coloured shape): what the lessons' measures ask of a
generated image. (The benchmarks grade with their own, independent checker.)

1. background = the median colour of the 1-pixel border; the shape = pixels whose largest channel
   difference from it exceeds 60 (none if under 30 pixels), optionally only the largest connected region;
2. colour = the palette colour nearest to the shape's median pixel;
3. shape = the ideal shape in the shape's bounding box (a full square, the inscribed disk, the
   upright triangle with its apex at the top centre) that overlaps it best (IoU); none under 0.5.
"""

import numpy as np

from demos.common import shapes_world


def shape_mask(image: np.ndarray, largest: bool = False) -> np.ndarray:
    """The shape's pixels (H, W) bool: far from the border's median colour (rule 1)."""
    im = np.asarray(image)[..., :3].astype(np.float64)
    border = np.concatenate([im[0], im[-1], im[:, 0], im[:, -1]])
    mask = np.abs(im - np.median(border, axis=0)).max(axis=2) > 60
    if not largest:
        return mask
    from scipy import ndimage

    labels, n = ndimage.label(mask)
    if n == 0:
        return mask
    sizes = ndimage.sum(mask, labels, index=np.arange(1, n + 1))
    return labels == 1 + int(np.argmax(sizes))


def judge(image: np.ndarray) -> tuple[str | None, str | None]:
    """(colour, shape) an image shows (rules 2 and 3); (None, None) when it shows no shape."""
    mask = shape_mask(image)
    if mask.sum() < 30:
        return None, None
    median = np.median(np.asarray(image)[..., :3][mask].astype(np.float64), axis=0)
    colour = min(shapes_world.PALETTE, key=lambda c: np.linalg.norm(np.array(shapes_world.PALETTE[c]) - median))
    ys, xs = np.nonzero(mask)
    box = mask[ys.min():ys.max() + 1, xs.min():xs.max() + 1]  # (h, w)
    scores = {name: _iou(box, ideal) for name, ideal in ideal_shapes(*box.shape).items()}
    shape = max(scores, key=scores.get)
    return colour, shape if scores[shape] >= 0.5 else None


def ideal_shapes(h: int, w: int) -> dict[str, np.ndarray]:
    """Each Shapes World shape filling an (h, w) box, as (h, w) bool masks."""
    y, x = np.mgrid[0:h, 0:w]
    u, v = (x + 0.5) / w, (y + 0.5) / h  # the box as [0, 1]^2, v down
    return {"square": np.ones((h, w), bool),
            "circle": (u - 0.5) ** 2 + (v - 0.5) ** 2 <= 0.25,
            "triangle": np.abs(u - 0.5) <= v / 2}


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))
