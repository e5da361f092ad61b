"""V2V-PoseNet (Moon, Chang & Lee, CVPR 2018): occupancy voxels in, per-voxel likelihoods out.

Taught in chapter 05 (``notebooks/05_v2v.py``).

The depth map is back-projected and voxelised in a ``cube_mm`` cube around a reference point
(:mod:`handlab.models.voxels`); a 3D residual encoder-decoder predicts one 3D Gaussian heatmap per
joint at half the input resolution (88^3 -> 44^3 in the paper, sigma 1.7 voxels), trained with an
MSE; a joint is read from its heatmap (:func:`handlab.postprocess.decode_volume`) and mapped back
to millimetres. One family covers the paper's table 1 (seed 004, table (a)):

- ``input="voxels"`` (3D convolutions) or ``"depthmap"``: the cube seen along +z as a 2D depth
  map (:func:`~handlab.models.voxels.volume_depth_map`) through the same network in 2D;
- ``output="heatmap"`` (per-voxel likelihood; the 2D network's channels are the z slices) or
  ``"coords"``: the encoder-decoder's features pooled and regressed to ``(x, y, z)`` by two FC
  layers, trained with L1 in heatmap-voxel units.

K and segmentation. ``forward(depth, K=None)`` takes the hand's depth ``(B, 1, H, W)`` mm with
background set to 0 (a segmented crop, as in the paper's pipeline; ``handlab.training`` applies the
batch ``mask``). For crops without a mask (NYU) set ``segment_mm`` (e.g. 125, half the cube): the
model keeps the pixels within that distance of the crop's central median depth
(:func:`~handlab.models.voxels.segment_depth`). Without ``K`` the model uses ``focal * W`` pixels
and the image centre (``config.focal``; the synthetic camera's focal lengths span 1.1-1.7 image
widths). The loss builds its targets from the batch's ``keypoints`` (px) and joint depths with
the *same* ``K`` the forward used, so training is consistent whatever ``K``; metric ``xyz`` needs
the true ``K``.

Outputs: ``keypoints`` (B, J, 2) px, ``xyz`` (B, J, 3) mm root-relative (joint 0 at the origin),
``xyz_cam`` (B, J, 3) mm camera frame, ``heatmaps`` (B, J, G/2, G/2, G/2) or ``coords`` (B, J, 3)
in heatmap voxels, ``ref_xyz``/``com_xyz`` (B, 3) mm and ``K`` (B, 3, 3).

>>> model = create_v2v(grid=16, width=4).eval()
>>> depth = torch.zeros(1, 1, 32, 32)
>>> depth[..., 8:24, 10:22] = 400.0
>>> out = model(depth)
>>> out["heatmaps"].shape, out["xyz"].shape
(torch.Size([1, 21, 8, 8, 8]), torch.Size([1, 21, 3]))
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from handlab._checks import check_finite, check_range
from handlab.codecs import GaussianVolume
from handlab.geometry import project, unproject
from handlab.models._common import check_batch
from handlab.models.base import PoseModel, check_images
from handlab.models.registry import register_model
from handlab.models.voxels import (
    RefineNet,
    center_of_mass,
    check_depth,
    hand_center,
    segment_depth,
    volume_depth_map,
    voxel_to_xyz,
    voxelize,
    xyz_to_voxel,
)
from handlab.postprocess import DECODERS, decode_volume

__all__ = ["V2VConfig", "V2VPoseNet", "create_v2v", "default_K", "resolve_K"]


@dataclass(frozen=True)
class V2VConfig:
    grid: int = 32  # voxels per side; the paper's 88 is ~20x the compute of 32 on CPU
    cube_mm: float = 250.0  # the paper's hand cube
    width: int = 8  # first-stage channels; the paper uses 16 -> 32 -> 64 -> 128
    sigma: float = 1.7  # heatmap Gaussian std in output voxels (the paper's value)
    input: str = "voxels"  # "voxels" (3D convs) | "depthmap" (the cube's 2D depth map, 2D convs)
    output: str = "heatmap"  # "heatmap" (per-voxel likelihood) | "coords" (FC regression)
    decoder: str = "subvoxel"  # forward's heatmap decoder: "argmax" | "subvoxel" | "gaussian"
    refine: bool = True  # reference point = centre of mass + RefineNet offset (else the CoM)
    focal: float = 1.4  # default focal length in image widths (middle of the synthetic range)
    segment_mm: float | None = None  # unsegmented crops (NYU): keep +-this around the centre depth
    num_joints: int = 21

    def __post_init__(self) -> None:
        if not isinstance(self.grid, int) or self.grid < 8 or self.grid % 8:
            raise ValueError(f"grid: expected a multiple of 8 >= 8, got {self.grid!r}")
        check_range("cube_mm", self.cube_mm, lo=1.0)
        check_range("width", self.width, lo=1)
        check_range("sigma", self.sigma, lo=0.1)
        check_range("focal", self.focal, lo=0.01)
        if self.segment_mm is not None:
            check_range("segment_mm", self.segment_mm, lo=1.0)
        for name, allowed in (
            ("input", ("voxels", "depthmap")),
            ("output", ("heatmap", "coords")),
            ("decoder", DECODERS),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(
                    f"{name}: expected one of {list(allowed)}, got {getattr(self, name)!r}"
                )


def resolve_K(depth: torch.Tensor, K: torch.Tensor | None, focal: float) -> torch.Tensor:
    """``K`` (3, 3) or (B, 3, 3) validated and expanded to (B, 3, 3); ``None`` gives
    :func:`default_K`. Shared by the depth models (V2V, A2J)."""
    if K is None:
        return default_K(depth, focal)
    if not isinstance(K, torch.Tensor):
        raise TypeError(f"K: expected a torch.Tensor (3, 3) or (B, 3, 3), got {type(K).__name__}")
    B = depth.shape[0]
    if K.shape not in ((3, 3), (B, 3, 3)):
        raise ValueError(f"K: expected shape (3, 3) or ({B}, 3, 3), got {tuple(K.shape)}")
    check_finite("K", K)
    return K.to(depth).expand(B, 3, 3)


def default_K(depth: torch.Tensor, focal: float) -> torch.Tensor:
    """(B, 3, 3) intrinsics with ``focal * W`` px focal lengths and the image centre.

    >>> default_K(torch.zeros(2, 1, 32, 64), 1.0)[0].tolist()
    [[64.0, 0.0, 31.5], [0.0, 64.0, 15.5], [0.0, 0.0, 1.0]]
    """
    B, _, H, W = depth.shape
    f = focal * W
    K = torch.tensor([[f, 0.0, (W - 1) / 2], [0.0, f, (H - 1) / 2], [0.0, 0.0, 1.0]])
    return K.to(depth).expand(B, 3, 3)


def _layers(dim: int) -> tuple[type, type, type, type]:
    if dim == 3:
        return nn.Conv3d, nn.BatchNorm3d, nn.MaxPool3d, nn.ConvTranspose3d
    return nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d, nn.ConvTranspose2d


def basic(dim: int, cin: int, cout: int, k: int) -> nn.Sequential:
    """V2V's volumetric basic block: conv k^dim, BN, ReLU."""
    conv, bn, _, _ = _layers(dim)
    return nn.Sequential(conv(cin, cout, k, padding=k // 2), bn(cout), nn.ReLU(inplace=True))


class Residual(nn.Module):
    """V2V's volumetric residual block: two 3^dim convs with BN, a 1^dim projection shortcut when
    the channel count changes (ResNet option B)."""

    def __init__(self, dim: int, cin: int, cout: int) -> None:
        super().__init__()
        conv, bn, _, _ = _layers(dim)
        self.body = nn.Sequential(
            conv(cin, cout, 3, padding=1), bn(cout), nn.ReLU(inplace=True),
            conv(cout, cout, 3, padding=1), bn(cout),
        )  # fmt: skip
        self.skip = nn.Identity() if cin == cout else nn.Sequential(conv(cin, cout, 1), bn(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + self.skip(x))


class EncoderDecoder(nn.Module):
    """Two max-pool levels down, two transposed-conv levels up, residual skips at each level."""

    def __init__(self, dim: int, c: int) -> None:
        super().__init__()
        _, bn, pool, deconv = _layers(dim)
        self.down1 = nn.Sequential(pool(2), Residual(dim, c, 2 * c))
        self.down2 = nn.Sequential(pool(2), Residual(dim, 2 * c, 4 * c))
        self.mid = Residual(dim, 4 * c, 4 * c)
        self.up2 = nn.Sequential(
            deconv(4 * c, 2 * c, 2, stride=2), bn(2 * c), nn.ReLU(inplace=True)
        )
        self.up1 = nn.Sequential(deconv(2 * c, c, 2, stride=2), bn(c), nn.ReLU(inplace=True))
        self.skip1 = Residual(dim, c, c)
        self.skip2 = Residual(dim, 2 * c, 2 * c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s1 = self.down1(x)  # (B, 2c, n/2, ...)
        s2 = self.down2(s1)  # (B, 4c, n/4, ...)
        y = self.up2(self.mid(s2)) + self.skip2(s1)  # (B, 2c, n/2, ...)
        return self.up1(y) + self.skip1(x)  # (B, c, n, ...)


class V2VPoseNet(PoseModel):
    """``depth (B, 1, H, W)`` mm (background 0) -> voxels around the reference point -> joint
    heatmaps (or coordinates) -> ``keypoints`` px and ``xyz`` mm; see the module docstring."""

    input_kind = "depth"
    is_3d = True
    masked_input = True  # handlab.training zeroes depth outside the batch mask for this model

    def __init__(self, config: V2VConfig) -> None:
        super().__init__()
        self.config = config
        self.num_joints = config.num_joints
        c, G, J = config.width, config.grid, config.num_joints
        self.out_grid = G // 2
        dim = 3 if config.input == "voxels" else 2
        self.refine = RefineNet(width=8, cube_mm=config.cube_mm) if config.refine else None
        _, _, pool, _ = _layers(dim)
        self.front = nn.Sequential(basic(dim, 1, c, 7), pool(2), Residual(dim, c, 2 * c))
        self.trunk = EncoderDecoder(dim, 2 * c)
        self.back = nn.Sequential(Residual(dim, 2 * c, 2 * c), basic(dim, 2 * c, 2 * c, 1))
        if config.output == "heatmap" and dim == 3:
            self.head = nn.Conv3d(2 * c, J, 1)
        elif config.output == "heatmap":
            # In 2D the z slices of every joint's volume are the J*g output channels. A single
            # 1x1 conv from 2c features would keep every pixel's J*g outputs in one fixed
            # (2c+1)-dimensional affine subspace (17 of 336 at width 8, grid 32): too few for 21
            # joints' z profiles, and that model never learnt its heatmaps (134 mm after 1500
            # steps). A hidden 1x1 layer of J*g channels with BN/ReLU lifts the limit.
            self.head = nn.Sequential(
                basic(2, 2 * c, J * self.out_grid, 1),
                nn.Conv2d(J * self.out_grid, J * self.out_grid, 1),
            )
        else:
            self.head = nn.Sequential(
                nn.AdaptiveAvgPool3d(4) if dim == 3 else nn.AdaptiveAvgPool2d(4),
                nn.Flatten(),
                nn.Linear(2 * c * 4**dim, 256),
                nn.ReLU(inplace=True),
                nn.Linear(256, J * 3),
            )
        self.codec = GaussianVolume(size=(self.out_grid,) * 3, sigma=config.sigma)

    def reference(self, depth: torch.Tensor, K: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Centre of mass (B, 3) mm and the (refined) reference point (B, 3) mm."""
        com = center_of_mass(depth, K)
        if self.refine is None:
            return com, com
        return com, com + self.refine(depth, K, com)

    def forward(
        self, depth: torch.Tensor, K: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        check_images(depth, channels=1, min_size=8, name="depth")
        check_depth(depth)
        if self.config.segment_mm is not None:
            depth = segment_depth(depth, self.config.segment_mm)
        K = resolve_K(depth, K, self.config.focal)
        com, ref = self.reference(depth, K)
        cfg, J, g = self.config, self.num_joints, self.out_grid
        x = voxelize(depth, K, ref.detach(), grid=cfg.grid, cube_mm=cfg.cube_mm)  # (B,1,G,G,G)
        if cfg.input == "depthmap":
            x = volume_depth_map(x)  # (B, 1, G, G)
        y = self.head(self.back(self.trunk(self.front(x))))
        outputs = {"ref_xyz": ref, "com_xyz": com, "K": K}
        if cfg.output == "coords":
            outputs["coords"] = y.view(-1, J, 3) + (g - 1) / 2  # (B, J, 3) voxels, cube-centred
        else:
            outputs["heatmaps"] = y.view(-1, J, g, g, g)  # (B, J, z, y, x)
        outputs.update(self._to_joints(outputs, cfg.decoder))
        return outputs

    def _to_joints(self, outputs: dict[str, torch.Tensor], method: str) -> dict[str, torch.Tensor]:
        cfg = self.config
        coords = outputs.get("coords")
        if coords is None:
            coords = decode_volume(outputs["heatmaps"], method, sigma=cfg.sigma)  # (B, J, 3)
        xyz_cam = voxel_to_xyz(coords, outputs["ref_xyz"], grid=self.out_grid, cube_mm=cfg.cube_mm)
        return {
            "keypoints": project(xyz_cam, outputs["K"]),  # (B, J, 2) px
            "xyz": xyz_cam - xyz_cam[:, :1],  # (B, J, 3) mm root-relative
            "xyz_cam": xyz_cam,
        }

    def decode(self, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Differentiable: heatmaps by the sub-voxel weighted average (or the coordinates) ->
        ``keypoints`` (B, J, 2) px, ``xyz`` (B, J, 3) mm root-relative, ``xyz_cam``."""
        return self._to_joints(outputs, "subvoxel")

    def targets(
        self, outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        """Ground-truth joints in the frame the forward used: ``unproject((u, v, z), K)`` (B, J, 3)
        mm from ``batch["keypoints"]`` px and the depth ``batch["xyz"][..., 2]`` mm."""
        check_batch(
            batch, {"keypoints": (None, self.num_joints, 2), "xyz": (None, self.num_joints, 3)}
        )
        uvd = torch.cat([batch["keypoints"], batch["xyz"][..., 2:]], dim=-1)
        return unproject(uvd, outputs["K"])

    def loss(
        self, outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Heatmap MSE (V2V) or coordinate L1 in output voxels, plus the refinement L1 (mm over a
        quarter cube) when ``refine``. Needs ``batch["keypoints"]`` (B, J, 2) px and
        ``batch["xyz"]`` (B, J, 3) mm."""
        cfg = self.config
        gt = self.targets(outputs, batch)  # (B, J, 3) mm, the forward's frame
        gt_vox = xyz_to_voxel(
            gt, outputs["ref_xyz"].detach(), grid=self.out_grid, cube_mm=cfg.cube_mm
        )
        logs: dict[str, float] = {}
        if cfg.output == "heatmap":
            target, weight = self.codec.encode(gt_vox)  # (B, J, g, g, g), (B, J)
            w = weight[..., None, None, None]
            loss = ((outputs["heatmaps"] - target) ** 2 * w).mean()
            logs["mse"] = float(loss.detach())
        else:
            loss = (outputs["coords"] - gt_vox).abs().mean()
            logs["l1_vox"] = float(loss.detach())
        if self.refine is not None:
            offset = hand_center(gt) - outputs["com_xyz"]  # (B, 3) mm
            refine = (outputs["ref_xyz"] - outputs["com_xyz"] - offset).abs().mean() / (
                cfg.cube_mm / 4
            )
            loss = loss + refine
            logs["refine"] = float(refine.detach())
        logs["mpjpe_mm"] = float((outputs["xyz"].detach() - (gt - gt[:, :1])).norm(dim=-1).mean())
        return loss, logs


@register_model("v2v")
def create_v2v(**config: object) -> V2VPoseNet:
    """Build a :class:`V2VPoseNet` from :class:`V2VConfig` keywords."""
    return V2VPoseNet(V2VConfig(**config))
