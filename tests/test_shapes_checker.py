"""The benchmark's Shapes World checker grades generated images correctly (>= 98%)."""

import numpy as np

from benchmarks import shapes_checker
from demos.common import shapes_world as sw


def test_checker_reads_colour_and_shape_of_generated_images():
    rng = np.random.default_rng(2024)
    right = 0
    for _ in range(300):
        image, shape = sw.generation_sample(rng)
        result = shapes_checker.check(image)
        right += result.colour == shape.colour and result.shape == shape.kind
    assert right / 300 >= 0.98


def test_matches_prompt_and_blank_image():
    image, shape = sw.generation_sample(np.random.default_rng(0), kind="triangle", colour="orange")
    result = shapes_checker.check(image)
    assert result.matches("a orange triangle") and result.matches("a triangle")
    assert not result.matches("a orange circle") and not result.matches("a blue triangle")
    blank = np.full((64, 64, 3), 240, dtype=np.uint8)
    assert shapes_checker.check(blank).colour is None
    assert not shapes_checker.check(blank).matches("a red circle")


def test_adherence_and_diversity():
    images = np.stack([sw.generation_sample(np.random.default_rng(i), "circle", "red")[0] for i in range(6)])
    assert shapes_checker.adherence(images, "a red circle") == 1.0
    assert shapes_checker.adherence(images, "a blue circle") == 0.0
    assert shapes_checker.diversity(images) > 0
    assert shapes_checker.diversity(np.repeat(images[:1], 4, axis=0)) == 0.0
