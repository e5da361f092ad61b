"""Camera and sensor effects: optics blur, motion blur, image grain, depth noise and holes.

Taught in chapter 00 (``notebooks/00_tour.py``).

All noise is read from one frozen noise texture at offsets set by each sample's ``noise_seed``:
far cheaper than a generator per sample, and still a function of that sample's params only.

>>> soften(torch.ones(1, 3, 8, 8)).shape
torch.Size([1, 3, 8, 8])
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

__all__ = ["min_filter", "motion_blur", "sensor_noise", "soften"]

MAX_SIZE = 512  # largest image side (the texture is twice that)


def soften(image: torch.Tensor) -> torch.Tensor:
    """A camera's optics: a separable [1, 2, 1] / 4 blur (edges replicated) softens the aliased
    silhouette; in-place slice arithmetic is much faster than a depthwise ``conv2d`` on a CPU."""
    for dim in (-1, -2):
        n = image.shape[dim]
        out = image * 0.5
        out.narrow(dim, 1, n - 1).add_(image.narrow(dim, 0, n - 1), alpha=0.25)
        out.narrow(dim, 0, n - 1).add_(image.narrow(dim, 1, n - 1), alpha=0.25)
        out.narrow(dim, 0, 1).add_(image.narrow(dim, 0, 1), alpha=0.25)
        out.narrow(dim, n - 1, 1).add_(image.narrow(dim, n - 1, 1), alpha=0.25)
        image = out
    return image


def _line_kernels(length: torch.Tensor, angle: torch.Tensor, k: int) -> torch.Tensor:
    """Normalised motion-blur kernels (m, k, k): a line of ``length`` px at ``angle`` rad."""
    r = torch.arange(k, dtype=torch.float32) - k // 2
    y, x = torch.meshgrid(r, r, indexing="ij")
    dx, dy = torch.cos(angle)[:, None, None], torch.sin(angle)[:, None, None]
    along = (x * dx + y * dy).clamp(-length[:, None, None] / 2, length[:, None, None] / 2)
    dist = torch.sqrt((x - along * dx) ** 2 + (y - along * dy) ** 2)
    w = (1 - dist).clamp(min=0)
    return w / w.sum(dim=(1, 2), keepdim=True)


def motion_blur(image: torch.Tensor, length: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Blur images (n, 3, H, W) of samples with ``length`` > 0 px along ``angle``."""
    idx = torch.nonzero(length > 0.5).flatten()
    if len(idx) == 0:
        return image
    k = 2 * (int(length[idx].max().ceil()) // 2) + 3  # odd, covers the longest line
    kern = _line_kernels(length[idx], angle[idx], k).repeat_interleave(3, 0)[:, None]
    sub = image[idx].reshape(1, -1, *image.shape[-2:])
    blurred = F.conv2d(F.pad(sub, (k // 2,) * 4, mode="replicate"), kern, groups=sub.shape[1])
    out = image.clone()
    out[idx] = blurred.reshape(len(idx), 3, *image.shape[-2:])
    return out


@functools.cache
def _noise_texture() -> torch.Tensor:
    """A frozen (6, 2 MAX, 2 MAX) noise texture (channels 0-3 normal, 4-5 uniform), seeded once:
    each sample reads a window at its own offset, which is far cheaper than a generator per
    sample and still depends on nothing but that sample's params."""
    g = torch.Generator().manual_seed(20240601)
    side = 2 * MAX_SIZE
    return torch.cat(
        [torch.randn(4, side, side, generator=g), torch.rand(2, side, side, generator=g)]
    )


def min_filter(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Minimum over the (2 r + 1)^2 window of each pixel of x (..., H, W), edges replicated;
    separable shifted slices, much faster on a CPU than ``max_pool2d``.

    >>> min_filter(torch.tensor([[3.0, 1.0, 2.0, 5.0]]), 1).tolist()
    [[1.0, 1.0, 1.0, 2.0]]
    """
    out = x
    for dim in (-1, -2):
        n = out.shape[dim]
        src, out = out, out.clone()
        for k in range(1, min(radius, n - 1) + 1):
            head, tail = out.narrow(dim, k, n - k), out.narrow(dim, 0, n - k)
            torch.minimum(head, src.narrow(dim, 0, n - k), out=head)
            torch.minimum(tail, src.narrow(dim, k, n - k), out=tail)
    return out


def sensor_noise(depth, cos_view, seeds, on, grain, size):
    """Image grain (n, 3, H, W) and, where ``on``, depth noise, 1 mm quantisation and holes
    (Kinect-like: sigma = 1 + 2.85e-6 z^2 mm; depth edges, grazing surfaces and random blobs
    read 0). All noise is read from :func:`_noise_texture` at offsets set by ``seeds``."""
    tex = _noise_texture()
    span = tex.shape[-1] - size
    n = len(seeds)
    noise = torch.empty(n, 3, size, size)
    depth = depth.clone()
    # depth edges: a jump of over 15 mm within the 3 x 3 neighbourhood
    edges = (-min_filter(-depth, 1) - min_filter(depth, 1))[:, 0] > 15.0 if bool(on.any()) else None
    for i in range(n):
        seed = int(seeds[i])
        oy, ox = (seed // span) % span, seed % span
        window = tex[:, oy : oy + size, ox : ox + size]
        noise[i] = window[:3] * grain[i]
        if not bool(on[i]):
            continue
        z = depth[i, 0]
        sigma = 1.0 + 2.85e-6 * z * z  # mm
        z = torch.round(z + sigma * window[3])
        edge = edges[i]
        u = window[4]
        blob = tex[5, oy : oy + 8, ox : ox + 8][None, None]
        blob = F.interpolate(blob, size=(size, size), mode="bilinear")[0, 0] < 0.08
        hole = (edge & (u < 0.5)) | ((cos_view[i] < 0.25) & (u < 0.7)) | blob
        depth[i, 0] = torch.where(hole, torch.zeros_like(z), z)
    return noise, depth
