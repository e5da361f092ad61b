"""PoseIG attribution engine: targets, paths, the engine, captum bridge, indices, randomisation.

Taught in chapters 08 (PoseIG), 09 (indices), 10 (sanity checks) and 11 (comparing the zoo).
"""

from handlab.attribution.analysis import compare_models, inversion_errors, mcp_shortcut
from handlab.attribution.bridge import captum_forward, explain_joint, explain_joints
from handlab.attribution.config import PoseIGConfig
from handlab.attribution.engine import PoseIGResult, attribution_maps, integrate, poseig
from handlab.attribution.indices import (
    aggregate,
    diffusion_index,
    foreground_index,
    index_table,
    localization_index,
    relation_index,
    relation_table,
)
from handlab.attribution.paths import (
    BlurPath,
    StraightPath,
    gaussian_blur,
    make_baseline,
    quadrature,
)
from handlab.attribution.randomization import (
    map_similarity,
    randomization_test,
    randomization_units,
)
from handlab.attribution.targets import (
    ALPHA,
    TARGETS,
    JointLikelihood,
    JointSubset,
    joint_likelihood,
)

__all__ = [
    "ALPHA",
    "TARGETS",
    "BlurPath",
    "JointLikelihood",
    "JointSubset",
    "PoseIGConfig",
    "PoseIGResult",
    "StraightPath",
    "aggregate",
    "attribution_maps",
    "captum_forward",
    "compare_models",
    "diffusion_index",
    "explain_joint",
    "explain_joints",
    "foreground_index",
    "gaussian_blur",
    "index_table",
    "integrate",
    "inversion_errors",
    "joint_likelihood",
    "localization_index",
    "make_baseline",
    "map_similarity",
    "mcp_shortcut",
    "poseig",
    "quadrature",
    "randomization_test",
    "randomization_units",
    "relation_index",
    "relation_table",
]
