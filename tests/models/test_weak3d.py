"""Cai et al.'s depth regulariser: which parameters each term trains, the labelled subset."""

from __future__ import annotations

import pytest
import torch

from handlab.data import open_data
from handlab.models import create
from handlab.models.weak3d import labelled

SMALL = {"input_size": 64, "head_width": 16, "hidden": 32}


@pytest.fixture(scope="module")
def batch():
    data = open_data("synth", "train", size=64)
    return data.batch([0, 1, 2, 3])


def _grads(model, batch):
    model.zero_grad()
    loss, logs = model.loss(model(batch["image"]), batch)
    loss.backward()

    def norm(module):
        return sum(float(p.grad.abs().sum()) for p in module.parameters() if p.grad is not None)

    return norm(model.lift), norm(model.depth_decoder), logs


def test_depth_term_trains_the_3d_branch_without_labels(batch):
    torch.manual_seed(0)
    model = create("weak3d", **SMALL, label_fraction=0.0, w_depth=1.0)
    lift, decoder, logs = _grads(model, batch)
    assert logs["labelled"] == 0.0 and "joints_3d" not in logs
    assert lift > 0  # the observed depth reaches the 3D branch through the decoder ...
    assert decoder == 0  # ... which that term does not train (it would learn to agree)


def test_without_the_depth_term_unlabelled_samples_teach_no_3d(batch):
    torch.manual_seed(0)
    model = create("weak3d", **SMALL, label_fraction=0.0, w_depth=0.0)
    lift, decoder, _ = _grads(model, batch)
    assert lift == 0 and decoder == 0


def test_labelled_samples_train_the_decoder_on_true_poses(batch):
    torch.manual_seed(0)
    model = create("weak3d", **SMALL, label_fraction=1.0, w_depth=0.0)
    lift, decoder, logs = _grads(model, batch)
    assert logs["labelled"] == 1.0 and lift > 0 and decoder > 0


def test_the_labelled_subset_is_a_fixed_function_of_the_sample():
    k = torch.rand(400, 21, 2, generator=torch.Generator().manual_seed(1)) * 128
    first = labelled(k, 0.1)
    assert torch.equal(labelled(k[torch.randperm(400)], 0.1).sum(), first.sum())
    perm = torch.randperm(400, generator=torch.Generator().manual_seed(2))
    assert torch.equal(labelled(k[perm], 0.1), first[perm])  # order does not matter
    assert 0.05 < float(first.float().mean()) < 0.15
    assert bool((labelled(k, 0.3) | ~first).all())  # a larger share keeps the smaller one
    with pytest.raises(ValueError, match="label_fraction"):
        create("weak3d", **SMALL, label_fraction=1.5)
