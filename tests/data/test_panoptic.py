import json

import numpy as np
import pytest

from data.fixtures import make_panoptic
from handlab.data import DataError, open_dataset


@pytest.fixture
def pan(tmp_path):
    return tmp_path, make_panoptic(tmp_path)


def test_values_and_crop(pan):
    root, truth = pan
    for base in (root, root / "hand_labels"):  # either the folder or its parent
        ds = open_dataset("panoptic", base, "test", size=None)
        assert len(ds) == 2
    for i in range(2):
        s = ds[i]
        t = truth[s["meta"]["id"]]
        assert set(s) == {"image", "keypoints", "visibility", "meta"}  # 2D only
        assert s["meta"]["side"] == t["side"] and s["meta"]["head_size"] == 40.0 + i
        np.testing.assert_array_equal(s["visibility"].numpy(), t["visibility"])
        vis = t["visibility"] > 0
        np.testing.assert_allclose(s["keypoints"].numpy()[vis], t["keypoints"][vis], atol=1e-4)
    c = open_dataset("panoptic", root, "train", size=64, margin=1.0)[0]
    kp = c["keypoints"][c["visibility"] > 0]
    # the crop box is the visible keypoints' square box: they span the crop's larger side
    assert kp.min() >= -0.5 - 1e-4 and kp.max() <= 63.5 + 1e-4
    assert (kp.amax(0) - kp.amin(0)).max() > 63.9


def test_errors(pan):
    root, _ = pan
    folder = root / "hand_labels" / "manual_test"
    label = sorted(folder.glob("*.json"))[0]
    data = json.loads(label.read_text())
    data["hand_pts"] = data["hand_pts"][:20]
    label.write_text(json.dumps(data))
    ds = open_dataset("panoptic", root, "test")
    with pytest.raises(
        DataError, match=rf"{label.name} \(sample {label.stem}\): hand_pts expected"
    ):
        ds[0]
    label.write_text("{not json")
    with pytest.raises(DataError, match="unreadable JSON"):
        ds[0]
    label.unlink()
    with pytest.raises(DataError, match="without a JSON label"):
        open_dataset("panoptic", root, "test")
    with pytest.raises(DataError, match="missing folder"):
        open_dataset("panoptic", root / "hand_labels" / "manual_test", "train")
