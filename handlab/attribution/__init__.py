"""PoseIG attribution engine: targets, paths, the engine, captum bridge, indices, randomisation.

Taught in chapters 08 (PoseIG), 09 (indices), 10 (sanity checks) and 11 (comparing the zoo).
"""

from handlab.attribution.bridge import captum_forward, explain_joint, explain_joints
from handlab.attribution.engine import PoseIGResult, attribution_maps, integrate, poseig
from handlab.attribution.paths import (
    BlurPath,
    StraightPath,
    gaussian_blur,
    make_baseline,
    quadrature,
)
from handlab.attribution.targets import ALPHA, JointLikelihood, joint_likelihood

__all__ = [
    "ALPHA",
    "BlurPath",
    "JointLikelihood",
    "PoseIGResult",
    "StraightPath",
    "attribution_maps",
    "captum_forward",
    "explain_joint",
    "explain_joints",
    "gaussian_blur",
    "integrate",
    "joint_likelihood",
    "make_baseline",
    "poseig",
    "quadrature",
]
