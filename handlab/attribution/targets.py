"""The explained scalar: one likelihood per joint, from the model's differentiable decoder.

Taught in chapter 08 (``notebooks/08_poseig.py``).

PoseIG (He et al., CVPR 2023) explains every pose model through one scalar per joint,

    f_j(x) = exp(-alpha * || k_j(x) - k_j_gt ||_2),   f_j in (0, 1],

where ``k_j(x)`` is the joint decoded *differentiably* from the model's raw outputs. The reference
decodes heatmaps with a global fixed-temperature soft-argmax (beta = 10), which drags border peaks
10-28 px toward the centre and so mixes amplitude with localisation error. handlab never decodes
on its own: it calls ``model.decode(model(images))`` (the model contract in
:mod:`handlab.models.base`), and heatmap families decode with :mod:`handlab.codecs`' local
soft-argmax in a window around the argmax, which is unbiased on clean Gaussian peaks anywhere on
the map. Distances are in input-image pixels (2D) or millimetres (3D, root-relative ``xyz``), so
``alpha`` has the unit 1/px or 1/mm and means the same for every model.
"""

from __future__ import annotations

import torch
from torch import nn

from handlab._checks import check_finite, check_range, check_shape, check_tensor
from handlab.models.base import check_pose_model, contract

__all__ = ["ALPHA", "JointLikelihood", "joint_likelihood"]

ALPHA = 0.3  # PoseIG's alpha; here in 1/px (2D) or 1/mm (3D). f = 0.74 at 1 px, 0.05 at 10 px.


def _check_targets(model: nn.Module, target: torch.Tensor, space: str) -> None:
    check_tensor("target_keypoints", target)
    dims = 3 if space == "3d" else 2
    check_shape("target_keypoints", target, (None, None, dims))
    check_finite("target_keypoints", target)
    if space == "3d" and not contract(model).is_3d:
        raise ValueError(
            "space: expected '2d' for a model without 3D output (is_3d False), got '3d'"
        )


class JointLikelihood(nn.Module):
    """Wrap a pose model as ``images (N, C, H, W) -> likelihoods (N, J)`` in (0, 1].

    ``forward(images, target_keypoints)`` takes the targets as an argument (not a closure) so
    that captum's ``additional_forward_args`` expands them with the inputs for every method
    (IG's steps, NoiseTunnel's samples, DeepLift's baselines). If ``images`` holds ``k`` times as
    many rows as the targets, the targets are tiled ``k`` times (the step-major layout handlab's
    engine uses).

    Args:
        model: a handlab pose model (``model(images) -> dict``, ``model.decode``).
        alpha: decay of the likelihood, 1/px (space ``"2d"``) or 1/mm (``"3d"``).
        space: ``"2d"`` compares ``keypoints`` (N, J, 2) input pixels (x, y); ``"3d"`` compares
            ``xyz`` (N, J, 3) mm, root-relative.

    >>> from handlab.attribution.targets import JointLikelihood
    >>> class Fixed(nn.Module):
    ...     def forward(self, images):
    ...         return {"keypoints": images.mean((1, 2, 3))[:, None, None].expand(-1, 2, 2)}
    ...     def decode(self, outputs):
    ...         return {"keypoints": outputs["keypoints"]}
    >>> f = JointLikelihood(Fixed(), alpha=0.5)
    >>> f(torch.zeros(1, 3, 4, 4), torch.tensor([[[0.0, 0.0], [3.0, 4.0]]])).tolist()
    [[1.0, 0.0820...]]
    """

    def __init__(self, model: nn.Module, *, alpha: float = ALPHA, space: str = "2d") -> None:
        super().__init__()
        check_pose_model(model)
        check_range("alpha", alpha, lo=0.0)
        if space not in ("2d", "3d"):
            raise ValueError(f"space: expected '2d' or '3d', got {space!r}")
        self.model = model
        self.alpha = float(alpha)
        self.space = space

    def decoded(self, images: torch.Tensor) -> torch.Tensor:
        """The differentiably decoded joints: (N, J, 2) px or (N, J, 3) mm."""
        decoded = self.model.decode(self.model(images))
        key = "xyz" if self.space == "3d" else "keypoints"
        if not isinstance(decoded, dict) or key not in decoded:
            got = sorted(decoded) if isinstance(decoded, dict) else type(decoded).__name__
            raise ValueError(f"model.decode: expected a dict with a {key!r} entry, got {got}")
        joints = decoded[key]
        if images.requires_grad and torch.is_grad_enabled() and not joints.requires_grad:
            # what torch reports later as "element 0 of tensors does not require grad"
            raise ValueError(
                f"model.decode: its {key!r} carry no gradient with respect to the images; "
                "attribution needs a differentiable decode (an argmax or a detach() cuts the "
                "graph: use a soft-argmax, e.g. handlab.models.wrap(module, output='heatmaps'))"
            )
        return joints

    def forward(self, images: torch.Tensor, target_keypoints: torch.Tensor) -> torch.Tensor:
        pred = self.decoded(images)  # (N, J, D)
        target = target_keypoints.to(pred.dtype)
        if pred.shape[0] != target.shape[0]:
            if pred.shape[0] % target.shape[0]:
                raise ValueError(
                    f"target_keypoints: expected a batch dividing {pred.shape[0]}, "
                    f"got {target.shape[0]}"
                )
            target = target.repeat(pred.shape[0] // target.shape[0], 1, 1)
        if pred.shape[1:] != target.shape[1:]:
            raise ValueError(
                f"target_keypoints: expected joints/dims {tuple(pred.shape[1:])} like the model's "
                f"decode, got {tuple(target.shape[1:])}"
            )
        distance = torch.linalg.vector_norm(pred - target, dim=-1)  # (N, J) px or mm
        return torch.exp(-self.alpha * distance)


def joint_likelihood(
    model: nn.Module,
    images: torch.Tensor,
    target_keypoints: torch.Tensor,
    *,
    alpha: float = ALPHA,
    space: str = "2d",
) -> torch.Tensor:
    """Per-joint likelihoods ``exp(-alpha * distance)`` (B, J) in (0, 1].

    Args:
        model: a handlab pose model; its ``decode`` gives the differentiable joints.
        images: (B, C, H, W) model input (RGB in [0, 1] or depth in mm).
        target_keypoints: (B, J, 2) input pixels (x, y), or (B, J, 3) mm root-relative for
            ``space="3d"``.
        alpha: 1/px (2D) or 1/mm (3D).

    >>> class Zero(nn.Module):
    ...     def forward(self, images):
    ...         return {"keypoints": torch.zeros(images.shape[0], 1, 2)}
    ...     def decode(self, outputs):
    ...         return outputs
    >>> joint_likelihood(Zero(), torch.zeros(1, 3, 8, 8), torch.tensor([[[3.0, 4.0]]]), alpha=0.1)
    tensor([[0.6065]])
    """
    _check_targets(model, target_keypoints, space)
    check_tensor("images", images)
    check_shape("images", images, (target_keypoints.shape[0], None, None, None))
    return JointLikelihood(model, alpha=alpha, space=space)(images, target_keypoints)
