"""Boukhayma et al.'s image -> hand-model regression: valid hands, 2D-only training."""

from __future__ import annotations

import pytest
import torch
from _overfit import loss_curve

from handlab.hand_model import POSE_LIMITS, HandModel
from handlab.models import create


def test_predictions_are_valid_hands_whatever_the_network_says():
    torch.manual_seed(0)
    model = create("handmodel_regression", input_size=64)
    with torch.no_grad():
        model.fc.weight.normal_(0.0, 5.0)  # wild outputs
        out = model(torch.rand(3, 3, 64, 64))
    lim = POSE_LIMITS
    fingers = out["pose"][:, 1:]
    assert bool(((fingers >= lim[1:, :, 0] - 1e-5) & (fingers <= lim[1:, :, 1] + 1e-5)).all())
    assert float(out["shape"].abs().max()) <= 3.0
    # The joints are the hand model's for the predicted parameters (bone lengths included).
    torch.testing.assert_close(out["xyz"], HandModel()(out["pose"], out["shape"]))


def test_zero_output_is_the_rest_hand_at_the_centre():
    model = create("handmodel_regression", input_size=64)
    with torch.no_grad():
        model.fc.weight.zero_()
        out = model(torch.rand(1, 3, 64, 64))
    assert float(out["pose"].abs().max()) < 1e-2  # each finger at its rest angle
    torch.testing.assert_close(out["keypoints"][0, 0], torch.tensor([31.5, 31.5]))


@pytest.mark.parametrize("with_3d", [False, True])
def test_trains_from_2d_keypoints_alone_or_with_3d(with_3d):
    torch.manual_seed(0)
    model = create("handmodel_regression", input_size=64, w3d=1.0 if with_3d else 0.0)
    images = torch.rand(2, 3, 64, 64)
    batch = {"keypoints": torch.rand(2, 21, 2) * 30 + 17, "visibility": torch.ones(2, 21)}
    if with_3d:
        batch["xyz"] = HandModel()(torch.zeros(2, 16, 3)) + 500.0
    losses, logs = loss_curve(model, [images], batch, steps=20, lr=1e-3)
    assert ("mpjpe_mm" in logs) == with_3d
    assert losses[-1] < 0.8 * losses[0]
