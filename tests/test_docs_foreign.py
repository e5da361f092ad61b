"""The worked examples of "Explain your own model" run as written: the README section's code and
every Python block of ``docs/explain_your_own_model.md`` (in order, one namespace)."""

from __future__ import annotations

import re
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def _section(text: str, heading: str) -> str:
    start = text.index(heading)
    end = text.find("\n## ", start + len(heading))
    return text[start : end if end > 0 else None]


def test_readme_example_runs(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    section = _section((ROOT / "README.md").read_text(), "## Explain your own model")
    (code,) = BLOCK.findall(section)
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    assert scope["res"].maps.shape == (1, 21, 64, 64)
    assert len(scope["table"]) == 21 and scope["table"]["DI"].notna().all()


def test_docs_page_examples_run(monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)
    text = (ROOT / "docs" / "explain_your_own_model.md").read_text()
    blocks = BLOCK.findall(text)
    assert len(blocks) == 3
    scope: dict = {}
    for i, code in enumerate(blocks):
        exec(compile(code, f"docs/explain_your_own_model.md block {i}", "exec"), scope)
    assert capsys.readouterr().out.strip() == "True"  # the ONNX copy matches the network
    assert scope["res"].maps.shape == (1, 21, 64, 96)
    built = scope["build"]()  # the factory of the command-line section
    assert built.channels == "bgr" and built(torch.rand(1, 3, 64, 64))["keypoints"].shape[1] == 21
