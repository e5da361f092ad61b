"""TransPose (Yang, Quan, Nie & Yang, "TransPose: Keypoint Localization via Transformer",
ICCV 2021; seed 000's Table C): a CNN trunk, a Transformer encoder over its feature cells, and a
heatmap head.

Taught in chapter 09 (``notebooks/09_indices.py``) among PoseIG's model set.

TransPose-R: the first stages of a ResNet give features at stride 8, a 1x1 convolution reduces them
to ``d`` channels, the ``h x w`` cells become a sequence of ``h w`` tokens with a fixed 2D sine
position embedding, ``layers`` standard encoder layers (multi-head self-attention + feed-forward)
mix them, and one 4x4 transposed convolution plus a 1x1 convolution give one heatmap per joint at
stride 4. Targets, loss (``JointsMSELoss``) and decoders are SimpleBaseline's, so the two families
differ only in the Transformer. The paper's point for interpretability, the last layer's attention
as an explanation of each keypoint, is available from :meth:`TransPose.attention`.

>>> model = create_transpose(d_model=32, layers=1, heads=2, input_size=64)
>>> out = model(torch.rand(2, 3, 64, 64))
>>> out["heatmaps"].shape, out["keypoints"].shape
(torch.Size([2, 21, 16, 16]), torch.Size([2, 21, 2]))
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from handlab.models import _heatmaps as hc
from handlab.models._common import (
    ImageNormalize,
    check_heads,
    check_keypoint_batch,
    check_size,
    resnet_trunk,
)
from handlab.models.base import PoseModel
from handlab.models.registry import register_model
from handlab.models.simplebaseline import DeconvHead

__all__ = ["TransPose", "TransPoseConfig", "create_transpose", "sine_positions"]


@dataclass(frozen=True)
class TransPoseConfig:
    # TransPose-R-A3 uses ResNet-50's first two stages; ResNet-18's keep CPU recipes fast.
    backbone: str = "resnet18"
    input_size: int = 128
    # The paper's d = 256, 8 heads, 3-4 layers; a quarter of that trains on a laptop CPU.
    d_model: int = 64
    heads: int = 4
    layers: int = 3
    feedforward: int = 256
    dropout: float = 0.1
    sigma: float = 2.0
    decoder: str = "quarter"
    num_joints: int = 21


def sine_positions(height: int, width: int, d_model: int) -> torch.Tensor:
    """The fixed 2D sine position embedding of DETR/TransPose: (h * w, d) for an h x w grid.

    Half the channels encode y, half x, each as sin/cos pairs at geometric frequencies of the
    normalised coordinate (the paper normalises to 2 pi).

    >>> sine_positions(2, 3, 8).shape
    torch.Size([6, 8])
    """
    if d_model % 4:
        raise ValueError(
            f"d_model: expected a multiple of 4 for the 2D sine embedding, got {d_model}"
        )
    quarter = d_model // 4
    freq = 10000.0 ** (torch.arange(quarter, dtype=torch.float32) / quarter)  # (d/4,)
    ys = (torch.arange(height, dtype=torch.float32) + 0.5) / height * 2 * math.pi
    xs = (torch.arange(width, dtype=torch.float32) + 0.5) / width * 2 * math.pi
    y = ys[:, None] / freq  # (h, d/4)
    x = xs[:, None] / freq  # (w, d/4)
    ey = torch.cat([y.sin(), y.cos()], -1)[:, None].expand(height, width, 2 * quarter)
    ex = torch.cat([x.sin(), x.cos()], -1)[None].expand(height, width, 2 * quarter)
    return torch.cat([ey, ex], -1).reshape(height * width, d_model)


class TransPose(hc.SoftDecodeMixin, PoseModel):
    """``images (B, 3, H, W)`` in [0, 1], H and W multiples of 8 -> ``heatmaps`` (B, 21, H/4, W/4),
    ``keypoints`` (B, 21, 2) input pixels (the codec's argmax decoder) and ``scores`` (B, 21);
    ``decode`` is the differentiable local soft-argmax shared with SimpleBaseline."""

    def __init__(self, config: TransPoseConfig) -> None:
        super().__init__()
        hc.check_method(config.decoder)
        check_heads(config.d_model, config.heads, name="d_model")
        if config.layers < 1:
            raise ValueError(f"layers: expected >= 1 encoder layer, got {config.layers}")
        self.config = config
        self.num_joints = config.num_joints
        self.normalize = ImageNormalize()
        self.backbone, channels = resnet_trunk(config.backbone, stages=2)  # stride 8
        self.reduce = nn.Conv2d(channels, config.d_model, kernel_size=1)
        layer = nn.TransformerEncoderLayer(
            config.d_model,
            config.heads,
            config.feedforward,
            config.dropout,
            batch_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, config.layers, enable_nested_tensor=False)
        self.head = DeconvHead(config.d_model, config.d_model, config.num_joints, layers=1)
        self.multiple = 8
        self.stride = 4

    def _tokens(self, images: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        features = self.reduce(self.backbone(self.normalize(images)))  # (B, d, h, w)
        _, d, h, w = features.shape
        pos = sine_positions(h, w, d).to(features)  # (h w, d)
        return features.flatten(2).transpose(1, 2) + pos, h, w  # (B, h w, d)

    def heatmaps(self, images: torch.Tensor) -> torch.Tensor:
        tokens, h, w = self._tokens(images)
        mixed = self.encoder(tokens)  # (B, h w, d)
        features = mixed.transpose(1, 2).reshape(len(images), -1, h, w)  # (B, d, h, w)
        return self.head(features)  # (B, J, 2h, 2w)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        check_size(images, multiple=self.multiple)
        heatmaps = self.heatmaps(images)
        keypoints, scores = hc.decode_argmax(
            heatmaps, stride=self.stride, sigma=self.config.sigma, method=self.config.decoder
        )
        return {"heatmaps": heatmaps, "keypoints": keypoints, "scores": scores}

    @torch.no_grad()
    def attention(self, images: torch.Tensor) -> torch.Tensor:
        """The last encoder layer's self-attention, averaged over heads: (B, h w, h w).

        Row ``i`` says which cells the token of cell ``i`` reads from: TransPose's "dependency
        areas" of the keypoint whose heatmap peaks at cell ``i``.
        """
        check_size(images, multiple=self.multiple)
        tokens, _, _ = self._tokens(images)
        for layer in self.encoder.layers[:-1]:
            tokens = layer(tokens)
        last = self.encoder.layers[-1]
        x = last.norm1(tokens) if last.norm_first else tokens
        _, weights = last.self_attn(x, x, x, need_weights=True, average_attn_weights=True)
        return weights  # (B, h w, h w), rows sum to 1

    def loss(
        self, outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """SimpleBaseline's visibility-weighted heatmap MSE (the paper's loss). Needs
        ``batch["keypoints"]`` (B, 21, 2) px and ``batch["visibility"]`` (B, 21)."""
        check_keypoint_batch(batch, self.num_joints)
        loss = hc.heatmap_loss(
            outputs["heatmaps"], batch, stride=self.stride, sigma=self.config.sigma
        )
        return loss, {"heatmap": float(loss.detach())}


@register_model("transpose")
def create_transpose(**config: object) -> TransPose:
    """Build a :class:`TransPose` from :class:`TransPoseConfig` keywords."""
    return TransPose(TransPoseConfig(**config))
