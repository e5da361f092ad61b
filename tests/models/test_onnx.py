"""A foreign network explained end to end: a torchvision ResNet-18 with a small heatmap head
(random weights, seeded) exported to ONNX inside the test, loaded back with ``from_onnx``
(onnx2torch), then PoseIG, the indices and the randomisation test on it (issue 16)."""

from __future__ import annotations

import warnings

import pytest
import torch
import torchvision
from torch import nn

from handlab.attribution import poseig, randomization_test
from handlab.attribution.indices import index_table
from handlab.models import contract, from_onnx, wrap


def resnet18_heatmaps() -> nn.Module:
    """ResNet-18 trunk (stride 32) + a transposed conv to 21 heatmaps at stride 8, seeded."""
    torch.manual_seed(0)
    trunk = torchvision.models.resnet18(weights=None)
    layers = list(trunk.children())[:-2]  # without average pooling and classifier
    head = [nn.ConvTranspose2d(512, 21, kernel_size=4, stride=4), nn.Softplus()]
    return nn.Sequential(*layers, *head).eval()


def export(net: nn.Module, path, *, dynamic: bool, size: int = 64) -> None:
    axes = {"images": {0: "b", 2: "h", 3: "w"}, "heatmaps": {0: "b", 2: "hh", 3: "ww"}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            net, (torch.rand(1, 3, size, size),), str(path), dynamo=False, opset_version=17,
            input_names=["images"], output_names=["heatmaps"],
            dynamic_axes=axes if dynamic else None,
        )  # fmt: skip


@pytest.fixture(scope="module")
def onnx_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("onnx") / "resnet18_heatmaps.onnx"
    export(resnet18_heatmaps(), path, dynamic=True)
    return path


@pytest.mark.parametrize("hw", [(64, 64), (96, 64)])
def test_from_onnx_matches_the_torch_network(onnx_path, hw):
    model = from_onnx(onnx_path)
    reference = wrap(resnet18_heatmaps())
    assert contract(model).input_kind == "rgb" and model.num_joints == 21
    assert model.output == "heatmaps" and model.input_size is None and not model.training
    x = torch.rand(2, 3, *hw, generator=torch.Generator().manual_seed(0))
    out, ref = model(x), reference(x)
    torch.testing.assert_close(out["heatmaps"], ref["heatmaps"], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(out["keypoints"], ref["keypoints"], atol=1e-3, rtol=0)
    assert out["heatmaps"].shape[-2:] == (hw[0] // 8, hw[1] // 8)


def test_onnx_model_explained_end_to_end(onnx_path):
    model = from_onnx(onnx_path)
    g = torch.Generator().manual_seed(1)
    images = torch.rand(1, 3, 64, 64, generator=g)
    with torch.no_grad():
        targets = model(images)["keypoints"] + 2.0  # 2.8 px off: a likelihood of ~0.43
    res = poseig(model, images, targets, steps=4, folds=4)
    assert res.maps.shape == (1, 21, 64, 64)
    assert torch.isfinite(res.attributions).all() and res.attributions.abs().sum() > 0
    want = torch.exp(torch.tensor(-0.3 * 2.0 * 2**0.5))  # f = exp(-alpha d), d = 2 sqrt(2) px
    torch.testing.assert_close(res.likelihood, want.expand(1, 21), atol=1e-4, rtol=0)
    table = index_table(res.maps, keypoints=targets, mask=torch.ones(1, 64, 64))
    assert len(table) == 21 and table[["DI", "FI"]].notna().all().all()
    inside = ((targets[0] >= 0) & (targets[0] <= 63)).all(-1).numpy()  # LI: NaN off the image
    assert inside.sum() >= 5 and table.LI[inside].notna().all()
    # every converted conv layer is a randomisation unit; 8 at a time, output first
    rand = randomization_test(
        model, images, targets, order="top_down", unit=8, steps=4, folds=4, keypoints=targets
    )
    sim = rand[rand.metric == "spearman_abs"].set_index("step")["value"]
    assert list(sim.index) == [0, 1, 2, 3] and sim[0] == 1.0  # 21 conv layers: 8 + 8 + 5
    assert sim[3] < 0.9  # with every layer re-drawn, the maps are others


def test_fixed_size_graph(tmp_path):
    path = tmp_path / "fixed.onnx"
    export(resnet18_heatmaps(), path, dynamic=False, size=64)
    model = from_onnx(path)
    assert model.input_size == 64
    out = model(torch.rand(3, 3, 64, 64))  # a graph exported for batch 1 runs image by image
    assert out["keypoints"].shape == (3, 21, 2)
    with pytest.raises(ValueError, match=r"images: expected 64x64 px for this model"):
        model(torch.rand(1, 3, 96, 96))


def test_onnx_errors(tmp_path):
    with pytest.raises(ValueError, match="path: expected an ONNX file"):
        from_onnx(tmp_path / "missing.onnx")

    class TwoOutputs(nn.Module):
        def forward(self, x):
            return x.mean((2, 3)), x.amax((2, 3))

    path = tmp_path / "two.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            TwoOutputs(), (torch.rand(1, 3, 8, 8),), str(path), dynamo=False, opset_version=17
        )

    class ChannelsLast(nn.Module):  # a TensorFlow-style (B, H, W, 3) input
        def forward(self, x):
            return x.mean((1, 2))

    nhwc = tmp_path / "nhwc.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            ChannelsLast(), (torch.rand(1, 8, 8, 3),), str(nhwc), dynamo=False, opset_version=17
        )
    with pytest.raises(ValueError, match=r"expected an image input \(B, 3, H, W\), got shape"):
        from_onnx(nhwc)
    with pytest.raises(ValueError, match="2 outputs; pass output=callable"):
        from_onnx(path)
    model = from_onnx(path, output=lambda raw: raw[0][:, None, :2] * 8, num_joints=1)
    assert model(torch.full((1, 3, 8, 8), 0.5))["keypoints"].tolist() == [[[4.0, 4.0]]]
