"""Domain randomisation: photographs behind the hand, skin texture, colour casts and camera
artefacts, so what a model learns from the generator also holds on real photographs.

Taught in chapter 00 (``notebooks/00_tour.py``); chapter 12 (synthetic to real) measures it.

Tobin et al. (2017, "Domain randomization for transferring deep neural networks from simulation
to the real world") and Mueller et al. (2018, GANerated hands) argue that a model trained on
renders transfers when the nuisance factors vary more widely than in reality. Everything here is
cheap image-space work on top of :func:`handlab.synth.renderer.render`:

- backgrounds: one of the photographs bundled with scikit-image (no download), a random
  rotated/scaled/flipped crop, tinted when grey, blended over the procedural clutter;
- skin: low-frequency albedo texture (blotches, creases) and a per-hand tint;
- camera: white balance (per-channel gains), gamma, Gaussian blur, sensor noise and JPEG.

:func:`sample_randomization` draws the parameters (explicit randomness, STYLE rule 7) after every
other draw of :func:`handlab.synth.sample_params`, and only when ``randomize > 0``: samples made
without it, such as the frozen test split, are unchanged to the bit.

>>> d = as_draws(2, torch.Generator().manual_seed(0))
>>> p = sample_randomization(2, d, 1.0)
>>> photo_backgrounds(torch.rand(2, 3, 64, 64), p).shape
torch.Size([2, 3, 64, 64])
"""

from __future__ import annotations

import functools
import io
import math

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from handlab.synth.draws import Draws, as_draws

__all__ = [
    "DR_PARTS",
    "DR_SHAPES",
    "PHOTOS",
    "apply_camera",
    "photo_backgrounds",
    "photo_bank",
    "sample_randomization",
    "skin_texture",
]

# scikit-image's bundled photographs (shipped in its wheel, read offline); grey ones get tinted
PHOTOS = (
    "astronaut", "brick", "camera", "cat", "coffee", "coins", "grass", "gravel",
    "hubble_deep_field", "immunohistochemistry", "moon", "page", "rocket", "text", "retina",
)  # fmt: skip
_BANK = 192  # photos are kept at 192 x 192 px: enough for 128 px crops of a part
_TEXTURE_GRID = 10  # skin texture control points per side
# key -> shape after the batch dim; float tensors
DR_SHAPES: dict[str, tuple[int, ...]] = {
    "dr_photo": (8,),  # on, index, centre x, y, zoom, angle, flip, blend
    "dr_tint": (3,),  # grey photos' colour
    "dr_skin": (3 + _TEXTURE_GRID * _TEXTURE_GRID,),  # tint (3), texture grid
    "dr_camera": (9,),  # gains (3), gamma, blur sigma px@128, noise sigma, jpeg on, quality, seed
}


# the effects ``SceneOptions.randomize_parts`` can switch on and off (all by default)
DR_PARTS = ("photo", "skin", "camera")


@functools.cache
def photo_bank() -> torch.Tensor:
    """(P, 3, 192, 192) float photos in [0, 1], one per :data:`PHOTOS` (grey ones replicated),
    centre-cropped square and resized with anti-aliasing; built once per process."""
    import skimage.data  # imported late: only domain-randomised samples need the photos

    out = []
    for name in PHOTOS:
        img = np.asarray(getattr(skimage.data, name)(), dtype=np.float32)
        img = img / 255.0 if img.max() > 1 else img
        img = np.repeat(img[..., None], 3, -1) if img.ndim == 2 else img[..., :3]
        t = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)
        side = min(t.shape[1:])
        top, left = (t.shape[1] - side) // 2, (t.shape[2] - side) // 2
        t = t[:, top : top + side, left : left + side][None]
        out.append(F.interpolate(t, size=(_BANK, _BANK), mode="bilinear", antialias=True)[0])
    return torch.stack(out).clamp(0, 1)


@functools.cache
def _grey() -> torch.Tensor:
    """(P,) 1.0 for the grey photos of the bank (equal channels), else 0.0 (computed once: a
    per-sample check cost more than the rest of the background)."""
    bank = photo_bank()
    return ((bank - bank.mean(1, keepdim=True)).abs().amax((1, 2, 3)) < 1e-3).float()


def sample_randomization(
    n: int,
    generator: torch.Generator | Draws,
    randomize: float,
    parts: tuple[str, ...] = DR_PARTS,
) -> dict[str, torch.Tensor]:
    """Draw the randomisation of ``n`` samples; ``randomize`` is the probability of each effect
    (photo background, skin texture, blur, JPEG); colour gains, gamma and noise are always drawn
    and scaled by it. ``parts`` (some of :data:`DR_PARTS`) keeps those effects; the others are
    drawn all the same (so the kept ones do not change) and then set to no effect. Returns
    tensors keyed as :data:`DR_SHAPES`.

    >>> g = torch.Generator().manual_seed(0)
    >>> p = sample_randomization(3, g, 1.0, parts=("skin",))
    >>> float(p["dr_photo"][:, 0].sum()), float(p["dr_camera"][:, 5].sum())
    (0.0, 0.0)
    """
    unknown = sorted(set(parts) - set(DR_PARTS))
    if unknown or not parts:
        raise ValueError(f"parts: expected some of {list(DR_PARTS)}, got {list(parts)!r}")
    d = as_draws(n, generator)
    r = float(randomize)
    photo = torch.stack(
        [
            (d.rand() < r).float(),
            d.randint(len(PHOTOS)).float(),
            d.uniform(0.25, 0.75),
            d.uniform(0.25, 0.75),
            d.uniform(0.25, 1.0),  # crop side / photo side
            d.uniform(-math.pi, math.pi),
            (d.rand() < 0.5).float(),
            d.uniform(0.6, 1.0),  # photo weight over the procedural clutter
        ],
        -1,
    )
    tint = 0.5 + 0.5 * d.rand(3)
    skin = torch.cat([1 + 0.08 * r * d.randn(3), (d.rand() < r)[:, None] * d.randn(100)], -1)
    camera = torch.cat(
        [
            1 + 0.12 * r * d.randn(3),  # white balance / colour cast
            torch.exp(0.25 * r * d.randn())[:, None],  # gamma
            ((d.rand() < 0.3 * r) * d.uniform(0.3, 1.5))[:, None],  # blur sigma, px at 128
            (r * d.uniform(0.0, 0.04))[:, None],  # noise sigma
            (d.rand() < 0.4 * r).float()[:, None],  # JPEG on
            d.uniform(25, 90)[:, None],  # JPEG quality
            d.randint(2**24).float()[:, None],  # noise seed
        ],
        -1,
    )
    if "photo" not in parts:
        photo[:, 0] = 0.0
    if "skin" not in parts:
        skin = torch.cat([torch.ones(n, 3), torch.zeros_like(skin[:, 3:])], -1)
    if "camera" not in parts:  # gains 1, gamma 1, no blur, noise or JPEG
        camera = torch.cat([torch.ones(n, 4), torch.zeros(n, 4), camera[:, 8:]], -1)
    return {"dr_photo": photo, "dr_tint": tint, "dr_skin": skin, "dr_camera": camera}


def photo_backgrounds(background: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
    """Blend a rotated, zoomed, flipped photo crop over ``background`` (n, 3, S, S) where
    ``dr_photo`` is on; grey photos take the ``dr_tint`` colour."""
    p = params["dr_photo"]
    on = p[:, 0] > 0
    if not bool(on.any()):
        return background
    _, _, size, _ = background.shape
    bank = photo_bank()
    idx = p[on, 1].long()
    photos = bank[idx]  # (m, 3, B, B)
    zoom, angle, flip = p[on, 4], p[on, 5], torch.where(p[on, 6] > 0, -1.0, 1.0)
    cos, sin = torch.cos(angle) * zoom, torch.sin(angle) * zoom
    centre = 2 * p[on, 2:4] - 1  # normalised photo coordinates
    theta = torch.stack(
        [
            torch.stack([cos * flip, -sin, centre[:, 0]], -1),
            torch.stack([sin * flip, cos, centre[:, 1]], -1),
        ],
        1,
    )  # (m, 2, 3) output normalised -> photo normalised
    grid = F.affine_grid(theta, [len(idx), 3, size, size], align_corners=False)
    crop = F.grid_sample(
        photos, grid, mode="bilinear", padding_mode="reflection", align_corners=False
    )
    grey = _grey()[idx][:, None, None, None]  # tint grey photos (after the crop: fewer pixels)
    crop = crop * (grey * params["dr_tint"][on][:, :, None, None] + (1 - grey))
    out = background.clone()
    w = p[on, 7][:, None, None, None]
    out[on] = w * crop + (1 - w) * background[on]
    return out


def skin_texture(
    image: torch.Tensor, hand: torch.Tensor, params: dict[str, torch.Tensor]
) -> torch.Tensor:
    """Multiply hand pixels (``hand`` (n, 1, S, S) 0/1) by a tint and a smooth blotch texture
    (+-15 %, from a 10 x 10 grid of ``dr_skin``)."""
    n, _, size, _ = image.shape
    s = params["dr_skin"]
    grid = s[:, 3:].reshape(n, 1, _TEXTURE_GRID, _TEXTURE_GRID)
    texture = F.interpolate(grid, size=(size, size), mode="bicubic", align_corners=False)
    factor = s[:, :3, None, None] * (1 + 0.15 * texture.clamp(-2, 2) / 2)
    return torch.where(hand > 0, image * factor, image)


def apply_camera(image: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
    """White balance, gamma, Gaussian blur, sensor noise and JPEG on (n, 3, S, S) in [0, 1]."""
    c = params["dr_camera"]
    _, _, size, _ = image.shape
    out = (image * c[:, :3, None, None]).clamp(0, 1) ** c[:, 3, None, None, None]
    sigma = c[:, 4] * size / 128
    for i in torch.nonzero(sigma > 0).flatten().tolist():
        k = 2 * math.ceil(2.5 * float(sigma[i])) + 1
        x = torch.arange(k, dtype=out.dtype) - k // 2
        g = torch.exp(-(x**2) / (2 * float(sigma[i]) ** 2))
        g = (g / g.sum()).reshape(1, 1, 1, k).expand(3, 1, 1, k)
        img = F.conv2d(F.pad(out[i : i + 1], (k // 2, k // 2, 0, 0), mode="replicate"), g, groups=3)
        out[i] = F.conv2d(
            F.pad(img, (0, 0, k // 2, k // 2), mode="replicate"), g.transpose(2, 3), groups=3
        )[0]
    noise = torch.stack(
        [
            torch.randn(3, size, size, generator=torch.Generator().manual_seed(int(s)))
            for s in c[:, 8]
        ]
    )
    out = (out + noise * c[:, 5, None, None, None]).clamp(0, 1)
    for i in torch.nonzero(c[:, 6] > 0).flatten().tolist():
        out[i] = _jpeg(out[i], int(c[i, 7]))
    return out


def _jpeg(image: torch.Tensor, quality: int) -> torch.Tensor:
    """(3, S, S) in [0, 1] through a JPEG file of ``quality`` (PIL) and back."""
    buffer = io.BytesIO()
    pixels = (image * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality)
    with Image.open(buffer) as img:
        return torch.from_numpy(np.array(img.convert("RGB"))).permute(2, 0, 1).float() / 255
