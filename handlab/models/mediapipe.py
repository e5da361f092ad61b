"""MediaPipe Hands landmark models (Zhang et al., "MediaPipe Hands: On-device Real-time Hand
Tracking", CVPR Workshops 2020), ported by hand from Google's ``hand_landmark_{full,lite}.tflite``
(Apache-2.0): the only models in handlab trained on real photographs.

For chapter 08 (``notebooks/08_poseig.py``: PoseIG on a model that knows real hands; not yet
used there). The weights ship in the zoo as ``mediapipe_hand_full`` and ``mediapipe_hand_lite``,
converted by ``handlab zoo import-mediapipe`` (:mod:`handlab.zoo.mediapipe`).

The network is a MobileNetV2-style stack of inverted residual blocks (1x1 expand + ReLU6,
k x k depthwise + ReLU6, linear 1x1 projection, a shortcut when the block keeps its width),
global average pooling and four fully connected heads: 21 screen landmarks (x, y, z in input
pixels), hand presence and handedness (both after a sigmoid) and 21 world landmarks (metres).
Batch normalisation is folded into the convolutions in the published file, so the convolutions
carry biases and there is no BatchNorm here. Convolutions pad like TensorFlow's ``"SAME"``: on
the stride-2 layers of an even-sized input the extra row and column go at the bottom and right
(``k - 2`` pixels in total), which ``nn.Conv2d``'s symmetric padding cannot express.

Input: ``images`` (B, 3, 224, 224) RGB in [0, 1], a square crop around one hand; MediaPipe's palm
detector provides crops rotated so that the wrist -> middle knuckle points up, and the model is
much better on such upright crops (see the zoo cards). Outputs (all batch-first):

- ``keypoints`` (B, 21, 2) input pixels (x, y), handlab's pixel-centre convention. MediaPipe
  divides its landmarks by the input width and maps 0.5 to the crop rectangle's centre, so its
  ``x = 112`` is the centre of the 224 px crop, which handlab calls 111.5: shifted by -0.5;
- ``xyz`` (B, 21, 3) mm, root-relative (wrist at the origin), from the world landmarks;
- ``presence`` (B,) probability that the crop holds a hand; ``handedness`` (B,) probability of a
  right hand (in an unmirrored image);
- raw: ``landmarks`` (B, 21, 3) MediaPipe's screen landmarks (x, y px from the crop's corner,
  z relative depth), ``world_landmarks`` (B, 21, 3) metres around the hand's centre.

>>> model = create_mediapipe_hand(variant="lite")
>>> out = model(torch.rand(1, 3, 224, 224))
>>> out["keypoints"].shape, out["xyz"].shape, out["presence"].shape
(torch.Size([1, 21, 2]), torch.Size([1, 21, 3]), torch.Size([1]))
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from handlab.models._common import check_fixed_size, check_keypoint_batch
from handlab.models.base import PoseModel, check_images
from handlab.models.registry import register_model

__all__ = [
    "BLOCKS",
    "InvertedResidual",
    "MediaPipeHand",
    "MediaPipeHandConfig",
    "SameConv2d",
    "create_mediapipe_hand",
]

# One row per inverted residual block: (expanded width, depthwise kernel, stride, output width),
# read from the published graphs. The stem (3x3 conv to 24, depthwise, projection to 16) and the
# final expand + depthwise (no projection) are fixed; ``final`` is the final width.
BLOCKS: dict[str, dict[str, object]] = {
    "full": {
        "blocks": (
            (64, 3, 2, 24),
            (144, 3, 1, 24),
            (144, 5, 2, 40),
            (240, 5, 1, 40),
            (240, 3, 2, 80),
            (480, 3, 1, 80),
            (480, 3, 1, 80),
            (480, 5, 1, 112),
            (672, 5, 1, 112),
            (672, 5, 1, 112),
            (672, 5, 2, 192),
            (1152, 5, 1, 192),
            (1152, 5, 1, 192),
            (1152, 5, 1, 192),
        ),
        "final": 1152,
    },
    "lite": {
        "blocks": (
            (64, 3, 2, 16),  # stride 2 at equal width: the shortcut is a 2x2 max pool
            (96, 3, 1, 16),
            (96, 5, 2, 24),
            (144, 5, 1, 24),
            (144, 3, 2, 48),
            (288, 3, 1, 48),
            (288, 3, 1, 48),
            (288, 5, 1, 64),
            (384, 5, 1, 64),
            (384, 5, 1, 64),
            (384, 5, 2, 112),
            (672, 5, 1, 112),
            (672, 5, 1, 112),
            (672, 5, 1, 112),
        ),
        "final": 672,
    },
}
INPUT_SIZE = 224  # the published models' input; their landmarks come out in these pixels


@dataclass(frozen=True)
class MediaPipeHandConfig:
    # "full" (2.7 M parameters) or "lite" (1.0 M): MediaPipe's two landmark models.
    variant: str = "full"
    # Fixed by the published weights (224 x 224 crops); kept here so tools can read it.
    input_size: int = INPUT_SIZE
    num_joints: int = 21


class SameConv2d(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow's ``"SAME"`` padding: output size ``ceil(in / stride)``,
    the total padding split with the extra pixel at the bottom / right.

    (B, C, H, W) -> (B, C', ceil(H / s), ceil(W / s)).

    >>> conv = SameConv2d(1, 1, 3, stride=2, bias=False)
    >>> _ = nn.init.ones_(conv.weight)
    >>> conv(torch.ones(1, 1, 4, 4))[0, 0].tolist()  # padded by 0 top/left, 1 bottom/right
    [[9.0, 6.0], [6.0, 4.0]]
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s in zip(
            x.shape[:-3:-1], self.kernel_size[::-1], self.stride[::-1], strict=True
        ):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]  # (left, right), then (top, bottom)
        return super().forward(F.pad(x, pads))


class InvertedResidual(nn.Module):
    """1x1 expand + ReLU6, k x k depthwise (stride s) + ReLU6, linear 1x1 projection; plus the
    input when the width is kept (through a 2x2 max pool when s = 2, as in the lite model).

    (B, C, H, W) -> (B, C', H / s, W / s).
    """

    def __init__(self, cin: int, expanded: int, kernel: int, stride: int, cout: int) -> None:
        super().__init__()
        self.expand = SameConv2d(cin, expanded, 1)
        self.depthwise = SameConv2d(expanded, expanded, kernel, stride=stride, groups=expanded)
        self.project = SameConv2d(expanded, cout, 1)
        self.stride = stride
        self.residual = cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu6(self.expand(x))  # (B, E, H, W)
        h = F.relu6(self.depthwise(h))  # (B, E, H / s, W / s)
        h = self.project(h)  # (B, C', H / s, W / s)
        if not self.residual:
            return h
        return h + (x if self.stride == 1 else F.max_pool2d(x, self.stride))


class MediaPipeHand(PoseModel):
    """MediaPipe's hand landmark network: ``images`` (B, 3, 224, 224) RGB in [0, 1] -> the
    outputs listed in the module docstring. ``decode`` (differentiable, affine) maps the raw
    ``landmarks`` / ``world_landmarks`` to ``keypoints`` / ``xyz``."""

    is_3d = True
    input_size = INPUT_SIZE  # the model contract's one accepted side (models.base)

    def __init__(self, config: MediaPipeHandConfig) -> None:
        super().__init__()
        if config.variant not in BLOCKS:
            raise ValueError(f"variant: expected one of {sorted(BLOCKS)}, got {config.variant!r}")
        if config.input_size != INPUT_SIZE:
            raise ValueError(
                f"input_size: expected {INPUT_SIZE} (fixed by the published weights), "
                f"got {config.input_size}"
            )
        if config.num_joints != 21:
            raise ValueError(f"num_joints: expected 21 (MediaPipe's hand), got {config.num_joints}")
        self.config = config
        spec = BLOCKS[config.variant]
        self.stem = nn.ModuleDict(
            {
                "conv": SameConv2d(3, 24, 3, stride=2),
                "depthwise": SameConv2d(24, 24, 3, groups=24),
                "project": SameConv2d(24, 16, 1),
            }
        )
        blocks, cin = [], 16
        for expanded, kernel, stride, cout in spec["blocks"]:
            blocks.append(InvertedResidual(cin, expanded, kernel, stride, cout))
            cin = cout
        self.blocks = nn.Sequential(*blocks)
        width = spec["final"]
        self.final_expand = SameConv2d(cin, width, 1)
        self.final_depthwise = SameConv2d(width, width, 3, groups=width)
        self.landmarks = nn.Linear(width, 3 * 21)
        self.presence = nn.Linear(width, 1)
        self.handedness = nn.Linear(width, 1)
        self.world_landmarks = nn.Linear(width, 3 * 21)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """The pooled features (B, F) of images (B, 3, 224, 224) in [0, 1]."""
        h = F.relu6(self.stem["conv"](images))  # (B, 24, 112, 112)
        h = F.relu6(self.stem["depthwise"](h))  # (B, 24, 112, 112)
        h = self.stem["project"](h)  # (B, 16, 112, 112)
        h = self.blocks(h)  # (B, C, 7, 7)
        h = F.relu6(self.final_expand(h))  # (B, F, 7, 7)
        h = F.relu6(self.final_depthwise(h))  # (B, F, 7, 7)
        return h.mean(dim=(2, 3))  # (B, F)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        self.check_input(images)
        f = self.features(images)  # (B, F)
        outputs = {
            "landmarks": self.landmarks(f).view(-1, 21, 3),  # (B, 21, 3) px, px, relative
            "world_landmarks": self.world_landmarks(f).view(-1, 21, 3),  # (B, 21, 3) metres
            "presence": torch.sigmoid(self.presence(f))[:, 0],  # (B,)
            "handedness": torch.sigmoid(self.handedness(f))[:, 0],  # (B,)
        }
        outputs.update(self.decode(outputs))
        return outputs

    def check_input(self, images: torch.Tensor) -> None:
        """Validate images (B, 3, 224, 224): type, channels, the fixed size, finiteness."""
        check_images(images, channels=3)
        check_fixed_size(images, INPUT_SIZE, why="for MediaPipe's fixed input")

    def decode(self, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``landmarks`` -> ``keypoints`` (B, 21, 2) px (pixel centres at integers: -0.5) and
        ``world_landmarks`` -> ``xyz`` (B, 21, 3) mm, wrist at the origin. Differentiable."""
        world = outputs["world_landmarks"]  # (B, 21, 3) m
        return {
            "keypoints": outputs["landmarks"][..., :2] - 0.5,  # (B, 21, 2)
            "xyz": 1000.0 * (world - world[:, :1]),  # (B, 21, 3)
        }

    def loss(
        self, outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """For fine-tuning: visibility-weighted squared 2D error in units of the input size, plus,
        when ``batch`` holds ``xyz`` (B, 21, 3) mm, the squared root-relative 3D error in
        decimetres (both about 0.01 at a typical error). Needs ``batch["keypoints"]`` (B, 21, 2)
        px and ``batch["visibility"]`` (B, 21). The published weights have large gains: use small
        steps (on one batch SGD at lr 1e-5 lowered the loss; SGD at 1e-4 and Adam at 1e-5
        diverged)."""
        check_keypoint_batch(batch, 21)
        err = ((outputs["keypoints"] - batch["keypoints"]) / INPUT_SIZE).pow(2).sum(-1)  # (B, 21)
        loss = (err * batch["visibility"]).mean()
        logs = {"l2_2d": float(loss.detach())}
        if "xyz" in batch:
            target = batch["xyz"] - batch["xyz"][:, :1]  # (B, 21, 3) mm
            err3 = ((outputs["xyz"] - target) / 100.0).pow(2).sum(-1).mean()
            loss = loss + err3
            logs["l2_3d"] = float(err3.detach())
        return loss, logs


@register_model("mediapipe_hand")
def create_mediapipe_hand(**config: object) -> MediaPipeHand:
    """Build a :class:`MediaPipeHand` from :class:`MediaPipeHandConfig` keywords (random
    weights; ``handlab.zoo.load("mediapipe_hand_full")`` gives Google's)."""
    return MediaPipeHand(MediaPipeHandConfig(**config))
