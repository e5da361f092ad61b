"""Evaluation data made once per report run: a test split rendered once, then reused.

Used by the chapters (01, 02 and 08-11 evaluate or explain models on the first samples of a
test split) through :func:`eval_split`. Rendering a synthetic sample costs about four ResNet-18
forwards, and chapter 01 used to render its 512-sample test split five times (chapter 02 six
times in one cell): ``predict`` streams the dataset it is given, so every call rendered again.

:func:`eval_split` renders the first ``limit`` samples once and returns :class:`Rendered`, an
in-memory dataset with the same batched interface (``batch``, ``__getitems__``), so ``predict``,
``load_batch`` and the attribution code read it unchanged. Two caches, both keyed by every
setting that changes the samples (data spec, split, image size, number of samples, generator
options, and a hash of the generator's source code):

- in-process: the same call in the same kernel returns the same object;
- on disk, when the environment variable :data:`CACHE_ENV` names a folder (``handlab report``
  sets it to ``OUT/.cache/data``): the tensors are saved there once, and the next chapter of the
  run memory-maps them instead of rendering again. Only the synthetic generator is cached on
  disk (a real dataset's files can change under the same name).

Batches are rendered in passes of :data:`PASS` samples from index 0, the passes ``predict``
used, so the cached samples equal the streamed ones bit for bit.

>>> a = eval_split("synth", "test", size=64, limit=2)
>>> a is eval_split("synth", "test", size=64, limit=2), len(a), a.batch([1])["image"].shape
(True, 2, torch.Size([1, 3, 64, 64]))
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

__all__ = ["CACHE_ENV", "PASS", "Rendered", "cache_key", "eval_split", "parse_synth"]

CACHE_ENV = "HANDLAB_DATA_CACHE"
PASS = 32  # samples per render pass: predict's default batch size
_MEMORY: dict[str, Rendered] = {}


class Rendered(Dataset):
    """Samples held in memory: ``tensors`` maps a field to an (N, ...) tensor.

    ``source`` (the spec) and ``T`` (frames per clip, for clip data) are kept for the checks
    that read them (:func:`handlab.training.data.check_data`).

    >>> r = Rendered({"x": torch.arange(6).reshape(3, 2)}, source="toy")
    >>> len(r), r[2]["x"].tolist(), r.batch([0, 2])["x"].tolist()
    (3, [4, 5], [[0, 1], [4, 5]])
    """

    def __init__(
        self, tensors: dict[str, torch.Tensor], *, source: str, T: int | None = None
    ) -> None:
        sizes = {k: int(v.shape[0]) for k, v in tensors.items()}
        if not sizes or len(set(sizes.values())) != 1:
            raise ValueError(f"tensors: expected fields with one common length, got {sizes}")
        self.tensors, self.source, self.length = tensors, source, next(iter(sizes.values()))
        if T is not None:
            self.T = T

    def __len__(self) -> int:
        return self.length

    def batch(self, indices: list[int]) -> dict[str, torch.Tensor]:
        """The samples ``indices`` as a dict of batched tensors (copies, safe to modify)."""
        index = torch.as_tensor([int(i) for i in indices], dtype=torch.long)
        if index.numel() == 0:
            raise ValueError("indices: expected at least one sample index, got none")
        if int(index.min()) < -self.length or int(index.max()) >= self.length:
            raise IndexError(f"index: expected ints in [0, {self.length}), got {indices!r}")
        return {k: v[index] for k, v in self.tensors.items()}

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {k: v[0] for k, v in self.batch([int(index)]).items()}

    def __getitems__(self, indices: list[int]) -> list[dict[str, torch.Tensor]]:
        out = self.batch(indices)
        return [{k: v[j] for k, v in out.items()} for j in range(len(indices))]


def _code_hash() -> str:
    """A hash of the synthetic generator's source files (``synth/`` and the articulated hand it
    poses): new code, new cache entries."""
    package = Path(__file__).resolve().parent
    h = hashlib.sha256(torch.__version__.encode())
    for path in [*sorted((package / "synth").glob("*.py")), package / "hand_model.py"]:
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def cache_key(spec: str, split: str, size: int, limit: int, options: dict[str, Any]) -> str:
    """The cache key of a split: a hash of every setting that changes its samples.

    >>> cache_key("synth", "test", 128, 32, {}) == cache_key("synth", "test", 128, 32, {})
    True
    >>> cache_key("synth", "test", 128, 32, {}) == cache_key("synth", "test", 128, 33, {})
    False
    """
    settings = {
        "spec": spec,
        "split": split,
        "size": size,
        "limit": limit,
        "options": {k: options[k] for k in sorted(options)},
        "code": _code_hash() if spec.startswith("synth") else None,
    }
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:24]


def parse_synth(spec: str) -> dict[str, Any]:
    """Generator options written in a ``synth:KEY=VALUE,...`` spec (``{}`` for ``"synth"``).

    Another synthetic test set for ``handlab report --data``: e.g. ``synth:left=1.0`` (left
    hands), ``synth:occluders=1.0,blur=0.5``. Values are numbers or ``true``/``false``; the keys
    are ``SyntheticHands``' options, checked there.

    >>> parse_synth("synth:left=1.0,depth_noise=true")
    {'left': 1.0, 'depth_noise': True}
    >>> parse_synth("synth:left")
    Traceback (most recent call last):
    ...
    ValueError: data: expected 'synth' or 'synth:KEY=VALUE,...', got 'synth:left'
    """
    from handlab.data import generator_options

    return generator_options(spec)


def _open(spec: str, split: str, size: int, options: dict[str, Any]) -> Any:
    if spec == "synth" or spec.startswith("synth:"):
        options = {**parse_synth(spec), **options}
        from handlab.synth import SyntheticHands  # lazy: the generator is a lower layer

        return SyntheticHands(split, size=size, **options)
    if options:
        raise ValueError(
            f"options: generator options {sorted(options)} apply to 'synth' only, got {spec!r}"
        )
    from handlab.data import open_data

    return open_data(spec, split, size=size)


def _render(data: Any, n: int) -> dict[str, torch.Tensor]:
    from handlab.training.data import load_batch

    parts = [load_batch(data, range(lo, min(n, lo + PASS))) for lo in range(0, n, PASS)]
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


def eval_split(
    spec: str = "synth",
    split: str = "test",
    *,
    size: int = 128,
    limit: int | None = None,
    keys: tuple[str, ...] | None = None,
    **options: Any,
) -> Rendered:
    """The first ``limit`` samples of ``spec`` at ``split``, rendered once (see the module).

    Args:
        spec: ``"synth"`` (``"synth:KEY=VALUE,..."`` with generator options, see
            :func:`parse_synth`), ``"synth-clips[:T=N]"`` or ``"NAME:ROOT"`` (:func:`open_data`).
        split: the split (``"test"`` for evaluation).
        size: crop side in pixels.
        limit: number of samples from index 0 (``None``: the whole split, capped at its length).
        keys: the fields to keep (``None``: all); e.g. ``("image", "keypoints", "visibility")``
            for 2D RGB models holds 512 test samples in 101 MB instead of 170 MB.
        options: generator options of ``SyntheticHands`` (``occluders``, ``extras``, ...).

    Returns:
        a :class:`Rendered` dataset of ``min(limit, len(split))`` samples.
    """
    if not isinstance(spec, str):
        raise TypeError(f"spec: expected 'synth' or 'NAME:ROOT', got {type(spec).__name__}")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise ValueError(f"limit: expected a positive int or None, got {limit!r}")
    data = _open(spec, split, size, options)
    n = len(data) if limit is None else min(limit, len(data))
    if keys is not None:
        keys = tuple(sorted(keys))
    key = cache_key(spec, split, size, n, {**options, "_keys": keys})
    if key in _MEMORY:
        return _MEMORY[key]
    folder = os.environ.get(CACHE_ENV)
    path = Path(folder) / f"{key}.pt" if folder and spec.startswith("synth") else None
    if path is not None and path.is_file():
        tensors = torch.load(path, weights_only=True, mmap=True)
    else:
        tensors = _render(data, n)
        if keys is not None:
            missing = sorted(set(keys) - set(tensors))
            if missing:
                raise ValueError(
                    f"keys: {spec!r} has no fields {missing}; it has {sorted(tensors)}"
                )
            tensors = {k: tensors[k] for k in keys}
        if path is not None:
            _save(tensors, path)
    _MEMORY[key] = Rendered(tensors, source=spec, T=getattr(data, "T", None))
    return _MEMORY[key]


def _save(tensors: dict[str, torch.Tensor], path: Path) -> None:
    """Save atomically under a name unique to this process (two chapters may race)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    torch.save(tensors, tmp)
    os.replace(tmp, path)
