"""handlab.synth.backgrounds: resize against torch's interpolate, ranges, skin clutter, seeds."""

import torch
import torch.nn.functional as F

from handlab.synth.backgrounds import (
    SKIN_TONES,
    render_background,
    resize,
    sample_background,
    sample_skin,
)


def test_resize_matches_bilinear_interpolate():
    x = torch.rand(2, 3, 6, 6, generator=torch.Generator().manual_seed(0))
    for size in (16, 64, 128):
        ref = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        torch.testing.assert_close(resize(x, size), ref, atol=1e-5, rtol=0)


def test_backgrounds_are_in_range_textured_and_seeded():
    a = render_background(sample_background(4, torch.Generator().manual_seed(1)), 96)
    b = render_background(sample_background(4, torch.Generator().manual_seed(1)), 96)
    c = render_background(sample_background(4, torch.Generator().manual_seed(2)), 96)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == (4, 3, 96, 96)
    assert float(a.min()) >= 0 and float(a.max()) <= 1
    assert float(a.std(dim=(2, 3)).min()) > 0.02  # clutter, not a flat colour


def test_skin_colours_come_from_the_palette_and_appear_in_the_clutter():
    skin = sample_skin(500, torch.Generator().manual_seed(0))
    # every sample is within 25% of some palette tone
    rel = (skin[:, None] / SKIN_TONES[None] - 1).abs().amax(-1).amin(-1)
    assert float(rel.max()) < 0.25
    colors = sample_background(500, torch.Generator().manual_seed(0))["bg_shape_color"]
    near = (colors.reshape(-1, 1, 3) / SKIN_TONES[None] - 1).abs().amax(-1).amin(-1) < 0.25
    assert 0.1 < float(near.float().mean()) < 0.5  # about a fifth of the clutter is skin-like
