"""The synthetic hand generator: a pose sampler, a renderer, sequences (the articulated hand it
poses is core vocabulary, :mod:`handlab.hand_model`).

Taught in chapter 00 (``notebooks/00_tour.py``).

>>> out = generate(2, seed=0, size=64)
>>> sorted(out)
['K', 'depth', 'image', 'keypoints', 'mask', 'visibility', 'xyz']
"""

from handlab.synth.dataset import SyntheticHands, generate
from handlab.synth.poses import sample_pose, sample_shape
from handlab.synth.renderer import KEYS, render
from handlab.synth.scene import SceneOptions, sample_params
from handlab.synth.sequences import generate_sequence, sample_sequence_params

__all__ = [
    "KEYS",
    "SceneOptions",
    "SyntheticHands",
    "generate",
    "generate_sequence",
    "render",
    "sample_params",
    "sample_pose",
    "sample_sequence_params",
    "sample_shape",
]
