"""Occlusion buckets: edges, means against a naive loop, tables, errors, synthetic occlusion."""

import math

import numpy as np
import pytest
import torch

from handlab.occlusion import (
    BUCKET_NAMES,
    assign_buckets,
    bucket_means,
    bucket_table,
    joint_errors,
)


def test_bucket_edges():
    occ = torch.tensor([0.0, 0.1, 0.2499, 0.25, 0.4999, 0.5, 0.7499, 0.75, 0.99, 1.0])
    assert assign_buckets(occ).tolist() == [0, 0, 0, 1, 1, 2, 2, 3, 3, 3]
    assert assign_buckets(occ.double()).tolist() == [0, 0, 0, 1, 1, 2, 2, 3, 3, 3]
    assert assign_buckets(torch.zeros(2, 0)).shape == (2, 0)


def naive_bucket(x):
    for k, (lo, hi) in enumerate([(0, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1.0)]):
        if lo <= x < hi or (k == 3 and x == 1.0):
            return k
    raise AssertionError(x)


def test_bucket_means_match_a_naive_loop():
    rng = np.random.default_rng(0)
    errors = rng.uniform(0, 20, size=(6, 21))
    occ = rng.uniform(0, 1, size=(6, 21))
    occ[0, :4] = [0.25, 0.5, 0.75, 1.0]
    mask = rng.uniform(size=(6, 21)) > 0.2
    got = bucket_means(torch.from_numpy(errors), torch.from_numpy(occ), torch.from_numpy(mask))
    sums, counts = [0.0] * 4, [0] * 4
    for i in range(6):
        for j in range(21):
            if mask[i, j]:
                k = naive_bucket(occ[i, j])
                sums[k] += errors[i, j]
                counts[k] += 1
    for k, name in enumerate(BUCKET_NAMES):
        assert got[name][1] == counts[k]
        assert got[name][0] == pytest.approx(sums[k] / counts[k])
    assert got["all"] == (pytest.approx(errors[mask].mean()), int(mask.sum()))


def test_per_sample_occlusion_broadcasts_to_joints():
    errors = torch.tensor([[1.0, 2.0], [10.0, 20.0]])
    got = bucket_means(errors, torch.tensor([0.1, 0.9]))
    assert got["0-25%"] == (1.5, 2)
    assert got["75-100%"] == (15.0, 2)
    assert math.isnan(got["25-50%"][0]) and got["25-50%"][1] == 0


def test_joint_errors_against_numpy():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(3, 21, 3)), rng.normal(size=(3, 21, 3))
    got = joint_errors(torch.from_numpy(a), torch.from_numpy(b)).numpy()
    np.testing.assert_allclose(got, np.linalg.norm(a - b, axis=-1), rtol=1e-12)


def test_bucket_table_rows_columns_counts():
    target = torch.zeros(4, 2, 2)
    occ = torch.tensor([[0.0, 0.3], [0.6, 0.8], [1.0, 0.1], [0.26, 0.74]])
    pred_a = target + torch.tensor([3.0, 4.0])  # error 5 everywhere
    pred_b = target.clone()
    pred_b[:, 1] = 1.0  # joint 1: error sqrt(2)
    table = bucket_table({"a": pred_a, "b": pred_b}, target, occ)
    assert list(table.index) == ["a", "b", "joints"]
    assert list(table.columns) == ["all", *BUCKET_NAMES]
    assert (table.loc["a"] == 5.0).all()
    assert table.loc["joints"].tolist() == [8.0, 2.0, 2.0, 2.0, 2.0]
    # b: bucket 0 holds (0, 0.0) error 0 and (2, 1) error sqrt 2.
    assert table.loc["b", "0-25%"] == pytest.approx(math.sqrt(2) / 2)
    assert table.loc["b", "all"] == pytest.approx(4 * math.sqrt(2) / 8)


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"occlusion: expected fractions in \[0, 1\]"):
        assign_buckets(torch.tensor([0.5, 1.5]))
    with pytest.raises(ValueError, match="occlusion: expected finite"):
        assign_buckets(torch.tensor([float("nan")]))
    with pytest.raises(TypeError, match="occlusion"):
        assign_buckets([0.1])
    with pytest.raises(ValueError, match="occlusion: expected shape"):
        bucket_means(torch.zeros(2, 21), torch.zeros(3))
    with pytest.raises(ValueError, match="mask: expected shape"):
        bucket_means(torch.zeros(2, 21), torch.zeros(2, 21), torch.ones(2, 20, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"predictions\['m'\]"):
        bucket_table({"m": torch.zeros(2, 21, 3)}, torch.zeros(2, 21, 2), torch.zeros(2, 21))
    with pytest.raises(TypeError, match="predictions"):
        bucket_table({}, torch.zeros(2, 21, 2), torch.zeros(2, 21))
    with pytest.raises(ValueError, match="errors: expected finite"):
        bucket_means(torch.full((1, 2), float("inf")), torch.zeros(1, 2))


def test_synthetic_occlusion_fills_the_buckets():
    from handlab.synth import generate

    data = generate(8, seed=0, size=64, occluders=1.0, extras=True)
    occ = data["occlusion"]
    assert occ.shape == (8, 21)
    means = bucket_means(torch.ones(8, 21), occ)
    assert sum(means[name][1] for name in BUCKET_NAMES) == means["all"][1] == 8 * 21
    # With an occluder in every scene some joints are covered: not everything in 0-25 %.
    assert means["0-25%"][1] < 8 * 21
