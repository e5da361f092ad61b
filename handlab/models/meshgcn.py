"""A graph CNN that predicts the hand mesh (Ge, Ren, Li, Xue, Wang, Cai & Yuan, "3D Hand Shape and
Pose Estimation from a Single RGB Image", CVPR 2019; seminar seed 002).

Taught in chapter 03 (``notebooks/03_2d_to_3d.py``, 2D -> 3D).

Ge et al. regress the 3D positions of every vertex of a hand mesh with a graph CNN: an image
feature vector becomes features on the vertices of a very coarse graph, then Chebyshev spectral
graph convolutions (Defferrard et al. 2016) alternate with upsampling to finer graphs until the
full mesh, where a last convolution outputs each vertex's xyz. 3D joints come from the mesh by a
fixed linear regressor (MANO's idea). The paper's 2D heatmaps (a stacked hourglass) guide it; here
a SimpleBaseline head on the same trunk gives the 2D ``heatmaps`` / ``keypoints``.

The mesh is handlab's own template (:func:`handlab.mesh.template_mesh`), its hierarchy and joint
regressor from :mod:`handlab.mesh`. Training follows the paper's full supervision on synthetic
data: vertex L1, the joints, and an edge-length term; batches without ``vertices`` (real images)
train the heatmaps and the joints only (the paper's weak supervision uses depth maps and pseudo
ground-truth meshes instead, which handlab's real data do not have).

The Chebyshev convolution is written by hand (30 lines) rather than pulling in a graph library:
``T_0 = X``, ``T_1 = L X``, ``T_k = 2 L T_{k-1} - T_{k-2}``, ``Y = sum_k T_k W_k`` with ``L`` the
scaled Laplacian ``2 L_norm / lambda_max - I``, taking ``lambda_max = 2`` (its upper bound, as
Kipf & Welling do), so ``L = -D^{-1/2} A D^{-1/2}``.

>>> model = create_meshgcn(input_size=64, head_width=16, channels=(16, 8, 8, 8))
>>> out = model(torch.rand(2, 3, 64, 64))
>>> out["vertices"].shape[::2], out["xyz"].shape, out["keypoints"].shape
(torch.Size([2, 3]), torch.Size([2, 21, 3]), torch.Size([2, 21, 2]))
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from handlab import mesh as hand_mesh
from handlab.models import _heatmaps as hc
from handlab.models._common import ImageNormalize, check_batch, check_size, resnet_trunk
from handlab.models.base import PoseModel
from handlab.models.registry import register_model
from handlab.models.simplebaseline import DeconvHead

__all__ = ["ChebConv", "MeshGCN", "MeshGCNConfig", "create_meshgcn", "scaled_laplacian"]


@dataclass(frozen=True)
class MeshGCNConfig:
    backbone: str = "resnet18"
    input_size: int = 128
    head_width: int = 64  # deconvolution width of the 2D heatmap head
    sigma: float = 2.0
    decoder: str = "quarter"
    # The template's grid step (mm): 6 mm gives ~1300 vertices, Ge et al.'s mesh has 1280.
    mesh_voxel_mm: float = 6.0
    # Coarsening cells (mm): ~1300 -> ~390 -> ~110 -> ~40 vertices (the paper: 1280 ... 80).
    cells_mm: tuple[float, ...] = (10.0, 18.0, 32.0)
    # Feature widths from the coarsest level to the finest (one per level).
    channels: tuple[int, ...] = (64, 64, 32, 32)
    cheb_k: int = 3  # Chebyshev order: each convolution sees K-1 rings of neighbours
    w_vertices: float = 1.0
    w_joints: float = 1.0
    w_edges: float = 1.0
    num_joints: int = 21


def scaled_laplacian(num_vertices: int, edges: torch.Tensor) -> torch.Tensor:
    """The scaled graph Laplacian ``-D^{-1/2} A D^{-1/2}`` as a sparse (V, V) tensor.

    >>> L = scaled_laplacian(3, torch.tensor([[0, 1], [1, 2]]))
    >>> L.to_dense()[0, 1].item() < 0
    True
    """
    both = torch.cat([edges, edges.flip(1)]).T  # (2, 2E)
    degree = torch.bincount(both[0], minlength=num_vertices).float().clamp(min=1)
    values = -1.0 / (degree[both[0]] * degree[both[1]]).sqrt()
    return torch.sparse_coo_tensor(
        both, values, (num_vertices, num_vertices), check_invariants=True
    ).coalesce()


class ChebConv(nn.Module):
    """Chebyshev graph convolution of order K: (B, V, C_in) -> (B, V, C_out) on a fixed graph."""

    def __init__(self, laplacian: torch.Tensor, c_in: int, c_out: int, k: int) -> None:
        super().__init__()
        if k < 1:
            raise ValueError(f"cheb_k: expected >= 1, got {k}")
        self.register_buffer("laplacian", laplacian, persistent=False)
        self.weight = nn.Parameter(torch.empty(k, c_in, c_out))
        self.bias = nn.Parameter(torch.zeros(c_out))
        nn.init.xavier_uniform_(self.weight.view(k * c_in, c_out))

    def _apply_l(self, x: torch.Tensor) -> torch.Tensor:
        b, v, c = x.shape
        # In float32: the Laplacian is float32 and torch's sparse product has no bfloat16
        # backward: under autocast (handlab train's default on bf16 CPUs and CUDA) it failed.
        flat = x.float().permute(1, 0, 2).reshape(v, b * c)  # (V, B C)
        with torch.autocast(x.device.type, enabled=False):
            out = torch.sparse.mm(self.laplacian, flat).reshape(v, b, c).permute(1, 0, 2)
        return out.to(x.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        terms = [x]
        if len(self.weight) > 1:
            terms.append(self._apply_l(x))
        for _ in range(2, len(self.weight)):
            terms.append(2 * self._apply_l(terms[-1]) - terms[-2])
        out = sum(t @ w for t, w in zip(terms, self.weight, strict=True))
        return out + self.bias  # (B, V, C_out)


class MeshGCN(hc.SoftDecodeMixin, PoseModel):
    """``images (B, 3, H, W)`` in [0, 1] -> ``heatmaps``, ``keypoints`` (B, 21, 2) px, ``vertices``
    (B, V, 3) mm and ``xyz`` (B, 21, 3) mm, both root-relative (the wrist at the origin)."""

    is_3d = True

    def __init__(self, config: MeshGCNConfig) -> None:
        super().__init__()
        hc.check_method(config.decoder)
        template = hand_mesh.template_mesh(voxel_mm=config.mesh_voxel_mm)
        levels = hand_mesh.mesh_hierarchy(template, tuple(config.cells_mm))
        if len(config.channels) != len(levels):
            raise ValueError(
                f"channels: expected {len(levels)} widths (one per mesh level, coarsest first), "
                f"got {len(config.channels)}"
            )
        self.config = config
        self.num_joints = config.num_joints
        self.normalize = ImageNormalize()
        self.backbone, c = resnet_trunk(config.backbone)
        self.head = DeconvHead(c, config.head_width, config.num_joints, layers=3)
        self.stride = 4
        coarse = levels[-1].num_vertices
        self.to_graph = nn.Linear(c, coarse * config.channels[0])
        convs = []
        widths = list(config.channels)
        for i, level in enumerate(reversed(levels)):  # coarsest -> finest
            lap = scaled_laplacian(level.num_vertices, level.edges)
            c_out = widths[i + 1] if i + 1 < len(widths) else widths[-1]
            convs.append(ChebConv(lap, widths[i], c_out, config.cheb_k))
        self.convs = nn.ModuleList(convs)
        self.out = ChebConv(
            scaled_laplacian(levels[0].num_vertices, levels[0].edges), widths[-1], 3, config.cheb_k
        )
        # Unpooling indices, coarsest -> finest: finer vertex i copies parent[i] of the level above.
        for i, level in enumerate(reversed(levels[:-1])):
            self.register_buffer(f"parent{i}", level.parent, persistent=False)
        self.register_buffer("edges", levels[0].edges, persistent=False)
        self.register_buffer(
            "regressor", hand_mesh.joint_regressor(template), persistent=False
        )  # (21, V)
        self.num_vertices = levels[0].num_vertices
        # The template whose vertices the training loop places in synthetic scenes (not weights).
        self.vertex_template = template

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        check_size(images, multiple=32)
        features = self.backbone(self.normalize(images))  # (B, C, h, w)
        heatmaps = self.head(features)  # (B, J, H/4, W/4)
        keypoints, scores = hc.decode_argmax(
            heatmaps, stride=self.stride, sigma=self.config.sigma, method=self.config.decoder
        )
        x = self.to_graph(features.mean((-1, -2))).view(len(images), -1, self.config.channels[0])
        for i, conv in enumerate(self.convs):
            x = torch.relu(conv(x))  # (B, V_i, C)
            if i < len(self.convs) - 1:
                x = x[:, getattr(self, f"parent{i}")]  # unpool to the finer level
        vertices = 100.0 * self.out(x)  # (B, V, 3) mm (the network works in decimetres)
        root = (self.regressor @ vertices)[:, :1]  # (B, 1, 3) the regressed wrist
        outputs = {"heatmaps": heatmaps, "scores": scores, "vertices": vertices - root}
        outputs.update(self.decode(outputs))
        outputs["keypoints"] = keypoints
        return outputs

    def decode(self, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Differentiable: ``heatmaps`` -> ``keypoints`` (local soft-argmax) and ``vertices`` ->
        ``xyz`` (B, 21, 3) by the joint regressor, re-rooted at the wrist."""
        decoded = super().decode(outputs)
        if "vertices" in outputs:  # heatmaps alone decode to keypoints alone
            xyz = self.regressor @ outputs["vertices"]  # (B, 21, 3)
            decoded["xyz"] = xyz - xyz[:, :1]
        return decoded

    def loss(
        self, outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Heatmap MSE + joints L2 (dm) + where ``batch`` has ``vertices`` (B, V, 3) mm (camera
        frame): vertex L1 (dm) and edge-vector L1. Needs ``keypoints``, ``visibility``, ``xyz``."""
        check_batch(
            batch, {"keypoints": (None, 21, 2), "visibility": (None, 21), "xyz": (None, 21, 3)}
        )
        l_heat = hc.heatmap_loss(
            outputs["heatmaps"], batch, stride=self.stride, sigma=self.config.sigma
        )
        rel = batch["xyz"] - batch["xyz"][:, :1]
        l_joint = ((outputs["xyz"] - rel) / 100.0).pow(2).sum(-1).mean()
        loss = l_heat + self.config.w_joints * l_joint
        logs = {"heatmap": float(l_heat.detach()), "joints": float(l_joint.detach())}
        if "vertices" in batch:
            check_batch(batch, {"vertices": (None, self.num_vertices, 3)})
            gt = batch["vertices"] - batch["xyz"][:, :1]  # root-relative, as the prediction
            pred = outputs["vertices"]
            l_vert = ((pred - gt) / 100.0).abs().sum(-1).mean()
            e0, e1 = self.edges[:, 0], self.edges[:, 1]
            l_edge = (((pred[:, e0] - pred[:, e1]) - (gt[:, e0] - gt[:, e1])) / 100.0).abs().mean()
            loss = loss + self.config.w_vertices * l_vert + self.config.w_edges * l_edge
            logs.update(vertices=float(l_vert.detach()), edges=float(l_edge.detach()))
            logs["mpvpe_mm"] = float((pred - gt).norm(dim=-1).mean().detach())
        logs["mpjpe_mm"] = float((outputs["xyz"] - rel).norm(dim=-1).mean().detach())
        return loss, logs


@register_model("meshgcn")
def create_meshgcn(**config: object) -> MeshGCN:
    """Build a :class:`MeshGCN` from :class:`MeshGCNConfig` keywords."""
    if "cells_mm" in config:
        config["cells_mm"] = tuple(config["cells_mm"])  # type: ignore[arg-type]
    if "channels" in config:
        config["channels"] = tuple(config["channels"])  # type: ignore[arg-type]
    return MeshGCN(MeshGCNConfig(**config))
