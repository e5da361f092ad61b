"""DexYCB (Chao et al., CVPR 2021): hands grasping YCB objects, 8 RealSense views, 640 x 480.

No chapter teaches this module yet (chapter "00" is the placeholder).

Layout under ``root`` (as published)::

    calibration/intrinsics/SERIAL_640x480.yml          color: fx, fy, ppx, ppy
    SUBJECT/SEQUENCE/meta.yml                          num_frames, mano_sides, ...
    SUBJECT/SEQUENCE/SERIAL/color_%06d.jpg
    SUBJECT/SEQUENCE/SERIAL/aligned_depth_to_color_%06d.png   uint16 mm
    SUBJECT/SEQUENCE/SERIAL/labels_%06d.npz            seg (255 = hand), joint_3d (1, 21, 3) m,
                                                       joint_2d (1, 21, 2) px, pose_m (1, 51)

Joints are in the canonical order; ``joint_3d`` is -1 everywhere when the hand is not in the
frame. Protocol: the toolkit's setup **s0** (seen subjects, views and objects): the 100 sequences
of each subject, sorted by name, with ``i % 5 != 4`` are ``train`` (all 10 subjects), and those
with ``i % 5 == 4`` are ``val`` (subjects 1-2) and ``test`` (subjects 3-10); all 8 cameras.
Like the toolkit's hand-pose evaluation, frames without a hand (joint_3d == -1) are skipped while
indexing (this reads each frame's ``joint_3d`` once, when the dataset is opened); ``skipped``
counts them, and subject folders absent from a partial download. Hand side from ``mano_sides``.
Joints outside the image are made invisible (``meta["n_outside"]``).
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from handlab.data.schema import (
    DataError,
    HandDataset,
    as_float,
    hide_outside,
    read_image,
    require_file,
)

__all__ = ["SERIALS", "SUBJECTS", "DexYCB", "s0_selection"]

SUBJECTS = tuple(
    f"{date}-subject-{i:02d}"
    for i, date in enumerate(
        ("20200709", "20200813", "20200820", "20200903", "20200908", "20200918", "20200928",
         "20201002", "20201015", "20201022"),
        start=1,
    )
)  # fmt: skip
SERIALS = (
    "836212060125", "839512060362", "840412060917", "841412060263",
    "932122060857", "932122060861", "932122061900", "932122062010",
)  # fmt: skip


def s0_selection(split: str) -> tuple[tuple[int, ...], bool]:
    """Subjects (0-based) of setup s0 for ``split`` and whether it takes the ``i % 5 == 4``
    sequences (held out) or the others.

    >>> s0_selection("val")
    ((0, 1), True)
    """
    if split == "train":
        return tuple(range(10)), False
    return ((0, 1) if split == "val" else tuple(range(2, 10))), True


def _read_yaml(path: Path, what: str) -> Any:
    require_file(path, what)
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise DataError(f"{path}: unreadable YAML ({what}): {err}") from err


class DexYCB(HandDataset):
    """DexYCB loader, setup s0 (see the module docstring for the layout and protocol).

    Args:
        root: the DexYCB folder (``calibration/`` and the subject folders).
        split: ``"train"``, ``"val"`` or ``"test"``.
        serials: optional subset of the 8 camera serials (default all, the official protocol).
        size, margin: crop options (:class:`handlab.data.schema.HandDataset`).
    """

    name = "dexycb"
    splits = ("train", "val", "test")

    def __init__(
        self,
        root: str | Path,
        split: str = "test",
        *,
        serials: tuple[str, ...] = SERIALS,
        size: int | None = 128,
        margin: float = 1.3,
    ) -> None:
        super().__init__(root, split, size=size, margin=margin)
        if not serials or any(s not in SERIALS for s in serials):
            raise ValueError(f"serials: expected a non-empty subset of {SERIALS}, got {serials!r}")
        self.serials = tuple(serials)
        subjects, held_out = s0_selection(split)
        self._K: dict[str, np.ndarray] = {}
        self._frames: list[tuple[Path, int, str, str]] = []  # (serial folder, frame, side, serial)
        for s in subjects:
            folder = self.root / SUBJECTS[s]
            if not folder.is_dir():
                self.skipped["subject folder absent"] = (
                    self.skipped.get("subject folder absent", 0) + 1
                )
                continue
            sequences = sorted(p for p in folder.iterdir() if p.is_dir())
            for i, seq in enumerate(sequences):
                if (i % 5 == 4) == held_out:
                    self._index_sequence(seq)
        if not self._frames and "subject folder absent" in self.skipped:
            raise DataError(f"{self.root}: no DexYCB subject folder of split {split!r} found")

    def _intrinsics(self, serial: str) -> np.ndarray:
        if serial not in self._K:
            path = self.root / "calibration" / "intrinsics" / f"{serial}_640x480.yml"
            color = (_read_yaml(path, "DexYCB intrinsics") or {}).get("color", {})
            try:
                fx, fy, cx, cy = (float(color[k]) for k in ("fx", "fy", "ppx", "ppy"))
            except (KeyError, TypeError, ValueError) as err:
                raise DataError(f"{path}: expected color fx, fy, ppx, ppy ({err})") from err
            self._K[serial] = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
        return self._K[serial]

    def _index_sequence(self, seq: Path) -> None:
        meta_path = seq / "meta.yml"
        meta = _read_yaml(meta_path, "DexYCB sequence meta") or {}
        try:
            num_frames = int(meta["num_frames"])
            side = str(meta["mano_sides"][0])
        except (KeyError, IndexError, TypeError, ValueError) as err:
            raise DataError(f"{meta_path}: expected num_frames and mano_sides ({err!r})") from err
        for serial in self.serials:
            self._intrinsics(serial)
            for f in range(num_frames):
                joints = self._labels(seq / serial, f)["joint_3d"]
                if np.all(joints == -1):
                    self.skipped["no hand in frame"] = self.skipped.get("no hand in frame", 0) + 1
                    continue
                self._frames.append((seq / serial, f, side, serial))

    def _labels(self, folder: Path, frame: int) -> dict[str, np.ndarray]:
        path = folder / f"labels_{frame:06d}.npz"
        sid = f"{folder.relative_to(self.root)}/{frame:06d}"
        if not path.is_file():
            raise DataError(f"{path} (sample {sid}): missing labels file")
        want = {"joint_3d": (1, 21, 3), "joint_2d": (1, 21, 2), "seg": None}
        try:
            with np.load(path) as npz:
                out = {k: np.asarray(npz[k]) for k in want}
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as err:
            raise DataError(f"{path} (sample {sid}): unreadable labels ({err})") from err
        for key, shape in want.items():
            if shape is not None and out[key].shape != shape:
                raise DataError(
                    f"{path} (sample {sid}): {key} expected {shape}, got {out[key].shape}"
                )
        return out

    def __len__(self) -> int:
        return len(self._frames)

    def sample_id(self, index: int) -> str:
        folder, frame, _, _ = self._frames[index]
        return f"{folder.relative_to(self.root)}/{frame:06d}"

    def load_frame(self, index: int) -> dict[str, Any]:
        folder, frame, side, serial = self._frames[index]
        sid = self.sample_id(index)
        labels = self._labels(folder, frame)
        path = folder / f"color_{frame:06d}.jpg"
        rgb = read_image(path, sample_id=sid)
        depth = read_image(
            folder / f"aligned_depth_to_color_{frame:06d}.png", sample_id=sid, mode=None
        )
        keypoints = as_float(labels["joint_2d"][0])
        visibility, n_out = hide_outside(keypoints, torch.ones(21), rgb.shape[1], rgb.shape[0])
        return {
            "image": torch.from_numpy(rgb).permute(2, 0, 1).float() / 255.0,
            "depth": as_float(depth)[None],  # uint16 mm
            "mask": torch.from_numpy(labels["seg"] == 255).float()[None],
            "keypoints": keypoints,
            "visibility": visibility,
            "xyz": as_float(labels["joint_3d"][0] * 1000.0),  # m -> mm
            "K": as_float(self._K[serial]),
            "meta": self._meta(index, path, side, n_outside=n_out),
        }
