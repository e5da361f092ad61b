"""The common sample schema of every real-dataset loader, its validation, and the shared crop.

No chapter teaches this module yet (chapter "00" is the placeholder).

Every loader item is a dict with the synthetic generator's keys, where the dataset has them:

- ``image`` (3, S, S) float32 in [0, 1] (RGB datasets), ``depth`` (1, S, S) float32 mm (depth
  datasets; 0 = no reading), ``mask`` (1, S, S) float32 in {0, 1} (the hand's pixels),
- ``keypoints`` (J, 2) float32 pixels (x, y) in the crop, ``visibility`` (J,) float32 in {0, 1},
- ``xyz`` (J, 3) float32 mm, camera frame (x right, y down, z forward), ``K`` (3, 3) float32, the
  crop's intrinsics, so ``project(xyz, K) == keypoints``,
- ``meta``: dict with ``dataset``, ``split``, ``id``, ``file`` (the image read), ``side``
  (``"left"`` / ``"right"``), ``joints`` (``"canonical21"`` or ``"nyu14"``), ``root``
  (``"wrist"`` or ``"palm"`` for STB) and ``box`` (4,) the crop box in the original frame's pixels.

``J`` is 21 (canonical order, :mod:`handlab.skeleton`) except NYU (its 14 evaluation joints).
A loader reads one *frame* (full-resolution arrays) and :func:`finish_sample` validates it and
crops a square ``size`` box around the hand with :func:`handlab.geometry.crop_to_hand`.

>>> raw = {"image": torch.zeros(3, 40, 40), "keypoints": torch.tensor([[10.0, 10.0], [20.0, 30.0]]),
...        "visibility": torch.ones(2), "meta": {"dataset": "toy", "id": "0", "file": "a.png"}}
>>> out = finish_sample(raw, num_joints=2, size=16)
>>> out["image"].shape, out["meta"]["box"].shape
(torch.Size([3, 16, 16]), torch.Size([4]))
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from handlab.errors import InputError
from handlab.geometry import crop_to_hand

__all__ = [
    "FIELD_SHAPES",
    "DataError",
    "HandDataset",
    "as_float",
    "count_files",
    "finish_sample",
    "hide_outside",
    "read_image",
    "read_json",
    "require_file",
    "validate_sample",
]

# Expected shapes per field; "J" is the dataset's joint count, None any size.
FIELD_SHAPES: dict[str, tuple[int | str | None, ...]] = {
    "image": (3, None, None),
    "depth": (1, None, None),
    "mask": (1, None, None),
    "keypoints": ("J", 2),
    "visibility": ("J",),
    "xyz": ("J", 3),
    "K": (3, 3),
}


class DataError(InputError):
    """A dataset folder, file or sample is missing, unreadable or inconsistent.

    The message always names the file and, when known, the sample id.
    """


def _where(meta: dict[str, Any]) -> str:
    return f"{meta.get('file', '?')} (sample {meta.get('id', '?')})"


def require_file(path: Path, what: str) -> Path:
    """Return ``path`` or raise :class:`DataError` naming it and what it should hold.

    >>> require_file(Path("/nonexistent/anno.pickle"), "RHD annotations")
    Traceback (most recent call last):
    ...
    handlab.data.schema.DataError: /nonexistent/anno.pickle: missing file (RHD annotations)
    """
    if not path.is_file():
        raise DataError(f"{path}: missing file ({what})")
    return path


def hide_outside(
    keypoints: torch.Tensor, visibility: torch.Tensor, width: int, height: int
) -> tuple[torch.Tensor, int]:
    """Mark joints projecting outside a ``width`` x ``height`` image invisible.

    For datasets without a per-joint visibility flag (the hand may leave the frame): a visible
    joint must be inside the image (pixel centres at integers: ``[-0.5, W - 0.5]``).

    Returns:
        the new visibility (J,) float32 and how many visible joints were hidden.

    >>> hide_outside(torch.tensor([[5.0, 5.0], [10.0, 2.0]]), torch.ones(2), 10, 10)
    (tensor([1., 0.]), 1)
    """
    x, y = keypoints[:, 0], keypoints[:, 1]
    inside = (x >= -0.5) & (x <= width - 0.5) & (y >= -0.5) & (y <= height - 0.5)
    new = visibility.float() * inside  # NaN keypoints compare False: hidden (then reported)
    return new, int(((visibility > 0) & ~inside).sum())


def as_float(x: Any) -> torch.Tensor:
    """A float32 tensor copy of ``x`` (array, list or tensor).

    >>> as_float([1, 2]).dtype
    torch.float32
    """
    return torch.as_tensor(np.array(x, dtype=np.float32))


def count_files(folder: Path, pattern: str) -> int:
    """Number of files in ``folder`` matching the glob ``pattern`` (0 if the folder is absent)."""
    return sum(1 for _ in folder.glob(pattern)) if folder.is_dir() else 0


def read_json(path: Path, what: str) -> Any:
    """Parse a JSON annotation file, or raise :class:`DataError` naming it."""
    require_file(path, what)
    try:
        with path.open("rb") as f:
            return json.load(f)
    except (ValueError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: unreadable JSON ({what}): {err}") from err


def read_image(path: Path, *, sample_id: str, mode: str | None = "RGB") -> np.ndarray:
    """Read an image file fully into an array, or raise :class:`DataError` naming it.

    Args:
        path: the image file.
        sample_id: named in errors.
        mode: PIL mode to convert to (``"RGB"``, ``"L"``); ``None`` keeps the file's own mode
            (16-bit PNGs stay ``uint16``).

    Returns:
        (H, W, 3) uint8 for ``"RGB"``, (H, W) for single-channel modes.
    """
    if not path.is_file():
        raise DataError(f"{path} (sample {sample_id}): missing image file")
    try:
        with Image.open(path) as img:
            img.load()  # decode now so a truncated file fails here, not later
            if mode is not None and img.mode != mode:
                img = img.convert(mode)
            return np.array(img)
    except (OSError, SyntaxError, ValueError) as err:
        raise DataError(
            f"{path} (sample {sample_id}): unreadable or truncated image ({err})"
        ) from err


def _check_field(key: str, value: Any, num_joints: int, where: str) -> None:
    if not isinstance(value, torch.Tensor):
        raise DataError(f"{where}: {key} expected a torch.Tensor, got {type(value).__name__}")
    want = tuple(num_joints if s == "J" else s for s in FIELD_SHAPES[key])
    got = tuple(value.shape)
    if len(got) != len(want) or any(
        w is not None and w != g for w, g in zip(want, got, strict=True)
    ):
        raise DataError(f"{where}: {key} expected shape {want}, got {got}")
    if not bool(torch.isfinite(value).all()):
        bad = int((~torch.isfinite(value)).sum())
        raise DataError(f"{where}: {key} has {bad} NaN/inf values")


def validate_sample(
    sample: dict[str, Any], *, num_joints: int = 21, require_keypoints: bool = True
) -> None:
    """Check one sample (a full frame or a crop) against the schema.

    Checks the fields' types, shapes and finiteness, images in [0, 1], masks and visibility in
    {0, 1}, visible keypoints inside the image (pixel centres at integers, so the image spans
    ``[-0.5, W - 0.5]``), positive depth of ``xyz`` and that some joint is visible.
    ``require_keypoints=False`` accepts a sample without ``keypoints``/``visibility`` (e.g.
    HO-3D's evaluation split, whose annotations are withheld).

    Raises:
        DataError: naming the file and sample id from ``sample["meta"]``.

    >>> validate_sample({"keypoints": torch.full((21, 2), float("nan")),
    ...                  "visibility": torch.ones(21), "meta": {"file": "x.jpg", "id": "7"}})
    Traceback (most recent call last):
    ...
    handlab.data.schema.DataError: x.jpg (sample 7): keypoints has 42 NaN/inf values
    """
    meta = sample.get("meta", {})
    where = _where(meta)
    for key in ("keypoints", "visibility"):
        if require_keypoints and key not in sample:
            raise DataError(f"{where}: missing field {key!r}")
    vis = torch.ones(num_joints, dtype=torch.bool)
    # visibility and xyz first: a bad depth explains NaN keypoints better than the NaN does
    order = ("visibility", "xyz", *(k for k in FIELD_SHAPES if k not in ("visibility", "xyz")))
    for key in order:
        if key not in sample:
            continue
        _check_field(key, sample[key], num_joints, where)
        if key == "visibility":
            if not bool(((sample[key] == 0) | (sample[key] == 1)).all()):
                raise DataError(f"{where}: visibility expected values in {{0, 1}}")
            vis = sample[key] > 0
            if not bool(vis.any()):
                raise DataError(f"{where}: no visible keypoint")
        if key == "xyz" and not bool((sample["xyz"][vis, 2] > 0).all()):
            raise DataError(f"{where}: xyz expected positive depth (z > 0 mm) for visible joints")
    if "mask" in sample and not bool(((sample["mask"] == 0) | (sample["mask"] == 1)).all()):
        raise DataError(f"{where}: mask expected values in {{0, 1}}")
    if "image" in sample and not bool(((sample["image"] >= 0) & (sample["image"] <= 1)).all()):
        raise DataError(f"{where}: image expected values in [0, 1]")
    frame = next((sample[k] for k in ("image", "depth", "mask") if k in sample), None)
    if frame is not None and "keypoints" in sample:
        h, w = frame.shape[-2:]
        kp = sample["keypoints"][vis]
        outside = (
            (kp[:, 0] < -0.5) | (kp[:, 0] > w - 0.5) | (kp[:, 1] < -0.5) | (kp[:, 1] > h - 0.5)
        )
        if bool(outside.any()):
            joints = torch.nonzero(vis).flatten()[outside].tolist()
            raise DataError(f"{where}: visible keypoints {joints} lie outside the {w}x{h} image")


def finish_sample(
    raw: dict[str, Any],
    *,
    num_joints: int = 21,
    size: int | None = 128,
    margin: float = 1.3,
    box: torch.Tensor | None = None,
) -> dict[str, Any]:
    """Validate a full-frame sample and crop a square ``size`` box around the hand.

    Args:
        raw: full-frame sample (schema above, float32 tensors, original pixels).
        num_joints: J.
        size: crop side in pixels; ``None`` returns the validated full frame unchanged.
        margin: box side = ``margin`` x the keypoints' extent (:func:`handlab.geometry.hand_box`).
        box: optional (4,) ``(x0, y0, x1, y1)`` box to use instead of the keypoints' box.

    Returns:
        the cropped sample; ``meta["box"]`` holds the box in original pixels.
    """
    validate_sample(raw, num_joints=num_joints, require_keypoints=box is None)
    if size is None:
        return raw if box is None else {**raw, "meta": {**raw["meta"], "box": box}}
    # without keypoints (a given box only), the box corners stand in for crop_to_hand's points
    points = raw["keypoints"] if "keypoints" in raw else box.reshape(2, 2)
    maps = [k for k in ("depth", "mask") if k in raw]
    base = raw["image"] if "image" in raw else raw[maps[0]]
    out = crop_to_hand(
        base,
        points,
        raw.get("K"),
        size=size,
        margin=margin,
        box=box,
        visibility=raw.get("visibility") if box is None else None,
        extra=[raw[k] for k in maps],
    )
    sample = {k: v for k, v in raw.items() if k not in ("image", "depth", "mask", "meta")}
    if "image" in raw:
        sample["image"] = out["image"].clamp(0, 1)
    for key, value in zip(maps, out["extra"], strict=True):
        sample[key] = value
    if "keypoints" in raw:
        sample["keypoints"] = out["keypoints"]
    if out["K"] is not None:
        sample["K"] = out["K"]
    sample["meta"] = {**raw["meta"], "box": out["box"]}
    return sample


class HandDataset(Dataset):
    """Base of every real-dataset loader: root/split checks, indexing, validation and the crop.

    A subclass sets ``name``, ``splits`` (the official ones, first = default), ``num_joints``,
    builds its index in ``__init__`` and implements ``__len__``, :meth:`sample_id` and
    :meth:`load_frame` (one full-resolution frame as float32 tensors plus ``meta``).
    ``skipped`` counts samples left out at indexing time, per documented reason.
    """

    name: ClassVar[str] = ""
    splits: ClassVar[tuple[str, ...]] = ()
    num_joints: ClassVar[int] = 21

    def __init__(
        self, root: str | Path, split: str, *, size: int | None = 128, margin: float = 1.3
    ) -> None:
        if not isinstance(root, str | Path):
            raise TypeError(f"root: expected a str or Path, got {type(root).__name__}")
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(f"{self.root}: {self.name} root folder not found")
        if split not in self.splits:
            raise ValueError(
                f"split: expected one of {list(self.splits)} for {self.name}, got {split!r}"
            )
        if size is not None and (not isinstance(size, int) or size < 8):
            raise ValueError(f"size: expected an int >= 8 or None (full frame), got {size!r}")
        if not margin > 0:
            raise ValueError(f"margin: expected a positive number, got {margin!r}")
        self.split = split
        self.size = size
        self.margin = margin
        self.skipped: dict[str, int] = {}

    def __len__(self) -> int:
        raise NotImplementedError

    def sample_id(self, index: int) -> str:
        """The dataset's own id of item ``index`` (as named in errors and ``meta["id"]``)."""
        raise NotImplementedError

    def load_frame(self, index: int) -> dict[str, Any]:
        """Item ``index`` at full resolution, before validation and cropping."""
        raise NotImplementedError

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not isinstance(index, int | np.integer):
            raise TypeError(f"index: expected an int, got {type(index).__name__}")
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index: expected a value in [{-n}, {n - 1}], got {index}")
        return self.finish(self.load_frame(int(index) % n))

    def finish(self, raw: dict[str, Any]) -> dict[str, Any]:
        """A full-resolution item from :meth:`load_frame` -> the returned sample: validated and
        cropped by :func:`finish_sample` (``size``, ``margin``, the item's ``box`` if any)."""
        box = raw.pop("box", None)
        return finish_sample(
            raw, num_joints=self.num_joints, size=self.size, margin=self.margin, box=box
        )

    def _meta(self, index: int, file: Path, side: str, **extra: Any) -> dict[str, Any]:
        return {
            "dataset": self.name,
            "split": self.split,
            "id": self.sample_id(index),
            "file": str(file),
            "side": side,
            "joints": "canonical21" if self.num_joints == 21 else f"{self.name}{self.num_joints}",
            "root": "wrist",
            "n_outside": 0,
            **extra,
        }
