"""`handlab train --model meshgcn` learns every vertex on synthetic scenes (Ge et al.'s full
supervision): the loop adds each sample's mesh ground truth, and augmentation turns it with xyz."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from handlab.mesh import scene_vertices
from handlab.models import create
from handlab.training import fit
from handlab.training.augment import AugmentConfig, apply_augment, sample_augment
from handlab.training.config import TrainConfig
from handlab.training.data import open_split, step_indices
from handlab.training.loop import _step_batch, vertex_targets

SMALL = {"input_size": 64, "head_width": 16, "channels": (16, 8, 8, 8)}


def test_synthetic_batches_carry_the_mesh_of_their_scenes():
    model = create("meshgcn", **SMALL)
    data = open_split("synth", "train", 64)
    vertices = vertex_targets(model, data)
    assert vertices is not None
    config = TrainConfig(model="meshgcn", size=64, batch_size=4, augment={"enabled": False})
    info = SimpleNamespace(rank=0, device=torch.device("cpu"))
    batch = _step_batch(config, data, 3, info, 4, vertices)
    assert batch["vertices"].shape == (4, model.num_vertices, 3)
    idx = step_indices(3, len(data), batch_size=4, seed=config.seed)
    torch.testing.assert_close(
        batch["vertices"], scene_vertices(data.params(idx), model.vertex_template)
    )
    # The mesh sits on the sample's hand: its regressed joints are near the rendered joints.
    joints = model.regressor @ batch["vertices"]  # (4, 21, 3)
    assert float((joints - batch["xyz"]).norm(dim=-1).mean()) < 10.0  # mm; hands are ~180 mm
    # A model without a mesh, or data without scenes, gets no vertices.
    assert vertex_targets(create("simplebaseline", head_width=16), data) is None
    assert vertex_targets(model, [data[0]]) is None


def test_augmentation_turns_vertices_with_xyz():
    g = torch.Generator().manual_seed(0)
    xyz = torch.randn(2, 21, 3, generator=g) * 50 + torch.tensor([0.0, 0.0, 400.0])
    batch = {
        "image": torch.rand(2, 3, 64, 64, generator=g),
        "keypoints": torch.rand(2, 21, 2, generator=g) * 63,
        "visibility": torch.ones(2, 21),
        "xyz": xyz,
        "vertices": torch.cat([xyz, xyz[:, :5] * 1.1], 1),  # the joints among the vertices
    }
    params = sample_augment(2, g, AugmentConfig(), 64)
    out = apply_augment(batch, params)
    assert not torch.allclose(out["vertices"], batch["vertices"])
    torch.testing.assert_close(out["vertices"][:, :21], out["xyz"])


@pytest.mark.slow
def test_meshgcn_trains_with_its_vertex_loss(tmp_path, monkeypatch):
    seen = []
    loss = type(create("meshgcn", **SMALL)).loss

    def spy(self, outputs, batch):
        seen.append("vertices" in batch)
        return loss(self, outputs, batch)

    monkeypatch.setattr(type(create("meshgcn", **SMALL)), "loss", spy)
    config = TrainConfig(
        model="meshgcn",
        model_config=SMALL,
        size=64,
        steps=2,
        batch_size=2,
        val_every=2,
        val_limit=4,
        test_limit=4,
        augment={"enabled": False},
        device="cpu",
    )
    fit(config, tmp_path / "run", progress=False)
    assert seen and all(seen)
