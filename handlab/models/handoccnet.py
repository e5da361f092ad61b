"""HandOccNet (Park, Oh, Moon, Choi & Lee, "HandOccNet: Occlusion-Robust 3D Hand Mesh Estimation
Network", CVPR 2022; seminar seed 003), a small faithful version.

Taught in chapter 06 (HandOccNet).

Pipeline (one line per stage of :meth:`HandOccNet.forward`; :meth:`HandOccNet.stages` returns the
intermediate tensors of stages 1-4):

1. ResNet trunk + a small FPN (torchvision's ``FeaturePyramidNetwork`` on strides 8-32, the
   levels upsampled and summed) -> features ``F`` (B, C, H/8, W/8).
2. Necessity map ``M = sigmoid(conv(norm(F)))`` (B, 1, h, w); primary ``F_p = F * M`` (the hand)
   and secondary ``F_s = F * (1 - M)`` (the occluders), so ``F_p + F_s = F`` exactly.
3. FIT, the feature injecting transformer: queries from ``F_s``, keys and values from ``F_p``,
   each token plus a learned embedding of its cell's (x, y),
   correlation ``C = softmax(q k^T / sqrt(d)) * sigmoid(q' k'^T / sqrt(d))`` (the sigmoid
   branch suppresses the softmax's forced high scores when no key really matches a query).
   The paper pools the sigmoid branch's logits; this version leaves the pooling out.
4. SET, the self-enhancing transformer: self-attention layers refine the injected features.
5. Regressor: one heatmap per joint, soft-argmax to ``keypoints`` (input px), heatmap-weighted
   joint features, then either the articulated hand model's pose (16, 3) + shape (10) and its
   joints by forward kinematics (``predict_hand_params=True``, the paper's MANO head), or ``xyz``
   per joint directly.

Why the position embedding joins the tokens after the split, and the necessity conv reads
normalised features: ``handoccnet_r18`` (zoo, 300 steps at lr 2e-3) and the occlusion benchmark's
600-step run both collapsed. The necessity conv read un-normalised FPN features (std ~9) through
576 weights, so each Adam step (every weight moves ~lr) could shift its logits by ~10; within 20
to 40 steps they ran to +70..+290, ``M`` saturated at exactly 1 with zero gradient (it could not
come back), ``F_s = F * (1 - M)`` became 0 everywhere and, since FIT's queries and residual come
from ``F_s`` and the position embedding was part of ``F``, every token became the same: flat
heatmaps and keypoints at the image centre for every image. Normalising the conv's input (a
GroupNorm) bounds its steps, and adding the position to the tokens keeps their layout even where
``M`` is 0 or 1 (as in the paper's transformers, which add a positional embedding to their
tokens).

Sizes: the paper's ResNet-50 FPN with 256 channels is ``backbone="resnet50", width=256``; the
CPU default is ResNet-18 with 64 channels.

>>> model = create_handoccnet(width=32, heads=2)
>>> out = model(torch.rand(2, 3, 64, 64))
>>> out["keypoints"].shape, out["xyz"].shape, out["necessity"].shape
(torch.Size([2, 21, 2]), torch.Size([2, 21, 3]), torch.Size([2, 1, 8, 8]))
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import FeaturePyramidNetwork

from handlab._checks import check_range
from handlab.hand_model import HandModel
from handlab.models._common import (
    RESNETS,
    ImageNormalize,
    check_batch,
    check_heads,
    check_resnet,
    check_size,
    coordinate_grid,
    resnet_trunk,
)
from handlab.models.base import PoseModel
from handlab.models.registry import register_model

__all__ = [
    "FIT",
    "HandOccNet",
    "HandOccNetConfig",
    "create_handoccnet",
    "fit_attention",
    "soft_argmax",
    "split_features",
]


@dataclass(frozen=True)
class HandOccNetConfig:
    # ResNet-18 trains on a CPU; the paper's ResNet-50 is the option.
    backbone: str = "resnet18"
    # FPN and transformer channels: the paper's 256 is slow on a CPU, 64 learns the synthetic hands.
    width: int = 64
    # Attention heads in FIT and SET (width must divide by it).
    heads: int = 4
    # SET layers: the paper stacks a few self-attention blocks; one is enough at 16x16 tokens.
    set_layers: int = 1
    # Regress the articulated hand model's pose + shape and get xyz by forward kinematics (the
    # paper's MANO head); False regresses xyz per joint directly.
    predict_hand_params: bool = True
    # Training resolution (square); any multiple of 32 works.
    input_size: int = 128
    # The loss measures xyz in units of this many mm so 2D and 3D terms have similar sizes.
    xyz_unit_mm: float = 20.0
    num_joints: int = 21


def split_features(
    features: torch.Tensor, necessity: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Primary ``F * M`` (the hand) and secondary ``F * (1 - M)`` (the occluders), as tokens.

    Args:
        features: (B, C, h, w) backbone features ``F``.
        necessity: (B, 1, h, w) necessity map ``M`` in [0, 1].

    Returns:
        ``primary``, ``secondary`` (B, h * w, C) each; they sum to ``F`` (up to rounding).

    >>> p, s = split_features(torch.ones(1, 2, 1, 2), torch.tensor([[[[0.25, 1.0]]]]))
    >>> p[0, :, 0].tolist(), s[0, :, 0].tolist()
    ([0.25, 1.0], [0.75, 0.0])
    """
    primary = features * necessity  # (B, C, h, w)
    secondary = features * (1 - necessity)  # (B, C, h, w)
    return primary.flatten(2).transpose(1, 2), secondary.flatten(2).transpose(1, 2)


def fit_attention(
    q_soft: torch.Tensor,
    k_soft: torch.Tensor,
    q_sig: torch.Tensor,
    k_sig: torch.Tensor,
    values: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """FIT's correlation and its weighted sum of values.

    Args:
        q_soft, q_sig: (B, h, N, d) queries (from the secondary features ``F_s``).
        k_soft, k_sig: (B, h, N, d) keys (from the primary features ``F_p``).
        values: (B, h, N, d) values (from ``F_p``).

    Returns:
        ``out`` (B, h, N, d) and the correlation ``C`` (B, h, N, N) =
        ``softmax(q_soft k_soft^T / sqrt(d)) * sigmoid(q_sig k_sig^T / sqrt(d))``.

    >>> q = torch.zeros(1, 1, 2, 4)
    >>> out, corr = fit_attention(q, q, q, q, torch.ones(1, 1, 2, 4))
    >>> corr[0, 0].tolist()  # softmax 1/2 everywhere, sigmoid(0) = 1/2
    [[0.25, 0.25], [0.25, 0.25]]
    """
    scale = 1.0 / math.sqrt(q_soft.shape[-1])
    soft = torch.softmax(q_soft @ k_soft.transpose(-2, -1) * scale, dim=-1)  # (B, h, N, N)
    sig = torch.sigmoid(q_sig @ k_sig.transpose(-2, -1) * scale)  # (B, h, N, N)
    corr = soft * sig
    return corr @ values, corr  # (B, h, N, d), (B, h, N, N)


class FIT(nn.Module):
    """Feature injecting transformer: (F_s, F_p) tokens (B, N, C) -> F_FIT (B, N, C).

    Pre-norm block: ``x = F_s + proj(C @ v)``, then ``x + MLP(norm(x))``.
    """

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm_s = nn.LayerNorm(dim)
        self.norm_p = nn.LayerNorm(dim)
        self.query = nn.Linear(dim, 2 * dim)  # q_soft and q_sig
        self.key = nn.Linear(dim, 2 * dim)  # k_soft and k_sig
        self.value = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)
        self.norm_out = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        return x.view(b, n, self.heads, c // self.heads).transpose(1, 2)  # (B, h, N, d)

    def forward(
        self, secondary: torch.Tensor, primary: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns F_FIT (B, N, C) and the correlation (B, heads, N, N)."""
        q_soft, q_sig = self.query(self.norm_s(secondary)).chunk(2, dim=-1)  # (B, N, C) each
        p = self.norm_p(primary)
        k_soft, k_sig = self.key(p).chunk(2, dim=-1)  # (B, N, C) each
        heads = [self.split_heads(t) for t in (q_soft, k_soft, q_sig, k_sig, self.value(p))]
        out, corr = fit_attention(*heads)  # (B, h, N, d), (B, h, N, N)
        out = out.transpose(1, 2).flatten(2)  # (B, N, C)
        x = secondary + self.proj(out)
        return x + self.mlp(self.norm_out(x)), corr


def soft_argmax(heatmaps: torch.Tensor, stride: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax over each map and the expected cell centre in input pixels (integral regression).

    Args:
        heatmaps: (B, J, h, w) logits.
        stride: input pixels per heatmap cell; cell (i, j) has its centre at
            ``(j * stride + (stride - 1) / 2, i * stride + (stride - 1) / 2)`` (pixel centres
            at integer coordinates).

    Returns:
        ``keypoints`` (B, J, 2) px (x, y) and the probabilities (B, J, h * w).

    >>> logits = torch.full((1, 1, 2, 2), -1e4)
    >>> logits[0, 0, 1, 0] = 0.0
    >>> soft_argmax(logits, 8)[0].tolist()
    [[[3.5, 11.5]]]
    """
    b, j, h, w = heatmaps.shape
    prob = torch.softmax(heatmaps.flatten(2), dim=-1)  # (B, J, h*w)
    grid = prob.view(b, j, h, w)
    xs = torch.arange(w, dtype=prob.dtype, device=prob.device) * stride + (stride - 1) / 2
    ys = torch.arange(h, dtype=prob.dtype, device=prob.device) * stride + (stride - 1) / 2
    x = (grid.sum(dim=2) * xs).sum(dim=-1)  # (B, J)
    y = (grid.sum(dim=3) * ys).sum(dim=-1)  # (B, J)
    return torch.stack([x, y], dim=-1), prob


class HandOccNet(PoseModel):
    """HandOccNet: ``images (B, 3, H, W)`` in [0, 1], H and W multiples of 32.

    ``forward`` returns ``keypoints`` (B, 21, 2) input px, ``xyz`` (B, 21, 3) mm root-relative,
    and raw outputs ``heatmaps`` (B, 21, H/8, W/8) logits, ``necessity`` (B, 1, H/8, W/8) in
    [0, 1], ``correlation`` (B, heads, N, N) FIT's map (N = H/8 * W/8), and with hand parameters
    ``pose`` (B, 16, 3) rad and ``shape`` (B, 10). ``decode`` recomputes keypoints and xyz from
    the raw outputs; it is the same differentiable path ``forward`` takes.
    """

    is_3d = True
    stride = 8

    def __init__(self, config: HandOccNetConfig) -> None:
        super().__init__()
        check_resnet(config.backbone)
        check_heads(config.width, config.heads)
        check_range("set_layers", config.set_layers, lo=0)
        self.config = config
        self.num_joints = config.num_joints
        self.normalize = ImageNormalize()
        trunk, _ = resnet_trunk(config.backbone)
        channels = RESNETS[config.backbone][1]
        # Kept whole under SimpleBaseline's name, so its trained trunk can start this one
        # (``handlab train --init-backbone``): stem + layer1 (stride 4) = ``backbone[:5]``, then
        # layer2, layer3, layer4 (strides 8, 16, 32) = ``backbone[5]``, ``[6]``, ``[7]``.
        self.backbone = trunk
        self.fpn = FeaturePyramidNetwork(list(channels[1:]), config.width)
        self.position = nn.Conv2d(2, config.width, kernel_size=1)
        # Normalised input: the conv's logits move O(lr) per step, not O(lr * |F|) (see above).
        self.necessity_norm = nn.GroupNorm(1, config.width)
        self.necessity = nn.Conv2d(config.width, 1, kernel_size=3, padding=1)
        self.fit = FIT(config.width, config.heads)
        layer = nn.TransformerEncoderLayer(
            config.width,
            config.heads,
            2 * config.width,
            dropout=0.0,
            batch_first=True,
            norm_first=True,
        )
        self.set = nn.TransformerEncoder(layer, config.set_layers, enable_nested_tensor=False)
        self.heatmap_head = nn.Conv2d(config.width, config.num_joints, kernel_size=1)
        j, c = config.num_joints, config.width
        self.joint_mlp = nn.Sequential(nn.Flatten(1), nn.Linear(j * c, 256), nn.ReLU())
        if config.predict_hand_params:
            self.param_head = nn.Linear(256, 16 * 3 + 10)
            self.hand_model = HandModel()
        else:
            self.param_head = nn.Linear(256, j * 3)
        # Start near the flat hand / all-zero xyz (small, not zero: zero weights would block
        # the gradient to every layer before the head on the first step).
        nn.init.normal_(self.param_head.weight, std=1e-3)
        nn.init.zeros_(self.param_head.bias)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """FPN levels merged at stride 8: (B, C, H/8, W/8)."""
        c1 = self.backbone[:5](self.normalize(images))  # (B, c1, H/4, W/4)
        c2 = self.backbone[5](c1)  # (B, c2, H/8, W/8)
        c3 = self.backbone[6](c2)  # (B, c3, H/16, W/16)
        c4 = self.backbone[7](c3)  # (B, c4, H/32, W/32)
        pyramid = self.fpn({"c2": c2, "c3": c3, "c4": c4})  # strides 8, 16, 32; C channels
        h, w = c2.shape[-2:]
        # Merge the levels at stride 8 (upsample and sum) so every level's output is used.
        feats = sum(
            F.interpolate(p, size=(h, w), mode="bilinear", align_corners=False)
            for p in pyramid.values()
        )  # (B, C, H/8, W/8)
        return feats

    def position_tokens(self, batch: int, height: int, width: int) -> torch.Tensor:
        """The learned embedding of each cell's (x, y), as tokens (B, h * w, C)."""
        device = self.position.weight.device
        grid = coordinate_grid(batch, height, width, device)  # (B, 2, h, w)
        return self.position(grid).flatten(2).transpose(1, 2)  # (B, h * w, C)

    def stages(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """The intermediate tensors of :meth:`forward`, as chapter 06 shows them.

        Returns ``features`` F (B, C, h, w), ``necessity`` M (B, 1, h, w) in [0, 1],
        ``primary`` F_p = F * M and ``secondary`` F_s = F * (1 - M) as tokens (B, h * w, C),
        ``injected`` F_FIT (B, h * w, C), ``correlation`` (B, heads, h * w, h * w) and
        ``enhanced`` F_SET (B, h * w, C), tokens in row-major cell order.
        """
        check_size(images, multiple=32)
        feats = self.features(images)  # (B, C, h, w)
        necessity = torch.sigmoid(self.necessity(self.necessity_norm(feats)))  # (B, 1, h, w)
        primary, secondary = split_features(feats, necessity)  # (B, N, C) each
        pos = self.position_tokens(*necessity.shape[:1], *necessity.shape[2:])  # (B, N, C)
        injected, corr = self.fit(secondary + pos, primary + pos)  # (B, N, C), (B, h, N, N)
        return {
            "features": feats,
            "necessity": necessity,
            "primary": primary,
            "secondary": secondary,
            "injected": injected,
            "correlation": corr,
            "enhanced": self.set(injected),  # (B, N, C)
        }

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        s = self.stages(images)
        b, c, h, w = s["features"].shape
        grid = s["enhanced"].transpose(1, 2).reshape(b, c, h, w)
        heatmaps = self.heatmap_head(grid)  # (B, J, h, w)
        raw = {"heatmaps": heatmaps, "necessity": s["necessity"], "correlation": s["correlation"]}
        raw.update(self._regress(heatmaps, s["enhanced"]))
        return raw | self.decode(raw)

    def _regress(self, heatmaps: torch.Tensor, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
        _, prob = soft_argmax(heatmaps, self.stride)  # (B, J, N)
        joint_feats = prob @ tokens  # (B, J, C): heatmap-weighted features per joint
        params = self.param_head(self.joint_mlp(joint_feats))
        if self.config.predict_hand_params:
            return {"pose": params[:, :48].view(-1, 16, 3), "shape": params[:, 48:]}
        return {"joint_xyz": params.view(-1, self.num_joints, 3) * self.config.xyz_unit_mm}

    def decode(self, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Differentiable: ``heatmaps`` -> ``keypoints`` (B, J, 2) px; ``pose``/``shape`` (or
        ``joint_xyz``) -> ``xyz`` (B, J, 3) mm, root-relative."""
        keypoints, _ = soft_argmax(outputs["heatmaps"], self.stride)
        if self.config.predict_hand_params:
            xyz = self.hand_model(outputs["pose"], outputs["shape"])  # wrist at the origin
        else:
            xyz = outputs["joint_xyz"]
        return {"keypoints": keypoints, "xyz": xyz - xyz[:, :1]}

    def loss(
        self, outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """L1 on keypoints (in heatmap cells) + L1 on root-relative xyz (in ``xyz_unit_mm``).

        Every joint counts, occluded ones too: regressing what cannot be seen is the point.
        Needs ``batch["keypoints"]`` (B, 21, 2) px and ``batch["xyz"]`` (B, 21, 3) mm.
        """
        j = self.num_joints
        check_batch(batch, {"keypoints": (None, j, 2), "xyz": (None, j, 3)})
        loss_2d = F.l1_loss(outputs["keypoints"] / self.stride, batch["keypoints"] / self.stride)
        target = batch["xyz"] - batch["xyz"][:, :1]
        loss_3d = F.l1_loss(outputs["xyz"], target) / self.config.xyz_unit_mm
        loss = loss_2d + loss_3d
        return loss, {"keypoints": float(loss_2d.detach()), "xyz": float(loss_3d.detach())}


@register_model("handoccnet")
def create_handoccnet(**config: object) -> HandOccNet:
    """Build a :class:`HandOccNet` from :class:`HandOccNetConfig` keywords."""
    return HandOccNet(HandOccNetConfig(**config))
