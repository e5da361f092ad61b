import numpy as np
import pytest
import scipy.io

from data.fixtures import make_stb
from handlab.data import DataError, open_dataset
from handlab.geometry import project


@pytest.fixture
def stb(tmp_path):
    return tmp_path, make_stb(tmp_path, frames=2)


@pytest.mark.parametrize("camera", ["SK", "BB"])
def test_full_frame_values(stb, camera):
    root, truth = stb
    ds = open_dataset("stb", root, "test", camera=camera, size=None, depth=camera == "SK")
    assert len(ds) == 4  # B1Counting + B1Random, 2 frames each (B2 is train)
    for i, (seq, f) in enumerate(
        [("B1Counting", 0), ("B1Counting", 1), ("B1Random", 0), ("B1Random", 1)]
    ):
        s = ds[i]
        assert s["meta"]["id"] == f"{seq}/{camera}_{f}" and s["meta"]["side"] == "left"
        assert s["meta"]["root"] == "palm"
        np.testing.assert_allclose(s["xyz"].numpy(), truth[(seq, camera)]["xyz"][f], atol=1e-3)
        np.testing.assert_allclose(
            s["keypoints"].numpy(), truth[(seq, camera)]["keypoints"][f], atol=0.05
        )
        if camera == "SK":
            np.testing.assert_array_equal(s["depth"][0].numpy(), truth[(seq, "depth")][f])
        else:
            assert "depth" not in s


def test_train_split_and_crop(stb):
    root, _ = stb
    ds = open_dataset("stb", root, "train", camera="BB", size=48, sequences=("B2Counting",))
    assert [ds.sample_id(i) for i in range(len(ds))] == ["B2Counting/BB_0", "B2Counting/BB_1"]
    s = ds[1]
    assert s["image"].shape == (3, 48, 48)
    assert (project(s["xyz"], s["K"]) - s["keypoints"]).abs().max() < 0.5


def test_errors(stb):
    root, _ = stb
    with pytest.raises(ValueError, match="camera"):
        open_dataset("stb", root, "test", camera="XX")
    with pytest.raises(ValueError, match="sequences"):
        open_dataset("stb", root, "test", sequences=("B2Counting",))
    with pytest.raises(ValueError, match="depth"):
        open_dataset("stb", root, "test", camera="BB", depth=True)
    mat = root / "labels" / "B1Random_SK.mat"
    scipy.io.savemat(mat, {"handPara": np.zeros((3, 20, 2))})
    with pytest.raises(DataError, match=r"B1Random_SK\.mat: handPara expected shape"):
        open_dataset("stb", root, "test")
    mat.unlink()
    with pytest.raises(DataError, match=r"B1Random_SK\.mat: missing file"):
        open_dataset("stb", root, "test")
    # train needs B3-B6 too: the first missing one is named
    (root / "labels" / "B2Counting_SK.mat").rename(root / "labels" / "B2Random_SK.mat")
    with pytest.raises(DataError, match=r"B2Counting_SK\.mat: missing file"):
        open_dataset("stb", root, "train")
