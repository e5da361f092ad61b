"""The one model contract every handlab model follows: RGB, depth, joints and clips alike.

Taught in chapter 01 (``notebooks/01_simplebaseline.py``); chapter 08 explains a foreign network
made to follow it with :func:`handlab.models.wrap`.

What a model **declares** (class attributes of :class:`PoseModel`; read them through
:func:`contract`, which holds the one set of defaults for modules that do not subclass it):

- ``input_kind``: what ``forward`` reads, a key of :data:`INPUT_KINDS` -- ``"rgb"`` images
  ``(B, 3, H, W)`` float in [0, 1]; ``"depth"`` ``(B, 1, H, W)`` mm; ``"keypoints"`` ``(B, J, 2)``
  px (lifting); ``"xyz"`` ``(B, J, 3)`` mm (IK); ``"clip"`` ``(B, T, 3, H, W)`` in [0, 1].
  Any normalisation happens inside the model, so attribution paths and baselines live in image
  space.
- ``is_3d`` (outputs ``xyz``), ``num_joints`` (J, 21 for the canonical hand).
- ``masked_input``: depth models that read a segmented hand (A2J, V2V); training and evaluation
  zero the input outside the batch's ``mask``.
- ``clip_length``: frames per clip ``T`` for ``"clip"`` models, else ``None``.
- ``input_size``: the one square side in px the model accepts, or ``None`` when it takes a range.

What it **provides**:

- ``forward(x)`` -> a ``dict`` of tensors with at least ``"keypoints"`` ``(B, J, 2)`` input pixels
  (x, y); 3D models add ``"xyz"`` ``(B, J, 3)`` mm, root-relative; raw outputs keep their names
  (``"heatmaps"``, ``"coords"``, ...).
- ``decode(outputs)`` -> ``{"keypoints": ..., ("xyz": ...)}`` from the raw outputs,
  *differentiably*. ``forward``'s ``"keypoints"`` may come from a sharper non-differentiable
  decoder; both agree closely (``tests/models/test_contract.py`` checks every registered model).
- ``loss(outputs, batch)`` -> ``(loss, logs)``, only to be trained by ``handlab train``.

What **attribution needs** (PoseIG, the indices, the randomisation test): ``forward`` and a
differentiable ``decode`` on images of ``input_kind`` -- nothing else. :func:`check_pose_model`
raises a clear error where a module lacks them; :func:`check_rgb_range` catches images scaled
0-255 or ImageNet-normalised before they are silently explained.

>>> from handlab.models import create
>>> contract(create("simplebaseline", head_width=32))
ModelContract(input_kind='rgb', is_3d=False, num_joints=21, masked_input=False, \
clip_length=None, input_size=None, trainable=True)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from handlab._checks import check_finite, check_shape

__all__ = [
    "INPUT_KINDS",
    "ModelContract",
    "PoseModel",
    "check_images",
    "check_model_input",
    "check_pose_model",
    "check_rgb_range",
    "contract",
]

# input_kind -> the batch field forward reads (training, evaluation and the runner pick it)
INPUT_KINDS = {
    "rgb": "image",
    "depth": "depth",
    "keypoints": "keypoints",
    "xyz": "xyz",
    "clip": "clip",
}
# Slack around [0, 1]: resampling overshoots a little; 0-255 images (max >> 1) and
# ImageNet-normalised ones (min near -2) are far outside it.
RANGE_SLACK = 0.05


def check_images(
    images: object, *, channels: int, min_size: int = 32, name: str = "images"
) -> None:
    """Validate a model input batch ``(B, C, H, W)``: type, channels, size, finiteness."""
    if not isinstance(images, torch.Tensor):
        raise TypeError(
            f"{name}: expected a torch.Tensor (B, {channels}, H, W), got {type(images).__name__}"
        )
    check_shape(name, images, (None, channels, None, None))
    h, w = images.shape[-2:]
    if min(h, w) < min_size:
        raise ValueError(f"{name}: expected H and W >= {min_size}, got ({h}, {w})")
    check_finite(name, images)


def check_rgb_range(images: torch.Tensor, name: str = "images") -> None:
    """Raise ``ValueError`` unless RGB ``images`` hold values in [0, 1] (small slack).

    >>> check_rgb_range(torch.full((1, 3, 4, 4), 200.0))
    Traceback (most recent call last):
    ...
    ValueError: images: expected RGB values in [0, 1], got min 200, max 200 (0-255 values? \
divide by 255; handlab models normalise inside)
    """
    lo, hi = float(images.min()), float(images.max())
    if lo >= -RANGE_SLACK and hi <= 1 + RANGE_SLACK:
        return
    hint = "0-255 values? divide by 255" if hi > 2 and lo >= -RANGE_SLACK else "normalised?"
    if lo < -RANGE_SLACK:
        hint = "ImageNet-normalised? pass the raw images"
    raise ValueError(
        f"{name}: expected RGB values in [0, 1], got min {lo:.3g}, max {hi:.3g} "
        f"({hint}; handlab models normalise inside)"
    )


class PoseModel(nn.Module):
    """Base class: subclasses set the class attributes and implement ``forward`` and ``decode``."""

    input_kind: str = "rgb"  # a key of INPUT_KINDS
    is_3d: bool = False
    num_joints: int = 21
    masked_input: bool = False  # depth read only inside the batch mask (A2J, V2V)
    clip_length: int | None = None  # T for "clip" models
    input_size: int | None = None  # the one square side accepted, or None for a range

    def decode(self, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Differentiable decode of raw outputs to ``keypoints`` (B, J, 2) px (and ``xyz``)."""
        raise NotImplementedError(f"{type(self).__name__}.decode")

    def check_input(self, images: torch.Tensor) -> None:
        check_images(images, channels=3 if self.input_kind == "rgb" else 1)


@dataclass(frozen=True)
class ModelContract:
    """What :func:`contract` reads from a model (see the module docstring for each field)."""

    input_kind: str
    is_3d: bool
    num_joints: int | None  # None: a plain module that does not say
    masked_input: bool
    clip_length: int | None
    input_size: int | None
    trainable: bool  # has ``loss(outputs, batch)``

    @property
    def batch_key(self) -> str:
        """The batch field ``forward`` reads (``"image"`` for RGB)."""
        return INPUT_KINDS[self.input_kind]


def contract(model: nn.Module) -> ModelContract:
    """The declared contract of ``model``; a module that declares nothing gets the defaults of
    :class:`PoseModel` (an RGB 2D model), so small test modules and wrapped networks work.

    Raises ``ValueError`` for an ``input_kind`` outside :data:`INPUT_KINDS`.
    """
    # The one place where attributes are read with defaults (issue 20: they were read with
    # getattr(..., default) in training, evaluation and attribution).
    kind = getattr(model, "input_kind", PoseModel.input_kind)
    if kind not in INPUT_KINDS:
        raise ValueError(f"model.input_kind: expected one of {sorted(INPUT_KINDS)}, got {kind!r}")
    return ModelContract(
        input_kind=kind,
        is_3d=bool(getattr(model, "is_3d", PoseModel.is_3d)),
        num_joints=getattr(model, "num_joints", None),
        masked_input=bool(getattr(model, "masked_input", PoseModel.masked_input)),
        clip_length=getattr(model, "clip_length", None),
        input_size=getattr(model, "input_size", None),
        trainable=callable(getattr(model, "loss", None)),
    )


def check_pose_model(model: object, name: str = "model") -> ModelContract:
    """Raise a clear error unless ``model`` can be evaluated and explained; return its contract.

    >>> check_pose_model(nn.Conv2d(3, 21, 1))
    Traceback (most recent call last):
    ...
    TypeError: model: Conv2d has no decode(outputs) method; a plain network becomes a handlab \
pose model with handlab.models.wrap(module, output='heatmaps' or 'coords')
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"{name}: expected a torch.nn.Module, got {type(model).__name__}")
    if not callable(getattr(model, "decode", None)):
        raise TypeError(
            f"{name}: {type(model).__name__} has no decode(outputs) method; a plain network "
            "becomes a handlab pose model with handlab.models.wrap(module, "
            "output='heatmaps' or 'coords')"
        )
    return contract(model)


def check_model_input(
    model: nn.Module, images: torch.Tensor, name: str = "images", *, values: bool = True
) -> None:
    """Raise a clear error unless ``images`` (B, C, H, W) can feed ``model`` as declared: a pose
    model (:func:`check_pose_model`), 3 channels in [0, 1] for RGB (1 for depth; the range only
    with ``values``), and the model's ``input_size`` where it has one.

    >>> check_model_input(PoseModel(), torch.rand(1, 1, 64, 64))
    Traceback (most recent call last):
    ...
    ValueError: images: expected 3 channels for this model (input_kind 'rgb'), got 1 in shape \
(1, 1, 64, 64)
    """
    declared = check_pose_model(model)
    if declared.input_kind not in ("rgb", "depth") or images.dim() != 4:
        return  # joints and clips are checked by the models themselves
    channels = 3 if declared.input_kind == "rgb" else 1
    if images.shape[1] != channels:
        raise ValueError(
            f"{name}: expected {channels} channels for this model (input_kind "
            f"{declared.input_kind!r}), got {images.shape[1]} in shape {tuple(images.shape)}"
        )
    size = declared.input_size
    if size is not None and tuple(images.shape[-2:]) != (size, size):
        raise ValueError(
            f"{name}: expected {size}x{size} px for this model (input_size {size}), got "
            f"{tuple(images.shape[-2:])}; resize or crop the images to {size} px"
        )
    if values and declared.input_kind == "rgb":
        check_rgb_range(images, name)
