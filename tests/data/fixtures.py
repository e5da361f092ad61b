"""Builders of tiny real-dataset folders in each dataset's exact published layout.

Each ``make_<dataset>(root, ...)`` writes a few samples with the dataset's real encodings (RHD
depth across R/G, NYU across G/B, HO-3D OpenGL axes, ...) and returns the ground truth in
handlab's conventions (canonical joint order, mm, camera frame with y down) so a test can check
what the loader returns. Joint orders are written from the datasets' joint *names* (as published),
not from :mod:`handlab.skeleton`'s index maps, so the maps are tested rather than reused.

Other tests may reuse these builders when they need a real-layout dataset:
``from data.fixtures import make_rhd`` (pytest puts ``tests/`` on ``sys.path``).
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
from PIL import Image

from handlab.skeleton import JOINT_NAMES

_FINGERS = ("thumb", "index", "middle", "ring", "little")
_PARTS = {"thumb": ("cmc", "mcp", "ip", "tip")} | {
    f: ("mcp", "pip", "dip", "tip") for f in _FINGERS[1:]
}


def _names_to_index(names: list[str]) -> list[int]:
    """Canonical index of each source joint name (source order -> canonical joint)."""
    return [JOINT_NAMES.index(n) for n in names]


# Source joint orders, spelled out from each dataset's documentation (hands.md section 1).
RHD_NAMES = ["wrist"] + [f"{f}_{p}" for f in _FINGERS for p in reversed(_PARTS[f])]
STB_NAMES = ["wrist"] + [f"{f}_{p}" for f in reversed(_FINGERS) for p in _PARTS[f]]  # 0 = palm
INTERHAND_NAMES = [f"{f}_{p}" for f in _FINGERS for p in reversed(_PARTS[f])] + ["wrist"]
MANO_NAMES = (
    ["wrist"]
    + [f"{f}_{p}" for f in ("index", "middle", "little", "ring", "thumb") for p in _PARTS[f][:3]]
    + [f"{f}_tip" for f in _FINGERS]
)


def to_source(canonical: np.ndarray, names: list[str]) -> np.ndarray:
    """(..., 21, C) canonical order -> the source order given by joint names."""
    return canonical[..., _names_to_index(names), :]


def random_hand(
    rng: np.random.Generator, K: np.ndarray, width: int, height: int, *, spread: float = 0.25
) -> tuple[np.ndarray, np.ndarray]:
    """A random 21-joint hand (canonical order): keypoints (21, 2) px inside the image's central
    part and xyz (21, 3) mm, camera frame (y down), consistent with ``K``."""
    centre = np.array([width, height]) * rng.uniform(0.4, 0.6, size=2)
    uv = centre + rng.uniform(-spread, spread, size=(21, 2)) * min(width, height)
    z = rng.uniform(450.0, 650.0) + rng.uniform(-30.0, 30.0, size=21)
    x = (uv[:, 0] - K[0, 2]) * z / K[0, 0]
    y = (uv[:, 1] - K[1, 2]) * z / K[1, 1]
    return uv, np.stack([x, y, z], axis=-1)


def make_K(f: float, width: int, height: int) -> np.ndarray:
    return np.array([[f, 0.0, width / 2 - 0.5], [0.0, f, height / 2 + 0.5], [0.0, 0.0, 1.0]])


def _blocks(rng: np.random.Generator, high: int, height: int, width: int) -> np.ndarray:
    """(height, width) int64 in [0, high), constant on 4 x 4 blocks (PNGs stay small)."""
    small = rng.integers(0, high, size=(height // 4, width // 4))
    return np.kron(small, np.ones((4, 4), np.int64))


def _save_rgb(path: Path, rng: np.random.Generator, width: int, height: int, **kw) -> np.ndarray:
    path.parent.mkdir(parents=True, exist_ok=True)
    # 8 x 8 blocks of random colour: cheap to encode, still checks pixel values after a crop
    small = rng.integers(0, 256, size=(-(-height // 8), -(-width // 8), 3), dtype=np.uint8)
    rgb = np.ascontiguousarray(np.kron(small, np.ones((8, 8, 1), np.uint8))[:height, :width])
    Image.fromarray(rgb).save(path, **kw)
    return rgb


# --------------------------------------------------------------------------------------------
# FreiHAND v2


def make_freihand(root: Path, *, n: int = 2, n_eval: int = 2, seed: int = 0) -> dict:
    """training (n samples x 4 versions, masks) and evaluation (n_eval), 224 x 224 JPEGs."""
    rng = np.random.default_rng(seed)
    truth: dict = {}
    for split, count, versions in (("training", n, 4), ("evaluation", n_eval, 1)):
        Ks, xyzs, uvs = [], [], []
        for idx in range(count):
            K = make_K(rng.uniform(400, 600), 224, 224)
            uv, xyz = random_hand(rng, K, 224, 224)
            Ks.append(K)
            xyzs.append(xyz)
            uvs.append(uv)
            for v in range(versions):
                _save_rgb(root / split / "rgb" / f"{idx + count * v:08d}.jpg", rng, 224, 224)
            if split == "training":
                mask = np.zeros((224, 224), np.uint8)
                mask[50:150, 60:170] = 255
                (root / split / "mask").mkdir(parents=True, exist_ok=True)
                Image.fromarray(mask).save(root / split / "mask" / f"{idx:08d}.jpg")
        # FreiHAND stores metres
        (root / f"{split}_K.json").write_text(json.dumps([k.tolist() for k in Ks]))
        (root / f"{split}_xyz.json").write_text(json.dumps([(x / 1000).tolist() for x in xyzs]))
        truth[split] = {"K": np.stack(Ks), "xyz": np.stack(xyzs), "keypoints": np.stack(uvs)}
    return truth


# --------------------------------------------------------------------------------------------
# RHD


def encode_rhd_depth(depth_mm: np.ndarray) -> np.ndarray:
    """(H, W) mm -> RHD's RGB PNG code: value = mm / 5000 * 65535 split as R * 256 + G."""
    code = np.round(depth_mm / 5000.0 * 65535.0).astype(np.uint32)
    rgb = np.zeros(depth_mm.shape + (3,), np.uint8)
    rgb[..., 0] = code >> 8
    rgb[..., 1] = code & 255
    return rgb


def make_rhd(root: Path, *, split: str = "training", n: int = 3, seed: int = 0) -> dict:
    """``n`` RHD samples (320 x 320); sample i has the left hand dominant when i is odd."""
    rng = np.random.default_rng(seed)
    folder = root / split
    for sub in ("color", "depth", "mask"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    anno, truth = (
        {},
        {"xyz": [], "keypoints": [], "visibility": [], "side": [], "depth": [], "mask": []},
    )
    for i in range(n):
        K = make_K(rng.uniform(250, 350), 320, 320)
        hands = [random_hand(rng, K, 320, 320, spread=0.15) for _ in range(2)]  # left, right
        vis = [(rng.random(21) > 0.2).astype(np.float64) for _ in range(2)]
        side = "left" if i % 2 else "right"
        anno[i] = {
            "xyz": np.concatenate([to_source(h[1] / 1000, RHD_NAMES) for h in hands]),
            "uv_vis": np.concatenate(
                [
                    np.concatenate(
                        [to_source(h[0], RHD_NAMES), to_source(v[:, None], RHD_NAMES)], 1
                    )
                    for h, v in zip(hands, vis, strict=True)
                ]
            ),
            "K": K,
        }
        labels = np.ones((320, 320), np.uint8)  # person
        labels[:8] = 0
        big, small = (
            (slice(40, 200), slice(250, 280))
            if side == "left"
            else (slice(250, 280), slice(40, 200))
        )
        labels[big, 20:300] = rng.integers(2, 18, size=(big.stop - big.start, 280))  # left hand
        labels[small, 20:300] = rng.integers(18, 34, size=(small.stop - small.start, 280))
        Image.fromarray(labels).save(folder / "mask" / f"{i:05d}.png")
        depth_mm = rng.uniform(0, 5000, size=(320, 320))
        rgb = encode_rhd_depth(depth_mm)
        Image.fromarray(rgb).save(folder / "depth" / f"{i:05d}.png")
        code = rgb[..., 0].astype(np.float64) * 256 + rgb[..., 1]
        _save_rgb(folder / "color" / f"{i:05d}.png", rng, 320, 320)
        h = 0 if side == "left" else 1
        truth["xyz"].append(hands[h][1])
        truth["keypoints"].append(hands[h][0])
        truth["visibility"].append(vis[h])
        truth["side"].append(side)
        truth["depth"].append(code / 65535 * 5000)
        lo, hi = (2, 17) if side == "left" else (18, 33)
        truth["mask"].append((labels >= lo) & (labels <= hi))
    with (folder / f"anno_{split}.pickle").open("wb") as f:
        pickle.dump(anno, f, protocol=2)
    return {k: np.stack(v) if k != "side" else v for k, v in truth.items()}


# --------------------------------------------------------------------------------------------
# NYU

NYU_K = np.array([[588.04, 0.0, 320.0], [0.0, 587.08, 240.0], [0.0, 0.0, 1.0]])


def make_nyu(root: Path, *, split: str = "test", n: int = 2, seed: int = 0) -> dict:
    """``n`` NYU frames (640 x 480, 36 joints, 3 views in the .mat, depth_1 PNGs in G/B)."""
    import scipy.io

    rng = np.random.default_rng(seed)
    folder = root / split
    folder.mkdir(parents=True, exist_ok=True)
    uvd = np.zeros((3, n, 36, 3))
    xyz = np.zeros((3, n, 36, 3))
    truth: dict = {"xyz": [], "keypoints": [], "depth": []}
    for i in range(n):
        for view in range(3):
            uv = rng.uniform([200, 150], [440, 330], size=(36, 2))
            z = rng.uniform(500, 900, size=36)
            X = (uv[:, 0] - 320) * z / 588.04
            Y = (240 - uv[:, 1]) * z / 587.08  # NYU's Y is up
            uvd[view, i] = np.c_[uv, z]
            xyz[view, i] = np.c_[X, Y, z]
        depth_mm = _blocks(rng, 10000, 480, 640)
        rgb = np.zeros((480, 640, 3), np.uint8)
        rgb[..., 1] = depth_mm >> 8
        rgb[..., 2] = depth_mm & 255
        rgb[..., 0] = rng.integers(0, 256, size=(480, 640))  # R carries no depth
        Image.fromarray(rgb).save(folder / f"depth_1_{i + 1:07d}.png")
        truth["depth"].append(depth_mm)
    scipy.io.savemat(folder / "joint_data.mat", {"joint_uvd": uvd, "joint_xyz": xyz})
    truth["uvd"] = uvd
    truth["xyz_nyu"] = xyz
    truth["depth"] = np.stack(truth["depth"])
    return truth


# --------------------------------------------------------------------------------------------
# STB

STB_CAMERAS = {
    "SK": np.array([[607.92271, 0, 314.78337], [0, 607.88192, 236.42484], [0, 0, 1.0]]),
    "BB": np.array([[822.79041, 0, 318.47345], [0, 822.79041, 250.31296], [0, 0, 1.0]]),
}


def _stb_colour_to_depth(xyz: np.ndarray) -> np.ndarray:
    """Inverse of STB's SK extrinsics (Rodrigues rotation written out, not via scipy)."""
    rv = np.array([0.00531, -0.01196, 0.00301])
    theta = np.linalg.norm(rv)
    k = rv / theta
    Kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    R = np.eye(3) + np.sin(theta) * Kx + (1 - np.cos(theta)) * Kx @ Kx
    return xyz @ R.T + np.array([-24.0381, -0.4563, -1.2326])


def make_stb(
    root: Path,
    *,
    frames: int = 2,
    seqs: tuple[str, ...] = ("B1Counting", "B1Random", "B2Counting"),
    seed: int = 0,
) -> dict:
    """``frames`` frames per sequence, both cameras (640 x 480), SK depth in R + 256 G."""
    import scipy.io

    rng = np.random.default_rng(seed)
    (root / "labels").mkdir(parents=True, exist_ok=True)
    truth: dict = {}
    for seq in seqs:
        folder = root / "images" / seq
        for cam, K in STB_CAMERAS.items():
            hands = [random_hand(rng, K, 640, 480, spread=0.1) for _ in range(frames)]
            xyz = np.stack([h[1] for h in hands])  # canonical (palm in slot 0), camera frame
            stored = _stb_colour_to_depth(xyz) if cam == "SK" else xyz
            para = to_source(stored, STB_NAMES).transpose(2, 1, 0)  # (3, 21, N)
            scipy.io.savemat(root / "labels" / f"{seq}_{cam}.mat", {"handPara": para})
            truth[(seq, cam)] = {"xyz": xyz, "keypoints": np.stack([h[0] for h in hands])}
            for i in range(frames):
                _save_rgb(
                    folder / f"{'SK_color' if cam == 'SK' else 'BB_left'}_{i}.png", rng, 640, 480
                )
        depths = []
        for i in range(frames):
            mm = _blocks(rng, 65536, 480, 640)
            rgb = np.stack([mm & 255, mm >> 8, np.zeros_like(mm)], -1).astype(np.uint8)
            Image.fromarray(rgb).save(folder / f"SK_depth_{i}.png")
            depths.append(mm)
        truth[(seq, "depth")] = np.stack(depths)
    return truth


# --------------------------------------------------------------------------------------------
# HO-3D

HO3D_DEPTH_SCALE = 0.00012498664727900177


def make_ho3d(root: Path, *, seed: int = 0, version: int = 3) -> dict:
    """train: 3 frames in 2 sequences (one without a hand annotation: ``SEQ1/0001``);
    evaluation: 1 frame (root joint and box only). OpenGL axes, metres, MANO joint order."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    ext = ".jpg" if version == 3 else ".png"
    truth: dict = {}
    for split, frames in (
        ("train", ["SEQ1/0000", "SEQ1/0001", "SEQ2/0000"]),
        ("evaluation", ["EV1/0000"]),
    ):
        (root / f"{split}.txt").write_text("\n".join(frames) + "\n")
        for name in frames:
            seq, frame = name.split("/")
            folder = root / split / seq
            for sub in ("rgb", "depth", "meta"):
                (folder / sub).mkdir(parents=True, exist_ok=True)
            K = make_K(rng.uniform(600, 640), 640, 480)
            uv, xyz = random_hand(rng, K, 640, 480, spread=0.12)
            gl = to_source(xyz, MANO_NAMES) / 1000 * np.array([1.0, -1.0, -1.0])  # OpenGL, metres
            meta = {
                "camMat": K,
                "handPose": np.zeros(48),
                "handBeta": np.zeros(10),
                "handTrans": gl[0],
                "objName": "003_cracker_box",
                "objTrans": np.zeros(3),
            }
            if split == "evaluation":
                meta["handJoints3D"] = gl[0]
                meta["handBoundingBox"] = [
                    uv[:, 0].min(),
                    uv[:, 1].min(),
                    uv[:, 0].max(),
                    uv[:, 1].max(),
                ]
            elif name != "SEQ1/0001":
                meta["handJoints3D"] = gl
            else:
                meta["handJoints3D"] = None
            with (folder / "meta" / f"{frame}.pkl").open("wb") as f:
                pickle.dump(meta, f, protocol=2)
            _save_rgb(folder / "rgb" / f"{frame}{ext}", rng, 640, 480)
            code = _blocks(rng, 65536, 480, 640)
            Image.fromarray(
                np.stack([code & 255, code >> 8, np.zeros_like(code)], -1).astype(np.uint8)
            ).save(folder / "depth" / f"{frame}.png")
            truth[name] = {
                "xyz": xyz,
                "keypoints": uv,
                "K": K,
                "depth": code * HO3D_DEPTH_SCALE * 1000,
            }
    return truth


# --------------------------------------------------------------------------------------------
# DexYCB

DEXYCB_SUBJECTS = {1: "20200709-subject-01", 3: "20200820-subject-03"}
DEXYCB_SERIAL = "836212060125"


def make_dexycb(root: Path, *, sequences: int = 5, seed: int = 0) -> dict:
    """Subjects 1 and 3, ``sequences`` sequences each, one camera, 2 frames per sequence; frame 1
    of each subject's first sequence has no hand (joint_3d = -1). Sequence 4 is held out (s0)."""
    import yaml

    rng = np.random.default_rng(seed)
    intr = root / "calibration" / "intrinsics"
    intr.mkdir(parents=True, exist_ok=True)
    K = make_K(615.0, 640, 480)
    (intr / f"{DEXYCB_SERIAL}_640x480.yml").write_text(
        yaml.safe_dump(
            {"color": {"fx": 615.0, "fy": 615.0, "ppx": float(K[0, 2]), "ppy": float(K[1, 2])}}
        )
    )
    truth: dict = {}
    for subject in DEXYCB_SUBJECTS.values():
        for q in range(sequences):
            seq = root / subject / f"20200709_1415{q:02d}"
            (seq / DEXYCB_SERIAL).mkdir(parents=True, exist_ok=True)
            side = "left" if q % 2 else "right"
            (seq / "meta.yml").write_text(
                yaml.safe_dump({"num_frames": 2, "mano_sides": [side], "serials": [DEXYCB_SERIAL]})
            )
            for f in range(2):
                folder = seq / DEXYCB_SERIAL
                uv, xyz = random_hand(rng, K, 640, 480, spread=0.12)
                seg = np.zeros((480, 640), np.uint8)
                seg[100:300, 200:400] = 255
                seg[0:50] = 3  # an object
                empty = q == 0 and f == 1
                np.savez_compressed(
                    folder / f"labels_{f:06d}.npz",
                    seg=seg,
                    joint_3d=(-np.ones((1, 21, 3)) if empty else xyz[None] / 1000).astype(
                        np.float32
                    ),
                    joint_2d=(-np.ones((1, 21, 2)) if empty else uv[None]).astype(np.float32),
                    pose_m=np.zeros((1, 51), np.float32),
                )
                _save_rgb(folder / f"color_{f:06d}.jpg", rng, 640, 480)
                depth = _blocks(rng, 65536, 480, 640).astype(np.uint16)
                Image.fromarray(depth).save(folder / f"aligned_depth_to_color_{f:06d}.png")
                truth[f"{subject}/{seq.name}/{DEXYCB_SERIAL}/{f:06d}"] = {
                    "xyz": xyz,
                    "keypoints": uv,
                    "depth": depth,
                    "seg": seg == 255,
                    "side": side,
                    "K": K,
                }
    return truth


# --------------------------------------------------------------------------------------------
# CMU Panoptic hand_labels


def make_panoptic(root: Path, *, n_train: int = 2, n_test: int = 2, seed: int = 0) -> dict:
    """``root/hand_labels/manual_{train,test}/`` with full frames (320 x 240 here; the loader
    does not depend on the size) and JSON labels; the second joint of every hand is invalid."""
    rng = np.random.default_rng(seed)
    truth: dict = {}
    for split, count in (("manual_train", n_train), ("manual_test", n_test)):
        folder = root / "hand_labels" / split
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(count):
            name = f"Subject_unit_{i}.flv_{i:06d}_{'l' if i % 2 else 'r'}"
            uv, _ = random_hand(rng, make_K(300, 320, 240), 320, 240, spread=0.1)
            valid = np.ones(21)
            valid[1] = 0
            pts = np.c_[uv, valid]
            pts[1, :2] = 0  # invalid joints are stored at (0, 0)
            label = {
                "hand_pts": pts.tolist(),
                "is_left": i % 2,
                "head_size": 40.0 + i,
                "img_paths": f"{split}/{name}.jpg",
            }
            (folder / f"{name}.json").write_text(json.dumps(label))
            _save_rgb(folder / f"{name}.jpg", rng, 320, 240)
            truth[name] = {
                "keypoints": uv,
                "visibility": valid,
                "side": "left" if i % 2 else "right",
            }
    return truth


# --------------------------------------------------------------------------------------------
# InterHand2.6M


def _rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def make_interhand(root: Path, *, split: str = "test", seed: int = 0) -> dict:
    """3 images (334 x 512 as published): a right hand, a left hand, an interacting pair whose
    left-hand joint (InterHand index 21 + 20, the wrist) lies outside the image; plus a right
    annotation whose joints are all invalid (skipped)."""
    rng = np.random.default_rng(seed)
    W, H = 334, 512
    ann_dir = root / "annotations" / split
    ann_dir.mkdir(parents=True, exist_ok=True)
    images, annotations, cameras, joints, truth = (
        [],
        [],
        {"0": {k: {} for k in ("campos", "camrot", "focal", "princpt")}},
        {"0": {}},
        {},
    )
    for i, hand_type in enumerate(["right", "left", "interacting", "right"]):
        cam = f"40000{i}"
        K = make_K(rng.uniform(1200, 1300), W, H)
        R, pos = _rotation(rng), rng.uniform(-1000, 1000, size=3)
        c = cameras["0"]
        c["campos"][cam], c["camrot"][cam] = pos.tolist(), R.tolist()
        c["focal"][cam], c["princpt"][cam] = [K[0, 0], K[1, 1]], [K[0, 2], K[1, 2]]
        hands = {s: random_hand(rng, K, W, H, spread=0.12) for s in ("right", "left")}
        if hand_type == "interacting":
            hands["left"][0][0] = [W + 40.0, 10.0]  # wrist outside the frame
            z = hands["left"][1][0, 2]
            hands["left"][1][0, :2] = (
                (np.array([W + 40.0, 10.0]) - K[:2, 2]) / K[[0, 1], [0, 1]] * z
            )
        cam_xyz = np.concatenate(
            [to_source(hands[s][1], INTERHAND_NAMES) for s in ("right", "left")]
        )
        world = cam_xyz @ R + pos  # inverse of camera = R (world - campos)
        valid = np.zeros(42)
        if hand_type in ("right", "interacting") and i != 3:
            valid[:21] = 1
        if hand_type in ("left", "interacting"):
            valid[21:] = 1
        name = f"Capture0/0000_neutral_relaxed/cam{cam}/image{1000 + i}.jpg"
        images.append(
            {
                "id": 10 + i,
                "file_name": name,
                "width": W,
                "height": H,
                "capture": 0,
                "camera": cam,
                "frame_idx": 1000 + i,
                "seq_name": "0000_neutral_relaxed",
            }
        )
        annotations.append(
            {
                "id": 100 + i,
                "image_id": 10 + i,
                "bbox": [0, 0, W, H],
                "joint_valid": valid[:, None].tolist(),
                "hand_type": hand_type,
                "hand_type_valid": 1,
            }
        )
        joints["0"][str(1000 + i)] = {
            "world_coord": world.tolist(),
            "joint_valid": valid[:, None].tolist(),
            "hand_type": hand_type,
            "hand_type_valid": True,
        }
        _save_rgb(root / "images" / split / name, rng, W, H)
        for s in ("right", "left"):
            truth[f"{100 + i}_{s}"] = {"xyz": hands[s][1], "keypoints": hands[s][0], "K": K}
    stem = f"InterHand2.6M_{split}"
    (ann_dir / f"{stem}_data.json").write_text(
        json.dumps({"images": images, "annotations": annotations})
    )
    (ann_dir / f"{stem}_camera.json").write_text(json.dumps(cameras))
    (ann_dir / f"{stem}_joint_3d.json").write_text(json.dumps(joints))
    return truth
