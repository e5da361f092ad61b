"""Drawing: matplotlib figures (:mod:`handlab.viz.draw`), plotly 3D hands
(:mod:`handlab.viz.hand3d`), ipywidgets explorers and notebook set-up.

Taught in chapter 00 (``notebooks/00_tour.py``). Nothing in handlab below this package imports it,
and importing the package itself loads neither matplotlib nor plotly.
"""
