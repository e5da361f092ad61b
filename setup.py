"""Build hook: the chapters (``notebooks/NN_*.py``) go into the wheel as ``handlab/chapters/``,
so ``handlab report`` works from an installed wheel (``handlab.report.find_chapters``). The
metadata lives in ``pyproject.toml``."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


class BuildPyWithChapters(build_py):
    def run(self) -> None:
        super().run()
        chapters = sorted((HERE / "notebooks").glob("[0-9][0-9]_*.py"))
        if not chapters:
            raise FileNotFoundError(f"{HERE / 'notebooks'}: expected the chapter .py files")
        target = Path(self.build_lib) / "handlab" / "chapters"
        shutil.rmtree(target, ignore_errors=True)  # no chapter left over from an earlier build
        target.mkdir(parents=True)
        for path in chapters:
            shutil.copy2(path, target / path.name)


setup(cmdclass={"build_py": BuildPyWithChapters})
