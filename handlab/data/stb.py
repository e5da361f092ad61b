"""Stereo Hand Pose Tracking Benchmark (STB, Zhang et al., ICIP 2017): one subject's left hand.

No chapter teaches this module yet (chapter "00" is the placeholder).

Layout under ``root``::

    labels/B1Counting_SK.mat  labels/B1Counting_BB.mat  ...  (B1-B6 x Counting/Random)
    images/B1Counting/SK_color_0.png  SK_depth_0.png  BB_left_0.png  BB_right_0.png  ...

Each ``.mat`` holds ``handPara`` (3, 21, 1500) mm for 1,500 frames, in STB joint order: palm
centre first (**not the wrist**), then little, ring, middle, index, thumb, each base to tip.
``BB`` labels are in the left Bumblebee camera's frame (fx = fy = 822.79, cx = 318.47,
cy = 250.31); ``SK`` labels are in the RealSense *depth* camera's frame and are moved to the SK
colour camera (fx = 607.92, fy = 607.88, cx = 314.78, cy = 236.42) with STB's published extrinsics
(rotation vector (0.00531, -0.01196, 0.00301), translation (-24.0381, -0.4563, -1.2326) mm:
``xyz_colour = R^T (xyz_depth - t)``). ``SK_depth_i.png`` stores ``mm = R + 256 * G``.

Protocol (Zimmermann & Brox 2017, minimal-hand): sequences B2-B6 are ``train`` (15,000 frames per
camera), B1 is ``test`` (3,000). Joint 0 stays the palm centre, in the canonical slot 0
(``meta["root"] == "palm"``); joints inside the image are visible (``meta["n_outside"]`` counts
the others); the hand is a left hand.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import scipy.io
import torch
from scipy.spatial.transform import Rotation

from handlab.data.schema import (
    DataError,
    HandDataset,
    as_float,
    hide_outside,
    read_image,
    require_file,
)
from handlab.geometry import project
from handlab.skeleton import to_canonical

__all__ = ["CAMERAS", "SEQUENCES", "STB", "decode_depth", "sk_depth_to_colour"]

SEQUENCES = {
    "train": tuple(f"B{b}{kind}" for b in range(2, 7) for kind in ("Counting", "Random")),
    "test": ("B1Counting", "B1Random"),
}
CAMERAS = {
    "SK": np.array([[607.92271, 0.0, 314.78337], [0.0, 607.88192, 236.42484], [0.0, 0.0, 1.0]]),
    "BB": np.array([[822.79041, 0.0, 318.47345], [0.0, 822.79041, 250.31296], [0.0, 0.0, 1.0]]),
}
_SK_ROTATION = Rotation.from_rotvec([0.00531, -0.01196, 0.00301]).as_matrix()
_SK_TRANSLATION = np.array([-24.0381, -0.4563, -1.2326])  # mm


def sk_depth_to_colour(xyz: np.ndarray) -> np.ndarray:
    """SK labels (..., 3) mm in the depth camera frame -> the SK colour camera frame.

    >>> sk_depth_to_colour(np.array([-24.0381, -0.4563, -1.2326])).round(6).tolist()
    [0.0, 0.0, 0.0]
    """
    return (xyz - _SK_TRANSLATION) @ _SK_ROTATION


def decode_depth(rgb: np.ndarray) -> np.ndarray:
    """STB SK depth PNG (H, W, 3) uint8 -> (H, W) float32 mm: ``R + 256 * G``.

    >>> decode_depth(np.array([[[232, 3, 0]]], dtype=np.uint8)).tolist()
    [[1000.0]]
    """
    return (rgb[..., 0].astype(np.uint32) + 256 * rgb[..., 1].astype(np.uint32)).astype(np.float32)


class STB(HandDataset):
    """STB loader (see the module docstring for the layout and protocol).

    Args:
        root: folder holding ``labels/`` and ``images/``.
        split: ``"train"`` (B2-B6) or ``"test"`` (B1).
        camera: ``"SK"`` (RealSense colour) or ``"BB"`` (Bumblebee left image).
        sequences: optional subset of the split's sequences (e.g. ``("B2Counting",)``) for a
            partial download; default all of them (the official protocol).
        depth: also return ``depth`` (SK only), decoded from ``SK_depth_i.png`` as stored.
        size, margin: crop options (:class:`handlab.data.schema.HandDataset`).
    """

    name = "stb"
    splits = ("train", "test")

    def __init__(
        self,
        root: str | Path,
        split: str = "test",
        *,
        camera: str = "SK",
        sequences: tuple[str, ...] | None = None,
        depth: bool = False,
        size: int | None = 128,
        margin: float = 1.3,
    ) -> None:
        super().__init__(root, split, size=size, margin=margin)
        if camera not in CAMERAS:
            raise ValueError(f"camera: expected 'SK' or 'BB', got {camera!r}")
        if depth and camera != "SK":
            raise ValueError("depth: STB has depth for camera 'SK' only, got camera 'BB'")
        self.camera = camera
        self.with_depth = depth
        if sequences is None:
            sequences = SEQUENCES[split]
        unknown = [seq for seq in sequences if seq not in SEQUENCES[split]]
        if unknown or not sequences:
            raise ValueError(
                f"sequences: expected a non-empty subset of {SEQUENCES[split]}, got {sequences!r}"
            )
        self._items: list[tuple[str, int]] = []
        xyz = []
        for seq in sequences:
            joints = self._read_labels(seq)  # (1500, 21, 3) STB order
            if camera == "SK":
                joints = sk_depth_to_colour(joints)
            xyz.append(to_canonical(joints, "stb"))
            self._items += [(seq, i) for i in range(len(joints))]
        self._xyz = np.concatenate(xyz)

    def _read_labels(self, seq: str) -> np.ndarray:
        path = require_file(self.root / "labels" / f"{seq}_{self.camera}.mat", "STB handPara")
        try:
            para = scipy.io.loadmat(path, variable_names=["handPara"]).get("handPara")
        except (ValueError, OSError, TypeError, NotImplementedError) as err:
            raise DataError(f"{path}: unreadable MATLAB file ({err})") from err
        if para is None:
            raise DataError(f"{path}: missing variable 'handPara'")
        if para.ndim != 3 or para.shape[:2] != (3, 21):
            raise DataError(f"{path}: handPara expected shape (3, 21, N), got {para.shape}")
        return np.asarray(para, dtype=np.float64).transpose(2, 1, 0)

    def __len__(self) -> int:
        return len(self._items)

    def sample_id(self, index: int) -> str:
        seq, i = self._items[index]
        return f"{seq}/{self.camera}_{i}"

    def load_frame(self, index: int) -> dict[str, Any]:
        seq, i = self._items[index]
        sid = self.sample_id(index)
        folder = self.root / "images" / seq
        name = "SK_color" if self.camera == "SK" else "BB_left"
        path = folder / f"{name}_{i}.png"
        rgb = read_image(path, sample_id=sid)
        xyz = as_float(self._xyz[index])
        K = as_float(CAMERAS[self.camera])
        keypoints = project(xyz, K)
        visibility, n_out = hide_outside(keypoints, torch.ones(21), rgb.shape[1], rgb.shape[0])
        sample: dict[str, Any] = {
            "image": torch.from_numpy(rgb).permute(2, 0, 1).float() / 255.0,
            "xyz": xyz,
            "K": K,
            "keypoints": keypoints,
            "visibility": visibility,
            "meta": self._meta(index, path, "left", root="palm", n_outside=n_out),
        }
        if self.with_depth:
            code = read_image(folder / f"SK_depth_{i}.png", sample_id=sid)
            sample["depth"] = torch.from_numpy(decode_depth(code))[None]
        return sample
