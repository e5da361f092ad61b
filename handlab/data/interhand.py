"""InterHand2.6M (Moon et al., ECCV 2020): single and interacting hands, multi-view studio.

No chapter teaches this module yet (chapter "00" is the placeholder).

Layout under ``root`` (5 fps release)::

    annotations/SPLIT/InterHand2.6M_SPLIT_data.json      COCO style: images, annotations
    annotations/SPLIT/InterHand2.6M_SPLIT_camera.json    capture -> campos/camrot/focal/princpt
    annotations/SPLIT/InterHand2.6M_SPLIT_joint_3d.json  capture -> frame -> world_coord (42, 3)
    images/SPLIT/Capture0/SEQ/cam400002/image2017.jpg    (the data.json ``file_name``)

``images`` entries carry ``id``, ``file_name``, ``capture``, ``camera``, ``frame_idx``;
``annotations`` carry ``image_id``, ``joint_valid`` (42 flags) and ``hand_type`` (``right``,
``left`` or ``interacting``). The 42 joints are the right hand (0-20) then the left (21-41), each
in InterHand order (thumb tip to base, index, middle, ring, little, wrist last). World
coordinates are mm; the camera frame is ``R (world - campos)`` with ``R = camrot``; the
intrinsics are ``focal`` and ``princpt``.

Protocol: official ``train`` / ``val`` / ``test`` splits. handlab returns one item per annotated
hand: a ``right`` or ``left`` annotation gives that hand, an ``interacting`` one gives both
(``meta["id"]`` is ``"ANNOTATIONID_side"``, ``meta["hand_type"]`` the annotation's type); hands
with no valid joint are skipped and counted in ``skipped``. ``visibility`` is ``joint_valid``
and, as in every loader without a per-image visibility flag, requires the joint to project inside
the image: valid joints outside the frame become invisible (``meta["n_outside"]`` counts them).
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
    read_json,
)
from handlab.geometry import project
from handlab.skeleton import to_canonical

__all__ = ["InterHand26M"]

HANDS = {"right": slice(0, 21), "left": slice(21, 42)}
_IMAGE_KEYS = ("id", "file_name", "capture", "camera", "frame_idx")


class InterHand26M(HandDataset):
    """InterHand2.6M loader (see the module docstring for the layout and protocol).

    Args:
        root: folder holding ``annotations/`` and ``images/``.
        split: ``"train"``, ``"val"`` or ``"test"``.
        size, margin: crop options (:class:`handlab.data.schema.HandDataset`).
    """

    name = "interhand"
    splits = ("train", "val", "test")

    def __init__(
        self, root: str | Path, split: str = "test", *, size: int | None = 128, margin: float = 1.3
    ) -> None:
        super().__init__(root, split, size=size, margin=margin)
        ann_dir = self.root / "annotations" / split
        stem = f"InterHand2.6M_{split}"
        self._data_path = ann_dir / f"{stem}_data.json"
        data = read_json(self._data_path, "InterHand2.6M images and annotations")
        self._camera_path = ann_dir / f"{stem}_camera.json"
        self._cameras = read_json(self._camera_path, "InterHand2.6M cameras")
        self._joints = read_json(ann_dir / f"{stem}_joint_3d.json", "InterHand2.6M 3D joints")
        self._joint_path = ann_dir / f"{stem}_joint_3d.json"
        try:
            images = {img["id"]: img for img in data["images"]}
            annotations = data["annotations"]
        except (KeyError, TypeError) as err:
            raise DataError(
                f"{self._data_path}: expected COCO 'images' and 'annotations' ({err!r})"
            ) from err
        for img in images.values():
            missing = [k for k in _IMAGE_KEYS if not isinstance(img, dict) or k not in img]
            if missing:
                raise DataError(f"{self._data_path} (image {img.get('id')}): missing {missing}")
        self._images = images
        self._items: list[tuple[dict[str, Any], str]] = []
        annotated = set()
        for ann in annotations:
            self._check_annotation(ann, images)
            annotated.add(ann["image_id"])
            valid = np.asarray(ann["joint_valid"], dtype=np.float64).reshape(-1)
            hand_type = ann["hand_type"]
            sides = ("right", "left") if hand_type == "interacting" else (hand_type,)
            for side in sides:
                if valid[HANDS[side]].any():
                    self._items.append((ann, side))
                else:
                    self.skipped["hand without valid joints"] = (
                        self.skipped.get("hand without valid joints", 0) + 1
                    )
        missing = len(images) - len(annotated)
        if missing > 0:
            raise DataError(
                f"{self._data_path}: {missing} of {len(images)} images have no annotation "
                "(annotation list shorter than the image list)"
            )

    def _check_annotation(self, ann: Any, images: dict[Any, Any]) -> None:
        aid = ann.get("id", "?") if isinstance(ann, dict) else "?"
        where = f"{self._data_path} (annotation {aid})"
        if not isinstance(ann, dict) or not {"image_id", "joint_valid", "hand_type"} <= set(ann):
            raise DataError(f"{where}: expected image_id, joint_valid and hand_type")
        if ann["image_id"] not in images:
            raise DataError(f"{where}: image_id {ann['image_id']} is not in 'images'")
        if ann["hand_type"] not in ("right", "left", "interacting"):
            raise DataError(
                f"{where}: hand_type expected right/left/interacting, got {ann['hand_type']!r}"
            )
        if np.asarray(ann["joint_valid"]).size != 42:
            raise DataError(f"{where}: joint_valid expected 42 flags")

    def __len__(self) -> int:
        return len(self._items)

    def sample_id(self, index: int) -> str:
        ann, side = self._items[index]
        return f"{ann.get('id', ann['image_id'])}_{side}"

    def _camera(self, img: dict[str, Any], sid: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        capture, cam = str(img["capture"]), str(img["camera"])
        try:
            c = self._cameras[capture]
            pos = np.asarray(c["campos"][cam], dtype=np.float64)
            rot = np.asarray(c["camrot"][cam], dtype=np.float64)
            (fx, fy), (cx, cy) = c["focal"][cam], c["princpt"][cam]
        except (KeyError, TypeError, ValueError) as err:
            raise DataError(
                f"{self._camera_path} "
                f"(sample {sid}): no camera {cam} of capture {capture} ({err!r})"
            ) from err
        K = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], dtype=np.float64)
        return pos, rot, K

    def _world(self, img: dict[str, Any], sid: str) -> np.ndarray:
        try:
            world = self._joints[str(img["capture"])][str(img["frame_idx"])]["world_coord"]
        except (KeyError, TypeError) as err:
            raise DataError(
                f"{self._joint_path} (sample {sid}): no joints for capture {img.get('capture')} "
                f"frame {img.get('frame_idx')} ({err!r})"
            ) from err
        world = np.asarray(world, dtype=np.float64)
        if world.shape != (42, 3):
            raise DataError(
                f"{self._joint_path} (sample {sid}): world_coord expected (42, 3), "
                f"got {world.shape}"
            )
        return world

    def load_frame(self, index: int) -> dict[str, Any]:
        ann, side = self._items[index]
        sid = self.sample_id(index)
        img = self._images[ann["image_id"]]
        pos, rot, K = self._camera(img, sid)
        cam = (self._world(img, sid) - pos) @ rot.T  # R (world - campos), mm
        hand = HANDS[side]
        xyz = as_float(to_canonical(cam[hand], "interhand"))
        valid = to_canonical(
            np.asarray(ann["joint_valid"], dtype=np.float64).reshape(42)[hand], "interhand"
        )
        path = self.root / "images" / self.split / img["file_name"]
        rgb = read_image(path, sample_id=sid)
        Kt = as_float(K)
        keypoints = project(xyz, Kt)
        # a joint behind the camera projects to a meaningless pixel: invalid as well
        valid = as_float((valid > 0) & (xyz[:, 2] > 0).numpy())
        visibility, n_out = hide_outside(keypoints, valid, rgb.shape[1], rgb.shape[0])
        return {
            "image": torch.from_numpy(rgb).permute(2, 0, 1).float() / 255.0,
            "xyz": xyz,
            "K": Kt,
            "keypoints": keypoints,
            "visibility": visibility,
            "meta": self._meta(
                index,
                path,
                side,
                hand_type=ann["hand_type"],
                n_outside=n_out,
            ),
        }
