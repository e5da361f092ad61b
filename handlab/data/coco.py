"""COCO-style hand keypoint files: OneHand10K, mmpose conversions, COCO-WholeBody and Halpe.

No chapter teaches this module yet (chapter "00" is the placeholder).

``root`` is an annotation JSON, a folder holding ``annotations.json``, or a folder whose
subfolders each hold one (every subfolder is a *source*, e.g. ``tests/data/real_hands``). Each
file has COCO's ``images`` (``id``, ``file_name``) and ``annotations`` (``image_id``, ``id``);
images are read from ``image_root`` (default: the JSON's folder) joined with ``file_name``.
A hand is found in an annotation in one of three layouts:

=========================== ============================================ =======================
layout                      keys                                         hands per annotation
=========================== ============================================ =======================
hand files (OneHand10K,     ``keypoints`` 21 x (x, y, v), ``bbox``        1, side from ``hand``
mmpose conversions)         (x, y, w, h)                                 / ``side`` / ``hand_type``
COCO-WholeBody              ``lefthand_kpts`` / ``righthand_kpts``,       up to 2 (``*_valid``)
                            ``lefthand_box`` / ``righthand_box``
flat whole-body             ``keypoints`` 133 (COCO-WholeBody, hands     up to 2, box from the
                            91-111 / 112-132) or 136 (Halpe, 94 / 115)   keypoints
=========================== ============================================ =======================

``v > 0`` is a labelled joint (COCO's 1 and 2), ``v = 0`` a missing one. ``joints`` names the
file's joint order (a key of :data:`handlab.skeleton.DATASET_ORDERS`: ``"canonical"``, or
tip-first ``"rhd"`` / ``"interhand"``); items are always in the canonical order.

Crops (``crop=``), both square, ``size`` px, sampled through one affine kept in
``meta["affine"]`` (source px -> crop px; :func:`handlab.geometry.invert_affine` maps predictions
back): ``"plain"``: the box's square, side ``scale`` x its longer side (default 1.5);
``"upright"``: turned so wrist -> middle MCP points up (:func:`handlab.geometry.upright_box`,
the framing MediaPipe's detector gives its landmark model). ``mirror_left=True`` flips left
hands into right ones inside the same affine. ``meta["box"]`` is the hand's reference box
``(x0, y0, x1, y1)`` (the annotation's, else the labelled keypoints'), for PCK of the box.
Keypoints of a crop may lie outside it (they stay labelled: evaluation reads them back in the
source frame).

>>> COCOHands.splits
('all',)
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
    read_image,
    read_json,
    validate_sample,
)
from handlab.geometry import crop_affine, upright_box, warp_crop
from handlab.skeleton import DATASET_ORDERS, to_canonical

__all__ = [
    "CROPS",
    "EVALUATION_ONLY",
    "REAL_HANDS",
    "COCOHands",
    "annotation_files",
    "is_evaluation_only",
]

CROPS = ("plain", "upright")
# The 32-hand development set in a source checkout (not shipped in the wheel: its images keep
# their datasets' research / non-commercial terms, see its README). Evaluation only.
REAL_HANDS = Path(__file__).resolve().parents[2] / "tests" / "data" / "real_hands"
# A file of this name in a dataset folder (or above it) marks it for evaluation only: the
# training path refuses it (handlab.training.data.open_split).
EVALUATION_ONLY = "EVALUATION_ONLY"
# flat whole-body layouts: number of keypoints -> first index of the left and right hand
_WHOLEBODY = {133: (91, 112), 136: (94, 115)}
_SIDES = ("left", "right")


def annotation_files(root: str | Path) -> list[Path]:
    """The annotation JSONs under ``root``: the file itself, ``root/annotations.json``, or each
    ``root/*/annotations.json`` (one per source), sorted.

    >>> annotation_files("/nonexistent")
    Traceback (most recent call last):
    ...
    handlab.data.schema.DataError: /nonexistent: coco root folder not found (expected ...)
    """
    root = Path(root)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise DataError(
            f"{root}: coco root folder not found (expected an annotation JSON or a folder "
            "holding annotations.json)"
        )
    if (root / "annotations.json").is_file():
        return [root / "annotations.json"]
    return sorted(root.glob("*/annotations.json"))


def is_evaluation_only(path: str | Path) -> bool:
    """True when ``path`` or a folder above it holds an :data:`EVALUATION_ONLY` marker file."""
    path = Path(path).resolve()
    folders = [path, *path.parents] if path.is_dir() else list(path.parents)
    return any((folder / EVALUATION_ONLY).is_file() for folder in folders)


def _source_name(path: Path) -> str:
    return path.parent.name if path.stem == "annotations" else path.stem


def _side(ann: dict[str, Any]) -> str:
    for key in ("hand", "side", "hand_type"):
        value = str(ann.get(key, "")).lower()
        if value in _SIDES:
            return value
    return "unknown"


def _box(xywh: Any) -> np.ndarray | None:
    """COCO (x, y, w, h) -> (x0, y0, x1, y1); None when absent or empty."""
    if xywh is None or len(xywh) != 4 or not (xywh[2] > 0 and xywh[3] > 0):
        return None
    x, y, w, h = (float(v) for v in xywh)
    return np.array([x, y, x + w, y + h], dtype=np.float32)


Hand = tuple[np.ndarray, np.ndarray | None, str, str]


def _hands(ann: dict[str, Any], where: str) -> list[Hand]:
    """(keypoints (21, 3) x/y/v, box or None, side, id suffix) of each hand in an annotation."""
    if "lefthand_kpts" in ann or "righthand_kpts" in ann:
        out = []
        for side in _SIDES:
            if f"{side}hand_kpts" in ann and ann.get(f"{side}hand_valid", True):
                kps = np.asarray(ann[f"{side}hand_kpts"], dtype=np.float64).reshape(-1, 3)
                out.append((kps, _box(ann.get(f"{side}hand_box")), side, f"-{side}"))
        return out
    flat = np.asarray(ann.get("keypoints", []), dtype=np.float64)
    if flat.size == 63:
        return [(flat.reshape(21, 3), _box(ann.get("bbox")), _side(ann), "")]
    if flat.size % 3 == 0 and flat.size // 3 in _WHOLEBODY:
        starts = _WHOLEBODY[flat.size // 3]
        kps = flat.reshape(-1, 3)
        return [
            (kps[i : i + 21], None, side, f"-{side}")
            for i, side in zip(starts, _SIDES, strict=True)
        ]
    raise DataError(
        f"{where}: expected 'keypoints' of 21, 133 or 136 (x, y, v) triples or "
        f"'lefthand_kpts'/'righthand_kpts', got {flat.size} values"
    )


class COCOHands(HandDataset):
    """Hands of COCO-style keypoint files (see the module docstring), one item per hand.

    Args:
        root: an annotation JSON, a folder with ``annotations.json``, or a folder of sources.
        split: ``"all"`` (COCO files carry no split: one file is one split).
        size: crop side in px (default 128); ``None`` returns full frames (``meta["box"]``).
        crop: ``"plain"`` or ``"upright"``.
        scale: crop side / the box's longer side (plain) or the turned hand's extent (upright).
        mirror_left: flip left hands to right ones (``meta["mirrored"]``).
        image_root: folder that ``file_name`` is relative to (default: each JSON's folder).
        joints: the files' joint order (a key of ``DATASET_ORDERS``).
        source: keep only this source (a subfolder name, or the JSON's stem).
    """

    name = "coco"
    splits = ("all",)

    def __init__(
        self,
        root: str | Path,
        split: str = "all",
        *,
        size: int | None = 128,
        crop: str = "plain",
        scale: float = 1.5,
        mirror_left: bool = False,
        image_root: str | Path | None = None,
        joints: str = "canonical",
        source: str | None = None,
    ) -> None:
        files = annotation_files(root)  # before the base checks: root may be a file
        folder = Path(root) if Path(root).is_dir() else Path(root).parent
        super().__init__(folder, split, size=size)  # crops: ``crop`` and ``scale``, not margin
        self.root = Path(root)
        if crop not in CROPS:
            raise ValueError(f"crop: expected one of {list(CROPS)}, got {crop!r}")
        if not scale > 0:
            raise ValueError(f"scale: expected a positive number, got {scale!r}")
        if joints not in DATASET_ORDERS:
            raise ValueError(f"joints: expected one of {sorted(DATASET_ORDERS)}, got {joints!r}")
        if not files:
            raise DataError(f"{root}: no annotations.json in it or in its subfolders")
        self.crop, self.scale, self.mirror_left, self.joints = crop, scale, mirror_left, joints
        self.image_root = None if image_root is None else Path(image_root)
        self.evaluation_only = is_evaluation_only(self.root)
        self._items: list[dict[str, Any]] = []
        for path in files:
            if source is None or _source_name(path) == source:
                self._index(path)
        if not self._items:
            raise DataError(f"{root}: no labelled hand found (source={source!r})")

    def _index(self, path: Path) -> None:
        data = read_json(path, "COCO keypoint annotations")
        if not isinstance(data, dict) or not {"images", "annotations"} <= set(data):
            raise DataError(f"{path}: expected a COCO dict with 'images' and 'annotations'")
        images = {img["id"]: img for img in data["images"]}
        for ann in data["annotations"]:
            where = f"{path} (annotation {ann.get('id', '?')})"
            if ann.get("image_id") not in images:
                raise DataError(f"{where}: image_id {ann.get('image_id')!r} not in 'images'")
            for kps, box, side, suffix in _hands(ann, where):
                if not (kps[:, 2] > 0).any():
                    self.skipped["no labelled joint"] = self.skipped.get("no labelled joint", 0) + 1
                    continue
                image = images[ann["image_id"]]
                self._items.append(
                    {
                        "file": (self.image_root or path.parent) / image["file_name"],
                        "kps": to_canonical(kps, self.joints),
                        "box": box,
                        "side": side,
                        "source": _source_name(path),
                        "id": f"{ann.get('id', len(self._items))}{suffix}",
                    }
                )

    def __len__(self) -> int:
        return len(self._items)

    def sample_id(self, index: int) -> str:
        item = self._items[index]
        return f"{item['source']}/{item['id']}"

    def load_frame(self, index: int) -> dict[str, Any]:
        item = self._items[index]
        rgb = read_image(item["file"], sample_id=self.sample_id(index))
        kps = item["kps"]
        vis = kps[:, 2] > 0
        box = item["box"]
        if box is None:  # the labelled keypoints' tight box
            box = np.concatenate([kps[vis, :2].min(0), kps[vis, :2].max(0)]).astype(np.float32)
        return {
            "image": torch.from_numpy(rgb).permute(2, 0, 1).float() / 255.0,
            "keypoints": as_float(np.where(vis[:, None], kps[:, :2], 0.0)),
            "visibility": as_float(vis),
            "meta": self._meta(
                index, item["file"], item["side"], box=as_float(box), source=item["source"]
            ),
        }

    def affine(
        self, keypoints: torch.Tensor, visibility: torch.Tensor, box: torch.Tensor, side: str
    ) -> torch.Tensor:
        """The (2, 3) source px -> crop px affine of one hand (this dataset's crop options)."""
        mirror = self.mirror_left and side == "left"
        if self.crop == "upright":
            centre, length, angle = upright_box(
                keypoints, scale=self.scale, visibility=visibility, box=box
            )
            return crop_affine(centre, length, self.size, angle=angle, mirror=mirror)
        centre = (box[:2] + box[2:]) / 2
        length = (box[2:] - box[:2]).amax() * self.scale
        return crop_affine(centre, length.clamp(min=1.0), self.size, mirror=mirror)

    def finish(self, raw: dict[str, Any]) -> dict[str, Any]:
        """Validate a full frame and crop it with this dataset's options (:meth:`affine`)."""
        validate_sample(raw)
        if self.size is None:
            return raw
        meta = raw["meta"]
        affine = self.affine(raw["keypoints"], raw["visibility"], meta["box"], meta["side"])
        mirrored = self.mirror_left and meta["side"] == "left"
        return {
            "image": warp_crop(raw["image"], affine, self.size).clamp(0, 1),
            "keypoints": raw["keypoints"] @ affine[:, :2].T + affine[:, 2],
            "visibility": raw["visibility"],
            "meta": {**meta, "affine": affine, "crop": self.crop, "mirrored": mirrored},
        }
