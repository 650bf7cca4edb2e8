"""Shapes World v1: the synthetic data the embedded models learn (spec: ``docs/shapes-world.md``).

Three kinds of samples, each drawn from a ``np.random.Generator`` so a seed fixes everything:

* **generation images** (Guidance, ControlNet): 64 x 64 RGB, one filled shape of size 18-44 px,
  fully inside the canvas, caption ``"a {colour} {shape}"``;
* **sketches** (ControlNet): the hand-drawn-looking outline of a shape on a light 256 x 256
  canvas, paired with the filled generation image it outlines;
* **detection scenes** (DETR): 128 x 128 RGB, 1-6 shapes of size 12-40 px, each at least 60%
  visible, with boxes ``[x0, y0, x1, y1]`` in pixels.

Geometry, in continuous pixel coordinates (pixel ``(i, j)`` covers ``[j, j+1] x [i, i+1]``) for a
shape whose bounding box is ``[x0, y0, x0 + s, y0 + s]``:

* circle: ``(x - cx)^2 + (y - cy)^2 <= (s/2)^2`` with ``(cx, cy)`` the box centre;
* square: the box itself (axis-aligned);
* triangle: apex ``(cx, y0)``, base from ``(x0, y0 + s)`` to ``(x0 + s, y0 + s)``, i.e.
  ``y <= y0 + s`` and ``|x - cx| <= (y - y0) / 2`` (height = base width).

Edges are anti-aliased by supersampling each pixel on a 4 x 4 grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (220, 50, 47),
    "green": (46, 160, 67),
    "blue": (38, 110, 230),
    "yellow": (240, 200, 30),
    "purple": (150, 70, 200),
    "orange": (245, 130, 40),
}
COLOURS: tuple[str, ...] = tuple(PALETTE)
VOCABULARY: tuple[str, ...] = ("a", *COLOURS, *SHAPES)

GEN_SIZE, GEN_MIN, GEN_MAX = 64, 18, 44  # generation images
SCENE_SIZE, SCENE_MIN, SCENE_MAX, SCENE_MAX_SHAPES = 128, 12, 40, 6  # detection scenes
SKETCH_SIZE = 256  # sketch canvas; conditioning image is the sketch scaled to 64 x 64
MIN_VISIBLE = 0.6
COLOUR_JITTER, BG_LOW, BG_NOISE_MAX = 10, 225, 4.0
SUPERSAMPLE = 4


@dataclass(frozen=True)
class Shape:
    """One shape: class, colour name, jittered RGB, and its bounding box ``[x0, y0, x0+s, y0+s]``."""

    kind: str
    colour: str
    rgb: tuple[int, int, int]
    x0: float
    y0: float
    size: float

    @property
    def box(self) -> tuple[float, float, float, float]:
        return (self.x0, self.y0, self.x0 + self.size, self.y0 + self.size)

    @property
    def caption(self) -> str:
        return caption(self.colour, self.kind)


def caption(colour: str, kind: str) -> str:
    """``"a {colour} {shape}"``."""
    return f"a {colour} {kind}"


# ---------------------------------------------------------------------------------------------
# Rendering


def inside(kind: str, x: np.ndarray, y: np.ndarray, x0: float, y0: float, size: float) -> np.ndarray:
    """Boolean mask of the points ``(x, y)`` inside the shape (formulas in the module docstring)."""
    cx, cy, half = x0 + size / 2, y0 + size / 2, size / 2
    if kind == "circle":
        return (x - cx) ** 2 + (y - cy) ** 2 <= half**2
    if kind == "square":
        return (x >= x0) & (x <= x0 + size) & (y >= y0) & (y <= y0 + size)
    if kind == "triangle":
        return (y <= y0 + size) & (np.abs(x - cx) <= (y - y0) / 2)
    raise ValueError(f"shape must be one of {', '.join(SHAPES)}, got {kind!r}")


def coverage(kind: str, x0: float, y0: float, size: float, height: int, width: int) -> np.ndarray:
    """Anti-aliased alpha in [0, 1] of shape (height, width): the covered fraction of each pixel."""
    offsets = (np.arange(SUPERSAMPLE) + 0.5) / SUPERSAMPLE  # (S,)
    ys = (np.arange(height)[:, None] + offsets[None, :]).reshape(-1)  # (H*S,)
    xs = (np.arange(width)[:, None] + offsets[None, :]).reshape(-1)  # (W*S,)
    mask = inside(kind, xs[None, :], ys[:, None], x0, y0, size)  # (H*S, W*S)
    return mask.reshape(height, SUPERSAMPLE, width, SUPERSAMPLE).mean(axis=(1, 3))


def background(rng: np.random.Generator, height: int, width: int) -> tuple[np.ndarray, float]:
    """A uniform light colour (each channel in [225, 255]) and a noise std in [0, 4]."""
    colour = rng.integers(BG_LOW, 256, size=3).astype(np.float64)  # (3,)
    return np.broadcast_to(colour, (height, width, 3)).copy(), float(rng.uniform(0, BG_NOISE_MAX))


def jittered_rgb(colour: str, rng: np.random.Generator) -> tuple[int, int, int]:
    """The palette colour with each channel moved by up to +-10."""
    base = np.array(PALETTE[colour])
    rgb = np.clip(base + rng.integers(-COLOUR_JITTER, COLOUR_JITTER + 1, size=3), 0, 255)
    return tuple(int(c) for c in rgb)


def composite(canvas: np.ndarray, alpha: np.ndarray, rgb: tuple[int, int, int]) -> np.ndarray:
    """``canvas * (1 - alpha) + rgb * alpha``; canvas (H, W, 3) float, alpha (H, W)."""
    return canvas * (1 - alpha[..., None]) + np.asarray(rgb, dtype=np.float64) * alpha[..., None]


def finish(canvas: np.ndarray, shape_alpha: np.ndarray, noise_std: float,
           rng: np.random.Generator) -> np.ndarray:
    """Add background pixel noise (where no shape covers) and quantise to uint8 (H, W, 3)."""
    noise = rng.normal(0, noise_std, canvas.shape) * (1 - shape_alpha[..., None])
    return np.clip(np.rint(canvas + noise), 0, 255).astype(np.uint8)


def render(shapes: list[Shape], height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """Draw ``shapes`` in order (later over earlier) on a fresh background: uint8 (H, W, 3)."""
    canvas, noise_std = background(rng, height, width)
    covered = np.zeros((height, width))
    for shape in shapes:
        alpha = coverage(shape.kind, shape.x0, shape.y0, shape.size, height, width)
        canvas = composite(canvas, alpha, shape.rgb)
        covered = 1 - (1 - covered) * (1 - alpha)
    return finish(canvas, covered, noise_std, rng)


# ---------------------------------------------------------------------------------------------
# Generation images


def random_shape(rng: np.random.Generator, canvas: int, min_size: int, max_size: int,
                 kind: str | None = None, colour: str | None = None) -> Shape:
    """A shape of integer size in [min_size, max_size], fully inside a ``canvas`` square."""
    kind = kind if kind is not None else SHAPES[rng.integers(len(SHAPES))]
    colour = colour if colour is not None else COLOURS[rng.integers(len(COLOURS))]
    size = int(rng.integers(min_size, max_size + 1))
    x0, y0 = (int(v) for v in rng.integers(0, canvas - size + 1, size=2))
    return Shape(kind, colour, jittered_rgb(colour, rng), x0, y0, size)


def generation_sample(rng: np.random.Generator, kind: str | None = None,
                      colour: str | None = None) -> tuple[np.ndarray, Shape]:
    """One 64 x 64 generation image (uint8, (64, 64, 3)) and its shape (``shape.caption``)."""
    shape = random_shape(rng, GEN_SIZE, GEN_MIN, GEN_MAX, kind, colour)
    return render([shape], GEN_SIZE, GEN_SIZE, rng), shape


def generation_batch(n: int, seed: int) -> tuple[np.ndarray, list[Shape]]:
    """``n`` generation images (n, 64, 64, 3) uint8 and their shapes, fixed by ``seed``."""
    rng = np.random.default_rng(seed)
    samples = [generation_sample(rng) for _ in range(n)]
    return np.stack([image for image, _ in samples]), [shape for _, shape in samples]


# ---------------------------------------------------------------------------------------------
# Sketches


@dataclass(frozen=True)
class Sketch:
    """An outline sketch (256, 256, 3) uint8, the filled 64 x 64 image it outlines, and the shape."""

    sketch: np.ndarray
    image: np.ndarray
    shape: Shape


def outline(shape: Shape, scale: float, n_points: int = 240) -> np.ndarray:
    """Points (n_points, 2) as (x, y) along the boundary of ``shape`` scaled by ``scale``."""
    x0, y0, s = shape.x0 * scale, shape.y0 * scale, shape.size * scale
    t = np.linspace(0, 1, n_points, endpoint=False)  # (P,) fraction of the perimeter
    if shape.kind == "circle":
        angle = 2 * np.pi * t
        return np.stack([x0 + s / 2 + s / 2 * np.cos(angle), y0 + s / 2 + s / 2 * np.sin(angle)], 1)
    corners = {"square": [(0, 0), (1, 0), (1, 1), (0, 1)], "triangle": [(0.5, 0), (1, 1), (0, 1)]}
    polygon = np.array(corners[shape.kind] + corners[shape.kind][:1], dtype=np.float64)  # (K+1, 2)
    lengths = np.linalg.norm(np.diff(polygon, axis=0), axis=1)  # (K,)
    cumulative = np.concatenate([[0], np.cumsum(lengths)]) / lengths.sum()  # (K+1,)
    points = np.stack([np.interp(t, cumulative, polygon[:, 0]), np.interp(t, cumulative, polygon[:, 1])], 1)
    return np.array([x0, y0]) + s * points


def wobble(points: np.ndarray, amplitude: float, rng: np.random.Generator) -> np.ndarray:
    """Move each point along a smooth random closed curve of offsets (a hand's tremor)."""
    n = len(points)
    phase = 2 * np.pi * np.arange(n) / n  # (P,)
    offsets = np.zeros_like(points)
    for frequency in (2, 3, 5):
        for axis in range(2):
            offsets[:, axis] += rng.normal(0, amplitude / frequency) * np.sin(frequency * phase + rng.uniform(0, 2 * np.pi))
    return points + offsets


def draw_stroke(points: np.ndarray, width: int, ink: int, paper: int, closed: bool) -> np.ndarray:
    """A polyline of ``width`` px in grey ``ink`` on a ``paper`` grey 256 x 256 canvas (RGB)."""
    from PIL import Image, ImageDraw

    image = Image.new("L", (SKETCH_SIZE, SKETCH_SIZE), paper)
    path = [tuple(p) for p in points] + ([tuple(points[0])] if closed else [])
    ImageDraw.Draw(image).line(path, fill=ink, width=width, joint="curve")
    grey = np.asarray(image)  # (256, 256)
    return np.repeat(grey[..., None], 3, axis=2)


def sketch_sample(rng: np.random.Generator, kind: str | None = None, colour: str | None = None) -> Sketch:
    """A hand-drawn-looking outline of a random generation shape, and the filled image.

    Augmentations: stroke width 1-4 px, ink grey 0-80 on paper 225-255, a wobble of up to ~1.5% of
    the canvas, a random start point, and in a third of the sketches a gap of up to 6% of the
    perimeter (not perfectly closed).
    """
    image, shape = generation_sample(rng, kind, colour)
    scale = SKETCH_SIZE / GEN_SIZE
    points = outline(shape, scale)
    points = np.roll(points, int(rng.integers(len(points))), axis=0)
    points = wobble(points, float(rng.uniform(0, 0.015 * SKETCH_SIZE)), rng)
    closed = rng.uniform() >= 1 / 3
    if not closed:
        points = points[: len(points) - int(rng.integers(1, int(0.06 * len(points)) + 1))]
    sketch = draw_stroke(points, int(rng.integers(1, 5)), int(rng.integers(0, 81)),
                         int(rng.integers(BG_LOW, 256)), closed)
    return Sketch(sketch, image, shape)


def sketch_to_condition(sketch: np.ndarray, size: int = GEN_SIZE) -> np.ndarray:
    """Any square sketch (H, W) or (H, W, C) uint8 -> the (size, size) float32 ink map in [0, 1].

    Ink = 1 - brightness, so dark strokes are 1 and the light paper is near 0; resized with
    area averaging (PIL ``BOX``) so thin strokes survive.
    """
    from PIL import Image

    array = np.asarray(sketch)
    if array.ndim == 3:
        array = array[..., :3].mean(axis=2) if array.shape[2] >= 3 else array[..., 0]
    grey = Image.fromarray(np.clip(array, 0, 255).astype(np.uint8), mode="L")
    small = np.asarray(grey.resize((size, size), Image.Resampling.BOX), dtype=np.float32)
    return 1 - small / 255.0


# ---------------------------------------------------------------------------------------------
# Detection scenes


@dataclass(frozen=True)
class Scene:
    """A detection scene: image (128, 128, 3) uint8, shapes in drawing order, boxes, labels."""

    image: np.ndarray
    shapes: list[Shape]
    visibility: np.ndarray  # (N,) visible fraction of each shape's own area

    @property
    def boxes(self) -> np.ndarray:
        """(N, 4) float32 ``[x0, y0, x1, y1]`` in pixels: each shape's full bounding box."""
        return np.array([s.box for s in self.shapes], dtype=np.float32).reshape(-1, 4)

    @property
    def labels(self) -> list[str]:
        return [s.kind for s in self.shapes]

    @property
    def label_ids(self) -> np.ndarray:
        return np.array([SHAPES.index(s.kind) for s in self.shapes], dtype=np.int64)


def visibility(alphas: list[np.ndarray]) -> np.ndarray:
    """Visible fraction of each shape when drawn in order: sum(a_i * prod_{j>i}(1 - a_j)) / sum(a_i)."""
    fractions = []
    for i, alpha in enumerate(alphas):
        on_top = np.ones_like(alpha)
        for later in alphas[i + 1:]:
            on_top = on_top * (1 - later)
        fractions.append(float((alpha * on_top).sum() / max(alpha.sum(), 1e-9)))
    return np.array(fractions)


def scene_sample(rng: np.random.Generator, n_shapes: int | None = None, max_tries: int = 50) -> Scene:
    """A 128 x 128 scene of 1-6 shapes (size 12-40), each at least 60% visible.

    Shapes are added one at a time; a candidate that would leave any shape (itself included) less
    than 60% visible is redrawn, up to ``max_tries`` times, after which the scene keeps fewer.
    """
    n_shapes = n_shapes if n_shapes is not None else int(rng.integers(1, SCENE_MAX_SHAPES + 1))
    shapes: list[Shape] = []
    alphas: list[np.ndarray] = []
    for _ in range(n_shapes):
        for _ in range(max_tries):
            shape = random_shape(rng, SCENE_SIZE, SCENE_MIN, SCENE_MAX)
            alpha = coverage(shape.kind, shape.x0, shape.y0, shape.size, SCENE_SIZE, SCENE_SIZE)
            if visibility(alphas + [alpha]).min() >= MIN_VISIBLE:
                shapes.append(shape)
                alphas.append(alpha)
                break
    image = render(shapes, SCENE_SIZE, SCENE_SIZE, rng)
    return Scene(image, shapes, visibility(alphas))
