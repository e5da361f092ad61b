"""One frozen :class:`PoseIGConfig`: every PoseIG setting, its one default and the reason for it.

Taught in chapter 08 (``notebooks/08_poseig.py``).

The config travels whole from the command line (``handlab attribute``) through
:func:`~handlab.attribution.runner.run_attribution` and
:func:`~handlab.attribution.explain.explain_batch` to the engine
(:func:`~handlab.attribution.engine.poseig`). Functions that take a config also take keyword
overrides of its fields (``poseig(model, x, t, steps=8)`` is
``poseig(model, x, t, PoseIGConfig(steps=8))``), so a setting is added in one place: a field here.

>>> cfg = PoseIGConfig(steps=16)
>>> cfg.steps, cfg.path, resolve(cfg, method="riemann_left").method
(16, 'blur', 'riemann_left')
>>> resolve(None, stepz=3)
Traceback (most recent call last):
...
TypeError: stepz: not a PoseIGConfig field; expected one of [...]
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch

from handlab._checks import check_range
from handlab.attribution.paths import BASELINES, METHODS, BlurPath, StraightPath
from handlab.attribution.targets import ALPHA, DEFAULT_TARGET, TARGETS

__all__ = [
    "DEFAULT_MAX_BATCH",
    "DEFAULT_METHOD",
    "DEFAULT_PILOT",
    "DEFAULT_STEPS",
    "PoseIGConfig",
    "resolve",
]

# Gauss-Legendre at 32 points with a 64-forward pilot and the heatmap_match target: mean
# completeness gap 3.5 % (straight path) and 5.4 % (blur path) on simplebaseline_r18, where the
# plain rules stay at 18-28 % (benchmarks/results/attribution_targets.json, docs/attribution.md).
DEFAULT_METHOD = "gausslegendre"
DEFAULT_STEPS = 32
# 64 gradient-free forwards cost a fraction of 32 points x 21 joints' VJPs and find the stretch
# of the path where the network switches on (the last few % of the blur path).
DEFAULT_PILOT = 64
# Images per forward (path points x images). Measured on this 2-core CPU, 1 thread, 8 points x 4
# images of a trained SimpleBaseline: ResNet-50 took 66.9 s at 32, 44.8 s at 16, 51.4 s at 8
# (larger chunks spill the activations of the shared graph out of cache); ResNet-18 was the same
# at 8, 16 and 32 (21.3-23.3 s).
DEFAULT_MAX_BATCH = 16


@dataclass(frozen=True)
class PoseIGConfig:
    """Every setting of a PoseIG run (He et al., CVPR 2023), with one default each.

    path: ``"blur"`` (PoseIG's progressive blur), ``"straight"`` (from ``baseline``) or a
        prebuilt :class:`~handlab.attribution.paths.StraightPath` / ``BlurPath``.
    method, steps: the quadrature rule and its number of points (``paths.quadrature``).
    pilot: forwards without gradients that place the nodes where the likelihood changes
        (``engine.warp_nodes``, per image); 0: the rule's own nodes (better where the integrand
        is smooth all along, e.g. an analytic model: the warp keeps the rule's order only up to
        its cubic map). With a pilot the nodes depend on all explained joints.
    baseline: straight path start: "black", "mean", "blur", "uniform", "gaussian" or a tensor.
    alpha: likelihood decay, 1/px (2D) or 1/mm (3D); space: "2d" (keypoints) or "3d" (xyz).
    target: the explained scalar per joint (:data:`~handlab.attribution.targets.TARGETS`).
    joints: explain only these joint indices (None: all); one VJP per joint and path point.
    kernel_size, sigma, folds: the blur path (px); ``folds`` blur levels, None: continuous.
    noise_samples, noise_level, noise_aggregate: SmoothGrad over the path (0: off).
    max_batch: most images per forward; vectorize: batched VJPs; seed: noise and baselines.
    """

    path: str | StraightPath | BlurPath = "blur"  # PoseIG's progressive blur (LAM's path)
    method: str = DEFAULT_METHOD
    steps: int = DEFAULT_STEPS
    pilot: int = DEFAULT_PILOT
    baseline: str | torch.Tensor = "black"  # straight path only; captum's default
    alpha: float = ALPHA  # PoseIG's 0.3, in 1/px here: f = 0.74 at 1 px, 0.05 at 10 px
    space: str = "2d"
    target: str = DEFAULT_TARGET
    joints: tuple[int, ...] | None = None
    kernel_size: int = 31  # the reference's blur kernel (px)
    sigma: float = 19.0  # the reference's largest blur (px)
    folds: int | None = 50  # the reference's 50 blur levels, linear in between
    noise_samples: int = 0
    noise_level: float = 0.01  # SmoothGrad's std as a share of each image's range
    noise_aggregate: str = "mean"  # or "mean_square" (SmoothGrad-squared)
    max_batch: int = DEFAULT_MAX_BATCH
    vectorize: bool = False  # a plain VJP loop measured faster on the project's CPU
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.path, str | StraightPath | BlurPath) or (
            isinstance(self.path, str) and self.path not in ("blur", "straight")
        ):
            raise ValueError(
                f"path: expected 'blur', 'straight' or a path object, got {self.path!r}"
            )
        if self.method not in METHODS:
            raise ValueError(f"method: expected one of {list(METHODS)}, got {self.method!r}")
        if isinstance(self.baseline, str) and self.baseline not in BASELINES:
            raise ValueError(f"baseline: expected one of {list(BASELINES)}, got {self.baseline!r}")
        if self.space not in ("2d", "3d"):
            raise ValueError(f"space: expected '2d' or '3d', got {self.space!r}")
        if self.target not in TARGETS:
            raise ValueError(f"target: expected one of {list(TARGETS)}, got {self.target!r}")
        if self.noise_aggregate not in ("mean", "mean_square"):
            raise ValueError(
                f"noise_aggregate: expected 'mean' or 'mean_square', got {self.noise_aggregate!r}"
            )
        if self.joints is not None:
            joints = tuple(int(j) for j in self.joints)
            if not joints or min(joints) < 0 or len(set(joints)) != len(joints):
                raise ValueError(
                    f"joints: expected distinct indices >= 0, at least one, got {self.joints!r}"
                )
            object.__setattr__(self, "joints", joints)
        check_range("steps", self.steps, lo=1)
        check_range("noise_samples", self.noise_samples, lo=0)
        check_range("pilot", self.pilot, lo=0)
        check_range("max_batch", self.max_batch, lo=1)
        check_range("alpha", self.alpha, lo=0.0)

    def settings(self) -> dict[str, Any]:
        """The fields as plain JSON values (for manifests); raises for tensors and path objects."""
        out = dataclasses.asdict(self)
        for name in ("path", "baseline"):
            if not isinstance(out[name], str):
                raise ValueError(
                    f"{name}: expected a name to record, got {type(out[name]).__name__}"
                )
        out["joints"] = None if self.joints is None else list(self.joints)
        return out


_FIELDS = tuple(f.name for f in dataclasses.fields(PoseIGConfig))


def resolve(config: PoseIGConfig | None = None, **overrides: Any) -> PoseIGConfig:
    """``config`` (default :class:`PoseIGConfig()`) with ``overrides`` of its fields applied."""
    if config is not None and not isinstance(config, PoseIGConfig):
        raise TypeError(f"config: expected a PoseIGConfig, got {type(config).__name__}")
    unknown = sorted(set(overrides) - set(_FIELDS))
    if unknown:
        raise TypeError(
            f"{', '.join(unknown)}: not a PoseIGConfig field; expected one of {list(_FIELDS)}"
        )
    return dataclasses.replace(config or PoseIGConfig(), **overrides)
