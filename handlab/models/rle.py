"""RLE: regression with a residual log-likelihood (Li, Bian, Zeng, Wang, Liu, Lu, "Human Pose
Regression with Residual Log-likelihood Estimation", ICCV 2021; seed 000's Table C).

Taught in chapter 09 (``notebooks/09_indices.py``) among PoseIG's model set.

A regression network predicts, per joint, a location ``mu`` and a scale ``sigma`` (both in units
of the image size). Training maximises the likelihood of the ground truth ``x`` under a learnt
density of the normalised residual ``x_bar = (x - mu) / sigma``:

``log P(x | I) = log Q(x_bar) + log G(x_bar) - log sigma``

where ``Q`` is a fixed Laplace density (what an L1 loss assumes) and ``G`` a normalising flow
(RealNVP, Dinh et al. 2017) that learns how the true residuals differ from it: the "residual" in
the method's name. The flow is only needed by the loss: at test time ``keypoints`` are ``mu``,
``sigma`` is the model's own uncertainty per joint. The paper's backbone is a ResNet with global
average pooling and one fully connected layer; that is what :class:`RLERegression` builds.

Written by hand (a 2D RealNVP is 40 lines; no well-kept library ships RLE's flow).

>>> model = create_rle(backbone="resnet18", input_size=64)
>>> out = model(torch.rand(2, 3, 64, 64))
>>> out["keypoints"].shape, out["sigma"].shape
(torch.Size([2, 21, 2]), torch.Size([2, 21, 2]))
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from handlab.models._common import (
    CoordsDecodeMixin,
    ImageNormalize,
    check_fixed_size,
    check_keypoint_batch,
    check_resnet,
    check_size,
    resnet_trunk,
    to_image_units,
)
from handlab.models.base import PoseModel
from handlab.models.registry import register_model

__all__ = ["RLEConfig", "RLERegression", "RealNVP2d", "create_rle", "rle_nll"]


@dataclass(frozen=True)
class RLEConfig:
    # The paper uses ResNet-50 (and HRNet); ResNet-18 keeps CPU recipes fast.
    backbone: str = "resnet18"
    input_size: int = 128
    # RealNVP coupling layers and hidden width: the paper's flow has 3 layers of 64-unit MLPs.
    flow_layers: int = 3
    flow_hidden: int = 64
    num_joints: int = 21


class _Coupling(nn.Module):
    """One affine coupling of a 2D point: the unmasked coordinate is scaled and shifted by an MLP
    of the masked one. ``forward`` maps data ``x`` to base ``z`` and returns ``log |dz/dx|``."""

    def __init__(self, mask: tuple[float, float], hidden: int) -> None:
        super().__init__()
        self.register_buffer("mask", torch.tensor(mask), persistent=False)
        self.scale = nn.Sequential(
            nn.Linear(2, hidden), nn.LeakyReLU(), nn.Linear(hidden, hidden), nn.LeakyReLU(),
            nn.Linear(hidden, 2), nn.Tanh(),
        )  # fmt: skip
        self.shift = nn.Sequential(
            nn.Linear(2, hidden), nn.LeakyReLU(), nn.Linear(hidden, hidden), nn.LeakyReLU(),
            nn.Linear(hidden, 2),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        kept = x * self.mask  # (..., 2)
        free = 1.0 - self.mask
        s = self.scale(kept) * free
        t = self.shift(kept) * free
        z = kept + free * (x - t) * torch.exp(-s)
        return z, -s.sum(-1)


class RealNVP2d(nn.Module):
    """A normalising flow density on R^2 with a standard normal base (RealNVP).

    >>> flow = RealNVP2d(layers=2, hidden=8)
    >>> flow.log_prob(torch.zeros(5, 2)).shape
    torch.Size([5])
    """

    def __init__(self, layers: int = 3, hidden: int = 64) -> None:
        super().__init__()
        if layers < 1:
            raise ValueError(f"flow_layers: expected >= 1, got {layers}")
        masks = [(1.0, 0.0) if i % 2 == 0 else (0.0, 1.0) for i in range(2 * layers)]
        self.couplings = nn.ModuleList(_Coupling(m, hidden) for m in masks)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (..., 2) -> log density (...) (natural log, per unit area)."""
        log_det = x.new_zeros(x.shape[:-1])
        z = x
        for coupling in self.couplings:
            z, ld = coupling(z)
            log_det = log_det + ld
        base = -0.5 * (z**2).sum(-1) - math.log(2 * math.pi)
        return base + log_det


def rle_nll(
    mu: torch.Tensor, sigma: torch.Tensor, target: torch.Tensor, flow: RealNVP2d
) -> torch.Tensor:
    """RLE's negative log-likelihood per joint: (B, J, 2) each -> (B, J).

    ``-log P = log sigma - log Q(x_bar) - log G(x_bar)`` summed over x and y, with ``Q`` the unit
    Laplace density ``exp(-|x_bar|) / 2`` and ``G`` the flow.
    """
    x_bar = (target - mu) / sigma  # (B, J, 2)
    log_q = (-x_bar.abs() - math.log(2.0)).sum(-1)
    return torch.log(sigma).sum(-1) - log_q - flow.log_prob(x_bar)


class RLERegression(CoordsDecodeMixin, PoseModel):
    """``images (B, 3, S, S)`` in [0, 1] -> ``keypoints`` (B, 21, 2) input pixels (``mu``),
    ``sigma`` (B, 21, 2) in image-size units, and the raw ``coords`` (B, 42) centred on the image
    centre."""

    loss_only_parameters = ("flow.",)  # trained through the loss only (the contract test's note)

    def __init__(self, config: RLEConfig) -> None:
        super().__init__()
        check_resnet(config.backbone)
        self.config = config
        self.num_joints = config.num_joints
        self.normalize = ImageNormalize()
        trunk, channels = resnet_trunk(config.backbone)
        self.backbone = trunk  # keys as SimpleBaseline's, so --init-backbone can copy a trunk
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc_mu = nn.Linear(channels, 2 * config.num_joints)
        self.fc_sigma = nn.Linear(channels, 2 * config.num_joints)
        nn.init.normal_(self.fc_mu.weight, std=0.001)
        nn.init.zeros_(self.fc_mu.bias)
        self.flow = RealNVP2d(config.flow_layers, config.flow_hidden)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        check_size(images, multiple=32)
        check_fixed_size(images, self.config.input_size)
        features = self.pool(self.backbone(self.normalize(images)))  # (B, C)
        coords = self.fc_mu(features)  # (B, 2J)
        # The paper's sigmoid keeps sigma in (0, 1) image units; the floor avoids log(0).
        sigma = torch.sigmoid(self.fc_sigma(features)).view(-1, self.num_joints, 2) + 1e-6
        outputs = {"coords": coords, "sigma": sigma}
        outputs.update(self.decode(outputs))
        return outputs

    def loss(
        self, outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Visibility-weighted RLE negative log-likelihood. Needs ``batch["keypoints"]``
        (B, 21, 2) px and ``batch["visibility"]`` (B, 21)."""
        check_keypoint_batch(batch, self.num_joints)
        size = self.config.input_size
        target = to_image_units(batch["keypoints"], size)  # (B, J, 2) image units
        mu = outputs["coords"].view(-1, self.num_joints, 2)
        nll = rle_nll(mu, outputs["sigma"], target, self.flow)  # (B, J)
        weight = batch["visibility"]
        loss = (nll * weight).sum() / weight.sum().clamp(min=1.0)
        epe = (outputs["keypoints"] - batch["keypoints"]).norm(dim=-1).mean()
        return loss, {"nll": float(loss.detach()), "epe_px": float(epe.detach())}


@register_model("rle")
def create_rle(**config: object) -> RLERegression:
    """Build an :class:`RLERegression` from :class:`RLEConfig` keywords."""
    return RLERegression(RLEConfig(**config))
