"""The output-folder lock: one holder, named to the others; stale locks of dead processes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from handlab._lock import LOCK_NAME, output_lock
from handlab.errors import HandlabError, OutputLockedError

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}

HOLD = """
import sys, time
from pathlib import Path
from handlab._lock import output_lock
folder, go, seconds = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])
while not go.exists():
    time.sleep(0.005)
try:
    with output_lock(folder, command="holder test"):
        print("got", flush=True)
        time.sleep(seconds)
except Exception as err:
    print("refused:", type(err).__name__, err, flush=True)
"""


def _start(folder: Path, go: Path, seconds: float) -> subprocess.Popen:
    args = [sys.executable, "-c", HOLD, str(folder), str(go), str(seconds)]
    return subprocess.Popen(args, stdout=subprocess.PIPE, text=True, env=ENV)


def test_a_second_holder_is_refused_with_the_first_named(tmp_path):
    with output_lock(tmp_path, command="handlab attribute --out x"):
        with pytest.raises(OutputLockedError) as err:
            with output_lock(tmp_path):
                pass
    text = str(err.value)
    assert f"pid {os.getpid()} on {socket.gethostname()}" in text
    assert "handlab attribute --out x" in text and str(tmp_path) in text
    assert isinstance(err.value, HandlabError)
    assert not (tmp_path / LOCK_NAME).exists()  # released


def test_the_lock_is_released_after_an_exception(tmp_path):
    with pytest.raises(KeyError), output_lock(tmp_path):
        raise KeyError("boom")
    with output_lock(tmp_path / "sub"):  # the folder is created
        assert (tmp_path / "sub" / LOCK_NAME).is_file()
    with output_lock(tmp_path):
        pass


def test_a_live_process_holds_it_and_its_dead_lock_is_taken_over(tmp_path):
    go = tmp_path / "go"
    go.touch()
    proc = _start(tmp_path, go, 60)
    try:
        assert proc.stdout.readline().strip() == "got"
        with pytest.raises(OutputLockedError, match=f"pid {proc.pid} on .*holder test"):
            with output_lock(tmp_path):
                pass
    finally:
        proc.kill()  # SIGKILL: no clean-up, the lock file stays behind
        proc.wait()
    assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == proc.pid
    with output_lock(tmp_path):  # stale: its pid is gone on this host
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()


def test_a_lock_from_another_host_is_never_guessed_stale(tmp_path):
    info = {"pid": 1, "host": "elsewhere.example", "time": "t", "command": "c", "token": "x"}
    (tmp_path / LOCK_NAME).write_text(json.dumps(info))
    with pytest.raises(OutputLockedError, match=f"on elsewhere.example.*delete {tmp_path}"):
        with output_lock(tmp_path):
            pass


def test_racing_processes_get_exactly_one_lock(tmp_path):
    go = tmp_path / "go"
    procs = [_start(tmp_path / "out", go, 3) for _ in range(5)]
    time.sleep(1.0)  # let every process start and wait for the go signal
    go.touch()
    lines = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert sum(line == "got" for line in lines) == 1, lines
    assert sum(line.startswith("refused: OutputLockedError") for line in lines) == 4, lines
