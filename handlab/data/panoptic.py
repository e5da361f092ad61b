"""CMU Panoptic hand keypoints, manual set (Simon et al., CVPR 2017): 2D labels on real frames.

No chapter teaches this module yet (chapter "00" is the placeholder).

Layout under ``root`` (the ``hand_labels`` folder, or its parent)::

    manual_train/NAME.jpg  manual_train/NAME.json
    manual_test/NAME.jpg   manual_test/NAME.json

Each JSON holds ``hand_pts`` (21 x [x, y, valid]) in the canonical (OpenPose) joint order and
``is_left`` (0/1); ``head_size`` is kept in ``meta`` (PCKh normalisation; NaN if absent). The
frames are full images with people in them: items are cropped around the labelled hand's
visible keypoints. Labels are 2D only: items carry ``image``, ``keypoints``, ``visibility``
(the ``valid`` flag) and ``meta``; no ``xyz``, ``K`` or depth.

Protocol: the published ``manual_train`` (``split="train"``, 1,912 hands) and ``manual_test``
(``split="test"``, 846 hands); evaluation is PCKh (head-size normalised) or PCK of the box.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from handlab.data.schema import DataError, HandDataset, as_float, read_image, read_json

__all__ = ["PanopticHands"]

FOLDERS = {"train": "manual_train", "test": "manual_test"}


class PanopticHands(HandDataset):
    """CMU Panoptic ``hand_labels`` manual set (see the module docstring).

    Args:
        root: the ``hand_labels`` folder (or the folder holding it).
        split: ``"train"`` or ``"test"``.
        size, margin: crop options (:class:`handlab.data.schema.HandDataset`).
    """

    name = "panoptic"
    splits = ("train", "test")

    def __init__(
        self, root: str | Path, split: str = "test", *, size: int | None = 128, margin: float = 1.3
    ) -> None:
        super().__init__(root, split, size=size, margin=margin)
        base = self.root / "hand_labels" if (self.root / "hand_labels").is_dir() else self.root
        self._folder = base / FOLDERS[split]
        if not self._folder.is_dir():
            raise DataError(f"{self._folder}: missing folder (Panoptic {FOLDERS[split]})")
        labels = {p.stem for p in self._folder.glob("*.json")}
        images = {p.stem for p in self._folder.glob("*.jpg")}
        unlabelled = sorted(images - labels)
        if unlabelled:
            raise DataError(
                f"{self._folder}: {len(unlabelled)} images without a JSON label, e.g. "
                f"{unlabelled[0]}.jpg (annotation list shorter than the image list)"
            )
        self._names = sorted(labels)

    def __len__(self) -> int:
        return len(self._names)

    def sample_id(self, index: int) -> str:
        return self._names[index]

    def load_frame(self, index: int) -> dict[str, Any]:
        sid = self.sample_id(index)
        label_path = self._folder / f"{sid}.json"
        label = read_json(label_path, "Panoptic hand label")
        try:
            pts = np.asarray(label["hand_pts"], dtype=np.float64)
            side = "left" if bool(label["is_left"]) else "right"
        except (KeyError, TypeError, ValueError) as err:
            raise DataError(
                f"{label_path} (sample {sid}): expected hand_pts and is_left ({err!r})"
            ) from err
        if pts.shape != (21, 3):
            raise DataError(
                f"{label_path} (sample {sid}): hand_pts expected (21, 3), got {pts.shape}"
            )
        path = self._folder / f"{sid}.jpg"
        rgb = read_image(path, sample_id=sid)
        head_size = float(label.get("head_size", float("nan")))  # NaN when absent: meta collates
        return {
            "image": torch.from_numpy(rgb).permute(2, 0, 1).float() / 255.0,
            "keypoints": as_float(pts[:, :2]),
            "visibility": as_float(pts[:, 2] > 0),
            "meta": self._meta(index, path, side, head_size=head_size),
        }
