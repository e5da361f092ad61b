import numpy as np
import pytest
import yaml

from data.fixtures import DEXYCB_SERIAL, make_dexycb
from handlab.data import DataError, open_dataset
from handlab.geometry import project

ONE = (DEXYCB_SERIAL,)


@pytest.fixture(scope="module")
def dex(tmp_path_factory):
    root = tmp_path_factory.mktemp("dexycb")
    return root, make_dexycb(root)


def test_s0_splits(dex):
    root, _ = dex
    train = open_dataset("dexycb", root, "train", serials=ONE)
    val = open_dataset("dexycb", root, "val", serials=ONE)
    test = open_dataset("dexycb", root, "test", serials=ONE)
    # 2 subjects x 4 train sequences x 2 frames, minus the 2 frames without a hand
    assert len(train) == 14
    assert train.skipped == {"no hand in frame": 2, "subject folder absent": 8}
    assert [val.sample_id(i).split("/")[:2] for i in range(len(val))] == [
        ["20200709-subject-01", "20200709_141504"]
    ] * 2
    assert {test.sample_id(i).split("/")[0] for i in range(len(test))} == {"20200820-subject-03"}
    assert test.skipped == {"subject folder absent": 7}


def test_values(dex):
    root, truth = dex
    ds = open_dataset("dexycb", root, "train", serials=ONE, size=None)
    for i in (0, 3):
        s = ds[i]
        t = truth[s["meta"]["id"]]
        assert s["meta"]["side"] == t["side"]
        np.testing.assert_allclose(s["xyz"].numpy(), t["xyz"], atol=1e-2)
        np.testing.assert_allclose(s["keypoints"].numpy(), t["keypoints"], atol=1e-3)
        np.testing.assert_array_equal(s["depth"][0].numpy(), t["depth"])  # uint16 mm, exact
        np.testing.assert_array_equal(s["mask"][0].numpy() > 0, t["seg"])
        assert (project(s["xyz"], s["K"]) - s["keypoints"]).abs().max() < 0.5
    c = open_dataset("dexycb", root, "train", serials=ONE, size=32)[0]
    assert c["image"].shape == (3, 32, 32) and c["mask"].shape == (1, 32, 32)
    assert (project(c["xyz"], c["K"]) - c["keypoints"]).abs().max() < 0.5


def test_errors(tmp_path):
    make_dexycb(tmp_path, sequences=1)
    with pytest.raises(ValueError, match="serials"):
        open_dataset("dexycb", tmp_path, "train", serials=("123",))
    with pytest.raises(DataError, match=r"839512060362_640x480\.yml: missing file"):
        open_dataset("dexycb", tmp_path, "train")  # all 8 cameras by default
    seq = next((tmp_path / "20200709-subject-01").iterdir())
    label = seq / DEXYCB_SERIAL / "labels_000000.npz"
    label.write_bytes(label.read_bytes()[:100])
    with pytest.raises(
        DataError, match=r"labels_000000\.npz \(sample 20200709-subject-01/.*unreadable"
    ):
        open_dataset("dexycb", tmp_path, "train", serials=ONE)
    (seq / "meta.yml").write_text(yaml.safe_dump({"num_frames": 2}))
    with pytest.raises(DataError, match=r"meta\.yml: expected num_frames and mano_sides"):
        open_dataset("dexycb", tmp_path, "train", serials=ONE)
    with pytest.raises(DataError, match="no DexYCB subject folder"):
        open_dataset("dexycb", tmp_path / "calibration", "test", serials=ONE)
