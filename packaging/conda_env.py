"""Write ``environment.yml`` and ``binder/environment.yml`` from ``pyproject.toml``.

The conda files list the same packages with the same version ranges as pyproject's
dependencies plus its ``notebooks`` and ``dev`` extras (pip names mapped to conda-forge's where
they differ), so they cannot drift again: ``tests/test_conda_env.py`` fails when a file differs
from what this script writes. Run it after editing the dependencies::

    python packaging/conda_env.py
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXTRAS = ("notebooks", "onnx", "dev")  # what the Makefile's `make setup` installs (.[dev])
CONDA_NAMES = {"torch": "pytorch-cpu"}  # conda-forge's CPU build of torch
PIP_ONLY = {"onnx2torch"}  # not on conda-forge: installed by pip inside the environment
HEADERS = {
    "environment.yml": (
        "# conda users: `conda env create -f environment.yml && conda activate handlab && "
        "pip install -e .`\n# (the Makefile's venv is the tested path; this mirrors its "
        "dependencies from conda-forge).\n"
    ),
    "binder/environment.yml": (
        "# Binder (mybinder.org): conda-forge, Python 3.11, CPU PyTorch. postBuild installs "
        "handlab itself.\n"
    ),
}
_REQUIREMENT = re.compile(r"^([A-Za-z0-9_.\-]+)\s*(\[[^\]]*\])?\s*([^;]*)$")


def requirements(pyproject: dict) -> list[tuple[str, str]]:
    """(pip name, version range) of the dependencies and EXTRAS, in order, without handlab."""
    project = pyproject["project"]
    lines = list(project["dependencies"])
    for extra in EXTRAS:
        lines += project["optional-dependencies"][extra]
    out = []
    for line in lines:
        match = _REQUIREMENT.match(line.strip())
        if match is None:
            raise ValueError(f"pyproject.toml: cannot read requirement {line!r}")
        name, _, spec = match.groups()
        if name.lower() != "handlab":
            out.append((name, spec.replace(" ", "")))
    return out


def render(pyproject: dict, header: str) -> str:
    """The text of one conda environment file."""
    python = re.search(r">=\s*(3\.\d+)", pyproject["project"]["requires-python"]).group(1)
    deps = [f"python={python}"]
    reqs = requirements(pyproject)
    deps += [CONDA_NAMES.get(name, name) + spec for name, spec in reqs if name not in PIP_ONLY]
    deps.append("pip")
    body = "".join(f"  - {d}\n" for d in deps)
    pip = [name + spec for name, spec in reqs if name in PIP_ONLY]
    if pip:
        body += "  - pip:\n" + "".join(f"      - {d}\n" for d in pip)
    return f"{header}name: handlab\nchannels:\n  - conda-forge\ndependencies:\n{body}"


def expected() -> dict[str, str]:
    """{file relative to the repository: its text} for every conda file."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return {name: render(pyproject, header) for name, header in HEADERS.items()}


if __name__ == "__main__":
    for name, text in expected().items():
        (ROOT / name).write_text(text)
        print(f"wrote {name}")
