"""Write the DETR tab's example images to ``assets/detr_examples/``: ``python -m demos.detr.make_examples``.

Held-out Shapes World scenes (seeds the training stream never uses), one as drawn, one resized to
2x (the model sees it resized back to 128 px; boxes come back in the 256 px image's pixels), one
grayscale and one RGBA with a transparent border (both converted by ``compute.load_image``).
Also the embedded model's raw outputs on the default scene (``DEFAULT_OUTPUTS``), so the tab opens
with everything drawn without importing torch; rerun this after retraining.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from demos.detr import compute
from demos.detr.ui import DEFAULT_OUTPUTS, EXAMPLES_DIR, P
from demos.common.shapes_world import scene_sample


def scene_image(seed: int) -> Image.Image:
    return Image.fromarray(scene_sample(np.random.default_rng(seed)).image)


def main() -> None:
    EXAMPLES_DIR.mkdir(parents=True, exist_ok=True)
    scene_image(2_000_001).save(EXAMPLES_DIR / "scene.png")
    scene_image(2_000_002).resize((256, 256), Image.Resampling.BICUBIC).save(EXAMPLES_DIR / "scene_2x.png")
    scene_image(2_000_003).convert("L").save(EXAMPLES_DIR / "scene_grayscale.png")
    rgba = scene_image(2_000_004).convert("RGBA")
    alpha = np.full((128, 128), 255, dtype=np.uint8)
    alpha[:6], alpha[-6:], alpha[:, :6], alpha[:, -6:] = 0, 0, 0, 0
    rgba.putalpha(Image.fromarray(alpha))
    rgba.save(EXAMPLES_DIR / "scene_rgba.png")
    image, _ = compute.random_scene(P.seed)
    DEFAULT_OUTPUTS.write_text(compute.result_to_json(compute.run_detr(image, "shapes-detr"), P.seed))


if __name__ == "__main__":
    main()
