"""handlab.cli / handlab.commands: every subcommand is registered, the parser builds without the
heavy libraries, and names are resolved only in the commands layer."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from handlab import cli
from handlab.commands import _resolve
from handlab.commands.attribute import _settings

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "pandas", "h5py", "matplotlib", "numpy", "safetensors")


def test_every_command_is_registered():
    sub = next(a for a in cli.build_parser()._actions if a.dest == "command")
    assert sorted(sub.choices) == [
        "attribute", "datasets", "evaluate", "figures", "report", "train", "zoo",
    ]  # fmt: skip


def test_help_imports_no_heavy_library():
    code = (
        "import sys\nfrom handlab import cli\n"
        "try:\n    cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True
    ).stdout
    assert "usage: handlab" in out
    assert json.loads(out.splitlines()[-1].replace("'", '"')) == []


def test_subcommand_help_imports_no_heavy_library():
    code = (
        "import sys\nfrom handlab import cli\n"
        "for words in (['attribute', '--help'], ['datasets', 'check', '--help']):\n"
        "    try:\n        cli.main(words)\n    except SystemExit:\n        pass\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True
    ).stdout
    assert json.loads(out.splitlines()[-1].replace("'", '"')) == []


def test_attribute_passes_only_given_options():
    args = cli.build_parser().parse_args(
        ["attribute", "--model", "zoo:x", "--data", "synth", "--out", "o", "--folds", "4"]
    )
    assert _settings(args) == {"folds": 4}


def test_resolve_rejects_bad_specs():
    with pytest.raises(TypeError, match="spec"):
        _resolve.resolve_model(None)
    with pytest.raises(ValueError, match="shipped models"):
        _resolve.resolve_model("zoo:no_such_model")
    with pytest.raises(ValueError, match="NAME:ROOT"):
        _resolve.resolve_data("nyu", "test")
