"""The zoo guard: no collapsed or barely trained model ships.

Taught in chapter 02 (the zoo). Run by the zoo test over every shipped model (CI) and by
``handlab zoo add``, which refuses a run that fails it unless ``--force``.

On the card's fixed synthetic test split a model passes when

1. its error is at most :data:`ERROR_RATIO` (0.5) times the mean-pose baseline's on the same
   samples: 2D EPE (px) for models that read images (RGB frames or clips), root-relative MPJPE
   (mm) for 3D models, both for the RGB 3D ones (HandOccNet, Deformer, DetNet). Depth models
   (A2J, V2V) are held to their 3D error, as the issue's floors hold them: their 2D keypoints
   are the projection of their 3D estimate; the report still lists their 2D ratio;
2. its predictions vary with the input: their spread across images is at least
   :data:`~handlab.training.collapse.SPREAD_FLOOR` of the labels' spread;
3. for models with heatmaps, every joint's map has a peak: contrast (peak minus median) at least
   :data:`~handlab.training.collapse.CONTRAST_FLOOR` on the split's first ``n_images`` images.

The measures live in :mod:`handlab.training.collapse` (``fit`` warns with the same spread).

>>> gt = torch.tensor([[[0.0, 0.0]], [[4.0, 0.0]], [[0.0, 4.0]]])
>>> p = {"keypoints": gt, "pred_keypoints": gt + 0.5, "visibility": torch.ones(3, 1)}
>>> report = check_predictions(p)
>>> report.passed, report.ratios["epe_px"] < 0.5
(True, True)
>>> check_predictions({**p, "pred_keypoints": torch.zeros(3, 1, 2)}).failures[0]
'epe_px 1.02x the mean-pose baseline (2.67 vs 2.62), expected <= 0.5x'
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from handlab.training.collapse import (
    CONTRAST_FLOOR,
    SPREAD_FLOOR,
    heatmap_contrast,
    mean_pose_errors,
    prediction_spread,
)

__all__ = [
    "ERROR_RATIO",
    "GuardError",
    "GuardReport",
    "check",
    "check_predictions",
    "imported_from_real_photos",
]

# The bar: at most half the mean-pose baseline's error on the same samples.
ERROR_RATIO = 0.5


class GuardError(ValueError):
    """A model failed the zoo guard (the message lists each failed check)."""


@dataclass(frozen=True)
class GuardReport:
    """What the guard measured: ``errors`` and ``baselines`` (the mean pose's) keyed
    ``epe_px``/``rr_mpjpe_mm``, ``spread`` keyed ``keypoints``/``xyz`` (predicted over labelled),
    ``contrast`` per joint (None without heatmaps) and ``failures`` (empty when it passed)."""

    errors: dict[str, float]
    baselines: dict[str, float]
    spread: dict[str, float]
    contrast: list[float] | None = None
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def ratios(self) -> dict[str, float]:
        """Each error over the mean-pose baseline's (the guard wants <= ``ERROR_RATIO``)."""
        return {k: self.errors[k] / max(self.baselines[k], 1e-9) for k in self.errors}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with ``ratios`` and ``passed`` (what a card stores as ``guard``)."""
        return {**asdict(self), "ratios": self.ratios, "passed": self.passed}


def check_predictions(
    p: dict[str, torch.Tensor],
    contrast: torch.Tensor | None = None,
    *,
    checked: tuple[str, ...] = ("epe_px", "rr_mpjpe_mm"),
) -> GuardReport:
    """The guard on :func:`handlab.training.evaluation.predict`'s output ``p`` and, for a
    heatmap model, the per-joint ``contrast`` (J,) of :func:`heatmap_contrast`. ``checked``:
    the errors held to :data:`ERROR_RATIO` (all are measured and reported)."""
    from handlab import metrics as M

    baselines = mean_pose_errors(p)
    errors = {}
    if "pred_keypoints" in p:
        errors["epe_px"] = float(M.epe(p["pred_keypoints"], p["keypoints"], p["visibility"]))
    if "pred_xyz" in p:
        errors["rr_mpjpe_mm"] = float(M.mpjpe(p["pred_xyz"], p["xyz"]))
    if not errors:
        raise ValueError("p: expected pred_keypoints or pred_xyz (predict's output)")
    spread = prediction_spread(p)
    failures = []
    for key, err in errors.items():
        base = baselines[key]
        if key in checked and err > ERROR_RATIO * base:
            failures.append(
                f"{key} {err / base:.2f}x the mean-pose baseline ({err:.2f} vs {base:.2f}), "
                f"expected <= {ERROR_RATIO}x"
            )
    for key, value in spread.items():
        if value < SPREAD_FLOOR:
            failures.append(
                f"{key} spread {value:.3f} of the labels' across images, "
                f"expected >= {SPREAD_FLOOR} (predictions do not vary with the input)"
            )
    values = None
    if contrast is not None:
        values = [float(c) for c in contrast]
        flat = [j for j, c in enumerate(values) if c < CONTRAST_FLOOR]
        if flat:
            failures.append(
                f"heatmap contrast below {CONTRAST_FLOOR} for joints {flat} "
                f"(min {min(values):.3g}): flat maps"
            )
    return GuardReport(errors, baselines, spread, values, failures)


@torch.no_grad()
def model_contrast(model: nn.Module, data: Any, n_images: int = 8) -> torch.Tensor | None:
    """Per-joint heatmap contrast (J,) of ``model`` on the first ``n_images`` samples of
    ``data``; None for a model without a ``heatmaps`` output."""
    from handlab.training.data import load_batch, model_inputs

    n = min(int(n_images), len(data))
    if n < 1:
        raise ValueError(f"n_images: expected at least 1 sample, got {n}")
    batch = load_batch(data, range(n))
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = model(model_inputs(model, batch).to(device))
    model.train(was_training)
    return heatmap_contrast(out["heatmaps"]) if "heatmaps" in out else None


def check(
    model: nn.Module,
    *,
    predictions: dict[str, torch.Tensor] | None = None,
    n_images: int = 8,
    batch_size: int = 32,
) -> GuardReport:
    """The guard for ``model`` (from :func:`handlab.zoo.load` or ``load_run``: it reads the
    card's ``eval`` split). ``predictions``: the card split's ``predict`` output when already
    computed (the zoo test's re-evaluation), else it is computed here."""
    from handlab.training.data import open_split
    from handlab.training.evaluation import predict

    card = getattr(model, "card", None)
    if not isinstance(card, dict) or "eval" not in card:
        raise ValueError("model: expected a model from handlab.zoo.load with a card holding 'eval'")
    ev = card["eval"]
    data = open_split(ev["data"], ev["split"], ev["size"])
    if predictions is None:
        predictions = predict(model, data, batch_size=batch_size, limit=ev["limit"])
    reads_images = getattr(model, "input_kind", "rgb") in ("rgb", "clip")
    checked = ("epe_px", "rr_mpjpe_mm") if reads_images else ("rr_mpjpe_mm",)
    if imported_from_real_photos(card):
        # An imported real-trained model (MediaPipe) is not held to the synthetic split's error,
        # which is not its domain; its accuracy floor is on the real development hands
        # (tests/models/test_mediapipe.py). Its predictions must still vary with the input.
        checked = ()
    return check_predictions(predictions, model_contrast(model, data, n_images), checked=checked)


def imported_from_real_photos(card: dict) -> bool:
    """Whether a card is an imported model's whose source says it was trained on real photos.

    >>> imported_from_real_photos({"source": {"trained_on": "real photographs"}})
    True
    >>> imported_from_real_photos({"model": "simplebaseline"})
    False
    """
    source = card.get("source")
    return isinstance(source, dict) and "real" in str(source.get("trained_on", "")).lower()
