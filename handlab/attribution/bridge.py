"""The captum bridge: any captum attribution method explains one joint of any handlab model.

Taught in chapter 08 (``notebooks/08_poseig.py``) and used in chapter 11 (comparing the zoo).

captum explains one scalar per example (``target`` picks a column of a ``(B, T)`` output). The
bridge turns ``(model, target_keypoints)`` into that ``(B, J)`` output: the per-joint likelihood
of :class:`~handlab.attribution.targets.JointLikelihood`. The targets travel as captum's
``additional_forward_args``, so every method expands them with the inputs the way it expands
its own batch (IG's steps, NoiseTunnel's samples, DeepLift's baselines, Occlusion's patches).

>>> from captum.attr import Saliency
>>> from handlab.attribution.targets import JointLikelihood
>>> class Mean(nn.Module):
...     def forward(self, images):
...         return {"keypoints": images.mean((1, 2, 3))[:, None, None].expand(-1, 1, 2) * 10}
...     def decode(self, outputs):
...         return outputs
>>> x = torch.rand(2, 3, 8, 8)
>>> explain_joint(Saliency, Mean(), x, torch.zeros(2, 1, 2), joint=0).shape
torch.Size([2, 3, 8, 8])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from handlab._checks import check_shape
from handlab.attribution.engine import _inference_mode
from handlab.attribution.targets import ALPHA, DEFAULT_TARGET, JointLikelihood, _check_targets

__all__ = ["captum_forward", "explain_joint", "explain_joints"]


def captum_forward(
    model: nn.Module,
    target_keypoints: torch.Tensor,
    *,
    alpha: float = ALPHA,
    space: str = "2d",
    target: str = DEFAULT_TARGET,
    images: torch.Tensor | None = None,
) -> tuple[JointLikelihood, tuple[torch.Tensor, torch.Tensor | None]]:
    """The forward function and its extra arguments for any captum method.

    Args:
        model, target_keypoints, alpha, space, target: as in
            :class:`~handlab.attribution.targets.JointLikelihood`.
        images: (B, C, H, W) the explained inputs; needed by the ``"fixed_window"`` target (its
            window is placed at their heatmaps' argmax).

    Returns:
        ``(forward, additional_forward_args)``: ``forward(images (N, C, H, W), targets,
        anchors)`` -> likelihoods (N, J); pass ``target=j`` and ``additional_forward_args`` to
        ``attribute``.

    >>> class Zero(nn.Module):
    ...     def forward(self, images):
    ...         return {"keypoints": torch.zeros(images.shape[0], 3, 2)}
    ...     def decode(self, outputs):
    ...         return outputs
    >>> fwd, extra = captum_forward(Zero(), torch.zeros(1, 3, 2))
    >>> fwd(torch.zeros(1, 3, 4, 4), *extra).shape
    torch.Size([1, 3])
    """
    _check_targets(model, target_keypoints, space)
    forward = JointLikelihood(model, alpha=alpha, space=space, target=target)
    if forward.target == "fixed_window" and images is None:
        raise ValueError("images: the 'fixed_window' target needs the explained images")
    anchors = None if images is None else forward.anchors(images)
    return forward, (target_keypoints, anchors)


def explain_joint(
    explainer: Callable[[nn.Module], Any],
    model: nn.Module,
    images: torch.Tensor,
    target_keypoints: torch.Tensor,
    joint: int,
    *,
    alpha: float = ALPHA,
    space: str = "2d",
    target: str = DEFAULT_TARGET,
    **attribute_kwargs: Any,
) -> torch.Tensor:
    """Explain one joint's likelihood with a captum method.

    Args:
        explainer: builds the captum object from the forward module, e.g. ``Saliency``,
            ``lambda f: LayerGradCam(f, f.model.layer4)`` or ``lambda f: NoiseTunnel(Saliency(f))``.
        model: a handlab pose model (put in eval mode, parameters frozen while explaining).
        images: (B, C, H, W); target_keypoints: (B, J, 2) px or (B, J, 3) mm (``space="3d"``).
        joint: the joint index j in [0, J); alpha, space, target: the explained likelihood.
        attribute_kwargs: passed to ``attribute`` (``baselines``, ``n_steps``, ...).

    Returns:
        what the method's ``attribute`` returns (usually (B, C, H, W)).
    """
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images: expected a torch.Tensor, got {type(images).__name__}")
    check_shape("images", images, (None, None, None, None))
    with torch.no_grad(), _inference_mode(model):
        forward, extra = captum_forward(
            model, target_keypoints, alpha=alpha, space=space, target=target, images=images
        )
    check_shape("images", images, (target_keypoints.shape[0], None, None, None))
    joints = target_keypoints.shape[1]
    if not isinstance(joint, int) or not 0 <= joint < joints:
        raise ValueError(f"joint: expected an int in [0, {joints}), got {joint!r}")
    with _inference_mode(model):
        method = explainer(forward)
        return method.attribute(
            images, target=joint, additional_forward_args=extra, **attribute_kwargs
        )


def explain_joints(
    explainer: Callable[[nn.Module], Any],
    model: nn.Module,
    images: torch.Tensor,
    target_keypoints: torch.Tensor,
    **kwargs: Any,
) -> torch.Tensor:
    """:func:`explain_joint` for every joint, stacked: (B, J, ...) (one captum call per joint)."""
    joints = target_keypoints.shape[1] if isinstance(target_keypoints, torch.Tensor) else 0
    out = [
        explain_joint(explainer, model, images, target_keypoints, j, **kwargs)
        for j in range(joints)
    ]
    if not out:
        raise ValueError("target_keypoints: expected a (B, J, D) tensor with J >= 1")
    return torch.stack(out, dim=1)
