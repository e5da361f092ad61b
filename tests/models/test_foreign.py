"""``wrap`` and ``from_factory``: foreign networks behind the model contract, and the clear errors
a new user meets (issue 16, "Explain your own model")."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from handlab.attribution import poseig
from handlab.codecs import GaussianHeatmap
from handlab.models import contract, from_factory, wrap
from handlab.models._common import IMAGENET_MEAN, IMAGENET_STD
from handlab.synth import SyntheticHands
from handlab.training.evaluation import evaluate


class Peaks(nn.Module):
    """Gaussian heatmaps (B, J, H/4, W/4) peaked at fixed cells, scaled by the mean image value:
    the decode has a known answer at any input size and a gradient to the images."""

    def __init__(self, cells: torch.Tensor) -> None:
        super().__init__()
        self.cells = cells  # (J, 2) heatmap cells (x, y)
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2] // 4, x.shape[-1] // 4
        maps, _ = GaussianHeatmap((h, w), stride=1, sigma=2.0).encode(self.cells)
        amp = self.scale * (1 + x.mean((1, 2, 3)))  # (B,)
        return amp[:, None, None, None] * maps[None]  # (B, J, h, w)


class Recorder(nn.Module):
    """Records what the wrapped network receives; outputs coordinates (B, 2J)."""

    def __init__(self, joints: int) -> None:
        super().__init__()
        self.joints = joints
        self.seen: torch.Tensor | None = None
        self.coords = nn.Parameter(torch.arange(2.0 * joints))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen = x.detach()
        return self.coords[None].expand(x.shape[0], -1) * (1 + 0 * x.mean())


CELLS = torch.tensor([[3.0, 4.0], [10.25, 2.5], [7.0, 9.5]])


@pytest.mark.parametrize("hw", [(64, 64), (48, 80), (96, 64)])
def test_heatmap_decode_reads_the_stride_from_the_output(hw):
    model = wrap(Peaks(CELLS), output="heatmaps", num_joints=3)
    out = model(torch.rand(2, 3, *hw, generator=torch.Generator().manual_seed(0)))
    want = (CELLS + 0.5) * 4 - 0.5  # cell -> input px, pixel centres at integers (codecs)
    torch.testing.assert_close(out["keypoints"], want.expand(2, 3, 2), atol=0.02, rtol=0)
    torch.testing.assert_close(model.decode(out)["keypoints"], out["keypoints"])


def test_decode_is_differentiable_and_poseig_runs():
    model = wrap(Peaks(CELLS), output="heatmaps", num_joints=3)
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1), requires_grad=True)
    (grad,) = torch.autograd.grad(model.decode(model(x))["keypoints"].sum(), x)
    assert torch.isfinite(grad).all()
    res = poseig(model, x.detach(), (CELLS + 0.5)[None] * 4 - 0.5 + 1.0, steps=4, folds=4)
    assert res.maps.shape == (1, 3, 64, 64) and torch.isfinite(res.delta).all()


def test_normalize_and_bgr_happen_inside_the_model():
    rec = Recorder(joints=2)
    model = wrap(rec, output="coords", num_joints=2, normalize="imagenet", channels="bgr")
    x = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    model(x)
    mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
    want = (x.flip(1) - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)
    torch.testing.assert_close(rec.seen, want)
    model = wrap(rec, output="coords", num_joints=2, normalize=((0.0,) * 3, (1 / 255,) * 3))
    model(x)
    torch.testing.assert_close(rec.seen, x * 255)


def test_coords_and_joint_order():
    model = wrap(Recorder(joints=3), output="coords", num_joints=3, joint_order=[2, 0, 1])
    out = model(torch.rand(2, 3, 16, 16))
    want = torch.tensor([[4.0, 5.0], [0.0, 1.0], [2.0, 3.0]])  # network joints 2, 0, 1
    torch.testing.assert_close(out["keypoints"], want.expand(2, 3, 2))
    assert contract(model).num_joints == 3 and model.decode(out)["keypoints"].shape == (2, 3, 2)


def test_callable_output():
    def first_of_pair(raw):  # a network returning (coords, confidence)
        return raw[0].view(-1, 2, 2)

    class Pair(nn.Module):
        def forward(self, x):
            return x.mean((2, 3))[:, :2].repeat(1, 2) * 10, torch.ones(x.shape[0])

    model = wrap(Pair(), output=first_of_pair, num_joints=2)
    x = torch.full((1, 3, 8, 8), 0.5)
    torch.testing.assert_close(model(x)["keypoints"], torch.full((1, 2, 2), 5.0))
    with pytest.raises(TypeError, match="output: the network returned tuple"):
        wrap(Pair(), output="coords", num_joints=2)(x)


def test_evaluate_a_wrapped_model():
    model = wrap(Peaks(CELLS), output="heatmaps", num_joints=3)
    # 3 joints: evaluate's metrics take the first 3 of the data's 21 (no canonical table)
    data = SyntheticHands("test", size=64)

    class First3:
        def __len__(self):
            return 2

        def __getitem__(self, i):
            s = data[i]
            return {**s, "keypoints": s["keypoints"][:3], "visibility": s["visibility"][:3]}

    metrics = evaluate(model, First3(), batch_size=2)
    assert metrics["n"] == 2 and metrics["epe_px"] > 0 and metrics["per_joint"] == []


# --- clear errors, each naming the argument ------------------------------------------------


def test_errors_of_wrap_arguments():
    net = nn.Conv2d(3, 21, 1)
    with pytest.raises(ValueError, match="output: expected 'heatmaps', 'coords'"):
        wrap(net, output="logits")
    with pytest.raises(ValueError, match="channels: expected 'rgb' or 'bgr'"):
        wrap(net, channels="grb")
    with pytest.raises(ValueError, match="normalize: expected None, 'imagenet'"):
        wrap(net, normalize="coco")
    with pytest.raises(ValueError, match="normalize: expected 1 or 3 means and positive"):
        wrap(net, normalize=((0.5,) * 3, (0.0,) * 3))
    with pytest.raises(ValueError, match="joint_order: expected distinct indices"):
        wrap(net, joint_order=[0, 0, 1])
    with pytest.raises(TypeError, match=r"module: expected a torch\.nn\.Module"):
        wrap(lambda x: x)
    with pytest.raises(ValueError, match=r"output: expected heatmaps \(B, 21, h, w\)"):
        wrap(nn.Conv2d(3, 5, 1))(torch.rand(1, 3, 8, 8))


def test_wrong_channel_count_and_input_size():
    model = wrap(nn.Conv2d(3, 21, 4, stride=4), input_size=32)
    with pytest.raises(ValueError, match="images: expected 3 channels for this model"):
        model(torch.rand(1, 1, 32, 32))
    with pytest.raises(ValueError, match=r"images: expected 32x32 px for this model"):
        model(torch.rand(1, 3, 64, 64))
    with pytest.raises(ValueError, match=r"images: expected 32x32 px for this model"):
        poseig(model, torch.rand(1, 3, 48, 48), torch.zeros(1, 21, 2), steps=2, folds=2)


def test_a_model_without_decode_is_named():
    with pytest.raises(TypeError, match=r"model: Conv2d has no decode\(outputs\) method.*wrap"):
        poseig(nn.Conv2d(3, 21, 1), torch.rand(1, 3, 32, 32), torch.zeros(1, 21, 2))
    with pytest.raises(TypeError, match=r"model: Conv2d has no decode\(outputs\) method"):
        evaluate(nn.Conv2d(3, 21, 1), SyntheticHands("test", size=64), limit=1)


def test_a_decode_without_gradient_is_named():
    class Argmax(nn.Module):  # a hard argmax decode: no gradient reaches the images
        def forward(self, images):
            return {"heatmaps": nn.functional.avg_pool2d(images[:, :1], 4).expand(-1, 2, -1, -1)}

        def decode(self, outputs):
            flat = outputs["heatmaps"].flatten(2).argmax(-1)  # (B, J)
            w = outputs["heatmaps"].shape[-1]
            return {"keypoints": torch.stack([flat % w, flat // w], -1).float() * 4}

    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    with pytest.raises(ValueError, match=r"model\.decode: its 'keypoints' carry no gradient"):
        poseig(Argmax(), x, torch.zeros(1, 2, 2), path="straight", steps=2)


@pytest.mark.parametrize(
    "transform, hint",
    [
        (lambda x: x * 255, "0-255 values"),
        (lambda x: (x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / 0.225, "ImageNet"),
    ],
)
def test_images_outside_unit_range_are_refused(transform, hint):
    model = wrap(Peaks(CELLS), output="heatmaps", num_joints=3)
    x = transform(torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(4)))
    with pytest.raises(ValueError, match=f"images: expected RGB values in \\[0, 1\\].*{hint}"):
        poseig(model, x, torch.zeros(1, 3, 2), steps=2, folds=2)
    data = [{"image": x[0], "keypoints": torch.zeros(3, 2), "visibility": torch.ones(3)}]
    with pytest.raises(ValueError, match=f"data 'image': expected RGB values.*{hint}"):
        evaluate(model, data)


def test_from_factory(tmp_path, monkeypatch):
    (tmp_path / "my_wrap_nets.py").write_text(
        "from torch import nn\n"
        "from handlab.models import wrap\n"
        "def build(joints=21):\n"
        "    return wrap(nn.Conv2d(3, joints, 4, stride=4), num_joints=joints)\n"
        "def plain():\n"
        "    return nn.Conv2d(3, 21, 1)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    model = from_factory("my_wrap_nets:build", joints=5)
    assert not model.training and model(torch.rand(1, 3, 32, 32))["keypoints"].shape == (1, 5, 2)
    with pytest.raises(TypeError, match="model: Conv2d has no decode"):
        from_factory("my_wrap_nets:plain")
    with pytest.raises(ValueError, match="spec: cannot load 'nope' from module 'my_wrap_nets'"):
        from_factory("my_wrap_nets:nope")
    with pytest.raises(ValueError, match="spec: expected 'module:function'"):
        from_factory("my_wrap_nets.build")
