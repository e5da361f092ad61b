"""Clips: a strip of frames with skeletons, and ``ClipExplorer``, a clip viewer with a slider.

Taught in chapter 07 (``notebooks/07_deformer.py``).

A *track* is one skeleton per frame, ``(N, T, 21, 2)`` px for ``N`` clips of ``T`` frames: the
ground truth, a model's per-frame output, its fused output. Each track is drawn in one colour;
the ground truth (the track named ``"truth"``) in per-finger colours, hollow where hidden.

>>> import matplotlib
>>> matplotlib.use("Agg")
>>> clips = torch.rand(2, 3, 3, 32, 32)
>>> ex = ClipExplorer(clips, {"truth": torch.rand(2, 3, 21, 2) * 31})
>>> ex.frame.value = 2
>>> ex.rendered["frame"], ex.rendered["tracks"]
(2, ['truth'])
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from handlab._checks import check_shape, check_tensor
from handlab.viz.draw import draw_skeleton
from handlab.viz.widgets import Explorer, show_figure

__all__ = ["ClipExplorer", "draw_frame", "plot_clip"]

TRUTH = "truth"
# Colours of the model tracks, in order (Okabe-Ito, distinct from the finger colours' use).
TRACK_COLORS = ("#56B4E9", "#F0E442", "#D55E00", "#FFFFFF")


def _check(clips: torch.Tensor, tracks: Mapping[str, torch.Tensor]) -> tuple[int, int]:
    check_tensor("clips", clips)
    check_shape("clips", clips, (None, None, 3, None, None))
    n, t = clips.shape[:2]
    if not isinstance(tracks, Mapping):
        raise TypeError(f"tracks: expected a dict name -> (N, T, 21, 2), got {type(tracks)}")
    for name, kp in tracks.items():
        check_shape(f"tracks[{name!r}]", kp, (n, t, 21, 2))
    return n, t


def draw_frame(
    ax: Axes,
    frame: torch.Tensor,
    tracks: Mapping[str, torch.Tensor],
    visibility: torch.Tensor | None = None,
) -> None:
    """Draw one frame (3, H, W) and one skeleton (21, 2) px per track on ``ax``."""
    ax.imshow(frame.detach().permute(1, 2, 0).clamp(0, 1).cpu().numpy())
    colors = iter(TRACK_COLORS)
    for name, kp in tracks.items():
        if name == TRUTH:
            draw_skeleton(ax, kp, visibility, markersize=8, linewidth=1.2, label=name)
        else:
            color = next(colors, "#FFFFFF")
            draw_skeleton(ax, kp, color=color, markersize=6, linewidth=1.0, label=name)
    h, w = frame.shape[-2:]
    ax.set_xlim(-0.5, w - 0.5)  # the frame, not the skeletons: a wild prediction is cut off
    ax.set_ylim(h - 0.5, -0.5)
    ax.axis("off")


def plot_clip(
    clips: torch.Tensor,
    tracks: Mapping[str, torch.Tensor],
    *,
    index: int = 0,
    visibility: torch.Tensor | None = None,
    occlusion: torch.Tensor | None = None,
) -> Figure:
    """All ``T`` frames of clip ``index`` in a row, with every track's skeleton.

    Args:
        clips: (N, T, 3, H, W) in [0, 1].
        tracks: name -> (N, T, 21, 2) px; the one named ``"truth"`` in finger colours.
        visibility: optional (N, T, 21) of the truth.
        occlusion: optional (N, T, 21) per-joint occlusion; each title shows the frame's mean.

    >>> fig = plot_clip(torch.rand(1, 3, 3, 32, 32), {"truth": torch.rand(1, 3, 21, 2) * 31})
    >>> len(fig.axes)
    3
    >>> plt.close(fig)
    """
    _, t = _check(clips, tracks)
    c = t // 2
    fig, axes = plt.subplots(1, t, figsize=(2.2 * t, 2.6), squeeze=False)
    for k, ax in enumerate(axes[0]):
        frame_tracks = {name: kp[index, k] for name, kp in tracks.items()}
        vis = None if visibility is None else visibility[index, k]
        draw_frame(ax, clips[index, k], frame_tracks, vis)
        title = f"t={k}" + (" (centre)" if k == c else "")
        if occlusion is not None:
            title += f"\nocclusion {100 * float(occlusion[index, k].mean()):.0f}%"
        ax.set_title(title, fontsize=8)
    axes[0, -1].legend(fontsize=6, loc="lower right")
    fig.tight_layout()
    return fig


class ClipExplorer(Explorer):
    """A clip viewer: sliders for the clip and the frame, a choice of tracks; ``.widget`` is the
    box to display. Each change redraws the frame; ``rendered`` records what was drawn.

    Args:
        clips: (N, T, 3, H, W) in [0, 1].
        tracks: name -> (N, T, 21, 2) px (``"truth"`` drawn in finger colours).
        visibility: optional (N, T, 21) of the truth.
        occlusion: optional (N, T, 21); the frame's mean occlusion is shown in the title.
    """

    def __init__(
        self,
        clips: torch.Tensor,
        tracks: Mapping[str, torch.Tensor],
        *,
        visibility: torch.Tensor | None = None,
        occlusion: torch.Tensor | None = None,
    ) -> None:
        import ipywidgets as W

        n, t = _check(clips, tracks)
        if not tracks:
            raise ValueError("tracks: expected at least one track, got none")
        self.clips, self.tracks = clips, dict(tracks)
        self.visibility, self.occlusion = visibility, occlusion
        self.clip = W.IntSlider(value=0, min=0, max=n - 1, description="clip")
        self.frame = W.IntSlider(value=t // 2, min=0, max=t - 1, description="frame")
        self.shown = W.SelectMultiple(
            options=list(self.tracks), value=tuple(self.tracks), description="tracks"
        )
        rows = [W.HBox([self.clip, self.frame]), self.shown]
        self._start((self.clip, self.frame, self.shown), rows)

    def render(self) -> None:
        """Redraw the current frame of the current clip (called by every widget change)."""
        i, k = self.clip.value, self.frame.value
        names = list(self.shown.value)
        fig, ax = plt.subplots(figsize=(4, 4))
        vis = None if self.visibility is None else self.visibility[i, k]
        draw_frame(ax, self.clips[i, k], {n: self.tracks[n][i, k] for n in names}, vis)
        title = f"clip {i}, frame {k}"
        if self.occlusion is not None:
            title += f", occlusion {100 * float(self.occlusion[i, k].mean()):.0f}%"
        ax.set_title(title, fontsize=9)
        if names:
            ax.legend(fontsize=7, loc="lower right")
        show_figure(self.output, fig)
        self.rendered = {"clip": i, "frame": k, "tracks": names}
