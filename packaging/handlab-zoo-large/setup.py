"""Copies the weights that handlab's pyproject.toml leaves out of its wheel into this package."""

import shutil
import tomllib
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parents[2]  # the handlab checkout


def left_out() -> list[Path]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["exclude-package-data"]["handlab"]
    return [ROOT / "handlab" / p for p in patterns]


class BuildPyWithWeights(build_py):
    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "handlab_zoo_large"
        for path in left_out():
            if not path.is_file():
                raise FileNotFoundError(f"{path}: expected zoo weights (build from a checkout)")
            shutil.copy2(path, target / path.name)


setup(cmdclass={"build_py": BuildPyWithWeights})
