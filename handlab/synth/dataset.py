"""``generate`` (sample + render) and ``SyntheticHands``, a seeded dataset per split.

Taught in chapter 00 (``notebooks/00_tour.py``).

Sample ``i`` of a split is drawn from its own generator, seeded from ``(split, i)``, so it never
depends on the order or batch it is fetched in. The test split is frozen at 1000 samples with
occluders (probability 0.5): its numbers compare across releases. :meth:`SyntheticHands.batch`
renders many indices in passes of :data:`RENDER_CHUNK`, and ``DataLoader(ds, batch_size=...)``
uses it through ``__getitems__``, so training gets full renderer speed; batched samples equal
the per-item ones to float rounding (vectorised kernels may round the last bit differently).

>>> out = generate(2, seed=0, size=64)
>>> out["image"].shape, out["keypoints"].shape
(torch.Size([2, 3, 64, 64]), torch.Size([2, 21, 2]))
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.utils.data import Dataset

from handlab._checks import check_range
from handlab.synth.draws import Draws
from handlab.synth.renderer import check_size, render
from handlab.synth.scene import SceneOptions, sample_params, scene_options

__all__ = ["RENDER_CHUNK", "SPLITS", "SyntheticHands", "generate", "in_passes", "split_seed"]

# samples per render pass in SyntheticHands.batch: the renderer's intermediates take about 4 MB
# per 128 px sample, so one pass over 128 samples peaked 0.5 GB above the batch it returned
RENDER_CHUNK = 32

# split -> (seed offset, default length, largest length). torch's CPU generator keeps only the
# low 32 bits of a seed, so the splits share [0, 2**32) in disjoint ranges.
SPLITS: dict[str, tuple[int, int, int]] = {
    "train": (0, 100_000, 3_000_000_000),
    "val": (3_000_000_000, 2_000, 1_000_000_000),
    "test": (4_000_000_000, 1_000, 2**32 - 4_000_000_000),
}


def in_passes(
    fn: Callable[[list[int]], dict[str, torch.Tensor]], indices: list[int], per_pass: int
) -> dict[str, torch.Tensor]:
    """``fn`` over ``indices`` in slices of ``per_pass``, its batched outputs concatenated.

    >>> in_passes(lambda ix: {"i": torch.tensor(ix)}, [3, 1, 4, 1, 5], 2)["i"].tolist()
    [3, 1, 4, 1, 5]
    """
    parts = [fn(indices[i : i + per_pass]) for i in range(0, len(indices), per_pass)]
    if len(parts) == 1:
        return parts[0]
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


def generate(
    n: int,
    *,
    seed: int,
    size: int = 128,
    options: SceneOptions | None = None,
    **overrides: Any,
) -> dict[str, torch.Tensor]:
    """Sample and render ``n`` synthetic hands; the same seed gives the same bits on CPU.

    Args:
        n: number of samples.
        seed: seed of the one generator all randomness comes from.
        size: image side in pixels, 64..512.
        options: the :class:`~handlab.synth.scene.SceneOptions` (occluders, blur, depth noise,
            left hands; ``extras`` also returns ``occlusion``, ``occluder_mask`` and
            ``params``); ``overrides`` replace single fields (``occluders=1.0``).

    Returns:
        ``image`` (n, 3, H, W) [0, 1], ``depth`` (n, 1, H, W) mm, ``mask`` (n, 1, H, W),
        ``keypoints`` (n, 21, 2) px (x, y), ``xyz`` (n, 21, 3) mm camera frame, ``K`` (n, 3, 3),
        ``visibility`` (n, 21).
    """
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed: expected an int, got {seed!r}")
    check_size(size)
    opts = scene_options(options, **overrides)
    params = sample_params(n, torch.Generator().manual_seed(seed), opts)
    return render(params, size, extras=opts.extras)


def split_seed(split: str, index: int) -> int:
    """The seed of sample ``index`` of ``split``.

    >>> split_seed("test", 0) != split_seed("train", 0)
    True
    """
    if split not in SPLITS:
        raise ValueError(f"split: expected one of {sorted(SPLITS)}, got {split!r}")
    return SPLITS[split][0] + index


class SyntheticHands(Dataset):
    """Synthetic hands of a split, each item a dict of the seven keys without the batch dim.

    Args:
        split: ``"train"``, ``"val"`` or ``"test"``.
        size: image side, 64..512.
        length: number of samples (default: 100000 / 2000 / 1000).
        options: the :class:`~handlab.synth.scene.SceneOptions` (``extras`` adds ``occlusion``
            and ``occluder_mask`` to each item); ``overrides`` replace single fields.

    >>> ds = SyntheticHands("test", size=64)
    >>> len(ds), ds[0]["image"].shape
    (1000, torch.Size([3, 64, 64]))
    """

    def __init__(
        self,
        split: str = "train",
        size: int = 128,
        length: int | None = None,
        *,
        options: SceneOptions | None = None,
        **overrides: Any,
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"split: expected one of {sorted(SPLITS)}, got {split!r}")
        check_size(size)
        length = SPLITS[split][1] if length is None else length
        if not isinstance(length, int) or isinstance(length, bool):
            raise TypeError(f"length: expected an int >= 1, got {length!r}")
        check_range("length", length, lo=1, hi=SPLITS[split][2])
        self.split, self.size, self.length = split, size, length
        self.options = scene_options(options, **overrides)  # validated here, not at a batch

    def __len__(self) -> int:
        return self.length

    def params(self, indices: list[int]) -> dict[str, torch.Tensor]:
        """The params of samples ``indices``, each drawn from its own seeded generator (one row of
        :class:`~handlab.synth.draws.Draws`), transformed for all indices at once."""
        seeds = []
        for i in indices:
            if not isinstance(i, int) or not -self.length <= i < self.length:
                raise IndexError(f"index: expected an int in [0, {self.length}), got {i!r}")
            seeds.append(split_seed(self.split, i % self.length))
        return sample_params(len(seeds), Draws.from_seeds(seeds), self.options)

    def batch(self, indices: list[int]) -> dict[str, torch.Tensor]:
        """Render ``indices``: a dict of batched tensors (the collated items).

        :data:`RENDER_CHUNK` samples per pass, so memory grows with the samples returned, not
        with the renderer's intermediates.
        """
        indices = [int(i) for i in indices]
        if not indices:
            raise ValueError("indices: expected at least one sample index, got none")
        return in_passes(self._render, indices, RENDER_CHUNK)

    def _render(self, indices: list[int]) -> dict[str, torch.Tensor]:
        out = render(self.params(indices), self.size, extras=self.options.extras)
        out.pop("params", None)
        return out

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {k: v[0] for k, v in self.batch([int(index)]).items()}

    def __getitems__(self, indices: list[int]) -> list[dict[str, torch.Tensor]]:
        """Batched fetching for ``torch.utils.data.DataLoader`` (which calls it when defined):
        a plain ``DataLoader(ds, batch_size=64)`` renders each batch in one pass."""
        out = self.batch([int(i) for i in indices])
        return [{k: v[j] for k, v in out.items()} for j in range(len(indices))]
