"""The conda and Binder environments list pyproject's dependencies (they drifted twice)."""

from __future__ import annotations

import importlib.util
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("conda_env", ROOT / "packaging" / "conda_env.py")
conda_env = importlib.util.module_from_spec(spec)
spec.loader.exec_module(conda_env)


def test_conda_files_are_what_pyproject_gives():
    for name, text in conda_env.expected().items():
        assert (ROOT / name).read_text() == text, (
            f"{name} differs from pyproject.toml: run `python packaging/conda_env.py`"
        )


def test_every_dependency_is_in_both_conda_files():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    for name in ("environment.yml", "binder/environment.yml"):
        listed = {
            line.strip()[2:].split(">")[0].split("=")[0].split("<")[0]
            for line in (ROOT / name).read_text().splitlines()
            if line.startswith("  - ") or line.startswith("      - ")  # conda, then pip's list
        }
        for dep, _ in conda_env.requirements(pyproject):
            assert conda_env.CONDA_NAMES.get(dep, dep) in listed, f"{name} lacks {dep}"
        assert {"scikit-learn", "pyyaml", "pytorch-cpu", "nbformat"} <= listed


def test_binder_lets_pip_fill_what_conda_lacks():
    lines = (ROOT / "binder" / "postBuild").read_text().splitlines()
    install = [ln for ln in lines if "pip install" in ln and not ln.lstrip().startswith("#")]
    assert install and all("--no-deps" not in ln for ln in install), install
