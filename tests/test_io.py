"""Atomic writes: complete files with ordinary permissions, nothing left behind on failure."""

import os

import pytest

from handlab._io import atomic_write, atomic_write_text


def test_written_file_has_umask_permissions_not_mkstemps(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "page.html", "<p>ok</p>")
    finally:
        os.umask(old)
    path = tmp_path / "page.html"
    assert path.read_text(encoding="utf-8") == "<p>ok</p>"
    assert path.stat().st_mode & 0o777 == 0o644  # mkstemp alone would give 0o600


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "a.json"
    atomic_write_text(path, "old")

    def broken(tmp: str) -> None:
        with open(tmp, "w") as f:
            f.write("half")
        raise RuntimeError("crash")

    with pytest.raises(RuntimeError, match="crash"):
        atomic_write(path, broken)
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]
