import io
import pickle
import pickletools

import numpy as np
import pytest

from handlab.data.unpickle import UnsafePickleError, safe_load


def _round_trip(obj, protocol):
    return safe_load(io.BytesIO(pickle.dumps(obj, protocol=protocol)))


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_plain_containers_and_numpy(protocol):
    obj = {
        1: {"xyz": np.arange(126, dtype=np.float32).reshape(42, 3), "K": np.eye(3)},
        "s": (np.float64(2.5), np.int32(7), [1, 2.0, "a", b"raw", None, True]),
        "nested": [{"a": np.zeros((2, 0))}, {1, 2}, frozenset({3})],
    }
    out = _round_trip(obj, protocol)
    np.testing.assert_array_equal(out[1]["xyz"], obj[1]["xyz"])
    assert out[1]["xyz"].dtype == np.float32 and out["s"][0] == 2.5 and out["s"][2][3] == b"raw"
    assert out["nested"][1] == {1, 2} and out["nested"][0]["a"].shape == (2, 0)


def test_numpy1_module_names_accepted():
    # Python 2 / numpy 1 pickles (RHD, HO-3D) name numpy.core.multiarray, not numpy._core
    data = pickle.dumps(np.arange(3.0), protocol=2)
    data = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    assert b"numpy.core.multiarray" in data
    np.testing.assert_array_equal(safe_load(io.BytesIO(data)), [0.0, 1.0, 2.0])


class _Evil:
    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return (self.func, self.args)


@pytest.mark.parametrize(
    "payload",
    [
        _Evil(__import__("os").system, "echo pwned"),
        _Evil(eval, "1 + 1"),
        _Evil(__import__("subprocess").call, ["true"]),
        _Evil(np.load, "anything.npy"),
        {"K": _Evil(__import__("builtins").exec, "x = 1")},
    ],
)
def test_calls_refused(payload, tmp_path):
    path = tmp_path / "anno.pickle"
    path.write_bytes(pickle.dumps(payload, protocol=2))
    with pytest.raises(UnsafePickleError, match=r"anno\.pickle: refused to load global"):
        safe_load(path)


def test_refused_before_anything_runs(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(_Evil(__import__("os").system, f"touch {marker}")))
    with pytest.raises(UnsafePickleError, match=r"'(posix|os)\.system'"):
        safe_load(path)
    assert not marker.exists()
    # the same pickle really does run code under plain pickle: the test is meaningful
    ops = [op.name for op, _, _ in pickletools.genops(path.read_bytes())]
    assert "REDUCE" in ops


def test_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"missing\.pkl"):
        safe_load(tmp_path / "missing.pkl")
    (tmp_path / "cut.pkl").write_bytes(pickle.dumps({"a": np.ones(10)})[:20])
    with pytest.raises(ValueError, match=r"cut\.pkl: not a readable pickle"):
        safe_load(tmp_path / "cut.pkl")
