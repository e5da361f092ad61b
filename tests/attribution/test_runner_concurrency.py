"""Two runs on one --out: the second is refused; temporary names are unique; atomic manifest."""

from __future__ import annotations

import json
import pathlib

import pytest
from attr_models import run_case

from handlab._lock import output_lock
from handlab.attribution.runner import run_attribution
from handlab.errors import OutputLockedError

# The fixed names the runner used before (another run's half-written files, if two ran at once).
DECOYS = ("parts/unit-000000.h5.tmp", "parts/unit-000000.parquet.tmp", "maps.h5.tmp")
DECOYS += ("indices.parquet.tmp", "manifest.tmp")


def test_a_second_run_on_a_locked_folder_is_refused_before_any_work(tmp_path):
    model, data, config = run_case()
    with output_lock(tmp_path, command="handlab attribute (the first run)"):
        with pytest.raises(OutputLockedError, match=r"in use by pid \d+ .*the first run"):
            run_attribution(model, data, tmp_path, config=config, progress=False)
    assert not (tmp_path / "parts").exists() and not (tmp_path / "manifest.json").exists()


def test_files_of_another_writer_are_never_touched(tmp_path):
    for name in DECOYS:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("another process's file")
    killed = [tmp_path / "parts" / ".unit-000001.h5.k1ll3d.tmp", tmp_path / ".maps.h5.x.tmp"]
    for path in killed:  # what a killed run of this version leaves: cleaned under the lock
        path.write_text("half")
    model, data, config = run_case()
    run_attribution(model, data, tmp_path, config=config, progress=False)
    for name in DECOYS:
        assert (tmp_path / name).read_text() == "another process's file", name
    assert json.loads((tmp_path / "manifest.json").read_text())["complete"]
    tmp_files = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.tmp"))
    assert tmp_files == sorted(DECOYS)  # and no temporary file of this or a killed run left


def test_a_crash_while_writing_the_manifest_keeps_the_previous_one(tmp_path, monkeypatch):
    model, data, config = run_case()
    real = pathlib.Path.write_text

    def half_then_crash(self, text, *args, **kw):  # a kill or a full disk mid-write
        if "complete" in text:
            real(self, text[: len(text) // 2], *args, **kw)
            raise OSError("No space left on device")
        return real(self, text, *args, **kw)

    monkeypatch.setattr(pathlib.Path, "write_text", half_then_crash)
    with pytest.raises(OSError, match="No space"):
        run_attribution(model, data, tmp_path, config=config, progress=False)
    manifest = json.loads((tmp_path / "manifest.json").read_text())  # still whole JSON
    assert manifest["units"] == 3 and "complete" not in manifest
