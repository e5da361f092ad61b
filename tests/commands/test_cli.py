"""handlab.cli / handlab.commands: every subcommand is registered, the parser builds without the
heavy libraries, and names are resolved only in the commands layer."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from handlab import cli
from handlab.attribution.config import PoseIGConfig
from handlab.commands import _resolve
from handlab.commands.attribute import _POSEIG, _RUN, _settings, config_from_args

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "pandas", "h5py", "matplotlib", "numpy", "safetensors")


def test_every_command_is_registered():
    sub = next(a for a in cli.build_parser()._actions if a.dest == "command")
    assert sorted(sub.choices) == [
        "attribute", "datasets", "evaluate", "figures", "report", "train", "zoo",
    ]  # fmt: skip


def _run_and_list_heavy(commands: list[list[str]]) -> tuple[str, list[str]]:
    """Run ``handlab`` with each word list in a fresh interpreter: its stdout and the heavy
    libraries imported by then."""
    code = (
        "import sys\nfrom handlab import cli\n"
        f"for words in {commands!r}:\n"
        "    try:\n        cli.main(words)\n    except SystemExit:\n        pass\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True
    ).stdout
    return out, json.loads(out.splitlines()[-1].replace("'", '"'))


def test_help_imports_no_heavy_library():
    out, heavy = _run_and_list_heavy([["--help"]])
    assert "usage: handlab" in out and heavy == []


def test_subcommand_help_imports_no_heavy_library():
    _, heavy = _run_and_list_heavy([["attribute", "--help"], ["datasets", "check", "--help"]])
    assert heavy == []


def test_attribute_passes_only_given_options():
    args = cli.build_parser().parse_args(
        ["attribute", "--model", "zoo:x", "--data", "synth", "--out", "o", "--folds", "4"]
    )
    assert _settings(args, _POSEIG) == {"folds": 4} and _settings(args, _RUN) == {}
    config = config_from_args(args)
    assert config.poseig == PoseIGConfig(folds=4)  # every other setting: the one default


def test_attribute_joint_subset_and_target_reach_the_config():
    args = cli.build_parser().parse_args(
        ["attribute", "--model", "zoo:x", "--data", "synth", "--out", "o", "--joints", "3", "7",
         "--target", "decode", "--batch-size", "2", "--pilot", "0"]
    )  # fmt: skip
    config = config_from_args(args)
    assert config.poseig.joints == (3, 7) and config.poseig.target == "decode"
    assert config.poseig.pilot == 0 and config.batch_size == 2


def test_zoo_command_offers_the_zoo_storages(capsys):
    from handlab import zoo
    from handlab.commands import zoo as zoo_command

    assert zoo_command.STORAGES == zoo.STORAGES
    with pytest.raises(SystemExit):
        cli.main(["zoo", "add", "runs/x", "x", "--storage", "int4"])
    assert "invalid choice" in capsys.readouterr().err


def test_resolve_rejects_bad_specs():
    with pytest.raises(TypeError, match="spec"):
        _resolve.resolve_model(None)
    with pytest.raises(ValueError, match="shipped models"):
        _resolve.resolve_model("zoo:no_such_model")
    with pytest.raises(ValueError, match="NAME:ROOT"):
        _resolve.resolve_data("nyu", "test")


def test_version_and_every_subcommand_help_import_no_heavy_library():
    words = [["--version"], *([c, "--help"] for c in ("train", "evaluate", "zoo", "report"))]
    out, heavy = _run_and_list_heavy(words)
    assert out.startswith("handlab ") and heavy == []
