"""A few optimiser steps on one fixed batch: the loss curve that the "it can learn" tests check."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def loss_curve(
    model: torch.nn.Module,
    inputs: Sequence[torch.Tensor],
    batch: dict[str, torch.Tensor],
    *,
    steps: int,
    lr: float = 3e-3,
    optimizer: type[torch.optim.Optimizer] = torch.optim.Adam,
) -> tuple[list[float], dict[str, float]]:
    """``steps`` steps of ``optimizer`` (default Adam) on ``model.loss(model(*inputs), batch)``:
    each step's loss and the last step's logs."""
    opt = optimizer(model.parameters(), lr=lr)
    losses, logs = [], {}
    for _ in range(steps):
        loss, logs = model.loss(model(*inputs), batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses, logs
