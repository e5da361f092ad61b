"""Rendered Hand Pose Dataset (RHD, Zimmermann & Brox, ICCV 2017): synthetic two-hand renders.

No chapter teaches this module yet (chapter "00" is the placeholder).

Layout under ``root`` (``RHD_published_v2``)::

    training/color/%05d.png  training/depth/%05d.png  training/mask/%05d.png  (320 x 320)
    training/anno_training.pickle
    evaluation/... and evaluation/anno_evaluation.pickle

The pickle maps sample id -> ``{"xyz": (42, 3) m, "uv_vis": (42, 3) = u, v, visible, "K": (3, 3)}``;
joints 0-20 are the left hand, 21-41 the right, each in RHD order (wrist, then every finger tip to
base). It is read with :func:`handlab.data.unpickle.safe_load` (no code can run).
Depth PNG: ``metres = (R * 256 + G) / 65535 * 5.0`` (top 8 bits in red). Mask labels: 0
background, 1 person, 2-17 left hand (17 palm), 18-33 right hand (33 palm).

Protocol: official ``training`` (41,258) / ``evaluation`` (2,728) splits; like Zimmermann & Brox
each sample is one hand, the *dominant* one: the hand with more mask pixels (ties go to the right
hand). ``visibility`` is RHD's visible flag; ``mask`` is that hand's pixels; units become mm.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from handlab.data.schema import (
    DataError,
    HandDataset,
    as_float,
    count_files,
    read_image,
    require_file,
)
from handlab.data.unpickle import safe_load
from handlab.skeleton import to_canonical

__all__ = ["RHD", "decode_depth", "dominant_hand"]

LEFT_LABELS = (2, 17)  # inclusive mask label ranges
RIGHT_LABELS = (18, 33)
_FIELDS = {"xyz": (42, 3), "uv_vis": (42, 3), "K": (3, 3)}


def decode_depth(rgb: np.ndarray) -> np.ndarray:
    """RHD depth PNG (H, W, 3) uint8 -> (H, W) float32 mm: ``(R * 256 + G) / 65535 * 5 m``.

    >>> decode_depth(np.array([[[255, 255, 0]]], dtype=np.uint8)).tolist()
    [[5000.0]]
    """
    code = rgb[..., 0].astype(np.uint32) * 256 + rgb[..., 1].astype(np.uint32)  # widen first
    return (code.astype(np.float64) / 65535.0 * 5000.0).astype(np.float32)


def dominant_hand(labels: np.ndarray) -> str:
    """``"left"`` or ``"right"``: the hand with more pixels in an RHD mask (ties: right).

    >>> dominant_hand(np.array([[2, 3, 20]]))
    'left'
    """
    left = np.count_nonzero((labels >= LEFT_LABELS[0]) & (labels <= LEFT_LABELS[1]))
    right = np.count_nonzero((labels >= RIGHT_LABELS[0]) & (labels <= RIGHT_LABELS[1]))
    return "left" if left > right else "right"


class RHD(HandDataset):
    """RHD loader (see the module docstring for the layout and protocol).

    Args:
        root: the ``RHD_published_v2`` folder.
        split: ``"training"`` or ``"evaluation"``.
        size, margin: crop options (:class:`handlab.data.schema.HandDataset`).
    """

    name = "rhd"
    splits = ("training", "evaluation")

    def __init__(
        self,
        root: str | Path,
        split: str = "training",
        *,
        size: int | None = 128,
        margin: float = 1.3,
    ) -> None:
        super().__init__(root, split, size=size, margin=margin)
        path = require_file(self.root / split / f"anno_{split}.pickle", "RHD annotations")
        anno = safe_load(path)
        if not isinstance(anno, dict):
            raise DataError(f"{path}: expected a dict id -> annotation, got {type(anno).__name__}")
        self._anno: dict[int, dict[str, np.ndarray]] = {}
        for key, entry in anno.items():
            self._anno[int(key)] = self._check_entry(path, key, entry)
        self._ids = sorted(self._anno)
        n_images = count_files(self.root / split / "color", "*.png")
        if n_images > len(self._ids):
            raise DataError(
                f"{path}: {len(self._ids)} annotations but {n_images} images in "
                f"{self.root / split / 'color'} (annotation list shorter than the image list)"
            )

    @staticmethod
    def _check_entry(path: Path, key: Any, entry: Any) -> dict[str, np.ndarray]:
        if not isinstance(entry, dict):
            raise DataError(f"{path} (sample {key}): expected a dict, got {type(entry).__name__}")
        out = {}
        for field, shape in _FIELDS.items():
            if field not in entry:
                raise DataError(f"{path} (sample {key}): missing field {field!r}")
            value = np.asarray(entry[field], dtype=np.float64)
            if value.shape != shape:
                raise DataError(
                    f"{path} (sample {key}): {field} expected {shape}, got {value.shape}"
                )
            out[field] = value
        return out

    def __len__(self) -> int:
        return len(self._ids)

    def sample_id(self, index: int) -> str:
        return f"{self._ids[index]:05d}"

    def load_frame(self, index: int) -> dict[str, Any]:
        sid = self.sample_id(index)
        folder = self.root / self.split
        path = folder / "color" / f"{sid}.png"
        rgb = read_image(path, sample_id=sid)
        labels = read_image(folder / "mask" / f"{sid}.png", sample_id=sid, mode=None)
        labels = labels[..., 0] if labels.ndim == 3 else labels
        depth = decode_depth(read_image(folder / "depth" / f"{sid}.png", sample_id=sid))
        side = dominant_hand(labels)
        lo, hi = LEFT_LABELS if side == "left" else RIGHT_LABELS
        anno = self._anno[self._ids[index]]
        hand = slice(0, 21) if side == "left" else slice(21, 42)
        uv_vis = to_canonical(anno["uv_vis"][hand], "rhd")
        return {
            "image": torch.from_numpy(rgb).permute(2, 0, 1).float() / 255.0,
            "depth": torch.from_numpy(depth)[None],
            "mask": torch.from_numpy((labels >= lo) & (labels <= hi)).float()[None],
            "keypoints": as_float(uv_vis[:, :2]),
            "visibility": as_float(uv_vis[:, 2] > 0),
            "xyz": as_float(to_canonical(anno["xyz"][hand], "rhd") * 1000.0),  # m -> mm
            "K": as_float(anno["K"]),
            "meta": self._meta(index, path, side),
        }
