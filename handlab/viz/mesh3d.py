"""Plotly pieces for comparing 3D hands: skeleton traces to overlay, and the hand model's surface
(its capsules) as a triangle mesh.

Taught in chapter 03 (``notebooks/03_2d_to_3d.py``, 2D -> 3D): a fitted
:class:`handlab.hand_model.HandModel` is drawn as the capsules the renderer uses
(:meth:`~handlab.hand_model.HandModel.surface`), with the predicted and true skeletons over it.
:func:`handlab.viz.hand3d.hand_figure` draws one hand; these traces add more to its figure.

Coordinates are mm in any frame (the camera frame in the chapters).

>>> import torch
>>> vertices, faces = capsule_mesh(torch.zeros(1, 3), torch.tensor([[0.0, 10.0, 0.0]]),
...                                torch.tensor([2.0]), segments=8, rings=3)
>>> vertices.shape, faces.shape  # 2 x 3 rings of 8 vertices; 5 bands of 8 quads, 2 triangles each
((48, 3), (80, 3))
>>> fig = go.Figure([skeleton_trace(torch.rand(21, 3), name="pred")])
>>> fig.data[0].name
'pred'
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from handlab._checks import Array, check_shape, to_numpy
from handlab.skeleton import BONES, NUM_JOINTS

__all__ = ["capsule_mesh", "skeleton_trace", "surface_trace"]


def _frames(axis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two unit vectors (P, 3) perpendicular to each unit ``axis`` (P, 3) and to each other."""
    helper = np.eye(3)[np.abs(axis).argmin(-1)]  # the coordinate axis least aligned with it
    u = np.cross(axis, helper)
    u /= np.linalg.norm(u, axis=-1, keepdims=True)
    return u, np.cross(axis, u)


def capsule_mesh(
    start: Array, end: Array, radius: Array, *, segments: int = 12, rings: int = 4
) -> tuple[np.ndarray, np.ndarray]:
    """Triangulate capsules (a cylinder between two hemispheres each).

    Args:
        start, end: (P, 3) mm, the capsule axes' end points.
        radius: (P,) mm.
        segments: vertices around each ring (>= 3).
        rings: latitude rings per hemisphere (>= 2; the first is the pole).

    Returns:
        ``vertices`` (P * 2 * rings * segments, 3) mm and ``faces`` (F, 3) int vertex indices,
        two triangles per quad between consecutive rings of a capsule (pole rings collapse to a
        point, giving harmless degenerate triangles).
    """
    a, b, r = (
        to_numpy("start", start, finite=True, dtype=np.float64),
        to_numpy("end", end, finite=True, dtype=np.float64),
        to_numpy("radius", radius, finite=True, dtype=np.float64),
    )
    check_shape("start", a, (None, 3))
    check_shape("end", b, (a.shape[0], 3))
    check_shape("radius", r, (a.shape[0],))
    if segments < 3 or rings < 2:
        raise ValueError(f"segments, rings: expected >= 3 and >= 2, got {segments}, {rings}")
    length = np.linalg.norm(b - a, axis=-1, keepdims=True)  # (P, 1)
    axis = np.where(length > 1e-9, (b - a) / np.maximum(length, 1e-9), [0.0, 0.0, 1.0])
    u, v = _frames(axis)
    lat = np.linspace(-np.pi / 2, 0.0, rings)  # (R,) south pole -> equator
    lat = np.concatenate([lat, -lat[::-1]])  # (2R,) then equator -> north pole
    centre = np.where((np.arange(2 * rings) < rings)[None, :, None], a[:, None], b[:, None])
    lon = np.linspace(0.0, 2 * np.pi, segments, endpoint=False)  # (S,)
    ring = np.cos(lon)[:, None] * u[:, None] + np.sin(lon)[:, None] * v[:, None]  # (P, S, 3)
    vertices = (
        centre[:, :, None]  # (P, 2R, 1, 3)
        + (r[:, None] * np.sin(lat))[:, :, None, None] * axis[:, None, None]
        + (r[:, None] * np.cos(lat))[:, :, None, None] * ring[:, None]
    )  # (P, 2R, S, 3)
    n_rings = 2 * rings
    i, j = np.meshgrid(np.arange(n_rings - 1), np.arange(segments), indexing="ij")
    p00 = i * segments + j
    p01 = i * segments + (j + 1) % segments
    p10, p11 = p00 + segments, p01 + segments
    quads = np.stack([p00, p10, p11, p01], -1).reshape(-1, 4)  # one capsule's quads
    tris = np.concatenate([quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]])  # (F0, 3)
    offsets = np.arange(len(a))[:, None, None] * n_rings * segments
    faces = (tris[None] + offsets).reshape(-1, 3)
    return vertices.reshape(-1, 3), faces


def surface_trace(
    start: Array,
    end: Array,
    radius: Array,
    *,
    name: str = "surface",
    color: str = "#E8B89A",
    opacity: float = 0.35,
) -> go.Mesh3d:
    """A ``go.Mesh3d`` of capsules (e.g. one hand of ``HandModel().surface(pose, shape)``, moved
    into the camera frame): ``start``/``end`` (P, 3) mm, ``radius`` (P,) mm.

    >>> import torch
    >>> trace = surface_trace(torch.zeros(2, 3), torch.ones(2, 3), torch.ones(2))
    >>> trace.type, len(trace.i) == 2 * 2 * (2 * 4 - 1) * 12
    ('mesh3d', True)
    """
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity: expected a value in [0, 1], got {opacity}")
    vertices, faces = capsule_mesh(start, end, radius)
    return go.Mesh3d(
        x=vertices[:, 0],
        y=vertices[:, 1],
        z=vertices[:, 2],
        i=faces[:, 0],
        j=faces[:, 1],
        k=faces[:, 2],
        color=color,
        opacity=opacity,
        name=name,
        showlegend=True,
        hoverinfo="skip",
        flatshading=False,
    )


def skeleton_trace(
    xyz: Array, *, name: str, color: str = "#444444", dash: str = "solid", width: float = 5.0
) -> go.Scatter3d:
    """One ``go.Scatter3d`` with the 20 bones and 21 joints of a hand in one colour, to overlay
    several hands (prediction vs ground truth) in one figure. ``xyz`` (21, 3) mm.

    >>> import torch
    >>> trace = skeleton_trace(torch.zeros(21, 3), name="gt", dash="dash")
    >>> len(trace.x) == 3 * len(BONES), trace.line.dash
    (True, 'dash')
    """
    joints = to_numpy("xyz", xyz, finite=True, dtype=np.float64)
    check_shape("xyz", joints, (NUM_JOINTS, 3))
    segs = np.full((len(BONES), 3, 3), np.nan)  # each bone: parent, child, a NaN break
    segs[:, 0] = joints[[p for p, _ in BONES]]
    segs[:, 1] = joints[[c for _, c in BONES]]
    pts = segs.reshape(-1, 3)
    return go.Scatter3d(
        x=pts[:, 0],
        y=pts[:, 1],
        z=pts[:, 2],
        mode="lines+markers",
        line={"color": color, "width": width, "dash": dash},
        marker={"size": 2.5, "color": color},
        name=name,
        connectgaps=False,
        hovertemplate=name + "<br>(%{x:.1f}, %{y:.1f}, %{z:.1f}) mm<extra></extra>",
    )
