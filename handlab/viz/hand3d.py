"""Interactive 3D hands with plotly: joints, bones coloured by finger, optional point cloud.

Taught in chapter 00 (``notebooks/00_tour.py``).

Coordinates are the camera frame in mm (x right, y down, z forward); the figure's camera looks
along +z with -y up, so the hand appears as in the image.

>>> import torch
>>> fig = hand_figure(torch.rand(21, 3) * 50 + torch.tensor([0.0, 0.0, 400.0]))
>>> [t.name for t in fig.data]
['wrist-thumb', 'wrist-index', 'wrist-middle', 'wrist-ring', 'wrist-little', 'joints']
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from handlab._checks import Array, check_shape, to_numpy
from handlab.skeleton import FINGERS, JOINT_NAMES, NUM_JOINTS
from handlab.viz.draw import FINGER_COLORS, joint_colors

__all__ = ["hand_figure"]


def hand_figure(
    xyz: Array,
    *,
    visibility: Array | None = None,
    points: Array | None = None,
    title: str | None = None,
    max_points: int = 20000,
) -> go.Figure:
    """A plotly figure of one 3D hand.

    Args:
        xyz: (21, 3) mm, camera frame.
        visibility: optional (21,); invisible joints are drawn as open circles (trace
            ``"hidden joints"``), visible ones filled (trace ``"joints"``).
        points: optional (N, 3) mm point cloud (e.g. :func:`handlab.geometry.depth_to_points`),
            drawn small and grey as trace ``"points"``; evenly thinned to ``max_points``.
        title: figure title.

    Returns:
        ``go.Figure`` with one line trace per finger (wrist -> tip, named ``wrist-<finger>``),
        then the joint trace(s), then the points.
    """
    joints = to_numpy("xyz", xyz, dtype=np.float64)
    check_shape("xyz", joints, (NUM_JOINTS, 3))
    vis = np.ones(NUM_JOINTS, dtype=bool)
    if visibility is not None:
        v = to_numpy("visibility", visibility, dtype=np.float64)
        check_shape("visibility", v, (NUM_JOINTS,))
        vis = v > 0
    fig = go.Figure()
    for finger, chain in FINGERS.items():
        idx = [0, *chain]
        fig.add_trace(
            go.Scatter3d(
                x=joints[idx, 0],
                y=joints[idx, 1],
                z=joints[idx, 2],
                mode="lines",
                line={"color": FINGER_COLORS[finger], "width": 6},
                name=f"wrist-{finger}",
                hoverinfo="skip",
            )
        )
    colors = np.array(joint_colors())
    names = np.array(JOINT_NAMES)
    for label, keep, symbol in (("joints", vis, "circle"), ("hidden joints", ~vis, "circle-open")):
        if keep.any():
            fig.add_trace(
                go.Scatter3d(
                    x=joints[keep, 0],
                    y=joints[keep, 1],
                    z=joints[keep, 2],
                    mode="markers",
                    marker={"size": 4, "color": colors[keep].tolist(), "symbol": symbol},
                    text=names[keep].tolist(),
                    name=label,
                    hovertemplate="%{text}<br>(%{x:.1f}, %{y:.1f}, %{z:.1f}) mm<extra></extra>",
                )
            )
    if points is not None:
        pts = to_numpy("points", points, dtype=np.float64)
        check_shape("points", pts, (None, 3))
        if len(pts) > max_points:
            pts = pts[np.linspace(0, len(pts) - 1, max_points).round().astype(int)]
        fig.add_trace(
            go.Scatter3d(
                x=pts[:, 0],
                y=pts[:, 1],
                z=pts[:, 2],
                mode="markers",
                marker={"size": 1.5, "color": "rgba(120,120,120,0.5)"},
                name="points",
                hoverinfo="skip",
            )
        )
    fig.update_layout(
        title=title,
        scene={
            "aspectmode": "data",
            "xaxis_title": "x (mm)",
            "yaxis_title": "y (mm)",
            "zaxis_title": "z (mm)",
            "camera": {"up": {"x": 0, "y": -1, "z": 0}, "eye": {"x": 0, "y": 0, "z": -2}},
        },
        margin={"l": 0, "r": 0, "t": 40 if title else 0, "b": 0},
        legend={"itemsizing": "constant"},
    )
    return fig
