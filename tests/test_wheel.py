"""The wheel a user installs: built from the checkout, installed in a fresh virtual environment.

Nothing is downloaded: the wheel is built without build isolation, installed with ``--no-deps
--no-index``, and the fresh environment sees this environment's packages (torch, ...) through
a ``.pth`` file, after its own (so ``import handlab`` finds the installed wheel, not the
checkout).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

import handlab
from handlab.zoo._large import LARGE

pytestmark = pytest.mark.slow  # about a minute: the wheel compresses ~75 MiB of weights

ROOT = Path(__file__).resolve().parents[1]
MAX_WHEEL_MIB = 92  # an index allows 100 MiB per file; 89.2 MiB with rle_r18 + transpose_r18
SKIP = shutil.ignore_patterns(
    ".git", ".venv", "build", "reports", "runs", "*.egg-info", "__pycache__", ".*_cache"
)


def _run(*args: str | Path, cwd: Path | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # never the checkout
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True, cwd=cwd, env=env)
    assert proc.returncode == 0, f"{args}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def _build(project: Path, dist: Path) -> Path:
    pip = (sys.executable, "-m", "pip")
    _run(*pip, "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", dist, project)
    (wheel,) = dist.glob(f"{project.name.replace('-', '_')}-*.whl")
    return wheel


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "handlab"  # a clean copy: an in-tree build/ would keep files from older builds
    shutil.copytree(ROOT, src, ignore=SKIP)
    wheel = _build(src, tmp / "dist")
    venv = tmp / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    own = _run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])")
    (Path(own.strip()) / "_test_env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    pip = (sys.executable, "-m", "pip", "--python", python)
    _run(*pip, "install", "-q", "--no-deps", "--no-index", wheel)
    return {"src": src, "wheel": wheel, "venv": venv, "python": python, "pip": pip, "tmp": tmp}


def test_the_wheel_is_small_typed_and_carries_the_chapters(built):
    wheel = built["wheel"]
    assert wheel.stat().st_size < MAX_WHEEL_MIB * 2**20, f"{wheel.stat().st_size / 2**20:.1f} MiB"
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "handlab/py.typed" in names
    chapters = {f"handlab/chapters/{p.name}" for p in (ROOT / "notebooks").glob("[0-9]*_*.py")}
    assert len(chapters) >= 12 and chapters <= names
    for name in LARGE:  # left out, and named the same in pyproject.toml
        assert f"handlab/zoo/weights/{name}.safetensors" not in names
        assert f"handlab/zoo/weights/{name}.json" in names
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    excluded = config["tool"]["setuptools"]["exclude-package-data"]["handlab"]
    assert sorted(excluded) == sorted(f"zoo/weights/{n}.safetensors" for n in LARGE)
    assert config["project"]["license"] == "MIT"  # an SPDX string, not the deprecated table


CHECK = """
import json, handlab, handlab.zoo, handlab.report
from handlab.errors import InputError
try:
    handlab.zoo.load("{large}")
    refused = ""
except InputError as err:
    refused = str(err)
print(json.dumps({{"file": handlab.__file__, "zoo": handlab.zoo.list(), "refused": refused,
    "chapters": [p.name for p in handlab.report.find_chapters()],
    "chapter_dir": str(handlab.report.find_chapters()[0].parent)}}))
"""


def _check(built) -> dict:
    code = CHECK.format(large=LARGE[0])
    return json.loads(_run(built["python"], "-c", code, cwd=built["tmp"]))


def test_the_installed_wheel_runs_and_finds_its_chapters(built):
    venv = built["venv"].resolve()
    out = _check(built)
    assert Path(out["file"]).resolve().is_relative_to(venv)  # the wheel, not the checkout
    assert Path(out["chapter_dir"]).resolve().is_relative_to(venv)
    assert out["chapters"] == sorted(p.name for p in (ROOT / "notebooks").glob("[0-9]*_*.py"))
    assert "simplebaseline_r18" in out["zoo"] and LARGE[0] not in out["zoo"]
    version = _run(built["venv"] / "bin" / "handlab", "--version", cwd=built["tmp"])
    assert version.strip() == f"handlab {handlab.__version__}"  # the console script
    assert f"zoo:{LARGE[0]}: its weights are not in the handlab wheel" in out["refused"]


def test_the_large_weights_data_package_completes_the_zoo(built):
    wheel = _build(built["src"] / "packaging" / "handlab-zoo-large", built["tmp"] / "dist-large")
    assert {f"handlab_zoo_large/{n}.safetensors" for n in LARGE} <= set(
        zipfile.ZipFile(wheel).namelist()
    )
    _run(*built["pip"], "install", "-q", "--no-deps", "--no-index", wheel)
    out = _check(built)
    assert LARGE[0] in out["zoo"] and out["refused"] == ""
