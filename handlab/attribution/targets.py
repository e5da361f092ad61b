"""The explained scalar: one likelihood per joint, from the model's differentiable decoder.

Taught in chapter 08 (``notebooks/08_poseig.py``).

PoseIG (He et al., CVPR 2023) explains every pose model through one scalar per joint,

    f_j(x) = exp(-alpha * || k_j(x) - k_j_gt ||_2),   f_j in (0, 1],

where ``k_j(x)`` is the joint decoded *differentiably* from the model's raw outputs. The reference
decodes heatmaps with a global fixed-temperature soft-argmax (beta = 10), which drags border peaks
10-28 px toward the centre and so mixes amplitude with localisation error. handlab decodes with
the model's own decoder; distances are in input-image pixels (2D) or millimetres (3D,
root-relative ``xyz``), so ``alpha`` has the unit 1/px or 1/mm and means the same for every model.

Path attributions integrate ``f_j`` along a path, and a sum of gradients only adds up to
``f_j(x) - f_j(x')`` (completeness) if ``f_j`` is continuous along it. The heatmap families
decode with :mod:`handlab.codecs`' local soft-argmax *in a window around the argmax*: as the
argmax jumps between cells along the path, so does ``k_j``, and no quadrature rule integrates a
jump. The ``target`` option (:data:`TARGETS`) chooses the scalar:

- ``"heatmap_match"`` (the default): how well the heatmap matches the model's own training
  target at the true joint, ``<H_j, E(k_j_gt)> / (||E(k_j_gt)|| sqrt(pi) sigma)`` with ``E`` the
  codec's Gaussian (``GaussianHeatmap.encode``). Linear in the heatmap, so as smooth along a path
  as the network itself; 1 for a clean peak at the joint (away from the border) and, by
  Cauchy-Schwarz, largest exactly where a clean peak is, anywhere on the map (tests check
  < 0.1 px). It is a likelihood in the heatmap's own units (``exp(-d^2 / (4 sigma^2))`` for a
  clean peak ``d`` cells away), not ``exp(-alpha d)``; joints off the map score 0;
- ``"fixed_window"``: the model's local soft-argmax, but its window stays at the argmax of the
  *input's* heatmap along the whole path (no jump; at the input it is the model's decode). Its
  weights ``H^p / sum H^p`` do not depend on the heatmap's scale, so on the faint heatmaps near a
  baseline the decoded joint still swings across the window: continuous, but too steep to
  integrate (benchmarks/results/attribution_targets.json);
- ``"decode"``: ``model.decode`` as is (the window follows the argmax);
- ``"soft_argmax"``: a temperature-smoothed global soft-argmax, the expectation of ``H^p`` over
  the whole map (``p = sigma^2``, the window decoder's weights): continuous, unbiased on clean
  peaks inside the map but pulled inward at the border;
- ``"heatmap_value"``: the heatmap's value at the target joint (bilinear): smooth too, but the
  bilinear surface peaks at a cell centre, up to half a cell from a clean peak.

The four heatmap targets apply to the families that decode with the local soft-argmax
(SimpleBaseline, HRNet, CPM); every other model's decoder is already continuous in its outputs
(integral regression's global soft-argmax, regression's affine map), so every target uses
``model.decode`` there (``JointLikelihood.target`` says which one is used).
A likelihood value is therefore in the target's units: compare values between models only at
the same effective target; maps are max-normalised and compare across targets.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from handlab._checks import check_finite, check_range, check_shape, check_tensor
from handlab.codecs import GaussianHeatmap, soft_argmax_2d
from handlab.models._heatmaps import SoftDecodeMixin
from handlab.models.base import check_pose_model, contract

__all__ = [
    "ALPHA",
    "DEFAULT_TARGET",
    "TARGETS",
    "JointLikelihood",
    "JointSubset",
    "joint_likelihood",
]

ALPHA = 0.3  # PoseIG's alpha; here in 1/px (2D) or 1/mm (3D). f = 0.74 at 1 px, 0.05 at 10 px.
TARGETS = ("heatmap_match", "fixed_window", "decode", "soft_argmax", "heatmap_value")
# benchmarks/attribution_targets.py: the smallest completeness gap per point of the candidates
# that stay unbiased on clean peaks (README, chapter 08).
DEFAULT_TARGET = "heatmap_match"


def _check_targets(model: nn.Module, target: torch.Tensor, space: str) -> None:
    check_tensor("target_keypoints", target)
    dims = 3 if space == "3d" else 2
    check_shape("target_keypoints", target, (None, None, dims))
    check_finite("target_keypoints", target)
    if space == "3d" and not contract(model).is_3d:
        raise ValueError(
            "space: expected '2d' for a model without 3D output (is_3d False), got '3d'"
        )


class JointSubset(nn.Module):
    """A pose model whose ``decode`` keeps only ``joints`` (PoseIG then explains only those).

    ``forward`` is the wrapped model's, unchanged (all joints, every raw output), because
    ``decode`` needs the raw outputs; ``decode`` returns ``keypoints`` (B, len(joints), 2) px and,
    for 3D models, ``xyz`` (B, len(joints), 3) mm. The wrapped model is a submodule, so
    :func:`~handlab.attribution.randomization_units` sees its layers (named ``model.<name>``).

    Args:
        model: a handlab pose model (``forward`` -> dict, ``decode``).
        joints: indices into the model's joints, at least one, no repeats.

    >>> class Two(nn.Module):
    ...     def forward(self, images):
    ...         return {"raw": images.mean((1, 2, 3))}
    ...     def decode(self, outputs):
    ...         k = outputs["raw"][:, None, None].expand(-1, 3, 2) * torch.tensor([1.0, 2.0])
    ...         return {"keypoints": k * torch.arange(3.0)[None, :, None]}
    >>> sub = JointSubset(Two(), [2, 0])
    >>> sub.decode(sub(torch.ones(1, 3, 4, 4)))["keypoints"].tolist()
    [[[2.0, 4.0], [0.0, 0.0]]]
    """

    def __init__(self, model: nn.Module, joints: Sequence[int]) -> None:
        super().__init__()
        declared = check_pose_model(model)
        joints = [int(j) for j in joints]
        total = declared.num_joints
        bad = [j for j in joints if j < 0 or (total is not None and j >= total)]
        if not joints or bad or len(set(joints)) != len(joints):
            raise ValueError(
                f"joints: expected distinct indices in [0, {total}), at least one, got {joints}"
            )
        self.model = model
        self.joints = joints
        self.num_joints = len(joints)
        self.is_3d = declared.is_3d
        self.input_kind = declared.input_kind
        # A new Module is in training mode; poseig restores the wrapper's mode on exit, which
        # would switch a model in eval mode to training (BatchNorm statistics then drift).
        self.train(model.training)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.model(images)

    def decode(self, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        decoded = self.model.decode(outputs)
        index = torch.tensor(self.joints, device=decoded["keypoints"].device)
        return {
            k: v.index_select(1, index) for k, v in decoded.items() if k in ("keypoints", "xyz")
        }


def _heatmap_model(model: nn.Module) -> tuple[nn.Module, list[int] | None]:
    # (the model that makes heatmaps, the joints a JointSubset keeps) or (model, None)
    if isinstance(model, JointSubset):
        base, joints = _heatmap_model(model.model)
        return base, [joints[j] for j in model.joints] if joints else list(model.joints)
    return model, None


class JointLikelihood(nn.Module):
    """Wrap a pose model as ``images (N, C, H, W) -> likelihoods (N, J)`` in (0, 1].

    ``forward(images, target_keypoints, anchors=None)`` takes the targets as arguments (not a
    closure) so that captum's ``additional_forward_args`` expands them with the inputs for every
    method (IG's steps, NoiseTunnel's samples, DeepLift's baselines). If ``images`` holds ``k``
    times as many rows as the targets, the targets are tiled ``k`` times (the step-major layout
    handlab's engine uses).

    Args:
        model: a handlab pose model (``model(images) -> dict``, ``model.decode``).
        alpha: decay of the likelihood, 1/px (space ``"2d"``) or 1/mm (``"3d"``).
        space: ``"2d"`` compares ``keypoints`` (N, J, 2) input pixels (x, y); ``"3d"`` compares
            ``xyz`` (N, J, 3) mm, root-relative.
        target: one of :data:`TARGETS` (module docstring). ``"fixed_window"`` needs the
            ``anchors`` of the input, :meth:`anchors` (None for the other targets).

    >>> class Fixed(nn.Module):
    ...     def forward(self, images):
    ...         return {"keypoints": images.mean((1, 2, 3))[:, None, None].expand(-1, 2, 2)}
    ...     def decode(self, outputs):
    ...         return {"keypoints": outputs["keypoints"]}
    >>> f = JointLikelihood(Fixed(), alpha=0.5)
    >>> f(torch.zeros(1, 3, 4, 4), torch.tensor([[[0.0, 0.0], [3.0, 4.0]]])).tolist()
    [[1.0, 0.0820...]]
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        alpha: float = ALPHA,
        space: str = "2d",
        target: str = DEFAULT_TARGET,
    ) -> None:
        super().__init__()
        check_pose_model(model)
        check_range("alpha", alpha, lo=0.0)
        if space not in ("2d", "3d"):
            raise ValueError(f"space: expected '2d' or '3d', got {space!r}")
        if target not in TARGETS:
            raise ValueError(f"target: expected one of {list(TARGETS)}, got {target!r}")
        self.model = model
        self.alpha = float(alpha)
        self.space = space
        base, self._joints = _heatmap_model(model)
        # the heatmap targets read the maps of a local-window decoder; others use model.decode
        self._base = base if isinstance(base, SoftDecodeMixin) and space == "2d" else None
        self.target = target if self._base is not None else "decode"

    def _heatmaps(self, images: torch.Tensor) -> tuple[torch.Tensor, GaussianHeatmap]:
        maps = self._base(images)["heatmaps"]  # (N, J_all, h, w)
        if self._joints is not None:
            maps = maps[:, self._joints]
        codec = GaussianHeatmap(maps.shape[-2:], self._base.stride, self._base.config.sigma)
        return maps, codec

    @torch.no_grad()
    def anchors(self, images: torch.Tensor) -> torch.Tensor | None:
        """The fixed window's centre, the argmax cell (row, col) of each input heatmap
        (N, J, 2) long; None for targets that need none."""
        if self.target != "fixed_window":
            return None
        maps, _ = self._heatmaps(images)
        flat = maps.flatten(-2).argmax(-1)  # (N, J)
        return torch.stack([flat // maps.shape[-1], flat % maps.shape[-1]], dim=-1)

    def decoded(self, images: torch.Tensor, anchors: torch.Tensor | None = None) -> torch.Tensor:
        """The differentiably decoded joints: (N, J, 2) px or (N, J, 3) mm."""
        if self.target == "fixed_window":
            if anchors is None:
                raise ValueError("anchors: the 'fixed_window' target needs anchors(images)")
            maps, codec = self._heatmaps(images)
            return codec.decode(maps, "local_soft_argmax", peak=_tile(anchors, maps.shape[0]))[0]
        if self.target == "soft_argmax":
            maps, codec = self._heatmaps(images)
            power = codec.sigma**2  # the window decoder's weights H^p, over the whole map
            logmaps = torch.log(maps.clamp(min=1e-10))
            return codec.from_grid(soft_argmax_2d(logmaps, beta=power))
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

    def forward(
        self,
        images: torch.Tensor,
        target_keypoints: torch.Tensor,
        anchors: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if self.target == "heatmap_match":
            maps, codec = self._heatmaps(images)  # (N, J, h, w)
            target = _tile(target_keypoints.to(maps.dtype), maps.shape[0])
            ideal, _ = codec.encode(target.detach())  # (N, J, h, w) the training targets
            norm = ideal.flatten(2).norm(dim=-1)  # (N, J); 0 for targets off the map
            unbounded = math.sqrt(math.pi) * codec.sigma  # ||Gaussian|| on an unbounded grid
            match = (maps * ideal).flatten(2).sum(-1)  # (N, J) <H, E(target)>
            return match / (norm.clamp_min(torch.finfo(maps.dtype).tiny) * unbounded)
        if self.target == "heatmap_value":
            maps, codec = self._heatmaps(images)  # (N, J, h, w)
            target = _tile(target_keypoints.to(maps.dtype), maps.shape[0])
            cells = codec.to_grid(target)  # (N, J, 2) (x, y) cells
            size = torch.tensor(maps.shape[-1:-3:-1], dtype=maps.dtype, device=maps.device)
            grid = (2 * cells + 1) / size - 1  # align_corners=False coordinates
            flat = maps.reshape(-1, 1, *maps.shape[-2:])  # (N * J, 1, h, w)
            value = F.grid_sample(flat, grid.reshape(-1, 1, 1, 2), align_corners=False)
            return value.reshape(maps.shape[:2])  # (N, J) heatmap units
        pred = self.decoded(images, anchors)  # (N, J, D)
        target = _tile(target_keypoints.to(pred.dtype), pred.shape[0])
        if pred.shape[1:] != target.shape[1:]:
            raise ValueError(
                f"target_keypoints: expected joints/dims {tuple(pred.shape[1:])} like the model's "
                f"decode, got {tuple(target.shape[1:])}"
            )
        distance = torch.linalg.vector_norm(pred - target, dim=-1)  # (N, J) px or mm
        return torch.exp(-self.alpha * distance)


def _tile(values: torch.Tensor, rows: int) -> torch.Tensor:
    # (B, ...) -> (rows, ...) by repeating the batch: the engine's step-major layout
    if rows == values.shape[0]:
        return values
    if rows % values.shape[0]:
        raise ValueError(
            f"target_keypoints: expected a batch dividing {rows}, got {values.shape[0]}"
        )
    return values.repeat(rows // values.shape[0], *([1] * (values.ndim - 1)))


def joint_likelihood(
    model: nn.Module,
    images: torch.Tensor,
    target_keypoints: torch.Tensor,
    *,
    alpha: float = ALPHA,
    space: str = "2d",
    target: str = DEFAULT_TARGET,
) -> torch.Tensor:
    """Per-joint likelihoods ``exp(-alpha * distance)`` (B, J) in (0, 1] at the input.

    Args:
        model: a handlab pose model; its ``decode`` gives the differentiable joints.
        images: (B, C, H, W) model input (RGB in [0, 1] or depth in mm).
        target_keypoints: (B, J, 2) input pixels (x, y), or (B, J, 3) mm root-relative for
            ``space="3d"``.
        alpha: 1/px (2D) or 1/mm (3D); target: one of :data:`TARGETS` ("fixed_window" and
            "decode" agree at the input).

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
    fn = JointLikelihood(model, alpha=alpha, space=space, target=target)
    return fn(images, target_keypoints, fn.anchors(images))
