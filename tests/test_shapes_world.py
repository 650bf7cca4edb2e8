"""Shapes World (docs/shapes-world.md): colours, sizes, geometry, scenes, sketches, determinism."""

import numpy as np
import pytest

from demos.common import shapes_world as sw


def test_generation_images_follow_the_spec():
    rng = np.random.default_rng(0)
    for _ in range(200):
        image, shape = sw.generation_sample(rng)
        assert image.shape == (64, 64, 3) and image.dtype == np.uint8
        assert sw.GEN_MIN <= shape.size <= sw.GEN_MAX
        x0, y0, x1, y1 = shape.box
        assert 0 <= x0 and 0 <= y0 and x1 <= 64 and y1 <= 64  # fully inside the canvas
        assert np.abs(np.array(shape.rgb) - sw.PALETTE[shape.colour]).max() <= 10
        assert shape.caption == f"a {shape.colour} {shape.kind}"
        corners = image[[0, 0, -1, -1], [0, -1, 0, -1]]  # background is light unless covered
        assert (corners.min(axis=1) >= 200).any()


def test_shape_fill_is_the_palette_colour_and_background_is_light():
    rng = np.random.default_rng(1)
    image, shape = sw.generation_sample(rng, kind="square", colour="blue")
    x0, y0, x1, y1 = (int(v) for v in shape.box)
    inner = image[y0 + 2:y1 - 2, x0 + 2:x1 - 2].reshape(-1, 3)
    assert np.all(inner == shape.rgb)
    outside = np.ones((64, 64), dtype=bool)
    outside[max(y0 - 1, 0):y1 + 1, max(x0 - 1, 0):x1 + 1] = False
    assert image[outside].min() >= sw.BG_LOW - 4 * 4  # background noise of std <= 4


def test_triangle_geometry_upright_isosceles_height_equals_base():
    alpha = sw.coverage("triangle", 8, 8, 40, 64, 64)  # box [8, 48] x [8, 48]
    assert alpha.sum() == pytest.approx(40 * 40 / 2, rel=0.02)  # area = base * height / 2
    rows = alpha.sum(axis=1)  # width of each row
    assert rows[9] < rows[28] < rows[46]  # widening downwards: apex at the top
    assert rows[46] == pytest.approx(40 * (46.5 - 8) / 40, abs=0.6)
    cols = np.nonzero(alpha[46] > 0.5)[0]
    assert cols.min() + cols.max() + 1 == pytest.approx(2 * 28, abs=1)  # symmetric about cx = 28
    assert alpha[:8].sum() == 0 and alpha[48:].sum() == 0  # height 40


def test_circle_and_square_areas():
    assert sw.coverage("circle", 10, 10, 40, 64, 64).sum() == pytest.approx(np.pi * 20**2, rel=0.01)
    assert sw.coverage("square", 10, 10, 40, 64, 64).sum() == pytest.approx(1600)


def test_scenes_have_1_to_6_visible_shapes_with_full_boxes():
    rng = np.random.default_rng(2)
    counts = []
    for _ in range(40):
        scene = sw.scene_sample(rng)
        assert scene.image.shape == (128, 128, 3)
        assert 1 <= len(scene.shapes) <= 6
        assert scene.visibility.min() >= sw.MIN_VISIBLE
        boxes = scene.boxes
        assert boxes.shape == (len(scene.shapes), 4)
        sizes = boxes[:, 2] - boxes[:, 0]
        assert np.all(sizes == boxes[:, 3] - boxes[:, 1])
        assert np.all((sizes >= 12) & (sizes <= 40))
        assert boxes.min() >= 0 and boxes.max() <= 128
        assert scene.labels == [sw.SHAPES[i] for i in scene.label_ids]
        counts.append(len(scene.shapes))
    assert max(counts) >= 4


def test_visibility_counts_later_shapes_on_top():
    a = sw.coverage("square", 0, 0, 20, 64, 64)
    b = sw.coverage("square", 10, 0, 20, 64, 64)  # covers the right half of a
    assert sw.visibility([a, b]) == pytest.approx([0.5, 1.0])


def test_sketch_is_a_dark_outline_of_the_paired_shape():
    rng = np.random.default_rng(3)
    for _ in range(20):
        sample = sw.sketch_sample(rng)
        assert sample.sketch.shape == (256, 256, 3) and sample.image.shape == (64, 64, 3)
        ink = sw.sketch_to_condition(sample.sketch)
        assert ink.shape == (64, 64) and ink.dtype == np.float32
        ys, xs = np.nonzero(ink > 0.25 * ink.max())
        x0, y0, x1, y1 = sample.shape.box
        assert abs(xs.min() - x0) <= 3 and abs(xs.max() + 1 - x1) <= 3
        assert abs(ys.min() - y0) <= 3 and abs(ys.max() + 1 - y1) <= 3
        cy, cx = int(y0 + y1) // 2, int(x0 + x1) // 2
        assert ink[cy - 2:cy + 2, cx - 2:cx + 2].max() < 0.2  # an outline, not filled


def test_same_seed_same_data():
    a, shapes_a = sw.generation_batch(8, seed=5)
    b, shapes_b = sw.generation_batch(8, seed=5)
    c, _ = sw.generation_batch(8, seed=6)
    assert np.array_equal(a, b) and shapes_a == shapes_b and not np.array_equal(a, c)
    s1, s2 = sw.scene_sample(np.random.default_rng(9)), sw.scene_sample(np.random.default_rng(9))
    assert np.array_equal(s1.image, s2.image) and np.array_equal(s1.boxes, s2.boxes)


def test_unknown_shape_is_an_error():
    with pytest.raises(ValueError, match="circle, square, triangle"):
        sw.inside("hexagon", np.zeros(1), np.zeros(1), 0, 0, 10)


def test_the_lessons_image_judge_reads_generated_shapes_world_images():
    """``demos/common/shapes_judge.py`` (what the lessons ask of an image) names the colour and shape
    of Shapes World's own generation images."""
    from demos.common import shapes_judge

    right = 0
    for seed in range(200):
        image, shape = sw.generation_sample(np.random.default_rng(seed))
        colour, kind = shapes_judge.judge(image)
        right += f"a {colour} {kind}" == shape.caption
    assert right >= 196, right
