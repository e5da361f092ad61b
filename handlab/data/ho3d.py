"""HO-3D v2 / v3 (Hampali et al., CVPR 2020): real right hands holding YCB objects, 640 x 480.

No chapter teaches this module yet (chapter "00" is the placeholder).

Layout under ``root``::

    train.txt  evaluation.txt            lines "SEQ/ID", e.g. "ABF10/0000"
    train/SEQ/rgb/ID.jpg (v3; v2: .png)  train/SEQ/depth/ID.png  train/SEQ/meta/ID.pkl
    evaluation/SEQ/...                   (same)

``meta/*.pkl`` are Python 2 pickles (read with :func:`handlab.data.unpickle.safe_load`, latin1)
with ``handJoints3D`` (21, 3) metres in MANO joint order (:data:`handlab.skeleton.DATASET_ORDERS`
``"mano"``), ``camMat`` (3, 3), ``handPose`` (48), ``handBeta`` (10), ``handTrans`` and object
fields. Coordinates use **OpenGL axes** (y up, z toward the viewer): handlab multiplies them by
``diag(1, -1, -1)`` to get its camera frame before projecting. Depth PNG:
``metres = (R + 256 * G) * 0.00012498664727900177``.

Protocol: the official ``train`` / ``evaluation`` lists. Evaluation annotations are withheld by
the authors (scored on their server): ``evaluation`` items carry only the image, depth, ``K`` and,
in ``meta``, ``root_xyz`` (3,) mm (the wrist, handlab axes) and ``box``; the crop is the
annotated ``handBoundingBox`` made square and enlarged by ``margin``; there are no ``keypoints``.
Train frames whose pickle has no ``handJoints3D`` raise :class:`~handlab.data.schema.DataError`
naming the file (``handlab datasets check ho3d ROOT`` lists them). Joints projecting outside the
image (the hand leaving the frame) are made invisible (``meta["n_outside"]``). All hands are
right hands.
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
    hide_outside,
    read_image,
    require_file,
)
from handlab.data.unpickle import safe_load
from handlab.geometry import project
from handlab.skeleton import to_canonical

__all__ = ["DEPTH_SCALE", "HO3D", "OPENGL_TO_CV", "decode_depth"]

DEPTH_SCALE = 0.00012498664727900177  # metres per depth code (HO-3D toolkit)
OPENGL_TO_CV = np.diag([1.0, -1.0, -1.0])  # OpenGL (y up, -z forward) -> camera (y down, z forward)


def decode_depth(rgb: np.ndarray) -> np.ndarray:
    """HO-3D depth PNG (H, W, 3) uint8 -> (H, W) float32 mm: ``(R + 256 G) * DEPTH_SCALE`` m.

    >>> decode_depth(np.array([[[0, 32, 0]]], dtype=np.uint8)).round(3).tolist()
    [[1023.891]]
    """
    code = rgb[..., 0].astype(np.uint32) + 256 * rgb[..., 1].astype(np.uint32)
    return (code * (DEPTH_SCALE * 1000.0)).astype(np.float32)


class HO3D(HandDataset):
    """HO-3D loader (see the module docstring for the layout and protocol).

    Args:
        root: folder holding ``train.txt``, ``train/`` etc.
        split: ``"train"`` or ``"evaluation"``.
        size, margin: crop options (:class:`handlab.data.schema.HandDataset`).
    """

    name = "ho3d"
    splits = ("train", "evaluation")

    def __init__(
        self, root: str | Path, split: str = "train", *, size: int | None = 128, margin: float = 1.3
    ) -> None:
        super().__init__(root, split, size=size, margin=margin)
        listing = require_file(self.root / f"{split}.txt", f"HO-3D {split} list")
        self._ids = []
        for n, line in enumerate(listing.read_text().splitlines(), start=1):
            line = line.strip()
            if not line:
                continue
            seq, _, frame = line.partition("/")
            if not seq or not frame:
                raise DataError(f"{listing}: line {n} expected 'SEQ/ID', got {line!r}")
            self._ids.append((seq, frame))

    def __len__(self) -> int:
        return len(self._ids)

    def sample_id(self, index: int) -> str:
        return "/".join(self._ids[index])

    def _rgb_path(self, seq: str, frame: str) -> Path:
        folder = self.root / self.split / seq / "rgb"
        jpg = folder / f"{frame}.jpg"  # v3; v2 ships PNGs
        return (
            jpg
            if jpg.is_file() or not (folder / f"{frame}.png").is_file()
            else jpg.with_suffix(".png")
        )

    def _read_meta(self, seq: str, frame: str, sid: str) -> dict[str, Any]:
        path = self.root / self.split / seq / "meta" / f"{frame}.pkl"
        if not path.is_file():
            raise DataError(f"{path} (sample {sid}): missing meta pickle")
        meta = safe_load(path, name=f"{path} (sample {sid})")
        if not isinstance(meta, dict) or meta.get("camMat") is None:
            raise DataError(f"{path} (sample {sid}): expected a dict with 'camMat'")
        K = np.asarray(meta["camMat"], dtype=np.float64)
        if K.shape != (3, 3):
            raise DataError(f"{path} (sample {sid}): camMat expected (3, 3), got {K.shape}")
        return {**meta, "camMat": K, "_path": path}

    def load_frame(self, index: int) -> dict[str, Any]:
        seq, frame = self._ids[index]
        sid = self.sample_id(index)
        meta = self._read_meta(seq, frame, sid)
        path = self._rgb_path(seq, frame)
        rgb = read_image(path, sample_id=sid)
        depth_path = self.root / self.split / seq / "depth" / f"{frame}.png"
        sample: dict[str, Any] = {
            "image": torch.from_numpy(rgb).permute(2, 0, 1).float() / 255.0,
            "depth": torch.from_numpy(decode_depth(read_image(depth_path, sample_id=sid)))[None],
            "K": as_float(meta["camMat"]),
        }
        joints = meta.get("handJoints3D")
        joints = None if joints is None else np.asarray(joints, dtype=np.float64)
        if self.split == "evaluation":
            return self._evaluation_frame(sample, meta, joints, index, path)
        if joints is None or joints.shape != (21, 3):
            got = "none" if joints is None else joints.shape
            raise DataError(
                f"{meta['_path']} (sample {sid}): handJoints3D expected (21, 3), got {got}"
            )
        xyz = as_float(to_canonical(joints @ OPENGL_TO_CV, "mano") * 1000.0)  # m -> mm
        keypoints = project(xyz, sample["K"])
        visibility, n_out = hide_outside(keypoints, torch.ones(21), rgb.shape[1], rgb.shape[0])
        sample.update(
            xyz=xyz,
            keypoints=keypoints,
            visibility=visibility,
            meta=self._meta(index, path, "right", n_outside=n_out),
        )
        return sample

    def _evaluation_frame(
        self, sample: dict[str, Any], meta: dict[str, Any], root: Any, index: int, path: Path
    ) -> dict[str, Any]:
        where = f"{meta['_path']} (sample {self.sample_id(index)})"
        box = np.asarray(meta.get("handBoundingBox", np.zeros(0)), dtype=np.float64).reshape(-1)
        root = np.zeros(0) if root is None else root.reshape(-1)
        if box.shape != (4,) or root.shape != (3,) or not np.isfinite(np.r_[box, root]).all():
            raise DataError(f"{where}: expected handBoundingBox (4,) and root handJoints3D (3,)")
        centre = (box[:2] + box[2:]) / 2
        half = max(box[2] - box[0], box[3] - box[1], 1.0) * self.margin / 2
        sample["box"] = as_float(np.r_[centre - half, centre + half])
        sample["meta"] = self._meta(
            index, path, "right", root_xyz=as_float(root @ OPENGL_TO_CV * 1000.0)
        )
        return sample
