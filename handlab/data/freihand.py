"""FreiHAND v2 (Zimmermann et al., ICCV 2019): real RGB hands with MANO fits, 224 x 224.

No chapter teaches this module yet (chapter "00" is the placeholder).

Layout under ``root`` (as published)::

    training_K.json  training_xyz.json  (training_mano.json, training_verts.json, ...)
    training/rgb/%08d.jpg   training/mask/%08d.jpg
    evaluation_K.json  evaluation_xyz.json  (evaluation_scale.json, ...)
    evaluation/rgb/%08d.jpg

Each JSON is a list with one entry per sample: ``K`` (3, 3), ``xyz`` (21, 3) metres, camera frame,
canonical joint order. The training set has N = 32,560 samples, each rendered in 4 image versions
(green screen and three composited backgrounds): image id ``idx + N * v`` for version ``v`` shares
annotation ``idx``; the masks ``training/mask/%08d.jpg`` exist for ``idx < N`` only and apply to
all versions. The evaluation set has 3,960 samples, one version, no masks.

Protocol: ``split="training"`` (all versions, or ``versions=(0,)``...) and ``split="evaluation"``
(the official test set; its annotations were released after the challenge). All hands are right
hands. ``keypoints = project(xyz, K)`` (FreiHAND has no separate 2D labels); every joint inside
the image is visible (``meta["n_outside"]`` counts those outside, made invisible). Units: mm.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from handlab.data.schema import (
    DataError,
    HandDataset,
    as_float,
    count_files,
    hide_outside,
    read_image,
    read_json,
)
from handlab.geometry import project

__all__ = ["FreiHAND"]

VERSIONS = 4  # image versions per training sample (FreiHAND v2 README)


class FreiHAND(HandDataset):
    """FreiHAND v2 loader (see the module docstring for the layout and protocol).

    Args:
        root: folder holding ``training_K.json``, ``training/rgb/`` etc.
        split: ``"training"`` or ``"evaluation"``.
        versions: training image versions to include (subset of 0-3); ignored for evaluation.
        size, margin: crop options (:class:`handlab.data.schema.HandDataset`).
    """

    name = "freihand"
    splits = ("training", "evaluation")

    def __init__(
        self,
        root: str | Path,
        split: str = "training",
        *,
        versions: Sequence[int] = (0, 1, 2, 3),
        size: int | None = 128,
        margin: float = 1.3,
    ) -> None:
        super().__init__(root, split, size=size, margin=margin)
        if split == "evaluation":
            versions = (0,)
        versions = tuple(versions)
        if not versions or any(v not in range(VERSIONS) for v in versions):
            raise ValueError(f"versions: expected a non-empty subset of 0-3, got {versions}")
        self._K = self._read_list("K", (3, 3))
        self._xyz = self._read_list("xyz", (21, 3))
        if len(self._K) != len(self._xyz):
            raise DataError(
                f"{self.root / f'{split}_xyz.json'}: {len(self._xyz)} entries but "
                f"{split}_K.json has {len(self._K)}"
            )
        self.num_samples = n = len(self._K)
        rgb = self.root / split / "rgb"
        if not rgb.is_dir():
            raise DataError(f"{rgb}: missing image folder")
        n_images = count_files(rgb, "*.jpg")
        n_versions = VERSIONS if split == "training" else 1
        if n_images > n * n_versions:
            raise DataError(
                f"{rgb}: {n_images} images but {split}_xyz.json annotates only {n} samples "
                f"x {n_versions} versions (annotation list shorter than the image list)"
            )
        self._mask_dir = self.root / split / "mask"
        self._ids = [idx + n * v for v in versions for idx in range(n)]

    def _read_list(self, key: str, shape: tuple[int, ...]) -> np.ndarray:
        path = self.root / f"{self.split}_{key}.json"
        data = read_json(path, f"FreiHAND {self.split} {key}")
        try:
            arr = np.asarray(data, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise DataError(f"{path}: expected a list of {shape} arrays ({err})") from err
        if arr.ndim != len(shape) + 1 or arr.shape[1:] != shape:
            raise DataError(f"{path}: expected shape (N, {shape}), got {arr.shape}")
        return arr

    def _entry(self, key: str, idx: int, image: Path) -> np.ndarray:
        """Annotation ``idx`` of ``{split}_{key}.json``; NaN/inf is named there, per sample (so
        ``handlab datasets check`` and ``--skip-bad`` list every bad entry, not only the first)."""
        values = getattr(self, f"_{key}")[idx]
        bad = int((~np.isfinite(values)).sum())
        if bad:
            raise DataError(
                f"{self.root / f'{self.split}_{key}.json'} (entry {idx}, image {image.name}): "
                f"expected finite numbers, got {bad} NaN/inf"
            )
        return values

    def __len__(self) -> int:
        return len(self._ids)

    def sample_id(self, index: int) -> str:
        return f"{self._ids[index]:08d}"

    def load_frame(self, index: int) -> dict[str, Any]:
        image_id = self._ids[index]
        idx = image_id % self.num_samples
        sid = self.sample_id(index)
        path = self.root / self.split / "rgb" / f"{sid}.jpg"
        rgb = read_image(path, sample_id=sid)
        K = as_float(self._entry("K", idx, path))
        xyz = as_float(self._entry("xyz", idx, path) * 1000.0)  # m -> mm
        keypoints = project(xyz, K)
        visibility, n_out = hide_outside(keypoints, torch.ones(21), rgb.shape[1], rgb.shape[0])
        sample: dict[str, Any] = {
            "image": torch.from_numpy(rgb).permute(2, 0, 1).float() / 255.0,
            "xyz": xyz,
            "K": K,
            "keypoints": keypoints,
            "visibility": visibility,
            "meta": self._meta(index, path, "right", annotation=idx, n_outside=n_out),
        }
        if self._mask_dir.is_dir():
            mask = read_image(self._mask_dir / f"{idx:08d}.jpg", sample_id=sid, mode="L")
            sample["mask"] = torch.from_numpy(mask > 127).float()[None]  # JPEG: threshold
        return sample
