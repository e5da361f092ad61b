import pickle

import numpy as np
import pytest
import torch

from data.fixtures import encode_rhd_depth, make_rhd
from handlab.data import DataError, open_dataset
from handlab.data.rhd import decode_depth
from handlab.data.unpickle import UnsafePickleError
from handlab.geometry import project


@pytest.fixture
def rhd(tmp_path):
    return tmp_path, make_rhd(tmp_path, n=3)


def test_full_frame_values(rhd):
    root, truth = rhd
    ds = open_dataset("rhd", root, "training", size=None)
    assert len(ds) == 3
    for i in range(3):
        s = ds[i]
        assert s["meta"]["side"] == truth["side"][i] == ("left" if i % 2 else "right")
        assert s["meta"]["id"] == f"{i:05d}"
        np.testing.assert_allclose(s["xyz"].numpy(), truth["xyz"][i], rtol=1e-5, atol=1e-3)
        np.testing.assert_allclose(s["keypoints"].numpy(), truth["keypoints"][i], atol=1e-3)
        np.testing.assert_array_equal(s["visibility"].numpy(), truth["visibility"][i])
        # the depth encoding decodes exactly (float32 of the published formula)
        np.testing.assert_array_equal(s["depth"][0].numpy(), truth["depth"][i].astype(np.float32))
        np.testing.assert_array_equal(s["mask"][0].numpy() > 0, truth["mask"][i])
        assert (project(s["xyz"], s["K"]) - s["keypoints"]).abs().max() < 0.5


def test_depth_decoding_widens_dtype():
    mm = np.array([[0.0, 4999.9, 1234.5678]])
    out = decode_depth(encode_rhd_depth(mm))
    np.testing.assert_allclose(out, mm, atol=5000 / 65535)
    assert out[0, 1] > 4990  # R * 256 overflowed uint8 if not widened


def test_crop(rhd):
    root, _ = rhd
    s = open_dataset("rhd", root, "training", size=64)[1]
    assert s["image"].shape == (3, 64, 64) and s["depth"].shape == s["mask"].shape == (1, 64, 64)
    assert (project(s["xyz"], s["K"]) - s["keypoints"]).abs().max() < 0.5
    assert s["meta"]["box"].shape == (4,)


def test_malicious_pickle_refused(rhd):
    root, _ = rhd

    class Evil:
        def __reduce__(self):
            import os

            return (os.system, ("echo pwned",))

    path = root / "training" / "anno_training.pickle"
    path.write_bytes(pickle.dumps({0: Evil()}))
    with pytest.raises(UnsafePickleError, match=r"anno_training\.pickle.*'(posix|os)\.system'"):
        open_dataset("rhd", root, "training")


def test_errors(rhd):
    root, _ = rhd
    path = root / "training" / "anno_training.pickle"
    anno = pickle.loads(path.read_bytes())
    del anno[2]["K"]
    path.write_bytes(pickle.dumps(anno))
    with pytest.raises(DataError, match=r"sample 2\): missing field 'K'"):
        open_dataset("rhd", root, "training")
    del anno[2]
    path.write_bytes(pickle.dumps(anno))
    with pytest.raises(DataError, match="annotation list shorter"):
        open_dataset("rhd", root, "training")
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(ValueError, match="not a readable pickle"):
        open_dataset("rhd", root, "training")
    path.unlink()
    with pytest.raises(DataError, match="missing file"):
        open_dataset("rhd", root, "training")


def test_out_of_image_keypoint_named(rhd):
    root, _ = rhd
    path = root / "training" / "anno_training.pickle"
    anno = pickle.loads(path.read_bytes())
    anno[0]["uv_vis"][21 + 4] = [400.0, 10.0, 1.0]  # right hand (dominant in sample 0), RHD joint 4
    path.write_bytes(pickle.dumps(anno))
    with pytest.raises(DataError, match=r"00000\.png \(sample 00000\): visible keypoints \[1\]"):
        open_dataset("rhd", root, "training")[0]
    anno[0]["uv_vis"][21 + 4, 2] = 0.0  # invisible: allowed
    path.write_bytes(pickle.dumps(anno))
    assert open_dataset("rhd", root, "training")[0]["visibility"][1] == 0
    assert torch.is_tensor(open_dataset("rhd", root, "training")[0]["image"])
