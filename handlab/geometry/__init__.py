"""Camera geometry, crops, rotations and Procrustes alignment: the shared 3D vocabulary.

Taught in chapter 00 (``notebooks/00_tour.py``).

Conventions used everywhere in handlab:

- ``xyz`` (..., J, 3) are millimetres in the camera frame (x right, y down, z forward).
- ``K`` (..., 3, 3) is the pinhole intrinsic matrix ``[[fx, 0, cx], [0, fy, cy], [0, 0, 1]]``.
- ``keypoints`` / ``uv`` (..., J, 2) are pixels ``(x, y)``. **Integer coordinates are pixel
  centres**: the pixel in column 0 covers ``x`` in ``[-0.5, 0.5)``, an image of width ``W`` spans
  ``[-0.5, W - 0.5]``. Every resize, crop and heatmap stride in handlab follows this rule.
- ``uvd`` (..., J, 3) are ``(u px, v px, depth mm)``.

One module per job: :mod:`~handlab.geometry.camera` (project, unproject, depth to points),
:mod:`~handlab.geometry.crops` (hand boxes, crops and their affines) and
:mod:`~handlab.geometry.rotations` (rotation conversions, Procrustes). Every name is imported here,
so ``from handlab.geometry import project`` and ``geometry.crop_to_hand`` work as before.

>>> import torch
>>> K = torch.tensor([[500.0, 0, 64], [0, 500.0, 64], [0, 0, 1]])
>>> project(torch.tensor([[10.0, -20.0, 500.0]]), K).tolist()
[[74.0, 44.0]]
"""

from handlab.geometry.camera import depth_to_points, project, project_uvd, unproject
from handlab.geometry.crops import (
    apply_affine,
    crop_affine,
    crop_to_hand,
    hand_box,
    invert_affine,
    upright_box,
    warp_crop,
)
from handlab.geometry.rotations import (
    axis_angle_to_matrix,
    matrix_to_axis_angle,
    matrix_to_quaternion,
    matrix_to_rot6d,
    procrustes,
    quaternion_to_matrix,
    rot6d_to_matrix,
)

__all__ = [
    "apply_affine",
    "axis_angle_to_matrix",
    "crop_affine",
    "crop_to_hand",
    "depth_to_points",
    "hand_box",
    "invert_affine",
    "matrix_to_axis_angle",
    "matrix_to_quaternion",
    "matrix_to_rot6d",
    "procrustes",
    "project",
    "project_uvd",
    "quaternion_to_matrix",
    "rot6d_to_matrix",
    "unproject",
    "upright_box",
    "warp_crop",
]
