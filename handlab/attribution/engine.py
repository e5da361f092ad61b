"""The PoseIG engine: path attributions for every joint from one forward per path point.

Taught in chapter 08 (``notebooks/08_poseig.py``).

For each joint j, path integrated gradients along ``gamma`` (:mod:`handlab.attribution.paths`)

    IG_j(x) = sum_k w_k * dF_j/dx(gamma(s_k)) * dgamma/ds(s_k)          (B, J, C, H, W)

with ``F_j`` the likelihood of :mod:`handlab.attribution.targets`. Where handlab goes beyond
captum (STYLE rule 8): captum explains one scalar per call, so J joints cost J forwards per point;
the reference runs one forward per fold then J ``backward(retain_graph=True)`` that also fill
parameter gradients. Here one forward per path point is shared by all J joints, the J
vector-Jacobian products are taken from that one graph with respect to the input only (parameters
frozen, so no weight gradients are built), and path points are batched into forwards of at most
``max_batch`` images. ``vectorize=True`` takes the J products in one batched call
(``is_grads_batched``); on the project's CPU a plain loop measured faster, so it is off by default.
With ``pilot=0`` (the rule's own nodes) results equal captum's ``IntegratedGradients`` on the
straight path (tests) and a naive per-joint loop on the blur path; the default pilot first moves
the nodes to where the likelihood changes (:func:`warp_nodes`), which captum cannot do.

Maps follow the reference: ``A_j = | sum over channels of IG_j |`` divided by its maximum.
The completeness delta ``sum(IG_j) - (F_j(x) - F_j(gamma(0)))`` is returned for every joint.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from scipy.interpolate import PchipInterpolator
from scipy.ndimage import gaussian_filter1d
from torch import nn

from handlab._checks import check_finite, check_range, check_shape
from handlab.attribution.config import (
    DEFAULT_MAX_BATCH,
    DEFAULT_METHOD,
    DEFAULT_STEPS,
    PoseIGConfig,
    resolve,
)
from handlab.attribution.paths import BlurPath, StraightPath, make_baseline, quadrature
from handlab.attribution.targets import JointLikelihood, JointSubset, _check_targets
from handlab.models.base import check_model_input

__all__ = [
    "DEFAULT_MAX_BATCH",
    "DEFAULT_METHOD",
    "DEFAULT_STEPS",
    "PoseIGConfig",
    "PoseIGResult",
    "attribution_maps",
    "integrate",
    "poseig",
    "warp_nodes",
]

Path = StraightPath | BlurPath


@dataclass(frozen=True)
class PoseIGResult:
    """What :func:`poseig` returns (B samples, J joints, C channels, H x W pixels).

    attributions: (B, J, C, H, W) per-joint path attributions, units of likelihood.
    maps: (B, J, H, W) ``|sum_c attributions|`` divided by its max per (sample, joint), in [0, 1].
    delta: (B, J) completeness gap ``sum(attributions) - (F(x) - F(baseline))``.
    likelihood: (B, J) ``F(x)``; baseline_likelihood: (B, J) ``F(gamma(0))``.
    """

    attributions: torch.Tensor
    maps: torch.Tensor
    delta: torch.Tensor
    likelihood: torch.Tensor
    baseline_likelihood: torch.Tensor


@contextlib.contextmanager
def _inference_mode(model: nn.Module) -> Iterator[None]:
    # eval(): BatchNorm must not mix path points; frozen parameters: no weight gradients.
    was_training = model.training
    flags = [(p, p.requires_grad) for p in model.parameters()]
    model.eval()
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        model.train(was_training)


def _joint_vjps(
    out: torch.Tensor, x: torch.Tensor, vectorize: bool
) -> Iterator[tuple[int, torch.Tensor]]:
    # Yields (j, dF_j/dx (N, C, H, W)) for every joint from the one graph of ``out`` (N, J).
    joints = out.shape[1]
    if vectorize:
        eye = torch.eye(joints, dtype=out.dtype, device=out.device)
        go = eye[:, None, :].expand(joints, *out.shape).contiguous()  # (J, N, J)
        (grads,) = torch.autograd.grad(out, x, grad_outputs=go, is_grads_batched=True)
        yield from enumerate(grads)
        return
    for j in range(joints):
        (g,) = torch.autograd.grad(out[:, j].sum(), x, retain_graph=j < joints - 1)
        yield j, g


# Share of the nodes kept uniform when a pilot places them (the rest follows |dF/ds|): every part
# of the path keeps some nodes, so a change the pilot grid missed is still sampled.
_UNIFORM_SHARE = 0.2


@torch.no_grad()
def warp_nodes(
    fn: Callable[[torch.Tensor], torch.Tensor],
    path: Path,
    nodes: torch.Tensor,
    weights: torch.Tensor,
    pilot: int,
    max_batch: int = DEFAULT_MAX_BATCH,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Move quadrature nodes to where ``fn`` changes along ``path`` (a change of variable).

    ``pilot`` + 1 forwards without gradients measure ``|F(s_{i+1}) - F(s_i)|`` on a uniform grid
    (summed over images and outputs), smoothed over two grid cells and mixed with a uniform share
    (:data:`_UNIFORM_SHARE`). Its cumulative share ``u = c(s)`` is inverted by a monotone cubic
    (``scipy.interpolate.PchipInterpolator``) into a smooth increasing ``s = phi(u)``; node ``u_k``
    moves to ``phi(u_k)`` with weight ``w_k phi'(u_k)``. Because ``integral g(s) ds = integral
    g(phi(u)) phi'(u) du`` for any increasing ``phi``, the integral is unchanged and the rule
    keeps its order on the smooth ``g(phi(u)) phi'(u)``; only where the points go changes
    (PoseIG's blur path changes the likelihood in its last few %; a sigmoid whose switch is
    1/50 of the path wide: Gauss-Legendre at 16 points misses 85 % alone, 0.3 % with a pilot of
    64, tests).

    Returns:
        nodes (n,) in [0, 1] and weights (n,) summing to 1 (float64).

    >>> x = torch.ones(1, 1, 2, 2)
    >>> path = StraightPath(x, torch.zeros_like(x))
    >>> step = lambda im: torch.sigmoid(50 * (im.mean((1, 2, 3)) - 0.8)).double()[:, None]
    >>> s, w = warp_nodes(step, path, *quadrature("gausslegendre", 10), pilot=32)
    >>> int(((s > 0.7) & (s < 0.9)).sum()), round(float(w.sum()), 6)  # plain rule: 2 nodes there
    (5, 1.0)
    """
    check_range("pilot", pilot, lo=2)
    grid = torch.linspace(0, 1, pilot + 1, dtype=torch.float64)
    b = path.images.shape[0]
    per_chunk = max(1, max_batch // b)
    values = []
    for chunk in grid.split(per_chunk):
        pts, _ = path.points(chunk)  # (n, B, C, H, W)
        values.append(fn(pts.reshape(-1, *pts.shape[2:])).double().view(chunk.numel(), b, -1))
    change = torch.cat(values).diff(dim=0).abs().sum((1, 2)).cpu().numpy()  # (pilot,)
    # a Gaussian of 2 grid cells cut at 3 sigma, zero outside the path; (pilot,) for any pilot
    change = gaussian_filter1d(change, sigma=2.0, mode="constant", truncate=3.0)
    total = change.sum()
    mass = change / total if total > 0 else np.full(pilot, 1 / pilot)
    mass = (1 - _UNIFORM_SHARE) * mass + _UNIFORM_SHARE / pilot  # (pilot,) > 0, sums to 1
    cdf = np.concatenate([[0.0], np.cumsum(mass)])
    cdf[-1] = 1.0
    phi = PchipInterpolator(cdf, grid.numpy())  # monotone: s = phi(u) increasing, C1
    u = nodes.double().cpu().numpy()
    s = torch.from_numpy(np.clip(phi(u), 0.0, 1.0))
    w = weights.double() * torch.from_numpy(phi.derivative()(u))
    return s, w / w.sum()  # exact for a constant integrand (a linear F), as the plain rule


def integrate(
    fn: Callable[[torch.Tensor], torch.Tensor],
    path: Path,
    *,
    method: str = DEFAULT_METHOD,
    steps: int = DEFAULT_STEPS,
    max_batch: int = DEFAULT_MAX_BATCH,
    vectorize: bool = False,
    pilot: int = 0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Path IG of every output of ``fn`` along ``path``.

    Args:
        fn: images (N, C, H, W) -> (N, J), each row depending on its own image only.
        path: a :class:`StraightPath` or :class:`BlurPath` over images (B, C, H, W).
        method, steps: quadrature rule and number of points (:func:`quadrature`).
        max_batch: most images per forward (memory bound); points are chunked to fit.
        vectorize: take the J products with ``is_grads_batched`` instead of a loop.
        pilot: > 0: place the nodes where ``fn`` changes (:func:`warp_nodes`, shared by the
            batch: pass one image for nodes of its own).

    Returns:
        attributions (B, J, C, H, W), F at the input (B, J), F at the baseline (B, J).

    >>> x = torch.rand(2, 1, 3, 3)
    >>> path = StraightPath(x, torch.zeros_like(x))
    >>> attr, f1, f0 = integrate(lambda im: im.sum((2, 3)) * 2, path, steps=3)
    >>> bool(torch.allclose(attr[:, 0], 2 * x))
    True
    """
    check_range("max_batch", max_batch, lo=1)
    nodes, weights = quadrature(method, steps)
    if pilot:
        nodes, weights = warp_nodes(fn, path, nodes, weights, pilot, max_batch)
    images = path.images
    b = images.shape[0]
    per_chunk = max(1, max_batch // b)
    total = None
    for start in range(0, steps, per_chunk):
        s = nodes[start : start + per_chunk]
        w = weights[start : start + per_chunk].to(images).view(-1, 1, 1, 1, 1)  # dtype, device
        pts, vel = path.points(s)  # (n, B, C, H, W) each
        n = s.numel()
        x = pts.reshape(n * b, *images.shape[1:]).detach().requires_grad_(True)
        out = fn(x)  # (n * B, J)
        if total is None:
            total = images.new_zeros(b, out.shape[1], *images.shape[1:])  # (B, J, C, H, W)
        weighted_vel = vel * w  # (n, B, C, H, W)
        for j, g in _joint_vjps(out, x, vectorize):
            total[:, j] += (g.view(n, *images.shape) * weighted_vel).sum(0)
    with torch.no_grad():
        ends = fn(torch.cat([images, path.baseline.to(images)]))  # (2B, J)
    return total, ends[:b], ends[b:]


def attribution_maps(attributions: torch.Tensor, *, signed: bool = False) -> torch.Tensor:
    """Reference post-processing: channel sum, then ``abs``, then divide by the max per map.

    Args:
        attributions: (..., C, H, W).
        signed: keep the sign and divide by the max of ``|.|`` (maps in [-1, 1]).

    Returns:
        (..., H, W) in [0, 1] (or [-1, 1]); an all-zero map stays zero.

    >>> attribution_maps(torch.tensor([[[[1.0, -3.0]], [[1.0, 1.0]]]])).tolist()
    [[[1.0, 1.0]]]
    """
    summed = attributions.sum(dim=-3)  # (..., H, W)
    mag = summed.abs()
    peak = mag.flatten(-2).amax(-1)[..., None, None].clamp_min(torch.finfo(summed.dtype).tiny)
    return (summed if signed else mag) / peak


def _build_path(images: torch.Tensor, config: PoseIGConfig, generator: torch.Generator) -> Path:
    kind = config.path
    if isinstance(kind, StraightPath | BlurPath):
        return kind
    if kind == "blur":
        return BlurPath(
            images, kernel_size=config.kernel_size, sigma=config.sigma, folds=config.folds
        )
    base = config.baseline
    if isinstance(base, str):
        base = make_baseline(
            images, base, generator=generator, kernel_size=config.kernel_size, sigma=config.sigma
        )
    return StraightPath(images, base)


def _integrate_images(
    fn: JointLikelihood,
    images: torch.Tensor,
    target: torch.Tensor,
    cfg: PoseIGConfig,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    # With a pilot every image gets nodes of its own (its likelihood changes elsewhere on the path)
    path = _build_path(images, cfg, generator)
    if cfg.pilot and images.shape[0] > 1:
        parts = [
            _integrate_images(fn, images[i : i + 1], target[i : i + 1], replace(
                cfg, path=_select(path, i)), generator)
            for i in range(images.shape[0])
        ]  # fmt: skip
        return tuple(torch.cat(t) for t in zip(*parts, strict=True))
    anchors = fn.anchors(path.images)  # the fixed window of the explained input
    return integrate(
        lambda im: fn(im, target, anchors), path, method=cfg.method, steps=cfg.steps,
        max_batch=cfg.max_batch, vectorize=cfg.vectorize, pilot=cfg.pilot,
    )  # fmt: skip


def _select(path: Path, i: int) -> Path:
    # image i of a path over a batch, the same path otherwise
    if isinstance(path, StraightPath):
        return StraightPath(path.images[i : i + 1], path.baseline[i : i + 1])
    return BlurPath(
        path.images[i : i + 1], kernel_size=path.kernel_size, sigma=path.sigma, folds=path.folds
    )


def poseig(
    model: nn.Module,
    images: torch.Tensor,
    target_keypoints: torch.Tensor,
    config: PoseIGConfig | None = None,
    **overrides: Any,
) -> PoseIGResult:
    """PoseIG attributions of every joint's likelihood (He et al., CVPR 2023).

    Args:
        model: a handlab pose model; ``model.decode`` gives the explained joints.
        images: (B, C, H, W) model input (RGB in [0, 1]).
        target_keypoints: (B, J, 2) input px (x, y), or (B, J, 3) mm with ``space="3d"``;
            all J joints of the model even when ``joints`` picks a subset.
        config: every setting (:class:`~handlab.attribution.config.PoseIGConfig`; default
            ``PoseIGConfig()``); ``overrides``: keyword replacements of its fields, e.g.
            ``path="straight", baseline="mean", steps=16``. The blur path follows the
            reference (``kernel_size`` 31, ``sigma`` 19 -> 0 over ``folds`` 50); SmoothGrad over
            the path averages ``noise_samples`` noisy copies (std ``noise_level`` x each image's
            range; ``noise_aggregate`` "mean" or "mean_square"); the delta is averaged over
            draws.

    Returns:
        :class:`PoseIGResult` with attributions (B, J, C, H, W), maps (B, J, H, W), delta (B, J)
        (J = ``len(joints)`` where ``joints`` is set).

    >>> from handlab.attribution.targets import JointLikelihood
    >>> class Centroid(nn.Module):  # one joint at the intensity centroid, linear-ish in x
    ...     def forward(self, images):
    ...         w = images.sum(1)
    ...         ys, xs = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    ...         k = torch.stack([(w * xs).sum((1, 2)), (w * ys).sum((1, 2))], -1)
    ...         return {"keypoints": (k / w.sum((1, 2))[:, None])[:, None]}
    ...     def decode(self, outputs):
    ...         return outputs
    >>> x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    >>> r = poseig(Centroid(), x, torch.full((1, 1, 2), 12.5))
    >>> r.attributions.shape, r.maps.shape, bool(r.delta.abs().max() < 1e-3)
    (torch.Size([1, 1, 3, 32, 32]), torch.Size([1, 1, 32, 32]), True)
    """
    cfg = resolve(config, **overrides)
    for name, value in (("images", images), ("target_keypoints", target_keypoints)):
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"{name}: expected a torch.Tensor, got {type(value).__name__}")
    check_shape("images", images, (None, None, None, None))
    check_finite("images", images)
    # The caller's tensors may carry a graph (requires_grad): the maps must not (issue 16).
    images, target_keypoints = images.detach(), target_keypoints.detach()
    check_model_input(model, images)  # a decode, RGB in [0, 1], the model's size and channels
    _check_targets(model, target_keypoints, cfg.space)
    check_shape("target_keypoints", target_keypoints, (images.shape[0], None, None))
    if cfg.noise_samples and not isinstance(cfg.path, str):
        raise ValueError("path: a prebuilt path object cannot be combined with noise_samples > 0")
    target = target_keypoints.to(images)
    if cfg.joints is not None:
        if max(cfg.joints) >= target.shape[1]:
            raise ValueError(
                f"joints: expected indices in [0, {target.shape[1]}), got {list(cfg.joints)}"
            )
        model, target = JointSubset(model, cfg.joints), target[:, list(cfg.joints)]
    generator = torch.Generator().manual_seed(cfg.seed)
    fn = JointLikelihood(model, alpha=cfg.alpha, space=cfg.space, target=cfg.target)
    draws = []
    with _inference_mode(model):
        for _ in range(max(1, cfg.noise_samples)):
            noisy = images
            if cfg.noise_samples:
                span = images.amax((1, 2, 3), keepdim=True) - images.amin((1, 2, 3), keepdim=True)
                eps = torch.randn(images.shape, generator=generator, dtype=images.dtype)
                noisy = images + cfg.noise_level * span * eps.to(images.device)
            draws.append(_integrate_images(fn, noisy, target, cfg, generator))
    attrs = torch.stack([d[0] for d in draws])  # (S, B, J, C, H, W)
    f1 = torch.stack([d[1] for d in draws]).mean(0)
    f0 = torch.stack([d[2] for d in draws]).mean(0)
    delta = (attrs.sum(dim=(-3, -2, -1)) - torch.stack([d[1] - d[2] for d in draws])).mean(0)
    mean_square = cfg.noise_aggregate == "mean_square"
    attributions = attrs.pow(2).mean(0) if mean_square else attrs.mean(0)
    return PoseIGResult(attributions, attribution_maps(attributions), delta, f1, f0)
