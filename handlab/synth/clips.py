"""``SyntheticClips``: a seeded dataset of short synthetic video clips, for clip models.

Taught in chapter 07 (``notebooks/07_deformer.py``); the data of ``handlab train --data
synth-clips`` (the Deformer, seminar seed 003).

Clip ``i`` of a split is one sequence of ``T`` frames from
:func:`handlab.synth.sample_sequence_params`, drawn from its own generator seeded by
``split_seed(split, i)`` (the splits of :data:`handlab.synth.dataset.SPLITS`), so it never depends
on the batch it is fetched in. As in ``benchmarks/occlusion_tables.py``, occluders drift across
the clip (probability ``occluders`` per clip) and each frame is motion-blurred with probability
``blur``. :meth:`SyntheticClips.batch` renders all frames of many clips in one pass.

A batch carries the clip and, under the usual names, the labels of the centre frame ``T // 2``
(the frame a clip model predicts), so :func:`handlab.training.evaluate` scores it unchanged; the
labels of every frame (what the Deformer's loss needs) carry the ``clip_`` prefix:

>>> ds = SyntheticClips("val", size=64, T=3)
>>> b = ds.batch([0, 1])
>>> b["clip"].shape, b["keypoints"].shape, b["clip_keypoints"].shape
(torch.Size([2, 3, 3, 64, 64]), torch.Size([2, 21, 2]), torch.Size([2, 3, 21, 2]))
>>> bool((b["keypoints"] == b["clip_keypoints"][:, 1]).all())
True
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import Dataset

from handlab._checks import check_range
from handlab.synth.dataset import SPLITS, in_passes, split_seed
from handlab.synth.renderer import check_size, render
from handlab.synth.scene import SceneOptions, scene_options
from handlab.synth.sequences import sample_sequence_params

__all__ = ["CLIP_KEYS", "CLIP_OPTIONS", "FRAMES_PER_PASS", "SyntheticClips"]

# Per-frame render outputs kept for every frame (``clip_`` + name) and for the centre frame.
CLIP_KEYS = ("keypoints", "xyz", "visibility")
# Frames rendered per pass by ``batch`` (whole clips; at least one clip per pass).
FRAMES_PER_PASS = 64
# Clips blur half their frames by default (the Deformer's motion); occluders as for frames.
CLIP_OPTIONS = SceneOptions(blur=0.5)


def _check_int(name: str, value: object, lo: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name}: expected an int >= {lo}, got {value!r}")
    check_range(name, value, lo=lo)


class SyntheticClips(Dataset):
    """Synthetic clips of a split; each item a dict of tensors without the batch dim.

    Args:
        split: ``"train"``, ``"val"`` or ``"test"``.
        size: frame side in px, 64..512.
        T: frames per clip (the Deformer's 7 by default); the centre frame is ``T // 2``.
        length: number of clips (default: 100000 / 2000 / 1000).
        segment: frames between the motion's keyframes (see ``sample_sequence_params``).
        options: the :class:`~handlab.synth.scene.SceneOptions`, default :data:`CLIP_OPTIONS`
            (``occluders``: probability that a clip has occluders, drifting across its frames;
            ``blur``: probability that a frame is motion-blurred; ``extras``: add ``occlusion``
            (21,) of the centre frame and ``clip_occlusion`` (T, 21)); ``overrides`` replace
            single fields.

    Items (and :meth:`batch`, with a leading batch dim): ``clip`` (T, 3, S, S) in [0, 1];
    the centre frame's ``keypoints`` (21, 2) px, ``xyz`` (21, 3) mm camera frame,
    ``visibility`` (21,) and ``K`` (3, 3) (the camera is fixed over a clip); every frame's
    ``clip_keypoints`` (T, 21, 2), ``clip_xyz`` (T, 21, 3) and ``clip_visibility`` (T, 21).

    >>> ds = SyntheticClips("test", size=64, T=3)
    >>> len(ds), ds[0]["clip"].shape
    (1000, torch.Size([3, 3, 64, 64]))
    """

    def __init__(
        self,
        split: str = "train",
        size: int = 128,
        T: int = 7,
        length: int | None = None,
        *,
        segment: int = 16,
        options: SceneOptions | None = None,
        **overrides: Any,
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"split: expected one of {sorted(SPLITS)}, got {split!r}")
        check_size(size)
        _check_int("T", T, 1)
        length = SPLITS[split][1] if length is None else length
        _check_int("length", length, 1)
        check_range("length", length, lo=1, hi=SPLITS[split][2])
        _check_int("segment", segment, 1)
        self.split, self.size, self.T, self.length = split, size, T, length
        self.segment = segment
        self.options = scene_options(options or CLIP_OPTIONS, **overrides)  # validated here

    def __len__(self) -> int:
        return self.length

    def params(self, indices: list[int]) -> dict[str, torch.Tensor]:
        """Per-frame params (len(indices) * T, ...) of clips ``indices``, clip-major; each clip
        drawn from its own generator seeded by ``split_seed(split, i)``."""
        parts = []
        for i in indices:
            if not isinstance(i, int) or not -self.length <= i < self.length:
                raise IndexError(f"index: expected an int in [0, {self.length}), got {i!r}")
            g = torch.Generator().manual_seed(split_seed(self.split, i % self.length))
            parts.append(
                sample_sequence_params(1, self.T, g, segment=self.segment, options=self.options)
            )
        return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}

    def batch(self, indices: list[int]) -> dict[str, torch.Tensor]:
        """Render clips ``indices``: a dict of batched tensors (see the class).

        Frames are rendered :data:`FRAMES_PER_PASS` at a time and only the kept fields stay
        (no depth or masks), so memory grows with the clips returned, not with the renderer's
        intermediates.
        """
        indices = [int(i) for i in indices]
        if not indices:
            raise ValueError("indices: expected at least one clip index, got none")
        per_pass = max(1, FRAMES_PER_PASS // self.T)
        return in_passes(self._render, indices, per_pass)

    def _render(self, indices: list[int]) -> dict[str, torch.Tensor]:
        b, t, c = len(indices), self.T, self.T // 2
        frames = render(self.params(indices), self.size, extras=self.options.extras)
        frames = {k: v.reshape(b, t, *v.shape[1:]) for k, v in frames.items() if k != "params"}
        out = {"clip": frames["image"], "K": frames["K"][:, c]}
        keys = CLIP_KEYS + (("occlusion",) if self.options.extras else ())
        for key in keys:
            out[key] = frames[key][:, c]
            out[f"clip_{key}"] = frames[key]
        return out

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {k: v[0] for k, v in self.batch([int(index)]).items()}

    def __getitems__(self, indices: list[int]) -> list[dict[str, torch.Tensor]]:
        """Batched fetching for ``torch.utils.data.DataLoader``: one render pass per batch."""
        out = self.batch([int(i) for i in indices])
        return [{k: v[j] for k, v in out.items()} for j in range(len(indices))]
