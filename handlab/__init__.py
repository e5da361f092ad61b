"""handlab: an interpretability and teaching workbook for hand pose estimation.

The package is layered (see README, "Architecture"):

- shared vocabulary, pure functions: :mod:`handlab.skeleton`, :mod:`handlab.geometry`,
  :mod:`handlab.codecs`, :mod:`handlab.metrics`;
- data: :mod:`handlab.synth` (the embedded synthetic hands) and :mod:`handlab.data` (real datasets);
- models, training and the shipped zoo; attribution; drawing; the command line and reports.

Chapter 00 (``notebooks/00_tour.py``) tours the vocabulary and the generator.
"""

__version__ = "0.1.0"
