"""Thin glue between the heatmap families and :mod:`handlab.codecs`: one
:class:`~handlab.codecs.GaussianHeatmap` per map size, so every target and every decoder in the
models is the codec's (no second decoder lives here).

Taught in chapter 01 (``notebooks/01_simplebaseline.py``), with :mod:`handlab.codecs`.

>>> maps, weights = encode(
...     {"keypoints": torch.tensor([[[21.0, 42.0]]]), "visibility": torch.ones(1, 1)},
...     (32, 32), stride=4, sigma=2.0)
>>> decode_argmax(maps, stride=4, sigma=2.0, method="taylor")[0].round().tolist()
[[[21.0, 42.0]]]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from handlab.codecs import METHODS, GaussianHeatmap
from handlab.models._common import heatmap_mse

__all__ = ["check_method", "decode_argmax", "decode_soft", "encode", "heatmap_loss", "soft_argmax"]


def check_method(method: str) -> None:
    """Raise ``ValueError`` unless ``method`` is one of the codec's decoders."""
    if method not in METHODS:
        raise ValueError(f"decoder: expected one of {METHODS}, got {method!r}")


def _codec(size: Sequence[int], stride: int, sigma: float) -> GaussianHeatmap:
    return GaussianHeatmap(heatmap_size=tuple(size), stride=stride, sigma=sigma)


def decode_argmax(
    heatmaps: torch.Tensor, *, stride: int, sigma: float, method: str = "quarter"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Heatmaps (B, J, h, w) -> keypoints (B, J, 2) input px and scores (B, J), by the codec's
    argmax-based ``method`` (``"quarter"``: SimpleBaseline's rule; ``"taylor"``: DARK)."""
    keypoints, scores = _codec(heatmaps.shape[-2:], stride, sigma).decode(heatmaps, method)
    return keypoints, scores


def decode_soft(heatmaps: torch.Tensor, *, stride: int, sigma: float) -> torch.Tensor:
    """Differentiable: heatmaps (B, J, h, w) -> keypoints (B, J, 2) input px, by the codec's
    local soft-argmax around each argmax (power ``sigma^2``)."""
    codec = _codec(heatmaps.shape[-2:], stride, sigma)
    return codec.decode(heatmaps, "local_soft_argmax")[0]


def soft_argmax(heatmaps: torch.Tensor, *, stride: int, beta: float = 1.0) -> torch.Tensor:
    """Differentiable: logit maps (B, J, h, w) -> keypoints (B, J, 2) input px, the expectation
    under ``softmax(beta * maps)`` over the whole map (integral regression)."""
    return _codec(heatmaps.shape[-2:], stride, 2.0).decode(heatmaps, "soft_argmax", beta=beta)[0]


def encode(
    batch: Mapping[str, torch.Tensor], size: Sequence[int], stride: int, sigma: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Targets from ``batch["keypoints"]`` (B, J, 2) px and ``batch["visibility"]`` (B, J):
    peak-1 Gaussians (B, J, h, w) and weights (B, J) (0 for invisible or off-map joints)."""
    keypoints = batch["keypoints"]
    codec = _codec(size, stride, sigma)
    # The codec builds its grids on the CPU; targets then move to the batch's device.
    maps, weights = codec.encode(keypoints.detach().cpu(), batch["visibility"].detach().cpu())
    return maps.to(keypoints), weights.to(keypoints)


def heatmap_loss(
    heatmaps: torch.Tensor, batch: Mapping[str, torch.Tensor], *, stride: int, sigma: float
) -> torch.Tensor:
    """SimpleBaseline's ``JointsMSELoss``: mean over joints of ``0.5 * MSE(pred * w, gt * w)``
    with Gaussian targets and ``w`` the codec's weights (visibility, 0 off the map)."""
    target, weight = encode(batch, heatmaps.shape[-2:], stride, sigma)
    return heatmap_mse(heatmaps, target, weight)


class SoftDecodeMixin:
    """``decode`` shared by the heatmap families (SimpleBaseline, HRNet, CPM): the codec's
    differentiable local soft-argmax of ``outputs["heatmaps"]`` (B, J, h, w) -> ``keypoints``
    (B, J, 2) input pixels, at the model's ``stride`` and ``config.sigma``."""

    def decode(self, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Differentiable: ``heatmaps`` (B, J, h, w) -> ``keypoints`` (B, J, 2) input pixels."""
        heatmaps = outputs["heatmaps"]
        return {"keypoints": decode_soft(heatmaps, stride=self.stride, sigma=self.config.sigma)}
