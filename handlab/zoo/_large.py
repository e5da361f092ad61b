"""Where a shipped model's weights lie: beside its card, or in the ``handlab-zoo-large`` package.

The handlab wheel stays under 80 MiB (a package index allows 100 MiB per file) by leaving out the
weights named in ``LARGE`` (see ``pyproject.toml``, ``exclude-package-data``); their cards stay
in. A git checkout has every file. An installed wheel finds the left-out weights in the data
package ``handlab-zoo-large`` (``packaging/handlab-zoo-large``, built from the same checkout and
installed by the user with pip: nothing is ever downloaded at run time).

>>> weights_path(Path("/nonexistent"), "x")
PosixPath('/nonexistent/x.safetensors')
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

__all__ = ["LARGE", "LARGE_PACKAGE", "weights_path"]

LARGE = ("simplebaseline_r50",)  # 22.5 MiB of the 96 MiB wheel; the rest is 73.5 MiB
LARGE_PACKAGE = "handlab_zoo_large"
INSTALL_HINT = (
    "its weights are not in the handlab wheel (kept under 80 MiB); install the data package "
    "built from the repository (pip install packaging/handlab-zoo-large) or use a git checkout"
)


def _package_dir() -> Path | None:
    spec = importlib.util.find_spec(LARGE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def weights_path(folder: Path, name: str) -> Path:
    """``folder/NAME.safetensors``, or the data package's copy when only that one exists."""
    path = folder / f"{name}.safetensors"
    if path.is_file() or name not in LARGE:
        return path
    extra = _package_dir()
    return extra / path.name if extra is not None and (extra / path.name).is_file() else path
