"""Target codecs: encode keypoints as heatmaps for training, decode heatmaps back to keypoints.

Taught in chapter 00 (``notebooks/00_tour.py``).

Every representation is an encode/decode pair (mmpose's ``codecs`` idea, without registries): one
object serves the data pipeline (``encode``) and the model's decoder (``decode``).

Coordinates. Keypoints are input pixels (x, y) with pixel centres at integers (see
:mod:`handlab.geometry`). A heatmap cell covers ``stride`` x ``stride`` input pixels, so
``x_heatmap = (x_input + 0.5) / stride - 0.5`` and back
``x_input = (x_heatmap + 0.5) * stride - 0.5``.

How handlab decodes (``decode(method=...)``):

- ``"taylor"`` (default; Zhang et al., DARK, CVPR 2020): argmax, then one Newton step on
  ``log H`` with a finite-difference gradient and Hessian. ``log`` of a Gaussian is a quadratic,
  so a clean peak is recovered exactly. At the map border the 3 x 3 stencil is shifted inward
  (the points that exist) -- still exact for a quadratic. Differentiable in the heatmap values.
- ``"local_soft_argmax"``: expectation over a (2r+1)^2 window around the argmax with weights
  ``softmax(power * log H)`` = ``H^power`` (a Gaussian narrowed to ``sigma / sqrt(power)``;
  ``power = sigma^2`` gives 1 cell, where a sampled Gaussian's mean is exact to < 0.005 cell).
  Window cells outside the map are filled from the same quadratic fit instead of being dropped,
  which removes the border bias. Differentiable.
- ``"quarter"`` (Xiao et al., SimpleBaseline, 2018): argmax plus 0.25 cell toward the higher
  neighbour. The classic; its error is up to 0.25 heatmap px (``0.25 * stride`` input px).
- ``"soft_argmax"``: the global ``softmax(beta * H)`` expectation of integral regression and of
  the PoseIG reference (beta = 10). On a peak-1 Gaussian the thousands of background cells carry
  real mass, so it is biased toward the map centre by many pixels; :class:`SoftArgmaxHeatmap`
  encodes targets for which it is exact.

:class:`GaussianVolume` is the same pair for 3D voxel heatmaps (V2V-PoseNet), in voxel units.

>>> codec = GaussianHeatmap(heatmap_size=(32, 32), stride=4, sigma=2.0)
>>> heatmaps, weights = codec.encode(torch.tensor([[[50.3, 71.8]]]))
>>> keypoints, scores = codec.decode(heatmaps)
>>> keypoints.round(decimals=3).tolist()
[[[50.3, 71.8]]]
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch

from handlab._checks import Array, check_finite, check_shape, check_tensor

__all__ = [
    "GaussianHeatmap",
    "GaussianVolume",
    "SoftArgmaxHeatmap",
    "local_soft_argmax_2d",
    "quarter_argmax_2d",
    "soft_argmax_2d",
    "taylor_argmax_2d",
]

METHODS = ("taylor", "local_soft_argmax", "quarter", "soft_argmax")
_EPS = 1e-10  # floor for log H: a cell at 0 becomes log(1e-10) = -23


# ---------------------------------------------------------------------------------------------
# N-D helpers. Maps are (..., *spatial) with spatial = (h, w) or (d, h, w); coordinates come out
# as (x, y) or (x, y, z), i.e. in reverse array-axis order.


def _check_maps(name: str, maps: Array, n: int) -> torch.Tensor:
    check_tensor(name, maps)
    maps = torch.as_tensor(maps)
    maps = maps if maps.is_floating_point() else maps.float()
    if maps.ndim < n or min(maps.shape[-n:]) < 3:
        want = "(..., J, h, w)" if n == 2 else "(..., J, d, h, w)"
        raise ValueError(
            f"{name}: expected shape {want} with each map side >= 3, got {tuple(maps.shape)}"
        )
    check_finite(name, maps)
    return maps


def _argmax(maps: torch.Tensor, n: int) -> torch.Tensor:
    """(..., *spatial) -> (..., n) integer index per array axis (e.g. (row, col))."""
    spatial = maps.shape[-n:]
    flat = maps.flatten(-n).argmax(-1)
    idx = []
    for size in reversed(spatial):
        idx.append(flat % size)
        flat = flat // size
    return torch.stack(idx[::-1], dim=-1)


def _gather(maps: torch.Tensor, index: torch.Tensor, n: int) -> torch.Tensor:
    """Values of (..., *spatial) at integer (..., K, n) array indices (clamped) -> (..., K)."""
    spatial = maps.shape[-n:]
    flat = torch.zeros(index.shape[:-1], dtype=torch.long, device=index.device)
    for axis, size in enumerate(spatial):
        flat = flat * size + index[..., axis].clamp(0, size - 1)
    return torch.gather(maps.flatten(-n), -1, flat)


def _quadratic_fit(logmaps: torch.Tensor, peak: torch.Tensor, n: int):
    """Finite-difference gradient and Hessian of ``logmaps`` on the 3^n stencil around ``peak``.

    The stencil centre is clamped one cell inside the map so every stencil cell exists.
    Returns the centre (..., n), value (...), gradient (..., n) and Hessian (..., n, n).
    """
    sizes = torch.tensor(logmaps.shape[-n:], device=peak.device)
    centre = torch.minimum(torch.maximum(peak, torch.ones_like(peak)), sizes - 2)
    offsets = torch.tensor(list(itertools.product((-1, 0, 1), repeat=n)), device=peak.device)
    vals = _gather(logmaps, centre[..., None, :] + offsets, n)  # (..., 3^n)
    vals = vals.reshape(vals.shape[:-1] + (3,) * n)
    mid = (1,) * n
    f0 = vals[(..., *mid)]
    grad, hess = [], [[None] * n for _ in range(n)]
    for i in range(n):
        plus = list(mid)
        minus = list(mid)
        plus[i], minus[i] = 2, 0
        grad.append((vals[(..., *plus)] - vals[(..., *minus)]) / 2)
        hess[i][i] = vals[(..., *plus)] - 2 * f0 + vals[(..., *minus)]
        for j in range(i + 1, n):
            c = {}
            for a, b in itertools.product((0, 2), repeat=2):
                k = list(mid)
                k[i], k[j] = a, b
                c[a, b] = vals[(..., *k)]
            hess[i][j] = hess[j][i] = (c[2, 2] - c[2, 0] - c[0, 2] + c[0, 0]) / 4
    grad_t = torch.stack(grad, dim=-1)
    hess_t = torch.stack([torch.stack(row, dim=-1) for row in hess], dim=-2)
    return centre, f0, grad_t, hess_t


def _negative_definite(hess: torch.Tensor) -> torch.Tensor:
    """(..., n, n) -> (...) bool: all leading principal minors alternate in sign (Sylvester)."""
    n = hess.shape[-1]
    ok = torch.ones(hess.shape[:-2], dtype=torch.bool, device=hess.device)
    for k in range(1, n + 1):
        minor = torch.linalg.det(hess[..., :k, :k].detach())
        ok &= minor * (-1) ** k > 1e-12
    return ok


def _taylor(maps: torch.Tensor, n: int) -> torch.Tensor:
    """argmax + Newton step on log H; returns (..., n) array-order sub-cell coordinates."""
    peak = _argmax(maps, n)
    logmaps = torch.log(maps.clamp(min=_EPS))
    centre, _, grad, hess = _quadratic_fit(logmaps, peak, n)
    ok = _negative_definite(hess)
    eye = torch.eye(n, dtype=maps.dtype, device=maps.device)
    safe = torch.where(ok[..., None, None], hess, -eye)
    step = -torch.linalg.solve(safe, grad[..., None])[..., 0]
    refined = centre.to(maps.dtype) + step
    # a flat or noisy stencil gives no usable curvature: keep the argmax; never move > 1 cell
    refined = torch.where(ok[..., None], refined, peak.to(maps.dtype))
    peak_f = peak.to(maps.dtype)
    return torch.minimum(torch.maximum(refined, peak_f - 1), peak_f + 1)


def _local_soft_argmax(
    maps: torch.Tensor, n: int, radius: int, power: float, peak: torch.Tensor | None = None
) -> torch.Tensor:
    """Window expectation of H^power around the argmax (or the given ``peak`` cells (..., n)),
    out-of-map cells from the quadratic fit."""
    peak = _argmax(maps, n) if peak is None else peak
    logmaps = torch.log(maps.clamp(min=_EPS))
    centre, f0, grad, hess = _quadratic_fit(logmaps, peak, n)
    span = range(-radius, radius + 1)
    offsets = torch.tensor(list(itertools.product(span, repeat=n)), device=maps.device)  # (K, n)
    cells = peak[..., None, :] + offsets  # (..., K, n) array indices
    sizes = torch.tensor(maps.shape[-n:], device=maps.device)
    inside = ((cells >= 0) & (cells < sizes)).all(-1)  # (..., K)
    actual = _gather(logmaps, cells, n)
    d = (cells - centre[..., None, :]).to(maps.dtype)  # (..., K, n)
    model = (
        f0[..., None]
        + (d * grad[..., None, :]).sum(-1)
        + 0.5 * torch.einsum("...ki,...ij,...kj->...k", d, hess, d)
    )
    # guard noisy fits: an extrapolated cell never outweighs the real window
    model = torch.minimum(model, actual.amax(-1, keepdim=True))
    logw = torch.where(inside, actual, model)
    weights = torch.softmax(power * logw, dim=-1)  # (..., K)
    return (weights[..., None] * cells.to(maps.dtype)).sum(-2)


def _soft_argmax(maps: torch.Tensor, n: int, beta: float) -> torch.Tensor:
    """Global expectation under softmax(beta * H); (..., n) in array order."""
    spatial = maps.shape[-n:]
    probs = torch.softmax(beta * maps.flatten(-n), dim=-1).reshape(maps.shape)
    coords = []
    for axis, size in enumerate(spatial):
        other = tuple(-n + a for a in range(n) if a != axis)
        marginal = probs.sum(other) if other else probs  # (..., size)
        coords.append((marginal * torch.arange(size, dtype=maps.dtype, device=maps.device)).sum(-1))
    return torch.stack(coords, dim=-1)


def _quarter(maps: torch.Tensor, n: int) -> torch.Tensor:
    """argmax + 0.25 toward the higher neighbour along each axis (no shift at the border)."""
    peak = _argmax(maps, n)
    sizes = torch.tensor(maps.shape[-n:], device=maps.device)
    out = peak.to(maps.dtype).clone()
    for axis in range(n):
        e = torch.zeros(n, dtype=torch.long, device=maps.device)
        e[axis] = 1
        plus = _gather(maps, (peak + e)[..., None, :], n)[..., 0]
        minus = _gather(maps, (peak - e)[..., None, :], n)[..., 0]
        interior = (peak[..., axis] > 0) & (peak[..., axis] < sizes[axis] - 1)
        out[..., axis] += torch.where(interior, 0.25 * torch.sign(plus - minus), 0.0)
    return out


def _xy(coords: torch.Tensor) -> torch.Tensor:
    """Array order (row, col) / (depth, row, col) -> (x, y) / (x, y, z)."""
    return coords.flip(-1)


# ---------------------------------------------------------------------------------------------
# Public 2D decoders (heatmap pixels, (x, y))


def soft_argmax_2d(heatmaps: Array, beta: float = 10.0) -> torch.Tensor:
    """Global soft-argmax: expected (x, y) under ``softmax(beta * H)`` over the whole map.

    Args:
        heatmaps: (..., J, h, w) any real values (logits or peak-1 maps).
        beta: inverse temperature; 10 is the PoseIG reference (biased on peak-1 maps, see module).

    Returns:
        (..., J, 2) heatmap pixels (x, y); differentiable in the heatmap values.

    >>> h = torch.full((1, 1, 5, 5), -1e4)
    >>> h[0, 0, 1, 3] = 0.0
    >>> soft_argmax_2d(h).tolist()
    [[[3.0, 1.0]]]
    """
    return _xy(_soft_argmax(_check_maps("heatmaps", heatmaps, 2), 2, beta))


def local_soft_argmax_2d(heatmaps: Array, radius: int = 3, power: float = 4.0) -> torch.Tensor:
    """Soft-argmax in a (2 radius + 1)^2 window around the argmax, exact on clean Gaussians.

    Weights are ``softmax(power * log H)`` over the window; ``power = sigma^2`` (4 for the
    default sigma 2) narrows the peak to 1 cell. Window cells beyond the border are filled from a
    quadratic fit of ``log H`` (see module docstring), so border peaks are not pulled inward.

    Args:
        heatmaps: (..., J, h, w) non-negative maps (values <= 0 count as 1e-10).

    Returns:
        (..., J, 2) heatmap pixels (x, y); differentiable in the heatmap values.

    >>> y, x = torch.meshgrid(torch.arange(9.0), torch.arange(9.0), indexing="ij")
    >>> h = torch.exp(-((x - 0.2) ** 2 + (y - 7.6) ** 2) / 8)[None]
    >>> local_soft_argmax_2d(h).round(decimals=3).tolist()
    [[0.2, 7.6]]
    """
    if not isinstance(radius, int) or radius < 1:
        raise ValueError(f"radius: expected an int >= 1, got {radius!r}")
    return _xy(_local_soft_argmax(_check_maps("heatmaps", heatmaps, 2), 2, radius, power))


def taylor_argmax_2d(heatmaps: Array) -> torch.Tensor:
    """argmax + second-order (Newton) refinement of ``log H`` (DARK); (..., J, h, w) -> (..., J, 2).

    >>> y, x = torch.meshgrid(torch.arange(6.0), torch.arange(6.0), indexing="ij")
    >>> taylor_argmax_2d(torch.exp(-((x - 5.3) ** 2 + (y - 2.4) ** 2) / 8)).tolist()
    [5.3..., 2.4...]
    """
    return _xy(_taylor(_check_maps("heatmaps", heatmaps, 2), 2))


def quarter_argmax_2d(heatmaps: Array) -> torch.Tensor:
    """argmax + 0.25 px toward the higher neighbour (SimpleBaseline); error up to 0.25 px.

    >>> h = torch.zeros(5, 5)
    >>> h[2, 2], h[2, 3] = 1.0, 0.5
    >>> quarter_argmax_2d(h).tolist()
    [2.25, 2.0]
    """
    return _xy(_quarter(_check_maps("heatmaps", heatmaps, 2), 2))


# ---------------------------------------------------------------------------------------------
# Codecs


class _GaussianCodec:
    """Peak-1 Gaussian targets on an n-D grid; subclasses fix n and the input <-> grid map."""

    n: int = 2

    def __init__(self, size: Sequence[int], stride: float, sigma: float) -> None:
        size = tuple(int(s) for s in size)
        if len(size) != self.n or min(size) < 3:
            raise ValueError(f"size: expected {self.n} sides >= 3, got {size}")
        if stride <= 0:
            raise ValueError(f"stride: expected a positive number, got {stride}")
        if sigma <= 0:
            raise ValueError(f"sigma: expected a positive number, got {sigma}")
        self.size, self.stride, self.sigma = size, float(stride), float(sigma)

    # input units <-> grid cells (pixel centres at integers on both sides)
    def to_grid(self, points: torch.Tensor) -> torch.Tensor:
        return (points + 0.5) / self.stride - 0.5

    def from_grid(self, coords: torch.Tensor) -> torch.Tensor:
        return (coords + 0.5) * self.stride - 0.5

    def _inputs(self, keypoints: Array, visibility: Array | None):
        check_tensor("keypoints", keypoints)
        kp = torch.as_tensor(keypoints)
        kp = kp if kp.is_floating_point() else kp.float()
        check_shape("keypoints", kp, ("...", None, self.n))
        vis = torch.ones(kp.shape[:-1], dtype=kp.dtype, device=kp.device)
        if visibility is not None:
            check_tensor("visibility", visibility)
            vis = torch.as_tensor(visibility).to(kp)
            check_shape("visibility", vis, tuple(kp.shape[:-1]))
        # invisible joints may carry NaN (datasets do that); visible ones must be finite
        check_finite("keypoints (visible joints)", kp[vis > 0])
        kp = torch.where((vis > 0)[..., None], kp, torch.zeros_like(kp))
        return kp, vis

    def _axes(self, like: torch.Tensor) -> list[torch.Tensor]:
        """Per-axis cell coordinates in (x, y[, z]) order, with ``like``'s dtype and device."""
        return [torch.arange(s, dtype=like.dtype, device=like.device) for s in reversed(self.size)]

    @staticmethod
    def _outer(per_axis: list[torch.Tensor]) -> torch.Tensor:
        """Combine (..., s_x), (..., s_y)[, (..., s_z)] log-terms into (..., [s_z,] s_y, s_x)."""
        n = len(per_axis)
        out = 0
        for i, t in enumerate(per_axis):  # axis i (x first) is array axis n - 1 - i
            shape = t.shape[:-1] + tuple(t.shape[-1] if a == n - 1 - i else 1 for a in range(n))
            out = out + t.reshape(shape)
        return out

    def encode(self, keypoints: Array, visibility: Array | None = None):
        """Keypoints (..., J, n) input units -> (maps (..., J, *size), weights (..., J)).

        Maps are ``exp(-|cell - c|^2 / (2 sigma^2))`` with the sub-cell centre ``c`` (peak 1 at
        ``c``). ``weights`` = visibility, and 0 for joints whose centre falls outside the grid;
        those joints get an all-zero map.
        """
        kp, vis = self._inputs(keypoints, visibility)
        c = self.to_grid(kp)  # (..., J, n), (x, y[, z])
        axes = self._axes(c)
        terms = [-((ax - c[..., i, None]) ** 2) / (2 * self.sigma**2) for i, ax in enumerate(axes)]
        maps = torch.exp(self._outer(terms))
        sizes = torch.tensor(self.size[::-1], dtype=c.dtype, device=c.device)
        inside = ((c >= -0.5) & (c < sizes - 0.5)).all(-1)
        weights = vis * inside.to(vis.dtype)
        maps = maps * (weights > 0).to(maps.dtype)[(...,) + (None,) * self.n]
        return maps, weights

    def decode(
        self,
        heatmaps: Array,
        method: str = "taylor",
        *,
        beta: float = 10.0,
        radius: int = 3,
        power: float | None = None,
        peak: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Maps (..., J, *size) -> (keypoints (..., J, n) input units, scores (..., J)).

        ``method`` is one of ``"taylor"`` (default), ``"local_soft_argmax"`` (``radius``,
        ``power``: default ``sigma^2``), ``"quarter"`` or ``"soft_argmax"`` (``beta``); see the
        module docstring. ``scores`` is each map's maximum value. ``peak`` (..., J, n) integer
        array indices (row, col[, ...]) fixes the local soft-argmax window there instead of at
        the argmax (an attribution target whose window does not move along a path).
        """
        maps = _check_maps("heatmaps", heatmaps, self.n)
        if tuple(maps.shape[-self.n :]) != self.size:
            raise ValueError(
                f"heatmaps: expected spatial size {self.size}, got {tuple(maps.shape[-self.n :])}"
            )
        if method == "taylor":
            coords = _taylor(maps, self.n)
        elif method == "local_soft_argmax":
            if not isinstance(radius, int) or radius < 1:
                raise ValueError(f"radius: expected an int >= 1, got {radius!r}")
            p = self.sigma**2 if power is None else power
            coords = _local_soft_argmax(maps, self.n, radius, p, peak)
        elif method == "quarter":
            coords = _quarter(maps, self.n)
        elif method == "soft_argmax":
            coords = _soft_argmax(maps, self.n, beta)
        else:
            raise ValueError(f"method: expected one of {METHODS}, got {method!r}")
        return self.from_grid(_xy(coords)), maps.flatten(-self.n).amax(-1)


class GaussianHeatmap(_GaussianCodec):
    """2D peak-1 Gaussian heatmaps (SimpleBaseline / MSRA targets, sub-pixel centres).

    Args:
        heatmap_size: ``(h, w)`` cells.
        stride: input pixels per heatmap cell (4 for SimpleBaseline: 256 -> 64).
        sigma: Gaussian std in heatmap cells (2 in SimpleBaseline and mmpose hands).

    ``encode(keypoints (..., J, 2) input px, visibility (..., J))`` -> heatmaps (..., J, h, w),
    weights (..., J); ``decode(heatmaps, method)`` -> keypoints (..., J, 2) input px, scores.

    >>> codec = GaussianHeatmap(heatmap_size=(16, 16), stride=4)
    >>> heatmaps, weights = codec.encode(torch.tensor([[9.0, 14.0], [90.0, 3.0]]))
    >>> heatmaps.shape, weights.tolist()
    (torch.Size([2, 16, 16]), [1.0, 0.0])
    >>> codec.decode(heatmaps[:1], "quarter")[0].tolist()  # the quarter rule's error
    [[8.5, 14.5]]
    >>> codec.decode(heatmaps[:1])[0].tolist()  # taylor, the default
    [[9.0..., 14.0...]]
    """

    n = 2

    def __init__(
        self, heatmap_size: Sequence[int] = (64, 64), stride: float = 4, sigma: float = 2.0
    ) -> None:
        super().__init__(heatmap_size, stride, sigma)


class GaussianVolume(_GaussianCodec):
    """3D peak-1 Gaussian voxel heatmaps (V2V-PoseNet: 44^3, sigma 1.7 voxels).

    Points are voxel coordinates ``(x, y, z)`` with voxel centres at integers; maps are
    (..., J, d, h, w) indexed ``[z, y, x]``. Same ``encode`` / ``decode`` API as
    :class:`GaussianHeatmap`.

    >>> codec = GaussianVolume(size=(8, 8, 8))
    >>> volumes, weights = codec.encode(torch.tensor([[2.3, 4.6, 0.2]]))
    >>> codec.decode(volumes)[0].round(decimals=3).tolist()
    [[2.3, 4.6, 0.2]]
    """

    n = 3

    def __init__(self, size: Sequence[int] = (44, 44, 44), sigma: float = 1.7) -> None:
        super().__init__(size, 1.0, sigma)

    def to_grid(self, points: torch.Tensor) -> torch.Tensor:
        return points

    def from_grid(self, coords: torch.Tensor) -> torch.Tensor:
        return coords


class SoftArgmaxHeatmap(GaussianHeatmap):
    """Targets for the global soft-argmax (integral regression): its decode is exact.

    ``encode`` returns logit maps ``T`` such that ``softmax(beta * T)`` is a sampled Gaussian
    (std ``sigma`` cells) whose *discrete* mean is the keypoint: the Gaussian's centre is solved
    per axis by bisection, so near the border (where the grid truncates the Gaussian) the centre
    moves outward until the mean is right. ``T = 1 - |cell - m|^2 / (2 sigma^2 beta)``.
    Representable keypoints lie strictly inside the outermost cell centres; others get weight 0.
    ``decode`` defaults to ``"soft_argmax"`` with the same ``beta``.

    >>> codec = SoftArgmaxHeatmap(heatmap_size=(16, 16), stride=4, beta=10.0)
    >>> logits, weights = codec.encode(torch.tensor([[2.9, 60.2]]))
    >>> codec.decode(logits)[0].round(decimals=3).tolist()
    [[2.9, 60.2]]
    """

    def __init__(
        self,
        heatmap_size: Sequence[int] = (64, 64),
        stride: float = 4,
        sigma: float = 2.0,
        beta: float = 10.0,
    ) -> None:
        super().__init__(heatmap_size, stride, sigma)
        if beta <= 0:
            raise ValueError(f"beta: expected a positive number, got {beta}")
        self.beta = float(beta)

    def _centre_for_mean(self, mean: torch.Tensor, size: int) -> torch.Tensor:
        """Solve ``E_k[k] = mean`` for the centre m of a Gaussian sampled at k = 0..size-1."""
        k = torch.arange(size, dtype=torch.float64, device=mean.device)
        lo = torch.full_like(mean, -50 * self.sigma**2 - 1)
        hi = torch.full_like(mean, size + 50 * self.sigma**2)
        for _ in range(80):  # the mean is monotone in m: bisection to float64 precision
            m = (lo + hi) / 2
            p = torch.softmax(-((k - m[..., None]) ** 2) / (2 * self.sigma**2), dim=-1)
            above = (p * k).sum(-1) > mean
            hi = torch.where(above, m, hi)
            lo = torch.where(above, lo, m)
        return (lo + hi) / 2

    def encode(self, keypoints: Array, visibility: Array | None = None):
        """Keypoints (..., J, 2) input px -> (logit maps (..., J, h, w), weights (..., J))."""
        kp, vis = self._inputs(keypoints, visibility)
        c = self.to_grid(kp).double()
        sizes = self.size[::-1]  # (w, h)
        inside = torch.ones(c.shape[:-1], dtype=torch.bool, device=c.device)
        terms = []
        for i, (s, ax) in enumerate(zip(sizes, self._axes(c), strict=True)):
            inside &= (c[..., i] > 0) & (c[..., i] < s - 1)
            m = self._centre_for_mean(c[..., i].clamp(1e-3, s - 1 - 1e-3), s)
            terms.append(-((ax - m[..., None]) ** 2) / (2 * self.sigma**2 * self.beta))
        maps = (1 + self._outer(terms)).to(kp.dtype)
        return maps, vis * inside.to(vis.dtype)

    def decode(self, heatmaps: Array, method: str = "soft_argmax", **kwargs):
        """Logit maps (..., J, h, w) -> (keypoints (..., J, 2) input px, scores (..., J))."""
        kwargs.setdefault("beta", self.beta)
        return super().decode(heatmaps, method, **kwargs)
