"""Real hand-pose datasets, read offline from their exact published layouts.

No chapter teaches this package yet (chapter "00" is the placeholder).

``open_dataset(name, root, split, **options)`` returns a ``torch.utils.data.Dataset`` whose items
follow :mod:`handlab.data.schema` (the synthetic generator's keys plus ``meta``), converted to the
canonical 21-joint order (NYU: its 14 evaluation joints), to millimetres, and cropped square
around the hand (``size``, default 128, the shipped models' input). One module per dataset; each
module docstring states its layout, encodings and official split:

========== ============================ ===========================================
name       splits                       protocol
========== ============================ ===========================================
coco       all                          COCO-style keypoint JSONs, one item per hand
freihand   training, evaluation         4 image versions of each training sample
rhd        training, evaluation         dominant hand by mask pixels
nyu        train, test                  view 1, 14 evaluation joints
stb        train, test                  B2-B6 train, B1 test; SK or BB camera
ho3d       train, evaluation            train.txt / evaluation.txt
dexycb     train, val, test             setup s0 (sequence i % 5 == 4 held out)
panoptic   train, test                  hand_labels manual_train / manual_test
interhand  train, val, test             one item per annotated hand
========== ============================ ===========================================

>>> list_datasets()[:3]
['coco', 'dexycb', 'freihand']
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch.utils.data import Dataset

__all__ = ["DataError", "dataset_class", "list_datasets", "open_data", "open_dataset"]

# name -> (module, class) (imported lazily so ``import handlab.data`` stays light).
_LOADERS: dict[str, tuple[str, str]] = {
    "coco": ("handlab.data.coco", "COCOHands"),
    "dexycb": ("handlab.data.dexycb", "DexYCB"),
    "freihand": ("handlab.data.freihand", "FreiHAND"),
    "ho3d": ("handlab.data.ho3d", "HO3D"),
    "interhand": ("handlab.data.interhand", "InterHand26M"),
    "nyu": ("handlab.data.nyu", "NYU"),
    "panoptic": ("handlab.data.panoptic", "PanopticHands"),
    "rhd": ("handlab.data.rhd", "RHD"),
    "stb": ("handlab.data.stb", "STB"),
}


def __getattr__(name: str) -> Any:
    # ``DataError`` lives with the loaders (torch); imported on first use so that listing the
    # datasets (``handlab datasets --help``) does not import torch.
    if name == "DataError":
        from handlab.data.schema import DataError

        return DataError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def list_datasets() -> list[str]:
    """Names accepted by :func:`open_dataset`, sorted."""
    return sorted(_LOADERS)


def dataset_class(name: str) -> type:
    """The loader class registered under ``name`` (``ValueError`` for unknown names)."""
    if not isinstance(name, str):
        raise TypeError(f"name: expected a str, got {type(name).__name__}")
    key = name.lower()
    if key not in _LOADERS:
        raise ValueError(f"name: expected one of {list_datasets()}, got {name!r}")
    module, cls = _LOADERS[key]
    return getattr(importlib.import_module(module), cls)


def open_dataset(name: str, root: str | Path, split: str | None = None, **options: Any) -> Dataset:
    """Open real dataset ``name`` stored under ``root`` (its published layout) for ``split``.

    Args:
        name: one of :func:`list_datasets`.
        root: the dataset's folder (see each module's docstring and docs/datasets.md); for
            ``coco`` an annotation JSON or a folder of them.
        split: one of the dataset's official splits (``dataset_class(name).splits``); None: its
            first (``"all"`` for ``coco``).
        options: ``size`` (crop side, default 128; ``None`` for the full frame), ``margin``
            (crop box = margin x keypoint extent, default 1.3) and per-dataset options.

    Returns:
        a map-style dataset of dicts (``image``/``depth``/``mask``, ``keypoints`` (J, 2) px,
        ``visibility`` (J,), ``xyz`` (J, 3) mm, ``K`` (3, 3), ``meta``).

    Raises:
        ValueError: unknown name or split; :class:`DataError` (a ``ValueError``) for a missing
        root or annotation file.
    """
    cls = dataset_class(name)
    return cls(root, cls.splits[0] if split is None else split, **options)


DR_STRENGTH = 0.8  # ``synth-dr``: probability of each randomisation effect per training sample


def open_data(spec: str, split: str, *, size: int = 128, **options: Any) -> Dataset:
    """Open ``"synth"`` (the embedded generator), ``"synth-dr"`` (its training split with domain
    randomisation, :mod:`handlab.synth.randomize`, and half left hands; ``"synth-dr:props"`` or
    ``"synth-dr:held=0.3,..."`` add generator options to it), ``"synth-clips"`` (its
    7-frame clips for clip models; ``"synth-clips:T=N"`` for N frames:
    :class:`handlab.synth.clips.SyntheticClips`) or
    a real dataset given as ``"NAME:ROOT"`` (``options`` go to its loader, e.g. ``crop=`` for
    ``coco``). ``"coco:PATH"`` reads every hand whatever ``split`` says; ``"coco:real-hands"``
    is the checkout's development set (:data:`handlab.data.coco.REAL_HANDS`).

    >>> open_data("synth-clips:T=3", "val", size=64).T
    3
    >>> open_data("nyu", "test")
    Traceback (most recent call last):
    ...
    ValueError: spec: expected 'synth' or 'NAME:ROOT' (e.g. 'rhd:/data/RHD'), got 'nyu'
    """
    if not isinstance(spec, str):
        raise TypeError(f"spec: expected a str, got {type(spec).__name__}")
    if spec == "synth":
        from handlab.synth import SyntheticHands  # lazy: the generator is a separate layer

        return SyntheticHands(split, size=size)
    if spec == "synth-dr" or spec.startswith("synth-dr:"):
        from handlab.synth import SyntheticHands

        # domain randomisation and half left hands on the training split only: val and test
        # stay the frozen plain splits, so their numbers compare with every synthetic model
        dr = {"randomize": DR_STRENGTH, "left": 0.5, **generator_options(spec)}
        return SyntheticHands(split, size=size, **(dr if split == "train" else {}))
    if spec == "synth-clips" or spec.startswith("synth-clips:"):
        return _open_clips(spec, split, size)
    name, sep, root = spec.partition(":")
    if not sep or not root:
        raise ValueError(
            f"spec: expected 'synth' or 'NAME:ROOT' (e.g. 'rhd:/data/RHD'), got {spec!r}"
        )
    if name == "coco":  # COCO files carry no split: any split name reads the whole file
        return open_dataset(name, _coco_root(root), "all", size=size, **options)
    return open_dataset(name, root, split, size=size, **options)


DR_PROPS = {"sleeves": 0.5, "held": 0.3, "truncation": 0.3, "details": 0.8}
"""``props`` in a generator spec: the props of :mod:`handlab.synth.props` at the realism
table's mix (docs/real_hands.md)."""


def generator_options(spec: str) -> dict[str, Any]:
    """Generator options written after the colon of ``"synth:..."`` or ``"synth-dr:..."``:
    ``KEY=VALUE`` pairs joined by commas (numbers or ``true``/``false``; the keys are
    :class:`~handlab.synth.scene.SceneOptions` fields, checked there) and ``props`` for
    :data:`DR_PROPS`; later ones win. ``{}`` without a colon.

    >>> generator_options("synth:left=1.0,depth_noise=true")
    {'left': 1.0, 'depth_noise': True}
    >>> generator_options("synth-dr:props,held=0.6")["held"]
    0.6
    >>> generator_options("synth:left")
    Traceback (most recent call last):
    ...
    ValueError: data: expected 'synth' or 'synth:KEY=VALUE,...', got 'synth:left'
    """
    name, _, rest = spec.partition(":")
    options: dict[str, Any] = {}
    for item in filter(None, rest.split(",")):
        if item.strip() == "props":
            options.update(DR_PROPS)
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"data: expected {name!r} or '{name}:KEY=VALUE,...', got {spec!r}")
        low = value.strip().lower()
        try:
            options[key.strip()] = low == "true" if low in ("true", "false") else float(low)
        except ValueError:
            raise ValueError(
                f"data: {key}: expected a number or true/false, got {value!r}"
            ) from None
    return options


def _coco_root(root: str) -> str | Path:
    """``real-hands`` names the development set of a source checkout (evaluation only)."""
    if root == "real-hands" and not Path(root).exists():
        from handlab.data.coco import REAL_HANDS

        return REAL_HANDS
    return root


def _open_clips(spec: str, split: str, size: int) -> Dataset:
    from handlab.synth.clips import SyntheticClips  # lazy, as for "synth"

    option = spec.removeprefix("synth-clips").removeprefix(":")
    key, _, value = option.partition("=")
    if not option:
        return SyntheticClips(split, size=size)
    if key != "T" or not value.isdigit():
        raise ValueError(
            f"spec: expected 'synth-clips' or 'synth-clips:T=N' (N frames), got {spec!r}"
        )
    return SyntheticClips(split, size=size, T=int(value))
