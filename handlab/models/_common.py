"""Pieces shared by the RGB model families: input normalisation, torchvision trunks, batch checks
and the weighted heatmap loss.

Taught in chapter 01 (``notebooks/01_simplebaseline.py``) alongside :mod:`.simplebaseline`.

>>> trunk, channels = resnet_trunk("resnet18")
>>> channels
512
>>> trunk(torch.zeros(1, 3, 64, 64)).shape
torch.Size([1, 512, 2, 2])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torchvision
from torch import nn

from handlab._checks import check_finite, check_shape
from handlab.models.base import check_images

__all__ = [
    "RESNETS",
    "TIMM_TRUNKS",
    "CoordsDecodeMixin",
    "ImageNormalize",
    "check_batch",
    "check_fixed_size",
    "check_heads",
    "check_keypoint_batch",
    "check_resnet",
    "check_size",
    "coordinate_grid",
    "heatmap_mse",
    "resnet_trunk",
    "timm_trunk",
    "to_image_units",
]

# torchvision builders and the channel count of each stage's output (layer1..layer4).
RESNETS: dict[str, tuple[str, tuple[int, int, int, int]]] = {
    "resnet18": ("resnet18", (64, 128, 256, 512)),
    "resnet34": ("resnet34", (64, 128, 256, 512)),
    "resnet50": ("resnet50", (256, 512, 1024, 2048)),
    "resnet101": ("resnet101", (256, 512, 1024, 2048)),
    "resnet152": ("resnet152", (256, 512, 1024, 2048)),
}
# Seed 001's Inception networks, built by timm (random weights, never downloaded): name -> the
# channels of the last feature map. Their valid-padded stems give maps a few cells smaller than
# H/32, so :class:`_StrideExact` resizes them to exactly (H/32, W/32) for the heatmap heads.
TIMM_TRUNKS: dict[str, int] = {"inception_v3": 2048, "inception_resnet_v2": 1536}
# ImageNet statistics: torchvision's backbones are designed (and usually pretrained) for them.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ImageNormalize(nn.Module):
    """Map images (B, 3, H, W) in [0, 1] to ImageNet-standardised values inside the model.

    Keeping this inside the model lets attribution paths and baselines live in image space.
    """

    def __init__(self) -> None:
        super().__init__()
        # Constants, not state: kept out of checkpoints (persistent=False).
        mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
        self.register_buffer("mean", mean.view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", std.view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return (images - self.mean) / self.std  # (B, 3, H, W)


class _StrideExact(nn.Module):
    """A timm feature extractor whose output is resized (bilinear) to exactly (H/32, W/32)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = self.net(images)  # (B, C, h', w'), h' ~ H/32 - 2 (valid padding)
        size = (images.shape[-2] // 32, images.shape[-1] // 32)
        if tuple(features.shape[-2:]) == size:
            return features
        return nn.functional.interpolate(features, size=size, mode="bilinear", align_corners=False)


def timm_trunk(name: str) -> tuple[nn.Module, int]:
    """Seed 001's Inception-v3 or Inception-ResNet-v2 from timm as a stride-32 trunk.

    Random weights (``pretrained=False``: nothing is downloaded); the output is resized to
    exactly ``(H/32, W/32)`` so any stride-32 head fits. Inputs must be at least 75 px.
    """
    if name not in TIMM_TRUNKS:
        raise ValueError(f"backbone: expected one of {sorted(TIMM_TRUNKS)}, got {name!r}")
    import timm  # imported late: only the Inception backbones need it

    net = timm.create_model(name, pretrained=False, num_classes=0, global_pool="")
    return _StrideExact(net), TIMM_TRUNKS[name]


def check_resnet(backbone: str) -> None:
    """Raise ``ValueError`` unless ``backbone`` names one of the torchvision ResNets of
    :data:`RESNETS` (for the families whose heads need a ResNet's stage layout).

    >>> check_resnet("vgg16")
    Traceback (most recent call last):
    ...
    ValueError: backbone: expected one of ['resnet101', 'resnet152', 'resnet18', 'resnet34', \
'resnet50'], got 'vgg16'
    """
    if backbone not in RESNETS:
        raise ValueError(f"backbone: expected one of {sorted(RESNETS)}, got {backbone!r}")


def check_heads(width: int, heads: int, *, name: str = "width") -> None:
    """Raise ``ValueError`` unless multi-head attention can split ``width`` channels (the config
    field ``name``) evenly over ``heads``.

    >>> check_heads(30, 4)
    Traceback (most recent call last):
    ...
    ValueError: width: expected a multiple of heads=4, got 30
    """
    if width % heads:
        raise ValueError(f"{name}: expected a multiple of heads={heads}, got {width}")


def resnet_trunk(name: str, *, stages: int = 4) -> tuple[nn.Module, int]:
    """A torchvision ResNet without average pooling and classifier, random weights.

    Args:
        name: a key of ``RESNETS`` (``"resnet18"`` ... ``"resnet152"``), or, with all four stages,
            one of ``TIMM_TRUNKS`` (seed 001's Inception networks, see :func:`timm_trunk`).
        stages: how many of the four residual stages to keep (output stride ``2 ** (stages + 1)``).

    Returns:
        the trunk ``(B, 3, H, W) -> (B, C, H / s, W / s)`` and its output channels ``C``.
    """
    if name in TIMM_TRUNKS and stages == 4:
        return timm_trunk(name)
    if name not in RESNETS:
        choices = sorted(RESNETS) + (sorted(TIMM_TRUNKS) if stages == 4 else [])
        raise ValueError(f"backbone: expected one of {choices}, got {name!r}")
    if stages not in (1, 2, 3, 4):
        raise ValueError(f"stages: expected 1, 2, 3 or 4, got {stages}")
    builder, channels = RESNETS[name]
    # weights=None: never download weights; the zoo ships handlab's own.
    net = getattr(torchvision.models, builder)(weights=None)
    layers = [net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3]
    layers = layers[: 4 + stages] + ([net.layer4] if stages == 4 else [])
    return nn.Sequential(*layers), channels[stages - 1]


def check_size(images: torch.Tensor, *, multiple: int, name: str = "images") -> None:
    """Validate RGB images and require H and W to be multiples of the network's total stride."""
    check_images(images, channels=3, min_size=multiple, name=name)
    h, w = images.shape[-2:]
    if h % multiple or w % multiple:
        raise ValueError(f"{name}: expected H and W multiples of {multiple}, got ({h}, {w})")


def check_fixed_size(
    images: torch.Tensor, size: int, *, why: str = "(config.input_size)", name: str = "images"
) -> None:
    """Require images (..., H, W) of exactly ``size`` x ``size`` px: a coordinate head is tied to
    one input size. ``why`` says what fixes the size, in the error.

    >>> check_fixed_size(torch.zeros(1, 3, 64, 48), 64)
    Traceback (most recent call last):
    ...
    ValueError: images: expected H, W = (64, 64) (config.input_size), got (64, 48)
    """
    got = tuple(images.shape[-2:])
    if got != (size, size):
        raise ValueError(f"{name}: expected H, W = ({size}, {size}) {why}, got {got}")


def check_batch(batch: object, shapes: Mapping[str, Sequence[int | None]]) -> None:
    """Validate a training batch dict: each key present, a tensor of the given shape, finite."""
    if not isinstance(batch, Mapping):
        raise TypeError(f"batch: expected a dict of tensors, got {type(batch).__name__}")
    for key, shape in shapes.items():
        if key not in batch:
            raise ValueError(f"batch: expected key {key!r}, got keys {sorted(batch)}")
        check_shape(f"batch[{key!r}]", batch[key], shape)
        check_finite(f"batch[{key!r}]", batch[key])


def check_keypoint_batch(batch: object, num_joints: int) -> None:
    """Validate the batch of a 2D loss: ``keypoints`` (B, J, 2) px and ``visibility`` (B, J).

    >>> check_keypoint_batch({"keypoints": torch.zeros(2, 21, 2)}, 21)
    Traceback (most recent call last):
    ...
    ValueError: batch: expected key 'visibility', got keys ['keypoints']
    """
    check_batch(batch, {"keypoints": (None, num_joints, 2), "visibility": (None, num_joints)})


def heatmap_mse(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """SimpleBaseline's heatmap loss: mean over joints of ``0.5 * MSE(pred * w, target * w)``.

    Args:
        pred, target: (B, J, h, w) heatmaps.
        weight: (B, J) per-joint weights (the visibility).

    >>> t = torch.ones(1, 2, 4, 4)
    >>> float(heatmap_mse(t * 0, t, torch.tensor([[1.0, 0.0]])))
    0.25
    """
    w = weight[..., None, None]  # (B, J, 1, 1)
    return 0.5 * ((pred * w - target * w) ** 2).mean()


def coordinate_grid(batch: int, height: int, width: int, device: torch.device) -> torch.Tensor:
    """CoordConv channels (B, 2, h, w): x and y of each cell scaled to [-1, 1].

    >>> coordinate_grid(1, 2, 3, torch.device("cpu"))[0, 0].tolist()
    [[-1.0, 0.0, 1.0], [-1.0, 0.0, 1.0]]
    """
    ys = torch.linspace(-1.0, 1.0, height, device=device)
    xs = torch.linspace(-1.0, 1.0, width, device=device)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")  # (h, w) each
    return torch.stack([grid_x, grid_y]).expand(batch, 2, height, width)


def to_image_units(keypoints: torch.Tensor, size: int) -> torch.Tensor:
    """Keypoints (..., 2) px of a ``size`` px input -> image units, the coordinate heads' targets:
    the image spans [-0.5, 0.5] edge to edge (pixel centres at integers). Inverse of
    :meth:`CoordsDecodeMixin.decode`.

    >>> to_image_units(torch.tensor([[-0.5, 31.5], [63.5, 63.5]]), 64).tolist()
    [[-0.5, 0.0], [0.5, 0.5]]
    """
    return (keypoints + 0.5) / size - 0.5


class CoordsDecodeMixin:
    """``decode`` shared by the coordinate heads (DirectRegression, RLE): ``outputs["coords"]``
    (B, 2J) in image units (:func:`to_image_units`) -> ``keypoints`` (B, J, 2) input pixels of the
    model's ``config.input_size``."""

    def decode(self, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``coords`` (B, 2J) -> ``keypoints`` (B, J, 2) input pixels; differentiable (affine)."""
        size = self.config.input_size
        coords = outputs["coords"].view(-1, self.num_joints, 2)  # (B, J, 2)
        return {"keypoints": (coords + 0.5) * size - 0.5}
