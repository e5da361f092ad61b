"""HandOccNet.stages: the intermediate tensors chapter 06 shows are the ones forward uses."""

import torch

from handlab.models import create


def test_stages_are_the_forward_pass():
    torch.manual_seed(0)
    model = create("handoccnet", width=16, heads=2, input_size=64).eval()
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        s = model.stages(images)
        out = model(images)
    b, c, h, w = s["features"].shape
    assert (b, c, h, w) == (2, 16, 8, 8)
    tokens = s["features"].flatten(2).transpose(1, 2)  # (B, N, C)
    m = s["necessity"].flatten(2).transpose(1, 2)  # (B, N, 1)
    torch.testing.assert_close(s["primary"], tokens * m)
    torch.testing.assert_close(s["secondary"], tokens * (1 - m))
    torch.testing.assert_close(s["primary"] + s["secondary"], tokens)
    torch.testing.assert_close(out["necessity"], s["necessity"])
    torch.testing.assert_close(out["correlation"], s["correlation"])
    assert s["correlation"].shape == (2, 2, h * w, h * w)
    grid = s["enhanced"].transpose(1, 2).reshape(b, c, h, w)
    torch.testing.assert_close(out["heatmaps"], model.heatmap_head(grid))
    assert not torch.equal(s["injected"], s["enhanced"])  # SET changed the features


def test_a_saturated_necessity_map_keeps_the_spatial_layout():
    # The collapse of handoccnet_r18: M ran to exactly 1, F_s = F * (1 - M) = 0 everywhere, and
    # with the position embedding inside F every FIT query and residual became the same token,
    # so every heatmap was flat and every keypoint sat at the image centre.
    torch.manual_seed(0)
    model = create("handoccnet", width=16, heads=2, input_size=64).eval()
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    for bias in (1e3, -1e3):  # M == 1 (all hand) and M == 0 (all occluder)
        torch.nn.init.constant_(model.necessity.bias, bias)
        with torch.no_grad():
            s = model.stages(images)
            out = model(images)
        assert bool((s["necessity"] == (1.0 if bias > 0 else 0.0)).all())
        assert float(s["enhanced"].std(dim=1).min()) > 1e-3  # tokens still differ by cell
        assert float(out["heatmaps"].flatten(2).std(dim=-1).min()) > 1e-4  # no flat map


def test_necessity_logits_do_not_scale_with_the_features():
    # The runaway that saturated M: logits were linear in F (std ~9), so an Adam step (every
    # weight moves ~lr) shifted them by ~lr * 576 * 9. With normalised input the same weights
    # give the same logits whatever the scale of F.
    torch.manual_seed(0)
    model = create("handoccnet", width=16, heads=2, input_size=64).eval()
    feats = torch.randn(2, 16, 8, 8, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        logits = model.necessity(model.necessity_norm(feats))
        scaled = model.necessity(model.necessity_norm(10 * feats))
    torch.testing.assert_close(logits, scaled, rtol=1e-4, atol=1e-4)
