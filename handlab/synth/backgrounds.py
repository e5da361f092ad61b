"""Procedural cluttered backgrounds: gradients, blurred colour noise, stripes and shapes.

Taught in chapter 00 (``notebooks/00_tour.py``).

A fifth of the clutter uses skin colours, so colour alone does not find the hand. Backgrounds are
drawn at half resolution and upsampled: the clutter looks out of focus, as behind a hand in
focus, and costs a quarter. Parameters live in normalised image coordinates ``[0, 1]``, so one
sample renders at any size.

>>> g = torch.Generator().manual_seed(0)
>>> bg = render_background(sample_background(2, g), 64)
>>> bg.shape, bool((bg >= 0).all() and (bg <= 1).all())
(torch.Size([2, 3, 64, 64]), True)
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

from handlab.synth.draws import Draws, as_draws

__all__ = ["SKIN_TONES", "render_background", "resize", "sample_background", "sample_skin"]

# Linear RGB in [0, 1], light to dark (approximate Fitzpatrick I-VI, plus a very dark tone).
SKIN_TONES = torch.tensor(
    [
        [0.96, 0.80, 0.69],
        [0.92, 0.72, 0.60],
        [0.85, 0.64, 0.50],
        [0.76, 0.55, 0.42],
        [0.62, 0.42, 0.30],
        [0.48, 0.32, 0.22],
        [0.36, 0.24, 0.17],
    ]
)
NUM_SHAPES = 8  # clutter shapes per background
_NOISE_GRID = 6  # low-frequency colour noise, (6, 6) control points


def sample_skin(n: int, generator: torch.Generator | Draws) -> torch.Tensor:
    """Skin albedos (n, 3) in [0, 1]: a tone of :data:`SKIN_TONES` with small jitter.

    >>> sample_skin(3, torch.Generator().manual_seed(0)).shape
    torch.Size([3, 3])
    """
    d = as_draws(n, generator)
    tone = d.randint(len(SKIN_TONES))
    jitter = 1.0 + 0.06 * d.randn(3)
    return (SKIN_TONES[tone] * jitter).clamp(0.05, 1.0)


def sample_colors(d: Draws, k: int, skin_share: float) -> torch.Tensor:
    """(n, k, 3) colours: random hues, or a skin tone with probability ``skin_share``."""
    # random hues at moderate saturation: a grey level plus a colour offset
    grey = 0.15 + 0.7 * d.rand(k, 1)
    uniform = (grey + 0.35 * (d.rand(k, 3) - 0.5)).clamp(0, 1)
    tone = d.randint(len(SKIN_TONES), k)
    skin = (SKIN_TONES[tone] * (1.0 + 0.06 * d.randn(k, 3))).clamp(0.05, 1.0)
    pick = d.rand(k, 1) < skin_share
    return torch.where(pick, skin, uniform)


def sample_background(n: int, generator: torch.Generator | Draws) -> dict[str, torch.Tensor]:
    """Random background parameters for ``n`` images (normalised coordinates).

    Returns a dict of tensors with leading dim ``n``: ``bg_gradient`` (n, 3, 3) two colours and
    (angle rad, 0, 0); ``bg_noise`` (n, 3, 6, 6) colour noise; ``bg_stripes`` (n, 4) frequency
    (cycles per image), angle rad, phase rad, strength; ``bg_stripe_color`` (n, 3);
    ``bg_shapes`` (n, 8, 5) centre x, y, half axes a, b, angle rad (even slots are ellipses,
    odd slots boxes);
    ``bg_shape_color`` (n, 8, 3).
    """
    d = as_draws(n, generator)
    colors = sample_colors(d, 2, skin_share=0.2)  # (n, 2, 3)
    angle = d.uniform(0, 2 * math.pi)
    gradient = torch.cat([colors, F.pad(angle[:, None, None], (0, 2))], dim=1)  # (n, 3, 3)
    noise = 0.12 * d.randn(3, _NOISE_GRID, _NOISE_GRID)
    stripes = torch.stack(
        [
            d.uniform(2, 16),
            d.uniform(0, math.pi),
            d.uniform(0, 2 * math.pi),
            (d.rand() < 0.3) * d.uniform(0, 0.5),
        ],
        dim=-1,
    )
    stripe_color = d.rand(3)
    shapes = torch.stack(
        [
            d.rand(NUM_SHAPES),
            d.rand(NUM_SHAPES),
            d.uniform(0.03, 0.28, NUM_SHAPES),
            d.uniform(0.03, 0.28, NUM_SHAPES),
            d.uniform(0, math.pi, NUM_SHAPES),
        ],
        dim=-1,
    )
    return {
        "bg_gradient": gradient,
        "bg_noise": noise,
        "bg_stripes": stripes,
        "bg_stripe_color": stripe_color,
        "bg_shapes": shapes,
        "bg_shape_color": sample_colors(d, NUM_SHAPES, skin_share=0.2),
    }


@functools.cache
def _resize_matrix(src: int, dst: int) -> torch.Tensor:
    """(dst, src) bilinear resampling weights (align_corners=False, edges clamped), so a resize
    is two small matrix products: far faster on a CPU than ``F.interpolate`` at these sizes."""
    pos = ((torch.arange(dst, dtype=torch.float64) + 0.5) * src / dst - 0.5).clamp(0, src - 1)
    lo = pos.floor().long()
    hi = (lo + 1).clamp(max=src - 1)
    frac = pos - lo
    m = torch.zeros(dst, src, dtype=torch.float64)
    m[torch.arange(dst), lo] += 1 - frac
    m[torch.arange(dst), hi] += frac
    return m.float()


def resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear resize of square images (..., h, h) to (..., size, size).

    >>> torch.allclose(resize(torch.ones(1, 3, 6, 6), 16), torch.ones(1, 3, 16, 16))
    True
    """
    m = _resize_matrix(images.shape[-1], size)
    return m @ images @ m.T


def render_background(params: dict[str, torch.Tensor], size: int) -> torch.Tensor:
    """Render backgrounds (n, 3, size, size) in [0, 1] from :func:`sample_background` params."""
    grad = params["bg_gradient"]
    n = grad.shape[0]
    half = max(size // 2, 8)
    t = (torch.arange(half, dtype=torch.float32) + 0.5) / half
    y, x = torch.meshgrid(t, t, indexing="ij")  # (h, h) normalised
    angle = grad[:, 2, 0, None, None]
    ramp = (torch.cos(angle) * (x - 0.5) + torch.sin(angle) * (y - 0.5)) * 0.7 + 0.5  # (n, h, h)
    img = grad[:, 0, :, None, None] + (grad[:, 1] - grad[:, 0])[:, :, None, None] * ramp[:, None]
    img = img + resize(params["bg_noise"], half)
    freq, s_angle, phase, strength = params["bg_stripes"].unbind(-1)
    proj = torch.cos(s_angle)[:, None, None] * x + torch.sin(s_angle)[:, None, None] * y
    wave = torch.sin(2 * math.pi * freq[:, None, None] * proj + phase[:, None, None])
    alpha = ((3 * wave).clamp_(0, 1) * strength[:, None, None])[:, None]  # (n, 1, h, h), soft

    img = img + alpha * (params["bg_stripe_color"][:, :, None, None] - img)
    shapes, colors = params["bg_shapes"], params["bg_shape_color"]
    xs, ys = t[None, None, :], t[None, :, None]  # (1, 1, h), (1, h, 1)
    for s in range(shapes.shape[1]):
        cx, cy, a, b, rot = (v[:, None, None] for v in shapes[:, s].unbind(-1))
        c, si = torch.cos(rot), torch.sin(rot)
        # shape-frame coordinates in units of the half axes; separable in x and y, so each is
        # one broadcast add over the image
        ua = (c / a) * xs + ((si / a) * ys - (c * cx + si * cy) / a)
        vb = (c / b) * ys + (-(si / b) * xs + (si * cx - c * cy) / b)
        if s % 2 == 0:  # even slots: ellipses (signed distance to first order)
            dist = (ua * ua + vb * vb - 1) * (0.5 * half * torch.minimum(a, b))
        else:  # odd slots: boxes
            dist = torch.maximum((ua.abs() - 1) * (a * half), (vb.abs() - 1) * (b * half))
        cover = (0.5 - dist).clamp_(0, 1)[:, None]  # (n, 1, h, h), anti-aliased edge, pixels
        img = img.addcmul_(cover, colors[:, s, :, None, None] - img)
    return resize(img.clamp(0, 1), size).reshape(n, 3, size, size).clamp(0, 1)
