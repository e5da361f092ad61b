"""NYU Hand Pose Dataset (Tompson et al., SIGGRAPH 2014): Kinect depth, one subject's right hand.

No chapter teaches this module yet (chapter "00" is the placeholder).

Layout under ``root``::

    train/joint_data.mat   train/depth_1_0000001.png ...   (also depth_2/3: other views)
    test/joint_data.mat    test/depth_1_0000001.png ...

``joint_data.mat`` holds ``joint_uvd`` and ``joint_xyz``, each (3 views, N, 36, 3): (u px, v px,
depth mm) and (X, Y, Z) mm with **Y up** (``Y = (240 - v) Z / fy``). Depth PNGs (640 x 480) store
``mm = G * 256 + B``. Intrinsics: fx = 588.04, fy = 587.08, cx = 320, cy = 240.

Protocol: view 1 only (``depth_1_*``), official ``train`` (72,757) / ``test`` (8,252) frames,
and the **14 evaluation joints** of the benchmarks (:data:`handlab.skeleton.NYU_EVAL_JOINTS`):
NYU's 36 joints have no clean 21-joint skeleton, so items carry ``keypoints`` (14, 2) and ``xyz``
(14, 3) in NYU's own joint order and ``meta["joints"] == "nyu14"``. ``xyz`` is returned in
handlab's camera frame (y down, so ``Y`` is negated) and ``keypoints`` are NYU's ``joint_uvd``.
Items have ``depth`` (no RGB). Joints outside the image are made invisible (``meta["n_outside"]``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import scipy.io
import torch

from handlab.data.schema import (
    DataError,
    HandDataset,
    as_float,
    count_files,
    hide_outside,
    read_image,
    require_file,
)
from handlab.skeleton import NYU_EVAL_JOINTS

__all__ = ["K_NYU", "NYU", "decode_depth", "load_joint_data"]

K_NYU = np.array([[588.04, 0.0, 320.0], [0.0, 587.08, 240.0], [0.0, 0.0, 1.0]])


def decode_depth(rgb: np.ndarray) -> np.ndarray:
    """NYU depth PNG (H, W, 3) uint8 -> (H, W) float32 mm: ``G * 256 + B``.

    >>> decode_depth(np.array([[[0, 3, 232]]], dtype=np.uint8)).tolist()
    [[1000.0]]
    """
    return (rgb[..., 1].astype(np.uint32) * 256 + rgb[..., 2].astype(np.uint32)).astype(np.float32)


def load_joint_data(path: Path) -> dict[str, np.ndarray]:
    """``joint_uvd`` and ``joint_xyz`` (3, N, 36, 3) from ``joint_data.mat`` (MATLAB v5 or v7.3)."""
    require_file(path, "NYU joint_data.mat")
    try:
        mat = scipy.io.loadmat(path, variable_names=["joint_uvd", "joint_xyz"])
    except NotImplementedError:  # MATLAB v7.3 is HDF5 with reversed axes
        import h5py

        with h5py.File(path, "r") as f:
            mat = {k: np.asarray(f[k]).transpose() for k in ("joint_uvd", "joint_xyz") if k in f}
    except (ValueError, OSError, TypeError) as err:
        raise DataError(f"{path}: unreadable MATLAB file ({err})") from err
    out = {}
    for key in ("joint_uvd", "joint_xyz"):
        if key not in mat:
            raise DataError(f"{path}: missing variable {key!r}")
        value = np.asarray(mat[key], dtype=np.float64)
        if value.ndim != 4 or value.shape[0] < 1 or value.shape[2:] != (36, 3):
            raise DataError(f"{path}: {key} expected shape (3, N, 36, 3), got {value.shape}")
        out[key] = value
    if out["joint_uvd"].shape[1] != out["joint_xyz"].shape[1]:
        raise DataError(f"{path}: joint_uvd and joint_xyz list different frame counts")
    return out


class NYU(HandDataset):
    """NYU loader, view 1, 14 evaluation joints (see the module docstring).

    Args:
        root: folder holding ``train/`` and ``test/``.
        split: ``"train"`` or ``"test"``.
        size, margin: crop options (:class:`handlab.data.schema.HandDataset`).
    """

    name = "nyu"
    splits = ("train", "test")
    num_joints = len(NYU_EVAL_JOINTS)

    def __init__(
        self, root: str | Path, split: str = "test", *, size: int | None = 128, margin: float = 1.3
    ) -> None:
        super().__init__(root, split, size=size, margin=margin)
        self._mat_path = self.root / split / "joint_data.mat"
        data = load_joint_data(self._mat_path)
        joints = list(NYU_EVAL_JOINTS)
        self._uvd = data["joint_uvd"][0][:, joints]  # view 1: (N, 14, 3)
        self._xyz = data["joint_xyz"][0][:, joints] * np.array([1.0, -1.0, 1.0])  # Y up -> y down
        n_images = count_files(self.root / split, "depth_1_*.png")
        if n_images > len(self._uvd):
            raise DataError(
                f"{self._mat_path}: {len(self._uvd)} frames but {n_images} depth_1 images "
                "(annotation list shorter than the image list)"
            )

    def __len__(self) -> int:
        return len(self._uvd)

    def sample_id(self, index: int) -> str:
        return f"{index + 1:07d}"  # NYU numbers files from 1

    def load_frame(self, index: int) -> dict[str, Any]:
        sid = self.sample_id(index)
        path = self.root / self.split / f"depth_1_{sid}.png"
        depth = decode_depth(read_image(path, sample_id=sid))
        keypoints = as_float(self._uvd[index, :, :2])
        h, w = depth.shape
        visibility, n_out = hide_outside(keypoints, torch.ones(self.num_joints), w, h)
        return {
            "depth": torch.from_numpy(depth)[None],
            "keypoints": keypoints,
            "visibility": visibility,
            "xyz": as_float(self._xyz[index]),
            "K": as_float(K_NYU),
            "meta": self._meta(index, path, "right", n_outside=n_out),
        }
