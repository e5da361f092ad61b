import numpy as np
import pytest
import torch

from handlab import skeleton as sk


def test_names_parents_bones_consistent():
    assert len(sk.JOINT_NAMES) == sk.NUM_JOINTS == len(sk.PARENTS)
    assert len(sk.BONES) == 20
    # every joint but the wrist has exactly one parent bone; chains reach the wrist
    for j in range(1, 21):
        k, steps = j, 0
        while k != 0:
            k = sk.PARENTS[k]
            steps += 1
        assert 1 <= steps <= 4
    assert sk.JOINT_NAMES[0] == "wrist"
    assert sk.JOINT_NAMES[4] == "thumb_tip" and sk.JOINT_NAMES[20] == "little_tip"
    assert sk.JOINT_NAMES[5] == "index_mcp" and sk.PARENTS[5] == 0 and sk.PARENTS[6] == 5


def test_groups_and_fingers_partition_the_joints():
    grouped = sorted(j for joints in sk.GROUPS.values() for j in joints)
    assert grouped == list(range(21))
    fingered = sorted(j for joints in sk.FINGERS.values() for j in joints)
    assert fingered == list(range(1, 21))
    assert all(sk.GROUP_OF_JOINT[j] == "TIP" for j in sk.GROUPS["TIP"])
    # groups by position along each finger's chain
    for joints in sk.FINGERS.values():
        assert [sk.GROUP_OF_JOINT[j] for j in joints] == ["MCP", "PIP", "DIP", "TIP"]


@pytest.mark.parametrize("source", sorted(sk.DATASET_ORDERS))
def test_index_maps_are_permutations_that_round_trip(source):
    order = sk.DATASET_ORDERS[source]
    assert sorted(order) == list(range(21))
    x = torch.randn(3, 21, 2)
    assert torch.equal(sk.from_canonical(sk.to_canonical(x, source), source), x)
    assert torch.equal(sk.to_canonical(sk.from_canonical(x, source), source), x)
    a = np.random.default_rng(0).normal(size=(21, 3))
    assert np.array_equal(sk.from_canonical(sk.to_canonical(a, source), source), a)


def test_known_dataset_orders_by_name():
    # RHD: wrist, then thumb tip..base; canonical thumb CMC (1) is RHD's 4
    rhd_names = ["wrist"] + [
        f"{f}_{p}"
        for f in sk.FINGER_NAMES
        for p in (("tip", "ip", "mcp", "cmc") if f == "thumb" else ("tip", "dip", "pip", "mcp"))
    ]
    assert sk.to_canonical(rhd_names, "rhd") == list(sk.JOINT_NAMES)
    # InterHand: wrist last
    inter = [
        f"{f}_{p}"
        for f in sk.FINGER_NAMES
        for p in (("tip", "ip", "mcp", "cmc") if f == "thumb" else ("tip", "dip", "pip", "mcp"))
    ] + ["wrist"]
    assert sk.to_canonical(inter, "interhand") == list(sk.JOINT_NAMES)
    # STB: palm, then little, ring, middle, index, thumb (base -> tip)
    stb = ["wrist"] + [
        f"{f}_{p}"
        for f in reversed(sk.FINGER_NAMES)
        for p in (("cmc", "mcp", "ip", "tip") if f == "thumb" else ("mcp", "pip", "dip", "tip"))
    ]
    assert sk.to_canonical(stb, "stb") == list(sk.JOINT_NAMES)


def test_flips():
    kp = torch.tensor([[0.0, 1.0], [127.0, 2.0], [63.5, 3.0]])
    flipped = sk.flip_keypoints(kp, 128)
    assert flipped[:, 0].tolist() == [127.0, 0.0, 63.5]
    assert torch.equal(sk.flip_keypoints(flipped, 128), kp)
    xyz = torch.randn(21, 3)
    assert torch.equal(sk.flip_xyz(sk.flip_xyz(xyz)), xyz)
    two = torch.arange(42.0)[:, None]
    assert torch.equal(sk.two_hand_flip(sk.two_hand_flip(two)), two)


def test_bad_input():
    with pytest.raises(ValueError, match="source"):
        sk.to_canonical(list(range(21)), "nope")
    with pytest.raises(ValueError, match="21 joints"):
        sk.to_canonical(torch.zeros(20, 2), "rhd")
    with pytest.raises(ValueError, match="42 joints"):
        sk.two_hand_flip(torch.zeros(21, 2))
