"""The 2D families: flip test, tiny overfits, CPM's targets, options and backbones."""

from __future__ import annotations

import pytest
import torch
from _overfit import loss_curve

from handlab.codecs import GaussianHeatmap
from handlab.models import create
from handlab.models._heatmaps import heatmap_loss
from handlab.skeleton import flip_keypoints

S = 64


def _images(seed: int, n: int = 2) -> torch.Tensor:
    return torch.rand(n, 3, S, S, generator=torch.Generator().manual_seed(seed))


def _batch(seed: int, n: int = 2) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    visibility = (torch.rand(n, 21, generator=g) > 0.2).float()
    return {"keypoints": 6 + torch.rand(n, 21, 2, generator=g) * (S - 12), "visibility": visibility}


def test_flip_test_averages_the_mirrored_heatmaps():
    torch.manual_seed(0)
    plain = create("simplebaseline", head_width=32, input_size=S).eval()
    flipped = create("simplebaseline", head_width=32, input_size=S, flip_test=True).eval()
    flipped.load_state_dict(plain.state_dict())
    x = _images(1)
    with torch.no_grad():
        reference = 0.5 * (plain(x)["heatmaps"] + plain(x.flip(-1))["heatmaps"].flip(-1))
        torch.testing.assert_close(flipped(x)["heatmaps"], reference)


def test_flip_test_makes_the_model_exactly_mirror_equivariant():
    """H_ft(flip x) = flip H_ft(x), so keypoints mirror with the image's pixel-centre rule."""
    torch.manual_seed(0)
    model = create("simplebaseline", head_width=32, input_size=S, flip_test=True).eval()
    x = _images(2)
    with torch.no_grad():
        out, out_mirror = model(x), model(x.flip(-1))
    torch.testing.assert_close(out_mirror["heatmaps"], out["heatmaps"].flip(-1))
    torch.testing.assert_close(out_mirror["keypoints"], flip_keypoints(out["keypoints"], S))
    # Without the flip test an untrained network is far from equivariant: the check has teeth.
    model = create("simplebaseline", head_width=32, input_size=S).eval()
    with torch.no_grad():
        a, b = model(x)["heatmaps"], model(x.flip(-1))["heatmaps"].flip(-1)
    assert (a - b).abs().max() > 1e-4


def _overfit(model: torch.nn.Module, steps: int, lr: float) -> tuple[float, float]:
    losses, logs = loss_curve(model, [_images(3)], _batch(4), steps=steps, lr=lr)
    assert all(isinstance(v, float) for v in logs.values())
    return losses[0], min(losses[-3:])


def test_heatmap_model_overfits_a_tiny_batch():
    torch.manual_seed(0)
    model = create("simplebaseline", head_width=32, input_size=S)
    first, last = _overfit(model, steps=12, lr=5e-3)
    # The first loss is that of an all-zero map (the head starts near 0): going well below it
    # means the peaks are being learned.
    assert last < 0.7 * first


def test_regression_model_overfits_a_tiny_batch():
    torch.manual_seed(0)
    model = create("regression", backbone="resnet18", input_size=S)
    first, last = _overfit(model, steps=12, lr=1e-3)
    assert last < 0.5 * first


def test_heatmap_loss_is_simplebaselines_weighted_mse():
    batch = _batch(5)
    codec = GaussianHeatmap((16, 16), stride=4, sigma=2.0)
    target, weight = codec.encode(batch["keypoints"], batch["visibility"])
    pred = torch.rand(2, 21, 16, 16, generator=torch.Generator().manual_seed(6))
    naive = 0.0
    for b in range(2):
        for j in range(21):
            w = float(weight[b, j])
            naive += 0.5 * float(((pred[b, j] * w - target[b, j] * w) ** 2).mean()) / 42
    loss = heatmap_loss(pred, batch, stride=4, sigma=2.0)
    assert abs(float(loss) - naive) < 1e-6
    assert float(heatmap_loss(target, batch, stride=4, sigma=2.0)) == 0.0


def test_integral_loss_is_zero_at_the_target_and_l1_elsewhere():
    model = create("integral", head_width=32, input_size=S)
    batch = _batch(7)
    outputs = {"keypoints": batch["keypoints"] + torch.tensor([3.0, -1.0])}
    loss, _ = model.loss(outputs, batch)
    vis = batch["visibility"]
    assert abs(float(loss) - float(4.0 * vis.mean() / model.stride)) < 1e-5
    assert model.loss({"keypoints": batch["keypoints"]}, batch)[0] == 0.0


def test_cpm_supervises_every_stage_with_a_background_map():
    torch.manual_seed(0)
    model = create("cpm", features=16, input_size=S)
    out = model(_images(8))
    batch = _batch(9)
    loss, logs = model.loss(out, batch)
    assert set(logs) == {"stage1", "stage2", "stage3"}
    assert abs(float(loss.detach()) - sum(logs.values())) < 1e-5
    # The first stage's classifier learns from its own (intermediate) loss term alone.
    first = model.stages[0][-1].weight
    (grad,) = torch.autograd.grad(out["stages"][:, 0].sum(), first, retain_graph=True)
    assert grad.abs().sum() > 0
    # Perfect beliefs (joint Gaussians + 1 - max as background) give zero loss.
    codec = GaussianHeatmap((S // 8, S // 8), stride=8, sigma=1.0)
    target, _ = codec.encode(batch["keypoints"], batch["visibility"])
    perfect = torch.cat([target, 1 - target.amax(1, keepdim=True)], 1)[:, None].expand(
        -1, 3, -1, -1, -1
    )
    assert float(model.loss({"stages": perfect}, batch)[0]) < 1e-12


@pytest.mark.parametrize("backbone", ["resnet34", "resnet50"])
def test_simplebaseline_backbones(backbone):
    model = create("simplebaseline", backbone=backbone, head_width=16, input_size=S)
    assert model(_images(10, n=1))["heatmaps"].shape == (1, 21, 16, 16)


def test_regression_inception_option_and_size_check():
    model = create("regression", backbone="inception_v3", input_size=96)
    assert model(torch.rand(2, 3, 96, 96))["keypoints"].shape == (2, 21, 2)
    with pytest.raises(ValueError, match="expected H, W = \\(96, 96\\)"):
        model(torch.rand(2, 3, 128, 128))
    with pytest.raises(ValueError, match="input_size"):
        create("regression", backbone="inception_v3", input_size=64)


def test_regression_keypoints_map_the_image_centre_and_corners():
    model = create("regression", backbone="resnet18", input_size=S)
    coords = torch.tensor([[-0.5, -0.5, 0.0, 0.0, 0.5, 0.5] + [0.0] * 36])
    kp = model.decode({"coords": coords})["keypoints"]
    assert kp[0, :3].tolist() == [[-0.5, -0.5], [31.5, 31.5], [63.5, 63.5]]


def test_hrnet_keeps_stride_4_and_rejects_sizes_its_branches_cannot_take():
    model = create("hrnet_small", width=8, input_size=S)
    assert model(_images(11, n=1))["heatmaps"].shape[-2:] == (16, 16)
    with pytest.raises(ValueError, match="multiples of 16"):
        model(torch.rand(1, 3, 72, 72))
