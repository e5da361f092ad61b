import numpy as np
import pytest
import scipy.io

from data.fixtures import make_nyu
from handlab.data import DataError, open_dataset
from handlab.geometry import project

EVAL14 = [0, 3, 6, 9, 12, 15, 18, 21, 24, 25, 27, 30, 31, 32]  # published NYU benchmark subset


@pytest.fixture
def nyu(tmp_path):
    return tmp_path, make_nyu(tmp_path, n=2)


def test_full_frame_values(nyu):
    root, truth = nyu
    ds = open_dataset("nyu", root, "test", size=None)
    assert len(ds) == 2
    for i in range(2):
        s = ds[i]
        assert set(s) == {"depth", "keypoints", "visibility", "xyz", "K", "meta"}
        assert s["meta"]["joints"] == "nyu14" and s["meta"]["id"] == f"{i + 1:07d}"
        assert s["keypoints"].shape == (14, 2) and s["xyz"].shape == (14, 3)
        np.testing.assert_allclose(
            s["keypoints"].numpy(), truth["uvd"][0, i, EVAL14, :2], atol=1e-3
        )
        xyz = truth["xyz_nyu"][0, i, EVAL14]
        np.testing.assert_allclose(s["xyz"].numpy(), xyz * [1, -1, 1], rtol=1e-5, atol=1e-3)
        np.testing.assert_array_equal(s["depth"][0].numpy(), truth["depth"][i])
        assert (project(s["xyz"], s["K"]) - s["keypoints"]).abs().max() < 0.5


def test_crop(nyu):
    root, _ = nyu
    s = open_dataset("nyu", root, "test", size=32)[0]
    assert s["depth"].shape == (1, 32, 32) and "image" not in s
    assert (project(s["xyz"], s["K"]) - s["keypoints"]).abs().max() < 0.5
    # nearest resampling: every cropped depth is a value of the frame (or 0 outside it)
    full = open_dataset("nyu", root, "test", size=None)[0]["depth"].unique()
    assert bool(np.isin(s["depth"].unique().numpy(), np.r_[0, full.numpy()]).all())


def test_errors(nyu):
    root, truth = nyu
    mat = root / "test" / "joint_data.mat"
    scipy.io.savemat(mat, {"joint_uvd": truth["uvd"][:, :1], "joint_xyz": truth["xyz_nyu"][:, :1]})
    with pytest.raises(DataError, match="annotation list shorter"):
        open_dataset("nyu", root, "test")
    scipy.io.savemat(mat, {"joint_uvd": truth["uvd"][..., :2], "joint_xyz": truth["xyz_nyu"]})
    with pytest.raises(DataError, match=r"joint_uvd expected shape \(3, N, 36, 3\)"):
        open_dataset("nyu", root, "test")
    scipy.io.savemat(mat, {"joint_xyz": truth["xyz_nyu"]})
    with pytest.raises(DataError, match="missing variable 'joint_uvd'"):
        open_dataset("nyu", root, "test")
    uvd = truth["uvd"].copy()
    uvd[0, 1, 3, 0] = np.nan
    scipy.io.savemat(mat, {"joint_uvd": uvd, "joint_xyz": truth["xyz_nyu"]})
    ds = open_dataset("nyu", root, "test")
    assert ds[0]["depth"].shape == (1, 128, 128)
    with pytest.raises(
        DataError, match=r"depth_1_0000002\.png \(sample 0000002\): keypoints has 1 NaN"
    ):
        ds[1]
    mat.unlink()
    with pytest.raises(DataError, match="missing file"):
        open_dataset("nyu", root, "test")
