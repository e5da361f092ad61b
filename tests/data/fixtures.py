"""Builders of tiny real-dataset folders in each dataset's exact published layout.

Each ``make_<dataset>(root, ...)`` writes a few samples with the dataset's real encodings (RHD
depth across R/G, NYU across G/B, HO-3D OpenGL axes, ...) and returns the ground truth in
handlab's conventions (canonical joint order, mm, camera frame with y down) so a test can check
what the loader returns. Joint orders are written from the datasets' joint *names* (as published),
not from :mod:`handlab.skeleton`'s index maps, so the maps are tested rather than reused.

Other tests may reuse these builders when they need a real-layout dataset.
"""

from __future__ import annotations

import json
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


def _save_rgb(path: Path, rng: np.random.Generator, width: int, height: int, **kw) -> np.ndarray:
    path.parent.mkdir(parents=True, exist_ok=True)
    rgb = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
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
