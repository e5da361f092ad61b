"""handlab: an interpretability and teaching workbook for hand pose estimation.

The package is layered (see README, "Architecture"):

- shared vocabulary, pure functions: :mod:`handlab.skeleton`, :mod:`handlab.geometry`,
  :mod:`handlab.codecs`, :mod:`handlab.metrics`, :mod:`handlab.hand_model` (the articulated hand);
- data: :mod:`handlab.synth` (the embedded synthetic hands) and :mod:`handlab.data` (real datasets);
- models (:mod:`handlab.models`), training (:mod:`handlab.training`) and the shipped zoo
  (:mod:`handlab.zoo`); attribution (:mod:`handlab.attribution`); drawing (:mod:`handlab.viz`);
- on top: the command line (:mod:`handlab.cli`, one module per subcommand in
  :mod:`handlab.commands`), the figure recipes (:mod:`handlab.figures`) and the papermill reports
  (:mod:`handlab.report`).

Chapter 00 (``notebooks/00_tour.py``) tours the vocabulary and the generator.
"""

__version__ = "0.1.0"
