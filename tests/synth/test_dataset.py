"""handlab.synth.dataset: split seeds, item/batch agreement, collate, frozen test split, errors."""

import itertools

import pytest
import torch
from torch.utils.data import DataLoader

from handlab.synth import KEYS, SyntheticHands
from handlab.synth.dataset import SPLITS, split_seed


def test_items_are_deterministic_and_differ_between_indices_and_splits():
    ds = SyntheticHands("val", size=64)
    a, b = ds[3], ds[3]
    for key in KEYS:
        assert torch.equal(a[key], b[key]), key
    assert not torch.equal(ds[4]["xyz"], a["xyz"])
    assert not torch.equal(SyntheticHands("train", size=64)[3]["xyz"], a["xyz"])
    assert tuple(sorted(a)) == tuple(sorted(KEYS))
    assert tuple(a["image"].shape) == (3, 64, 64) and tuple(a["visibility"].shape) == (21,)


def test_lengths_and_frozen_test_split():
    assert len(SyntheticHands("test")) == 1000
    assert len(SyntheticHands("train")) == 100_000
    assert len(SyntheticHands("train", length=10)) == 10
    # torch's CPU generator keeps the low 32 bits of a seed: the split ranges stay disjoint there
    ranges = sorted((SPLITS[s][0], SPLITS[s][0] + SPLITS[s][2]) for s in SPLITS)
    assert all(hi <= lo2 for (_, hi), (lo2, _) in itertools.pairwise(ranges))
    assert ranges[-1][1] <= 2**32
    assert split_seed("test", 999) < 2**32
    # a sample's params depend only on (split, index), not on other options' defaults
    p = SyntheticHands("test", size=64).params([0, 999])
    q = SyntheticHands("test", size=128).params([999])
    assert torch.equal(p["pose"][1:], q["pose"])


def test_batch_equals_items_and_collates_like_a_dataloader():
    ds = SyntheticHands("train", size=64, extras=True)
    batch = ds.batch([5, 1, 9])
    items = [ds[i] for i in (5, 1, 9)]
    loaded = next(iter(DataLoader(ds, batch_size=3, sampler=[5, 1, 9])))
    for key in (*KEYS, "occlusion"):
        stacked = torch.stack([it[key] for it in items])
        torch.testing.assert_close(batch[key], stacked, atol=1e-4, rtol=1e-5)
        assert torch.equal(loaded[key], batch[key])  # the DataLoader renders through batch()
    # a batch_sampler path: DataLoader over batches of indices with ds.batch
    bl = DataLoader([[0, 1], [2, 3]], batch_size=None, collate_fn=ds.batch)
    first = next(iter(bl))
    assert tuple(first["image"].shape) == (2, 3, 64, 64)


def test_errors():
    with pytest.raises(ValueError, match="split: expected one of"):
        SyntheticHands("dev")
    with pytest.raises(ValueError, match="size"):
        SyntheticHands("test", size=600)
    with pytest.raises(ValueError, match="length: expected a value in"):
        SyntheticHands("test", length=0)
    with pytest.raises(ValueError, match="occluders"):
        SyntheticHands("test", occluders=2.0)
    with pytest.raises(IndexError, match="index"):
        SyntheticHands("test", size=64)[1000]
    with pytest.raises(ValueError, match="indices: expected at least one"):
        SyntheticHands("test", size=64).batch([])


def test_test_split_is_frozen():
    """The test split's labels must never change between releases (numbers compare across
    them): these values were recorded when the split was frozen. A deliberate change of the
    sampler must say so in the changelog and re-record them."""
    out = SyntheticHands("test", size=64).batch([0, 1, 999])
    torch.testing.assert_close(
        out["xyz"].sum(dim=(1, 2)),
        torch.tensor([7864.625, 8867.730, 7176.637]),
        rtol=1e-4,
        atol=0.1,
    )
    assert out["visibility"].sum(1).tolist() == [9.0, 10.0, 17.0]
    torch.testing.assert_close(
        out["keypoints"][:, 8],
        torch.tensor([[39.8638, 17.3186], [44.2429, 25.0788], [34.0040, 49.6214]]),
        atol=1e-3,
        rtol=0,
    )
    first = SyntheticHands("test", size=64).batch(list(range(32)))
    assert float(first["xyz"].double().sum()) == pytest.approx(263168.53, abs=1.0)
    assert float(first["keypoints"].double().sum()) == pytest.approx(43002.28, abs=0.1)
    assert float(first["visibility"].sum()) == 396.0


def test_rendering_in_chunks_changes_nothing(monkeypatch):
    from handlab.synth import dataset as dataset_module

    ds = SyntheticHands("val", size=64, extras=True)
    whole = ds.batch([0, 5, 1, 7, 2])
    monkeypatch.setattr(dataset_module, "RENDER_CHUNK", 2)  # three passes, the last one short
    parts = ds.batch([0, 5, 1, 7, 2])
    assert whole.keys() == parts.keys()
    for k in whole:
        assert parts[k].shape[0] == 5, k
        torch.testing.assert_close(parts[k], whole[k], atol=1e-5, rtol=0)
