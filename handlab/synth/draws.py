"""Pre-drawn randomness: one row of uniforms per sample, consumed block by block.

Taught in chapter 00 (``notebooks/00_tour.py``).

Why: a data set needs sample ``i`` to come from its own seed, whatever batch it is fetched in,
while sampling must stay vectorised over the batch. So each sample's randomness is one row of
:data:`WIDTH` uniforms (from its own generator, or row ``i`` of one generator's ``(n, WIDTH)``
draw), and the samplers turn columns of that block into parameters for all rows at once. Row
``i`` of ``torch.rand(n, WIDTH)`` does not depend on ``n``, so ``generate(n, seed=s)`` sample
``i`` is the same for every ``n > i``.

>>> d = Draws.from_generator(2, torch.Generator().manual_seed(0))
>>> d.rand(3).shape, d.randn(4, 2).shape, d.randint(5, 2).dtype
(torch.Size([2, 3]), torch.Size([2, 4, 2]), torch.int64)
"""

from __future__ import annotations

import math

import torch

__all__ = ["WIDTH", "Draws", "as_draws"]

WIDTH = 1024  # uniforms per sample; a scene uses about 500
_EPS = 1e-7


class Draws:
    """Uniforms ``(n, WIDTH)`` in [0, 1) handed out in column blocks, shaped ``(n, *shape)``."""

    def __init__(self, uniforms: torch.Tensor) -> None:
        if uniforms.ndim != 2:
            raise ValueError(f"uniforms: expected shape (n, width), got {tuple(uniforms.shape)}")
        self.uniforms = uniforms
        self.used = 0

    @classmethod
    def from_generator(cls, n: int, generator: torch.Generator) -> Draws:
        """``n`` rows from one generator."""
        return cls(torch.rand(n, WIDTH, generator=generator))

    @classmethod
    def from_seeds(cls, seeds: list[int]) -> Draws:
        """One row per seed, each from its own generator (independent of the batch)."""
        rows = [torch.rand(WIDTH, generator=torch.Generator().manual_seed(s)) for s in seeds]
        return cls(torch.stack(rows))

    @property
    def n(self) -> int:
        return self.uniforms.shape[0]

    def rand(self, *shape: int) -> torch.Tensor:
        """Uniforms in [0, 1), (n, *shape)."""
        k = math.prod(shape)
        if self.used + k > self.uniforms.shape[1]:
            raise RuntimeError(
                f"Draws: {self.used + k} uniforms needed per sample, WIDTH is too small"
            )
        block = self.uniforms[:, self.used : self.used + k]
        self.used += k
        return block.reshape(self.n, *shape)

    def uniform(self, lo: float, hi: float, *shape: int) -> torch.Tensor:
        """Uniforms in [lo, hi), (n, *shape)."""
        return lo + (hi - lo) * self.rand(*shape)

    def randn(self, *shape: int) -> torch.Tensor:
        """Standard normals (n, *shape) by the inverse CDF of the uniforms."""
        return torch.special.ndtri(self.rand(*shape).clamp(_EPS, 1 - _EPS))

    def randint(self, k: int, *shape: int) -> torch.Tensor:
        """Integers in [0, k), (n, *shape) int64."""
        return (self.rand(*shape) * k).long().clamp(max=k - 1)

    def choice(self, weights: torch.Tensor) -> torch.Tensor:
        """Indices (n,) int64 drawn with probabilities proportional to ``weights`` (K,)."""
        cdf = weights.double().cumsum(0) / weights.double().sum()
        return torch.searchsorted(cdf, self.rand().double(), right=True).clamp(max=len(weights) - 1)


def as_draws(n: int, generator: torch.Generator | Draws) -> Draws:
    """Wrap a ``torch.Generator`` as ``n`` rows of :class:`Draws`; pass ``Draws`` through."""
    if isinstance(generator, Draws):
        if generator.n != n:
            raise ValueError(f"generator: expected Draws with {n} rows, got {generator.n}")
        return generator
    if not isinstance(generator, torch.Generator):
        raise TypeError(
            f"generator: expected a torch.Generator or Draws, got {type(generator).__name__}"
        )
    return Draws.from_generator(n, generator)
