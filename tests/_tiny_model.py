"""A tiny model that follows the handlab model contract, and a toy data set, for training tests.

Registered only for the duration of a test (``tiny_registry`` fixture in the test modules), so
the registry-wide model tests never see it.
"""

from __future__ import annotations

import torch
from torch import nn

from handlab.models.base import PoseModel

TINY = "tiny_test_model"


class TinyPose(PoseModel):
    """conv -> pool -> linear: keypoints (B, 21, 2) px and optionally xyz (B, 21, 3) mm."""

    def __init__(self, *, size: int = 32, width: int = 8, with_xyz: bool = False) -> None:
        super().__init__()
        self.size, self.is_3d = size, with_xyz
        self.features = nn.Sequential(nn.Conv2d(3, width, 3, stride=2, padding=1), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.head = nn.Linear(width * 16, 21 * (5 if with_xyz else 2))

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        self.check_input(images)
        f = self.pool(self.features(images)).flatten(1)  # (B, width * 16)
        out = self.head(f)  # (B, 21 * k)
        res = {"raw": out}
        res.update(self.decode(res))
        return res

    def decode(self, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        raw = outputs["raw"]
        b = raw.shape[0]
        kps = (torch.sigmoid(raw[:, :42]) * self.size - 0.5).view(b, 21, 2)
        res = {"keypoints": kps}
        if self.is_3d:
            xyz = raw[:, 42:].view(b, 21, 3) * 50.0
            res["xyz"] = xyz - xyz[:, :1]
        return res

    def loss(self, outputs, batch):
        vis = batch["visibility"][..., None]  # (B, 21, 1)
        l2d = ((outputs["keypoints"] - batch["keypoints"]).abs() * vis).mean() / self.size
        logs = {"l2d": float(l2d.detach())}
        loss = l2d
        if self.is_3d:
            rel = batch["xyz"] - batch["xyz"][:, :1]
            l3d = (outputs["xyz"] - rel).abs().mean() / 100.0
            loss = loss + l3d
            logs["l3d"] = float(l3d.detach())
        return loss, logs


def build_tiny(**config) -> TinyPose:
    return TinyPose(**config)


class ToyHands(torch.utils.data.Dataset):
    """``n`` samples of ``size`` px: a fixed 21-point template shifted at random, a bright blob
    at each keypoint on noise, seeded per index (learnable: the template, then the shift)."""

    def __init__(self, split: str, size: int = 32, n: int = 24) -> None:
        self.split, self.size, self.n = split, size, n
        self.offset = {"train": 0, "val": 10_000, "test": 20_000}[split]

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        if not 0 <= i < self.n:
            raise IndexError(i)
        g = torch.Generator().manual_seed(self.offset + i)
        s = self.size
        angles = torch.arange(21) * 2.4  # (21,) a spiral template, radius up to s / 4
        radius = torch.linspace(1.0, s / 4, 21)
        template = torch.stack([angles.cos(), angles.sin()], dim=1) * radius[:, None]
        shift = (torch.rand(2, generator=g) - 0.5) * (s / 4)
        kps = s / 2 - 0.5 + template + shift  # (21, 2) px
        image = 0.2 * torch.rand(3, s, s, generator=g)
        ys, xs = torch.meshgrid(torch.arange(s), torch.arange(s), indexing="ij")
        for x, y in kps:
            image[0] += torch.exp(-((xs - x) ** 2 + (ys - y) ** 2) / 4.0)
        xyz = torch.cat([kps - s / 2, torch.full((21, 1), 400.0)], dim=1)  # (21, 3) mm
        return {
            "image": image.clamp(0, 1),
            "keypoints": kps,
            "visibility": (torch.rand(21, generator=g) > 0.1).float(),
            "xyz": xyz,
            "K": torch.eye(3),
            "meta": {"id": str(i)},
        }
