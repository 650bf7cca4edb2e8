"""Growing the embedded UNet (and its ControlNet) with cross-attention at 8 x 8 (issue 20).

``shapes_ldm.grow_attention_8x8`` must be function-preserving: at step 0 the grown model computes
exactly what the trained one did, so fine-tuning starts from the trained model, not from noise.
"""

import pytest
import torch

from demos.common import shapes_ldm


def randomised(module, seed: int):
    """Random weights everywhere (zero-initialised layers included), so the test is not trivially 0."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for param in module.parameters():
            param.normal_(0, 0.05)
    return module.eval()


def inputs(batch: int = 3):
    generator = torch.Generator().manual_seed(1)
    z = torch.randn(batch, 4, 8, 8, generator=generator)
    t = torch.tensor([10, 500, 990][:batch])
    c = torch.randn(batch, 8, shapes_ldm.TEXT_WIDTH, generator=generator)
    return z, t, c


def test_grown_unet_computes_exactly_the_trained_one():
    trained = randomised(shapes_ldm.build_unet(attention_8x8=False), 0)
    grown = shapes_ldm.grow_attention_8x8(trained, randomised(shapes_ldm.build_unet(), 1))
    z, t, c = inputs()
    with torch.no_grad():
        before, after = trained(z, t, c).sample, grown(z, t, c).sample
    assert torch.equal(before, after)
    names = [n for n, m in grown.named_modules() if n.endswith("attn2")]
    assert sum(n.startswith(shapes_ldm.ATTENTION_8X8_BLOCKS) for n in names) == 5  # 2 down + 3 up
    assert len(names) == 11


def test_new_layers_are_trainable_and_move_the_output():
    """The zeroed proj_out gets a gradient, so the new 8 x 8 attention can learn."""
    trained = randomised(shapes_ldm.build_unet(attention_8x8=False), 0)
    grown = shapes_ldm.grow_attention_8x8(trained, shapes_ldm.build_unet()).train()
    z, t, c = inputs()
    grown(z, t, c).sample.pow(2).mean().backward()
    proj_out = grown.down_blocks[0].attentions[0].proj_out
    assert proj_out.weight.abs().max() == 0 and proj_out.weight.grad.abs().max() > 0


def test_growing_the_wrong_pair_is_refused():
    with pytest.raises(ValueError, match="not a 4x4 -> 8x8 attention growth"):
        shapes_ldm.grow_attention_8x8(shapes_ldm.build_unet(), shapes_ldm.build_unet(attention_8x8=False))


def test_grown_controlnet_gives_the_trained_controlnets_residuals():
    from demos.controlnet.model import build_controlnet

    trained = randomised(build_controlnet(shapes_ldm.build_unet(attention_8x8=False)), 2)
    grown = shapes_ldm.grow_attention_8x8(trained, randomised(build_controlnet(shapes_ldm.build_unet()), 3))
    z, t, c = inputs()
    condition = torch.rand(len(z), 3, 64, 64, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        before = trained(z, t, c, controlnet_cond=condition, return_dict=False)
        after = grown(z, t, c, controlnet_cond=condition, return_dict=False)
    for a, b in zip([*before[0], before[1]], [*after[0], after[1]]):
        assert torch.equal(a, b)


def test_committed_unet_has_cross_attention_at_8x8():
    """The checkpoint the app ships is the grown one (its attention maps are 8 x 8 and 4 x 4)."""
    import json
    from pathlib import Path

    config = json.loads((Path(__file__).resolve().parents[1] / "assets/shapes_ldm/unet/config.json").read_text())
    assert config["down_block_types"] == ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D"]
    assert config["up_block_types"] == ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D"]


def test_latent_coverage_is_the_shapes_area_on_the_8x8_grid():
    import numpy as np

    from demos.common import shapes_world
    from demos.guidance.train import latent_coverage

    square = shapes_world.Shape("square", "red", (255, 0, 0), 8.0, 16.0, 24.0)  # cells x 1-3, y 2-4
    cover = latent_coverage(square)
    expected = np.zeros((8, 8), np.float32)
    expected[2:5, 1:4] = 1
    np.testing.assert_allclose(cover, expected, atol=1e-6)
    circle = shapes_world.Shape("circle", "red", (255, 0, 0), 4.0, 4.0, 40.0)
    np.testing.assert_allclose(latent_coverage(circle).sum() * 64, np.pi * 20**2, rtol=0.01)


def test_token_grounding_loss_is_zero_on_the_shape_and_grows_off_it():
    """L_token = mean (1 - attention mass inside the mask)^2 over layers and the two words."""
    from demos.guidance.train import GROUNDED_TOKENS, token_grounding_loss

    coverage = torch.zeros(1, 8, 8)
    coverage[0, :4, :4] = 1  # the shape fills the top-left quarter
    inside = coverage.flatten(1)[0] > 0  # (64,)

    def layer(on_shape: float):
        """probs (1 row, 2 heads, 64, 8): the grounded words put ``on_shape`` of their mass on the shape."""
        probs = torch.full((1, 2, 64, 8), 1.0 / 8)
        for j in GROUNDED_TOKENS:
            probs[..., j] = torch.where(inside, on_shape / 16, (1 - on_shape) / 48) * 0.5
        return probs

    keep = torch.tensor([True])
    assert token_grounding_loss([layer(1.0)], coverage, keep).item() == pytest.approx(0.0, abs=1e-6)
    assert token_grounding_loss([layer(0.25)], coverage, keep).item() == pytest.approx(0.75**2, rel=1e-5)
    # a 4 x 4 layer sees the same mask pooled: the quarter is its top-left 2 x 2 cells
    pooled = torch.full((1, 2, 16, 8), 1.0 / 8)
    pooled[:, :, [0, 1, 4, 5], 2] = 0.2
    pooled[:, :, [0, 1, 4, 5], 3] = 0.2
    assert token_grounding_loss([pooled], coverage, keep).item() == pytest.approx((1 - 0.8 / (0.8 + 12 / 8)) ** 2, rel=1e-5)


def test_training_capture_keeps_every_rows_attention_with_gradients():
    """``cross_attention.Capture`` through the app's recording processors: one (B, heads, N, L)
    tensor per cross-attention layer, rows summing to 1 over tokens, differentiable."""
    from demos.guidance import cross_attention

    unet = shapes_ldm.build_unet().train()
    cross_attention.install(unet)
    capture = cross_attention.Capture()
    z, t, c = inputs()
    with cross_attention.recording(capture):
        unet(z, t, c)
    assert len(capture.layers) == 11
    assert sorted({p.shape[2] for p in capture.layers}) == [16, 64]
    for probs in capture.layers:
        assert probs.shape[:2] == (3, 4) and probs.shape[3] == 8
        torch.testing.assert_close(probs.sum(-1), torch.ones(probs.shape[:3]))
    capture.layers[0][..., 3].sum().backward()
    assert unet.down_blocks[0].attentions[0].transformer_blocks[0].attn2.to_q.weight.grad.abs().max() > 0
