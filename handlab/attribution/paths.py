"""Integration paths and quadrature rules for path attributions (IG, PoseIG's blur path).

Taught in chapter 08 (``notebooks/08_poseig.py``).

A path ``gamma(s)``, ``s in [0, 1]``, runs from a baseline ``gamma(0)`` to the input
``gamma(1)``; path IG integrates ``dF/dx(gamma(s)) * dgamma/ds`` over ``s``. Every path here gives
its points *and* its exact velocity ``dgamma/ds`` at any ``s``, so every quadrature rule applies
to every path (captum's IG only knows the straight line, captum issue 1284).

- :class:`StraightPath`: ``gamma(s) = x' + s (x - x')`` with a baseline from
  :func:`make_baseline` (black, mean colour, blurred image, uniform or Gaussian noise).
- :class:`BlurPath`: PoseIG's progressive blur (from LAM, Gu & Dong 2021): a depthwise Gaussian
  of size 31 whose sigma falls linearly from 19 to 0, reflect padding. With ``folds=50`` (the
  reference) the path is piecewise linear between the 51 blur levels, so a left Riemann sum with
  ``steps = folds`` is exactly the reference's sum of ``grad(x_i) * (x_{i+1} - x_i)``; with
  ``folds=None`` sigma varies continuously and the velocity is the exact derivative (forward-mode
  autodiff through the kernel), which suits Gauss-Legendre.

Quadrature nodes and weights (:func:`quadrature`) are captum's (``approximation_methods``), so
a straight path here matches ``captum.attr.IntegratedGradients`` node for node, with one
exception: captum's trapezoid weights are ``1/n`` with halved ends and sum to ``1 - 1/n``;
handlab's use ``1/(n-1)`` and sum to 1 (the trapezoid rule), i.e. captum's times ``n/(n-1)``.

>>> s, w = quadrature("riemann_left", 4)
>>> s.tolist(), w.tolist()
([0.0, 0.25, 0.5, 0.75], [0.25, 0.25, 0.25, 0.25])
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from handlab._checks import check_finite, check_range, check_shape, check_tensor

__all__ = [
    "BASELINES",
    "METHODS",
    "BlurPath",
    "StraightPath",
    "gaussian_blur",
    "make_baseline",
    "quadrature",
]

METHODS = ("riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid", "gausslegendre")
BASELINES = ("black", "mean", "blur", "uniform", "gaussian")


def quadrature(method: str, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Nodes ``s`` (steps,) in [0, 1] and weights (steps,) summing to 1 (float64 tensors).

    >>> s, w = quadrature("gausslegendre", 2)
    >>> [round(v, 4) for v in s.tolist()], w.tolist()
    ([0.2113, 0.7887], [0.5, 0.5])
    """
    if method not in METHODS:
        raise ValueError(f"method: expected one of {list(METHODS)}, got {method!r}")
    if not isinstance(steps, int) or steps < (2 if method == "riemann_trapezoid" else 1):
        raise ValueError(f"steps: expected an int >= 1 (>= 2 for the trapezoid), got {steps!r}")
    if method == "gausslegendre":
        x, w = np.polynomial.legendre.leggauss(steps)  # on [-1, 1]
        return torch.from_numpy(0.5 * (x + 1)), torch.from_numpy(0.5 * w)
    # Riemann nodes from a float32 linspace, as captum builds them: identical evaluation points
    # keep results identical to captum's even where the decoder's argmax window switches cells.
    if method == "riemann_trapezoid":
        weights = torch.full((steps,), 1 / (steps - 1), dtype=torch.float64)
        weights[[0, -1]] /= 2
        return torch.linspace(0, 1, steps).double(), weights
    lo, hi = {"riemann_left": (0, 1 - 1 / steps), "riemann_right": (1 / steps, 1)}.get(
        method, (1 / (2 * steps), 1 - 1 / (2 * steps))
    )
    nodes = torch.linspace(lo, hi, steps).double()
    return nodes, torch.full((steps,), 1 / steps, dtype=torch.float64)


def _kernel1d(sigma: torch.Tensor, size: int) -> torch.Tensor:
    # Sampled Gaussian, normalised; sigma -> 0 gives the identity (all mass at the centre).
    x = torch.arange(size, dtype=sigma.dtype, device=sigma.device) - (size - 1) / 2
    logits = -(x**2) / (2 * sigma.clamp_min(1e-3) ** 2)
    return torch.softmax(logits, dim=0)  # (size,)


def gaussian_blur(
    images: torch.Tensor, sigma: torch.Tensor | float, size: int = 31
) -> torch.Tensor:
    """Depthwise separable Gaussian blur with reflect padding, differentiable in ``sigma``.

    Args:
        images: (B, C, H, W), H and W > size // 2.
        sigma: scalar (px); 0 leaves the images unchanged.
        size: odd kernel size (px).

    Returns:
        (B, C, H, W), the same as ``torchvision.transforms.functional.gaussian_blur``.

    >>> x = torch.zeros(1, 1, 20, 20); x[0, 0, 10, 10] = 1.0
    >>> y0, y2 = gaussian_blur(x, 0.0, 9), gaussian_blur(x, 2.0, 9)
    >>> float(y0[0, 0, 10, 10]), round(float(y2.sum()), 4)
    (1.0, 1.0)
    """
    sigma = torch.as_tensor(sigma, dtype=images.dtype, device=images.device)
    channels = images.shape[1]
    k = _kernel1d(sigma, size)
    pad = size // 2
    out = F.pad(images, (pad, pad, pad, pad), mode="reflect")
    out = F.conv2d(out, k.view(1, 1, 1, size).expand(channels, 1, 1, size), groups=channels)
    return F.conv2d(out, k.view(1, 1, size, 1).expand(channels, 1, size, 1), groups=channels)


def _check_images(images: torch.Tensor, min_size: int = 1) -> None:
    check_tensor("images", images)
    check_shape("images", images, (None, None, None, None))
    check_finite("images", images)
    if min(images.shape[-2:]) < min_size:
        raise ValueError(
            f"images: expected H and W >= {min_size} for this path, got {tuple(images.shape[-2:])}"
        )


def make_baseline(
    images: torch.Tensor,
    kind: str = "black",
    *,
    generator: torch.Generator | None = None,
    kernel_size: int = 31,
    sigma: float = 19.0,
    noise_std: float = 0.1,
) -> torch.Tensor:
    """A straight-line IG baseline (B, C, H, W) for ``images`` (B, C, H, W).

    Kinds: ``"black"`` zeros; ``"mean"`` each image's per-channel mean colour; ``"blur"`` the
    image blurred (``kernel_size``, ``sigma`` px); ``"uniform"`` noise uniform over each image's
    [min, max]; ``"gaussian"`` the image plus N(0, ``noise_std`` * (max - min)). Noise baselines
    draw from ``generator`` (seed it for replayable results).

    >>> make_baseline(torch.ones(1, 3, 4, 4), "mean").shape
    torch.Size([1, 3, 4, 4])
    """
    _check_images(images)
    if kind == "black":
        return torch.zeros_like(images)
    if kind == "mean":
        return images.mean(dim=(2, 3), keepdim=True).expand_as(images).clone()
    if kind == "blur":
        return gaussian_blur(images, sigma, kernel_size)
    lo = images.amin(dim=(1, 2, 3), keepdim=True)
    hi = images.amax(dim=(1, 2, 3), keepdim=True)
    if kind == "uniform":
        u = torch.rand(images.shape, generator=generator, dtype=images.dtype)
        return lo + (hi - lo) * u.to(images.device)
    if kind == "gaussian":
        n = torch.randn(images.shape, generator=generator, dtype=images.dtype)
        return images + noise_std * (hi - lo) * n.to(images.device)
    raise ValueError(f"baseline: expected one of {list(BASELINES)}, got {kind!r}")


class StraightPath:
    """``gamma(s) = baseline + s (images - baseline)``; velocity ``images - baseline``.

    >>> p = StraightPath(torch.ones(1, 1, 2, 2), torch.zeros(1, 1, 2, 2))
    >>> p.points(torch.tensor([0.5]))[0].shape, float(p.velocity(torch.tensor([0.5])).mean())
    (torch.Size([1, 1, 1, 2, 2]), 1.0)
    """

    def __init__(self, images: torch.Tensor, baseline: torch.Tensor) -> None:
        _check_images(images)
        check_tensor("baseline", baseline)
        check_shape("baseline", baseline, tuple(images.shape))
        self.images = images
        self.baseline = baseline.to(images)

    def points(self, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Points and velocities at nodes ``s`` (n,): two (n, B, C, H, W) tensors."""
        s = s.to(self.images).view(-1, 1, 1, 1, 1)
        diff = self.images - self.baseline  # (B, C, H, W)
        return self.baseline + s * diff, diff.expand(s.shape[0], *diff.shape)

    def velocity(self, s: torch.Tensor) -> torch.Tensor:
        return self.points(s)[1]


class BlurPath:
    """PoseIG's progressive blur: sigma(s) = ``sigma`` * (1 - s), kernel ``kernel_size``.

    ``folds=None`` is the continuous path (exact velocity by forward-mode autodiff); an int is the
    reference's discrete path, linear between the blur levels at ``s = i / folds``.

    >>> p = BlurPath(torch.rand(1, 3, 32, 32), folds=50)
    >>> x, v = p.points(torch.tensor([1.0]))
    >>> bool(torch.allclose(x[0], p.images))
    True
    """

    def __init__(
        self,
        images: torch.Tensor,
        *,
        kernel_size: int = 31,
        sigma: float = 19.0,
        folds: int | None = 50,
    ) -> None:
        if not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size: expected an odd int >= 1, got {kernel_size!r}")
        _check_images(images, min_size=kernel_size // 2 + 1)
        check_range("sigma", sigma, lo=0.0)
        if folds is not None and (not isinstance(folds, int) or folds < 1):
            raise ValueError(f"folds: expected None or an int >= 1, got {folds!r}")
        self.images = images
        self.kernel_size = kernel_size
        self.sigma = float(sigma)
        self.folds = folds
        self.baseline = self._blur(torch.tensor(0.0, dtype=torch.float64))

    def _blur(self, s: torch.Tensor) -> torch.Tensor:
        sigma = (self.sigma * (1 - s)).to(self.images.dtype)
        return gaussian_blur(self.images, sigma, self.kernel_size)

    def points(self, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Points and velocities at nodes ``s`` (n,): two (n, B, C, H, W) tensors."""
        s = s.to(torch.float64).flatten()
        pts, vel = [], []
        for si in s:
            if self.folds is None:
                one = torch.ones((), dtype=torch.float64)
                x, v = torch.func.jvp(self._blur, (si,), (one,))
            else:
                i = min(int(torch.floor(si * self.folds)), self.folds - 1)
                lo = self._blur(torch.tensor(i / self.folds, dtype=torch.float64))
                hi = self._blur(torch.tensor((i + 1) / self.folds, dtype=torch.float64))
                v = (hi - lo) * self.folds  # forward difference, as in the reference
                x = lo + (float(si) - i / self.folds) * v
            pts.append(x)
            vel.append(v)
        return torch.stack(pts), torch.stack(vel)

    def velocity(self, s: torch.Tensor) -> torch.Tensor:
        return self.points(s)[1]
