"""Deformer (Fu, Liu, Xu, Ma & Wang, "Deformer: Dynamic Fusion Transformer for Robust Hand Pose
Estimation", ICCV 2023; seminar seed 003), a small faithful version.

Taught in chapter 07 (Deformer).

A clip of ``T`` frames (T = 7 by default) goes through, in :meth:`Deformer.forward` order:

1. a per-frame ResNet trunk (stride 16) and a learned embedding of each cell's (x, y);
2. the spatial transformer: self-attention over each frame's cells, then 21 joint queries that
   cross-attend to them (one token per joint and frame);
3. the temporal transformer: self-attention over the T frames, run for each joint token with
   shared weights and a learned time embedding (the paper attends over one vector per frame;
   per-joint tokens keep the detail a small width would lose);
4. heads per frame: the pose ``theta_t`` (keypoints and xyz of every joint), forward and backward
   pose deltas (``theta_{t+1} - theta_t`` and ``theta_{t-1} - theta_t``) and a confidence;
5. dynamic fusion (:func:`dynamic_fusion`): every frame's pose is warped to every other frame by
   the summed deltas in between and fused with ``softmax(confidence)`` weights.

The paper fuses MANO pose parameters; here the fused pose is the joints themselves (keypoints
as a fraction of the input side, xyz root-relative in ``xyz_unit_mm``), which the deltas move
just as well. The loss is maxMSE (:func:`max_mse`, per sample ``sum e^4 / sum e^2`` over joint
errors ``e``) or plain MSE. ``temporal=False`` is the per-frame baseline: the same network with
the temporal transformer, deltas, confidence and fusion left out.

>>> model = create_deformer(T=3, width=32, heads=2, input_size=64)
>>> out = model(torch.rand(2, 3, 3, 64, 64))  # (B, T, 3, H, W)
>>> out["keypoints"].shape, out["xyz"].shape, out["frame_poses"].shape
(torch.Size([2, 21, 2]), torch.Size([2, 21, 3]), torch.Size([2, 3, 21, 5]))
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from handlab._checks import check_range
from handlab.models._common import (
    ImageNormalize,
    check_batch,
    check_heads,
    check_resnet,
    coordinate_grid,
    resnet_trunk,
)
from handlab.models.base import PoseModel, check_images
from handlab.models.registry import register_model

__all__ = [
    "Deformer",
    "DeformerConfig",
    "create_deformer",
    "dynamic_fusion",
    "max_mse",
]

LOSSES = ("maxmse", "mse")


@dataclass(frozen=True)
class DeformerConfig:
    # Frames per clip; the paper's 7. The prediction is for the centre frame T // 2.
    T: int = 7
    # "maxmse" re-weights each sample's joints toward the worst ones (the paper); "mse" is plain.
    loss: str = "maxmse"
    # False: the per-frame baseline (no temporal transformer, deltas, confidence or fusion).
    temporal: bool = True
    # A small trunk: ResNet-18 to stride 16 (three stages) keeps T frames per sample affordable.
    backbone: str = "resnet18"
    trunk_stages: int = 3
    # Transformer channels and heads (the paper's are larger; 64 learns the synthetic hands).
    width: int = 64
    heads: int = 4
    spatial_layers: int = 1
    temporal_layers: int = 2
    # The network regresses coordinates, so it is tied to one square input size.
    input_size: int = 128
    # xyz is regressed in units of this many mm (a finger bone is about one unit).
    xyz_unit_mm: float = 20.0
    # Weight of the 2D term (2D is in image units, 3D in xyz units): at 1.0 an error of 1 px
    # weighs 1/40 of 1 mm and the 3D term was 99.8 % of the loss; 100 makes 1 px about 1.6 mm,
    # about what a pixel spans on a 128 px crop of a hand.
    weight_2d: float = 100.0
    num_joints: int = 21

    def __post_init__(self) -> None:
        check_range("T", self.T, lo=1)
        check_range("weight_2d", self.weight_2d, lo=0.0)
        if self.loss not in LOSSES:
            raise ValueError(f"loss: expected one of {list(LOSSES)}, got {self.loss!r}")
        check_heads(self.width, self.heads)


def max_mse(errors: torch.Tensor) -> torch.Tensor:
    """maxMSE per sample: ``sum_i e_i^4 / sum_i e_i^2`` over the last axis (joints).

    An MSE whose joint weights ``e_i^2 / sum e^2`` grow with the error: equal errors give
    exactly the MSE, one large error dominates. ``errors`` (..., J) >= 0 -> (...).

    >>> max_mse(torch.tensor([[1.0, 1.0, 1.0, 1.0], [2.0, 0.0, 0.0, 0.0]])).tolist()
    [1.0, 4.0]
    """
    sq = errors.square()  # (..., J)
    return sq.square().sum(-1) / sq.sum(-1).clamp(min=1e-12)


def dynamic_fusion(
    poses: torch.Tensor,
    forward_deltas: torch.Tensor,
    backward_deltas: torch.Tensor,
    confidence: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Warp every frame's pose to every frame by summed deltas; fuse with softmax weights.

    ``theta_{i->j} = theta_i + sum_{k=i}^{j-1} fw_k`` for ``j > i``,
    ``theta_i + sum_{k=j+1}^{i} bw_k`` for ``j < i``, and
    ``theta_j^+ = sum_i softmax(c)_i theta_{i->j}`` (Deformer, eqs. of the dynamic fusion module).
    With ``fw_k = theta_{k+1} - theta_k`` and ``bw_k = theta_{k-1} - theta_k`` (the deltas'
    definitions and training targets) both sums telescope to ``theta_j``. Seed 003 writes the
    backward sum over ``k = j .. i-1``, which is one frame off for its own ``bw_k`` (and reads the
    untrained ``bw_0``); handlab sums ``k = j+1 .. i``.

    Args:
        poses, forward_deltas, backward_deltas: (B, T, D) per-frame pose vectors and deltas.
        confidence: (B, T) logits.

    Returns:
        fused poses (B, T, D) and the warped poses (B, T_source, T_target, D).

    >>> p = torch.tensor([[[0.0], [10.0]]])
    >>> fused, _ = dynamic_fusion(p, torch.ones(1, 2, 1), -torch.ones(1, 2, 1), torch.zeros(1, 2))
    >>> fused[0, :, 0].tolist()  # frame 0 sees 0 and 10 - 1; frame 1 sees 0 + 1 and 10
    [4.5, 5.5]
    """
    zero = torch.zeros_like(poses[:, :1])  # (B, 1, D)
    # Exclusive prefix sums: cum[k] = sum_{m < k} fw_m, so sum_{k=i}^{j-1} fw_k = cum[j] - cum[i];
    # inclusive ones for bw: cum[k] = sum_{m <= k} bw_m, so sum_{k=j+1}^{i} bw_k = cum[i] - cum[j].
    cum_fw = torch.cat([zero, forward_deltas[:, :-1].cumsum(1)], dim=1)  # (B, T, D)
    cum_bw = backward_deltas.cumsum(1)  # (B, T, D)
    t = poses.shape[1]
    idx = torch.arange(t, device=poses.device)
    later = (idx[None, :] > idx[:, None]).to(poses)[None, :, :, None]  # (1, Ti, Tj, 1): j > i
    earlier = (idx[None, :] < idx[:, None]).to(poses)[None, :, :, None]  # j < i
    fw = cum_fw[:, None, :] - cum_fw[:, :, None]  # (B, Ti, Tj, D): cum_fw[j] - cum_fw[i]
    bw = cum_bw[:, :, None] - cum_bw[:, None, :]  # cum_bw[i] - cum_bw[j]
    warped = poses[:, :, None] + later * fw + earlier * bw  # (B, Ti, Tj, D)
    weights = torch.softmax(confidence, dim=1)[:, :, None, None]  # (B, Ti, 1, 1)
    return (weights * warped).sum(1), warped


class Deformer(PoseModel):
    """Deformer: ``clip (B, T, 3, S, S)`` in [0, 1] with ``S = input_size`` -> centre frame.

    ``forward`` returns the contract keys for the centre frame ``T // 2``: ``keypoints``
    (B, 21, 2) px and ``xyz`` (B, 21, 3) mm root-relative (from the fused pose), and raw outputs
    for every frame: ``frame_poses`` (B, T, 21, 5) per-frame poses before fusion, ``fused_poses``
    (B, T, 21, 5) after fusion (equal to ``frame_poses`` when ``temporal=False``), and with
    ``temporal=True`` ``forward_deltas``/``backward_deltas`` (B, T, 21, 5) and ``confidence``
    (B, T) logits. A pose row is (x, y) / input_size, then xyz / xyz_unit_mm.
    """

    input_kind = "clip"  # handlab train feeds it ``clip`` from ``--data synth-clips``
    is_3d = True

    def __init__(self, config: DeformerConfig) -> None:
        super().__init__()
        self.input_size = config.input_size  # the contract's fixed side (frames are S x S)
        check_resnet(config.backbone)
        self.config = config
        self.num_joints = config.num_joints
        self.multiple = 2 ** (config.trunk_stages + 1)
        if config.input_size % self.multiple:
            raise ValueError(
                f"input_size: expected a multiple of {self.multiple}, got {config.input_size}"
            )
        d = config.width
        self.normalize = ImageNormalize()
        self.trunk, channels = resnet_trunk(config.backbone, stages=config.trunk_stages)
        self.reduce = nn.Conv2d(channels, d, kernel_size=1)
        self.position = nn.Conv2d(2, d, kernel_size=1)
        self.spatial = nn.TransformerEncoder(
            self._encoder_layer(), config.spatial_layers, enable_nested_tensor=False
        )
        # Unit scale, as an embedding: the decoder's self-attention adds to every query an output
        # shared by all joints; queries of scale 0.02 were swamped by it, so all 21 reached
        # the cross-attention alike (mean cosine 0.72-0.77), read the same cells, and root-relative
        # xyz stopped varying with the input (the collapse of deformer_r18, issue 19).
        self.joint_queries = nn.Parameter(torch.randn(config.num_joints, d))
        decoder = nn.TransformerDecoderLayer(
            d, config.heads, 2 * d, dropout=0.0, batch_first=True, norm_first=True
        )
        self.joint_decoder = nn.TransformerDecoder(decoder, 1)
        self.pose_head = nn.Linear(d, 5)
        if config.temporal:
            self.time_embedding = nn.Parameter(torch.randn(config.T, d) * 0.02)
            self.temporal = nn.TransformerEncoder(
                self._encoder_layer(), config.temporal_layers, enable_nested_tensor=False
            )
            self.delta_head = nn.Linear(d, 10)  # forward and backward deltas, 5 each
            # No bias: softmax over frames ignores a shared shift, so a bias never learns.
            self.confidence_head = nn.Linear(d, 1, bias=False)

    def _encoder_layer(self) -> nn.TransformerEncoderLayer:
        d = self.config.width
        return nn.TransformerEncoderLayer(
            d, self.config.heads, 2 * d, dropout=0.0, batch_first=True, norm_first=True
        )

    @property
    def clip_length(self) -> int:
        """Frames per clip T (the model contract's ``clip_length``)."""
        return self.config.T

    def check_input(self, clip: object) -> None:
        """Validate ``clip`` (B, T, 3, S, S): a finite tensor with the configured T and size."""
        t, s = self.config.T, self.config.input_size
        if not isinstance(clip, torch.Tensor):
            raise TypeError(
                f"clip: expected a torch.Tensor (B, {t}, 3, H, W), got {type(clip).__name__}"
            )
        if clip.dim() != 5:
            raise ValueError(
                f"clip: expected 5 dims (B, T={t}, 3, H, W), got shape {tuple(clip.shape)}"
            )
        if clip.shape[1] != t:
            raise ValueError(f"clip: expected T={t} frames (DeformerConfig.T), got {clip.shape[1]}")
        check_images(clip.flatten(0, 1), channels=3, name="clip frames")
        if tuple(clip.shape[-2:]) != (s, s):
            raise ValueError(
                f"clip: expected frames of {s}x{s} px (DeformerConfig.input_size), "
                f"got {tuple(clip.shape[-2:])}"
            )

    def joint_tokens(self, frames: torch.Tensor) -> torch.Tensor:
        """Spatial transformer: frames (N, 3, S, S) -> one token per joint (N, J, C)."""
        feats = self.reduce(self.trunk(self.normalize(frames)))  # (N, C, h, w)
        n, _, h, w = feats.shape
        feats = feats + self.position(coordinate_grid(n, h, w, feats.device))
        cells = self.spatial(feats.flatten(2).transpose(1, 2))  # (N, h*w, C)
        queries = self.joint_queries.expand(n, -1, -1)  # (N, J, C)
        return self.joint_decoder(queries, cells)  # (N, J, C)

    def forward(self, clip: torch.Tensor) -> dict[str, torch.Tensor]:
        self.check_input(clip)
        b, t = clip.shape[:2]
        j, d = self.num_joints, self.config.width
        tokens = self.joint_tokens(clip.flatten(0, 1)).view(b, t, j, d)  # (B, T, J, C)
        if not self.config.temporal:
            poses = self.pose_head(tokens)  # (B, T, J, 5)
            raw = {"frame_poses": poses, "fused_poses": poses}
            return raw | self.decode(raw)
        seq = tokens.transpose(1, 2).reshape(b * j, t, d) + self.time_embedding  # (B*J, T, C)
        seq = self.temporal(seq).view(b, j, t, d).transpose(1, 2)  # (B, T, J, C)
        poses = self.pose_head(seq)  # (B, T, J, 5)
        fw, bw = self.delta_head(seq).chunk(2, dim=-1)  # (B, T, J, 5) each
        confidence = self.confidence_head(seq.mean(dim=2))[..., 0]  # (B, T)
        fused, _ = dynamic_fusion(poses.flatten(2), fw.flatten(2), bw.flatten(2), confidence)
        raw = {
            "frame_poses": poses,
            "fused_poses": fused.view(b, t, j, 5),
            "forward_deltas": fw,
            "backward_deltas": bw,
            "confidence": confidence,
        }
        return raw | self.decode(raw)

    def decode(self, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Differentiable: the centre frame of ``fused_poses`` (B, T, J, 5) -> ``keypoints``
        (B, J, 2) px and ``xyz`` (B, J, 3) mm, root-relative."""
        centre = outputs["fused_poses"][:, self.config.T // 2]  # (B, J, 5)
        return self.pose_to_joints(centre)

    def pose_to_joints(self, poses: torch.Tensor) -> dict[str, torch.Tensor]:
        """Pose rows (..., J, 5) -> ``keypoints`` (..., J, 2) px and root-relative ``xyz`` mm."""
        xyz = poses[..., 2:] * self.config.xyz_unit_mm
        return {
            "keypoints": poses[..., :2] * self.config.input_size,
            "xyz": xyz - xyz[..., :1, :],
        }

    def joints_to_pose(self, keypoints: torch.Tensor, xyz: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`pose_to_joints` (xyz made root-relative): (..., J, 5)."""
        rel = (xyz - xyz[..., :1, :]) / self.config.xyz_unit_mm
        return torch.cat([keypoints / self.config.input_size, rel], dim=-1)

    def joint_loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean over samples of (max)MSE of the 2D and of the 3D joint errors, (..., J, 5)."""
        reduce = max_mse if self.config.loss == "maxmse" else lambda e: e.square().mean(-1)
        err_2d = (pred[..., :2] - target[..., :2]).norm(dim=-1)  # (..., J)
        err_3d = (pred[..., 2:] - target[..., 2:]).norm(dim=-1)  # (..., J)
        return self.config.weight_2d * reduce(err_2d).mean() + reduce(err_3d).mean()

    def loss(
        self, outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Loss on every frame's pose, the fused poses and the deltas (temporal only).

        Needs every frame's labels: ``batch["clip_keypoints"]`` (B, T, 21, 2) px and
        ``batch["clip_xyz"]`` (B, T, 21, 3) mm (a ``synth-clips`` batch, whose ``keypoints`` are
        the centre frame's), or else ``keypoints``/``xyz`` with that time axis (a
        :func:`handlab.synth.generate_sequence` output). All joints count, occluded ones too.
        """
        t, j = self.config.T, self.num_joints
        prefix = "clip_" if "clip_keypoints" in batch else ""
        kp, xyz = f"{prefix}keypoints", f"{prefix}xyz"
        check_batch(batch, {kp: (None, t, j, 2), xyz: (None, t, j, 3)})
        target = self.joints_to_pose(batch[kp], batch[xyz])  # (B, T, J, 5)
        logs = {"frame": self.joint_loss(outputs["frame_poses"], target)}
        if self.config.temporal:
            logs["fused"] = self.joint_loss(outputs["fused_poses"], target)
            step = target[:, 1:] - target[:, :-1]  # (B, T-1, J, 5): theta_{t+1} - theta_t
            if t > 1:
                logs["forward"] = self.joint_loss(outputs["forward_deltas"][:, :-1], step)
                logs["backward"] = self.joint_loss(outputs["backward_deltas"][:, 1:], -step)
        loss = sum(logs.values())
        return loss, {k: float(v.detach()) for k, v in logs.items()}


@register_model("deformer")
def create_deformer(**config: object) -> Deformer:
    """Build a :class:`Deformer` from :class:`DeformerConfig` keywords."""
    return Deformer(DeformerConfig(**config))
