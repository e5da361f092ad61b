"""Post-processing of pose predictions: volume decoders, ensembles, N-best, a pose prior, time.

Taught in chapter 05 (``notebooks/05_v2v.py``).

Hrúz's HANDS 2019 modifications of V2V-PoseNet (seed 004) improved the error with five steps
that need nothing from the network that made the predictions, so any model can use them:

- :func:`decode_volume`: read a joint from its 3D heatmap by the argmax voxel, by a sub-voxel
  weighted average around the maximum ("S-max"), or by fitting a Gaussian ("Gauss"), the last two
  with :class:`handlab.codecs.GaussianVolume`;
- :func:`ensemble`: average the predictions of several checkpoints ("epoch ensembles");
- :func:`n_best`: average the locations of the ``n`` most likely voxels instead of the best one;
- :class:`PosePrior`: project a pose onto a ``TruncatedSVD`` subspace fitted on training poses
  (scikit-learn's ``TruncatedSVD``: no centring, as in the seed);
- :func:`temporal_average`: average each frame with its ``window`` neighbours on either side.

Voxel coordinates are ``(x, y, z)`` with integers at voxel centres and volumes are indexed
``[..., z, y, x]`` (see :mod:`handlab.models.voxels`).

>>> heatmaps = torch.zeros(1, 1, 5, 5, 5)
>>> heatmaps[0, 0, 1, 2, 3] = 1.0
>>> decode_volume(heatmaps, "argmax").tolist()
[[[3.0, 2.0, 1.0]]]
>>> temporal_average(torch.arange(5.0).view(5, 1, 1).expand(5, 1, 3), 1)[:, 0, 0].tolist()
[0.5, 1.0, 2.0, 3.0, 3.5]
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from sklearn.decomposition import TruncatedSVD

from handlab._checks import check_finite, check_shape
from handlab.codecs import GaussianVolume

__all__ = [
    "DECODERS",
    "PosePrior",
    "decode_volume",
    "ensemble",
    "n_best",
    "temporal_average",
]

DECODERS = ("argmax", "subvoxel", "gaussian")


def _check_volumes(heatmaps: object) -> None:
    if not isinstance(heatmaps, torch.Tensor):
        raise TypeError(
            f"heatmaps: expected a torch.Tensor (B, J, D, H, W), got {type(heatmaps).__name__}"
        )
    check_shape("heatmaps", heatmaps, (None, None, None, None, None))
    if heatmaps.numel() == 0:
        raise ValueError(f"heatmaps: expected a non-empty volume, got {tuple(heatmaps.shape)}")
    check_finite("heatmaps", heatmaps)


def decode_volume(
    heatmaps: torch.Tensor,
    method: str = "subvoxel",
    *,
    radius: int = 3,
    power: float | None = None,
    sigma: float = 1.7,
) -> torch.Tensor:
    """Per-joint 3D heatmaps (B, J, D, H, W) -> voxel coordinates (B, J, 3) ``(x, y, z)``.

    Seed 004's "Max", "S-max" and "Gauss" columns, the last two by
    :class:`handlab.codecs.GaussianVolume` (the one decoder of voxel heatmaps in handlab):

    - ``"argmax"``: the centre of the most likely voxel (integer coordinates);
    - ``"subvoxel"``: the codec's ``"local_soft_argmax"``: the average of the voxel centres in
      the ``(2 radius + 1)^3`` window around the maximum weighted by ``H ** power``
      (``power=1`` is the plain weighted average of the seed; the default ``sigma ** 2`` makes a
      clean Gaussian decode exactly). Differentiable in the heatmap values;
    - ``"gaussian"``: the codec's ``"taylor"``: a Newton step on ``log H`` (a quadratic fit of
      the log-heatmap around the maximum), exact for a Gaussian peak, also at the borders.

    >>> z, y, x = torch.meshgrid(*[torch.arange(9.0)] * 3, indexing="ij")
    >>> peak = torch.exp(-((x - 3.3) ** 2 + (y - 4.0) ** 2 + (z - 5.6) ** 2) / (2 * 1.7**2))
    >>> decode_volume(peak[None, None], "gaussian").squeeze().tolist()
    [3.3, 4.0, 5.6]
    """
    _check_volumes(heatmaps)
    if method not in DECODERS:
        raise ValueError(f"method: expected one of {list(DECODERS)}, got {method!r}")
    if method == "argmax":
        H, W = heatmaps.shape[-2:]
        flat = heatmaps.flatten(2).argmax(-1)  # (B, J)
        return torch.stack([flat % W, (flat // W) % H, flat // (H * W)], -1).to(heatmaps.dtype)
    codec = GaussianVolume(size=tuple(heatmaps.shape[-3:]), sigma=sigma)
    if method == "gaussian":
        return codec.decode(heatmaps, "taylor")[0]
    return codec.decode(heatmaps, "local_soft_argmax", radius=radius, power=power)[0]


def n_best(heatmaps: torch.Tensor, n: int) -> torch.Tensor:
    """Average of the ``n`` most likely voxel centres per joint, weighted by their (clipped)
    values: (B, J, D, H, W) -> (B, J, 3) ``(x, y, z)`` voxel coordinates. ``n = 1`` is argmax.

    >>> h = torch.zeros(1, 1, 1, 1, 4)
    >>> h[..., 1], h[..., 2] = 3.0, 1.0
    >>> n_best(h, 2).tolist()
    [[[1.25, 0.0, 0.0]]]
    """
    _check_volumes(heatmaps)
    D, H, W = heatmaps.shape[-3:]
    if not isinstance(n, int) or not 1 <= n <= D * H * W:
        raise ValueError(f"n: expected an int in [1, {D * H * W}] (voxels per volume), got {n!r}")
    values, flat = heatmaps.flatten(2).topk(n, dim=-1)  # (B, J, n)
    coords = torch.stack([flat % W, (flat // W) % H, flat // (H * W)], dim=-1)  # (B, J, n, 3)
    w = values.clamp(min=0)
    total = w.sum(-1, keepdim=True)
    # all weights zero: plain mean of the n positions
    w = torch.where(total > 0, w / total.clamp(min=1e-12), torch.full_like(w, 1.0 / n))
    return (w[..., None] * coords.to(heatmaps.dtype)).sum(-2)


def ensemble(
    preds_list: Sequence[torch.Tensor], weights: Sequence[float] | None = None
) -> torch.Tensor:
    """Weighted mean of equally shaped predictions (coordinates or heatmaps) of several models,
    e.g. the checkpoints of the best epochs ("epoch ensemble"). Equal weights by default.

    >>> ensemble([torch.zeros(1, 21, 3), torch.ones(1, 21, 3)])[0, 0].tolist()
    [0.5, 0.5, 0.5]
    """
    if isinstance(preds_list, torch.Tensor) or not isinstance(preds_list, Sequence):
        raise TypeError(f"preds_list: expected a list of tensors, got {type(preds_list).__name__}")
    if len(preds_list) == 0:
        raise ValueError("preds_list: expected at least one prediction, got an empty list")
    first = preds_list[0]
    for i, p in enumerate(preds_list):
        check_shape(f"preds_list[{i}]", p, tuple(first.shape))
    w = (
        torch.ones(len(preds_list))
        if weights is None
        else torch.as_tensor(weights, dtype=torch.float64)
    )
    if w.shape != (len(preds_list),) or bool((w < 0).any()) or float(w.sum()) <= 0:
        raise ValueError(
            f"weights: expected {len(preds_list)} non-negative weights with a positive sum, "
            f"got {list(map(float, w.flatten()))}"
        )
    w = (w / w.sum()).to(torch.as_tensor(first).dtype)
    stacked = torch.stack([torch.as_tensor(p) for p in preds_list])  # (M, ...)
    return (stacked * w.view(-1, *[1] * first.ndim)).sum(0)


class PosePrior:
    """A linear pose prior: a ``TruncatedSVD`` subspace of flattened training poses.

    ``fit`` learns ``n_components`` right singular vectors ``V`` (k, J*3) of the training poses;
    ``project`` maps a pose to ``x V^T V``, removing everything outside the subspace (noise, and
    implausible deviations). Fit it on root-relative poses and project root-relative poses.

    >>> g = torch.Generator().manual_seed(0)
    >>> basis = torch.randn(2, 6, generator=g)  # poses of 2 joints living in a 2D subspace
    >>> train = (torch.randn(50, 2, generator=g) @ basis).view(50, 2, 3)
    >>> prior = PosePrior.fit(train, 2)
    >>> bool(torch.allclose(prior.project(train), train, atol=1e-4))
    True
    """

    def __init__(self, components: torch.Tensor, num_joints: int) -> None:
        self.components = components  # (k, J * 3), orthonormal rows
        self.num_joints = num_joints

    @classmethod
    def fit(cls, train_xyz: torch.Tensor, n_components: int, *, seed: int = 0) -> PosePrior:
        """Fit on ``train_xyz`` (N, J, 3) mm; ``n_components`` in [1, J*3 - 1]."""
        check_shape("train_xyz", train_xyz, (None, None, 3))
        check_finite("train_xyz", train_xyz)
        N, J, _ = train_xyz.shape
        if not isinstance(n_components, int) or not 1 <= n_components < J * 3:
            raise ValueError(
                f"n_components: expected an int in [1, {J * 3 - 1}], got {n_components!r}"
            )
        if N < n_components:
            raise ValueError(
                f"train_xyz: expected at least n_components = {n_components} poses, got {N}"
            )
        x = torch.as_tensor(train_xyz).reshape(N, J * 3).double().numpy()
        svd = TruncatedSVD(n_components, algorithm="randomized", n_iter=10, random_state=seed)
        svd.fit(x)
        return cls(torch.from_numpy(svd.components_.copy()), J)

    def project(self, xyz: torch.Tensor) -> torch.Tensor:
        """Project poses (..., J, 3) mm onto the subspace; same shape and dtype."""
        check_shape("xyz", xyz, ("...", self.num_joints, 3))
        check_finite("xyz", xyz)
        V = self.components.to(xyz.device, xyz.dtype)  # (k, J*3)
        flat = xyz.reshape(*xyz.shape[:-2], self.num_joints * 3)
        return ((flat @ V.T) @ V).reshape(xyz.shape)


def temporal_average(seq_xyz: torch.Tensor, window: int) -> torch.Tensor:
    """Average each frame of a sequence with up to ``window`` frames on either side.

    Args:
        seq_xyz: (T, J, 3) or (B, T, J, 3), time on the third axis from the end.
        window: frames on each side (seed 004's "+3, -3" is ``window=3``); 0 is the identity.
            At the sequence ends the window is cut to the frames that exist.

    Returns:
        the same shape; a constant sequence is returned unchanged. Raises ``ValueError`` if the
        sequence is shorter than one full window (``2 window + 1`` frames).
    """
    check_shape("seq_xyz", seq_xyz, ("...", None, None, 3))
    if seq_xyz.ndim not in (3, 4):
        raise ValueError(
            f"seq_xyz: expected shape (T, J, 3) or (B, T, J, 3), got {tuple(seq_xyz.shape)}"
        )
    check_finite("seq_xyz", seq_xyz)
    if not isinstance(window, int) or window < 0:
        raise ValueError(f"window: expected an int >= 0, got {window!r}")
    T = seq_xyz.shape[-3]
    if T < 2 * window + 1:
        raise ValueError(
            f"seq_xyz: expected at least 2 * window + 1 = {2 * window + 1} frames, got {T}"
        )
    x = seq_xyz.movedim(-3, -1)  # (..., J, 3, T)
    shape = x.shape
    x = x.reshape(-1, 1, T)
    ones = torch.ones(1, 1, 2 * window + 1, dtype=x.dtype, device=x.device)
    total = F.conv1d(F.pad(x, (window, window)), ones)  # zero padding: sums over real frames
    count = F.conv1d(F.pad(torch.ones_like(x[:1]), (window, window)), ones)
    return (total / count).reshape(shape).movedim(-1, -3)
