"""A2J: Anchor-to-Joint regression (Xiong et al., ICCV 2019) from a single depth crop.

Taught in chapter 04 (``notebooks/04_a2j.py``).

Anchors sit every ``anchor_stride`` = 4 input pixels. For each anchor ``a`` and joint ``j`` the
network predicts a weight logit, an in-plane offset ``o_aj`` (px) and a depth ``d_aj`` (mm); the
weights are a softmax over all anchors (``w_aj``) and

    uv_j = sum_a w_aj (p_a + o_aj),        depth_j = sum_a w_aj d_aj

(the paper's equations 1-2). The anchor weights come from the common trunk (ResNet stages 1-3,
stride 16); offsets and depths from the regression trunk (stage 4 at stride 1: dilated for the
bottleneck ResNets as in the paper, plain stride 1 for ResNet-18/34, whose basic blocks torchvision
does not dilate). Each stride-16 cell therefore carries (16 / 4)^2 = 16 anchors.

Loss (the paper's equation 4 with lambda = 3): the *anchor-surrounding* term SmoothL1 between the
weighted anchor positions ``sum_a w_aj p_a`` and the ground truth (it makes anchors around each
joint informative), plus ``3 * (0.5 * SmoothL1(uv) + SmoothL1_beta3(depth))``; uv in px, depth in
mm. Targets are the batch's ``keypoints`` and joint depths ``xyz[..., 2]``: no ``K`` is needed.

Input and K. ``forward(depth, K=None)``: depth ``(B, 1, H, W)`` mm (H, W multiples of 16),
background 0 (``handlab.training`` applies the batch mask; for unmasked crops such as NYU's set
``segment_mm``, e.g. 150, to threshold around the crop's central depth); depth is normalised
inside the model to ``(d - mean hand depth) / (cube_mm / 2)``, clipped to [-1, 1], background 1.
``K`` only turns ``uvd`` into ``xyz``; without it ``focal * W`` px and the image centre are used.
Works for the canonical 21 joints and NYU's 14 (``num_joints=14``); ``xyz`` is relative to
joint 0.

>>> model = create_a2j(head_width=16, head_layers=1).eval()
>>> depth = torch.zeros(1, 1, 64, 64)
>>> depth[..., 16:48, 20:44] = 400.0
>>> out = model(depth)
>>> out["keypoints"].shape, out["anchor_weights"].shape  # 4 x 4 cells x 16 anchors
(torch.Size([1, 21, 2]), torch.Size([1, 21, 256]))
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from handlab._checks import check_range
from handlab.geometry import unproject
from handlab.models._common import RESNETS, check_batch, check_resnet, resnet_trunk
from handlab.models.base import PoseModel, check_images
from handlab.models.registry import register_model
from handlab.models.v2v import resolve_K
from handlab.models.voxels import check_depth, segment_depth

__all__ = ["A2J", "A2JConfig", "a2j_loss", "anchor_positions", "create_a2j", "weighted_joints"]

FEATURE_STRIDE = 16  # stages 1-3 of a ResNet; stage 4 kept at stride 1


@dataclass(frozen=True)
class A2JConfig:
    backbone: str = "resnet18"  # the paper's resnet50 (dilated stage 4) is ~4x slower on CPU
    num_joints: int = 21  # 21 canonical or NYU's 14 evaluation joints
    anchor_stride: int = 4  # px between anchors (the paper's value)
    head_width: int = 128  # the paper's heads are 4 convs of 256 channels
    head_layers: int = 2
    cube_mm: float = 250.0  # depth normalisation range around the mean hand depth
    focal: float = 1.4  # default focal length in image widths (see handlab.models.v2v)
    segment_mm: float | None = None  # unsegmented crops (NYU): keep +-this around the centre depth

    def __post_init__(self) -> None:
        check_resnet(self.backbone)
        if self.num_joints not in (14, 21):
            raise ValueError(
                f"num_joints: expected 21 (canonical) or 14 (NYU), got {self.num_joints!r}"
            )
        if self.anchor_stride not in (1, 2, 4, 8, 16):
            raise ValueError(f"anchor_stride: expected a divisor of 16, got {self.anchor_stride!r}")
        check_range("head_width", self.head_width, lo=1)
        check_range("head_layers", self.head_layers, lo=0)
        check_range("cube_mm", self.cube_mm, lo=1.0)
        check_range("focal", self.focal, lo=0.01)
        if self.segment_mm is not None:
            check_range("segment_mm", self.segment_mm, lo=1.0)


def anchor_positions(height: int, width: int, stride: int = 4) -> torch.Tensor:
    """Anchor pixel positions (N, 2) ``(x, y)`` of a (height, width) input, cell by cell.

    Order: feature cells row-major, then the ``(16 / stride)^2`` anchors of a cell row-major;
    anchor ``k`` of a cell sits at the centre of its ``stride`` x ``stride`` block (pixel centres
    at integers). ``N = (height / 16) (width / 16) (16 / stride)^2``.

    >>> anchor_positions(16, 16)[:5].tolist()
    [[1.5, 1.5], [5.5, 1.5], [9.5, 1.5], [13.5, 1.5], [1.5, 5.5]]
    """
    k = FEATURE_STRIDE // stride
    cy, cx, ky, kx = torch.meshgrid(
        torch.arange(height // FEATURE_STRIDE),
        torch.arange(width // FEATURE_STRIDE),
        torch.arange(k),
        torch.arange(k),
        indexing="ij",
    )
    x = cx * FEATURE_STRIDE + kx * stride + (stride - 1) / 2
    y = cy * FEATURE_STRIDE + ky * stride + (stride - 1) / 2
    return torch.stack([x.reshape(-1), y.reshape(-1)], dim=-1).float()


def weighted_joints(
    logits: torch.Tensor, offsets: torch.Tensor, depths: torch.Tensor, anchors: torch.Tensor
) -> dict[str, torch.Tensor]:
    """A2J's aggregation: softmax over anchors, then weighted sums.

    Args:
        logits: (B, J, N) anchor weight logits.
        offsets: (B, J, N, 2) px in-plane offsets.
        depths: (B, J, N) mm per-anchor depths.
        anchors: (N, 2) or (B, N, 2) px anchor positions.

    Returns:
        ``anchor_weights`` (B, J, N), ``uvd`` (B, J, 3) (px, px, mm) and ``surround`` (B, J, 2)
        px, the weighted anchor positions without offsets.

    >>> out = weighted_joints(torch.zeros(1, 1, 2), torch.ones(1, 1, 2, 2), torch.tensor(
    ...     [[[100.0, 200.0]]]), torch.tensor([[0.0, 0.0], [4.0, 0.0]]))
    >>> out["uvd"].tolist(), out["surround"].tolist()
    ([[[3.0, 1.0, 150.0]]], [[[2.0, 0.0]]])
    """
    w = torch.softmax(logits, dim=-1)  # (B, J, N)
    surround = w @ anchors.to(w)  # (B, J, 2)
    uv = surround + (w[..., None] * offsets).sum(-2)  # (B, J, 2)
    d = (w * depths).sum(-1, keepdim=True)  # (B, J, 1)
    return {"anchor_weights": w, "uvd": torch.cat([uv, d], dim=-1), "surround": surround}


def a2j_loss(
    uvd: torch.Tensor, surround: torch.Tensor, keypoints: torch.Tensor, depth: torch.Tensor
) -> tuple[torch.Tensor, dict[str, float]]:
    """``SmoothL1(surround, kp) + 3 * (0.5 SmoothL1(uv, kp) + SmoothL1_beta3(d, depth))``.

    Args: ``uvd`` (B, J, 3) px, px, mm; ``surround`` (B, J, 2) px; ``keypoints`` (B, J, 2) px;
    ``depth`` (B, J) mm. Each SmoothL1 is averaged over its elements.

    >>> kp = torch.zeros(1, 1, 2)
    >>> float(a2j_loss(torch.tensor([[[2.0, 0.0, 6.0]]]), kp, kp, torch.zeros(1, 1))[0])
    14.625
    """
    surround_loss = F.smooth_l1_loss(surround, keypoints)
    uv_loss = F.smooth_l1_loss(uvd[..., :2], keypoints)
    depth_loss = F.smooth_l1_loss(uvd[..., 2], depth, beta=3.0)
    loss = surround_loss + 3.0 * (0.5 * uv_loss + depth_loss)
    parts = {"surround": surround_loss, "uv": uv_loss, "depth": depth_loss}
    logs = {k: float(v.detach()) for k, v in parts.items()}
    return loss, logs


def _head(cin: int, width: int, layers: int, out: int) -> nn.Sequential:
    mods: list[nn.Module] = []
    for i in range(layers):
        mods += [
            nn.Conv2d(cin if i == 0 else width, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        ]
    mods.append(nn.Conv2d(width if layers else cin, out, 3, padding=1))
    return nn.Sequential(*mods)


def _stride1_stage4(backbone: str) -> tuple[nn.Module, int]:
    """ResNet stage 4 at stride 1: dilated (bottleneck nets, the paper) or stride-patched."""
    builder, channels = RESNETS[backbone]
    bottleneck = channels[-1] == 2048
    dilate = [False, False, True] if bottleneck else None
    net = getattr(torchvision.models, builder)(weights=None, replace_stride_with_dilation=dilate)
    stage = net.layer4
    if not bottleneck:  # BasicBlock refuses dilation: keep 3x3 convs, drop the stride
        stage[0].conv1.stride = (1, 1)
        stage[0].downsample[0].stride = (1, 1)
    return stage, channels[-1]


class A2J(PoseModel):
    """``depth (B, 1, H, W)`` mm -> anchors' weights, offsets and depths -> ``keypoints`` px,
    ``uvd`` and ``xyz`` mm; see the module docstring.

    Outputs: ``keypoints`` (B, J, 2) px, ``uvd`` (B, J, 3), ``xyz`` (B, J, 3) mm root-relative,
    ``xyz_cam`` (B, J, 3) mm camera frame; raw: ``anchor_logits`` and ``anchor_weights``
    (B, J, N), ``offsets`` (B, J, N, 2) px, ``depths`` (B, J, N) mm, ``anchors`` (B, N, 2) px,
    ``surround`` (B, J, 2) px and ``K`` (B, 3, 3).
    """

    input_kind = "depth"
    is_3d = True
    masked_input = True  # handlab.training zeroes depth outside the batch mask for this model

    def __init__(self, config: A2JConfig) -> None:
        super().__init__()
        self.config = config
        self.num_joints = config.num_joints
        self.common, c3 = resnet_trunk(config.backbone, stages=3)
        self.common[0] = nn.Conv2d(1, 64, 7, stride=2, padding=3, bias=False)  # depth: 1 channel
        self.regression, c4 = _stride1_stage4(config.backbone)
        A, J = (FEATURE_STRIDE // config.anchor_stride) ** 2, config.num_joints
        w, n = config.head_width, config.head_layers
        self.anchors_per_cell = A
        self.weight_head = _head(c3, w, n, A * J)
        self.offset_head = _head(c4, w, n, A * J * 2)
        self.depth_head = _head(c4, w, n, A * J)

    def normalize(self, depth: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Depth (B, 1, H, W) mm -> normalised input (B, 1, H, W) and mean hand depth (B,) mm."""
        valid = (depth > 0).to(depth.dtype)
        ref = (depth * valid).sum((1, 2, 3)) / valid.sum((1, 2, 3))  # (B,)
        x = ((depth - ref[:, None, None, None]) / (self.config.cube_mm / 2)).clamp(-1.0, 1.0)
        return torch.where(depth > 0, x, torch.ones_like(x)), ref

    def _per_anchor(self, maps: torch.Tensor, channels: int) -> torch.Tensor:
        """(B, A * J * c, h, w) -> (B, J, h * w * A, c) in :func:`anchor_positions` order."""
        B, _, h, w = maps.shape
        A, J = self.anchors_per_cell, self.num_joints
        x = maps.view(B, A, J, channels, h, w).permute(0, 2, 4, 5, 1, 3)  # (B, J, h, w, A, c)
        return x.reshape(B, J, h * w * A, channels)

    def forward(
        self, depth: torch.Tensor, K: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        check_images(depth, channels=1, min_size=FEATURE_STRIDE, name="depth")
        H, W = depth.shape[-2:]
        if H % FEATURE_STRIDE or W % FEATURE_STRIDE:
            raise ValueError(f"depth: expected H and W multiples of 16, got ({H}, {W})")
        check_depth(depth)
        if self.config.segment_mm is not None:
            depth = segment_depth(depth, self.config.segment_mm)
        K = resolve_K(depth, K, self.config.focal)
        x, ref = self.normalize(depth)
        f3 = self.common(x)  # (B, c3, H/16, W/16)
        f4 = self.regression(f3)  # (B, c4, H/16, W/16)
        half = self.config.cube_mm / 2
        outputs = {
            "anchor_logits": self._per_anchor(self.weight_head(f3), 1)[..., 0],  # (B, J, N)
            "offsets": self._per_anchor(self.offset_head(f4), 2),  # (B, J, N, 2) px
            # per-anchor depth in mm around the mean hand depth
            "depths": ref[:, None, None] + half * self._per_anchor(self.depth_head(f4), 1)[..., 0],
            "anchors": anchor_positions(H, W, self.config.anchor_stride)
            .to(x)
            .expand(len(x), -1, 2),
            "K": K,
        }
        outputs.update(self.decode(outputs))
        return outputs

    def decode(self, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Differentiable: anchor logits, offsets and depths -> ``anchor_weights``, ``surround``,
        ``uvd`` (B, J, 3), ``keypoints`` (B, J, 2) px, ``xyz`` mm root-relative, ``xyz_cam``."""
        out = weighted_joints(
            outputs["anchor_logits"], outputs["offsets"], outputs["depths"], outputs["anchors"]
        )
        xyz_cam = unproject(out["uvd"], outputs["K"])
        out.update(keypoints=out["uvd"][..., :2], xyz=xyz_cam - xyz_cam[:, :1], xyz_cam=xyz_cam)
        return out

    def loss(
        self, outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """:func:`a2j_loss` against ``batch["keypoints"]`` (B, J, 2) px and the joint depths
        ``batch["xyz"][..., 2]`` (B, J) mm."""
        J = self.num_joints
        check_batch(batch, {"keypoints": (None, J, 2), "xyz": (None, J, 3)})
        loss, logs = a2j_loss(
            outputs["uvd"], outputs["surround"], batch["keypoints"], batch["xyz"][..., 2]
        )
        logs["epe_px"] = float(
            (outputs["keypoints"].detach() - batch["keypoints"]).norm(dim=-1).mean()
        )
        return loss, logs


@register_model("a2j")
def create_a2j(**config: object) -> A2J:
    """Build an :class:`A2J` from :class:`A2JConfig` keywords."""
    return A2J(A2JConfig(**config))
