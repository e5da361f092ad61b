"""The command line as a new user meets it: --version, help with defaults, one-line errors
(exit 1, --debug shows the traceback), evaluate's progress bar and --skip-bad."""

from __future__ import annotations

import argparse
import dataclasses
import json

import pytest

from handlab import __version__, cli
from handlab.errors import InputError

FLAGS = (argparse._StoreTrueAction, argparse._StoreFalseAction)
SKIP = (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction)


def test_version(capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["--version"])
    assert stop.value.code == 0 and capsys.readouterr().out.strip() == f"handlab {__version__}"


def test_every_option_has_help_naming_its_default():
    for parser in cli.parsers(cli.build_parser()):
        formatter = parser._get_formatter()
        for action in parser._actions:
            if isinstance(action, SKIP):
                continue
            where = f"{parser.prog} {'/'.join(action.option_strings) or action.dest}"
            assert action.help, f"{where}: no help text"
            if action.option_strings and not action.required and not isinstance(action, FLAGS):
                assert "default" in formatter._expand_help(action), f"{where}: no default shown"


def test_attribute_help_names_runconfigs_defaults():
    from handlab.attribution.config import PoseIGConfig
    from handlab.attribution.runner import RunConfig

    sub = next(a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    parser = sub.choices["attribute"]
    checked = 0
    for defaults in (RunConfig(), PoseIGConfig()):
        for action in parser._actions:
            field = action.dest
            value = getattr(defaults, field, None)
            if action.option_strings and value is not None and field not in ("limit", "joints"):
                assert f"(default: {value})" in action.help, action.dest
                checked += 1
    assert checked >= 10  # the PoseIG options are checked, not skipped


def test_a_users_error_is_one_line_with_exit_status_1(capsys):
    assert cli.main(["evaluate", "--model", "zoo:lifting", "--device", "cuda:7"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("handlab: error: device: expected 'cpu' or a CUDA device")
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    with pytest.raises(InputError, match="cuda:7"):
        cli.main(["evaluate", "--model", "zoo:lifting", "--device", "cuda:7", "--debug"])


def test_an_unknown_model_config_key_is_named(tmp_path, capsys):
    words = ["train", "--model", "simplebaseline", "--out", str(tmp_path), "--model-config"]
    assert cli.main([*words, "widht=3"]) == 1
    assert "--model-config) of 'simplebaseline': unknown keys ['widht']" in capsys.readouterr().err


def test_augment_fields_are_checked_before_training(tmp_path, capsys):
    words = ["train", "--model", "simplebaseline", "--out", str(tmp_path), "--augment"]
    assert cli.main([*words, "rotate=90"]) == 1
    assert "--augment: expected fields of ['brightness'" in capsys.readouterr().err
    assert cli.main([*words, "rotate_deg=270"]) == 1  # AugmentConfig's own range check
    assert "rotate_deg" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # nothing written


def test_augment_help_states_augment_configs_defaults():
    from handlab.commands.train import AUGMENT_DEFAULTS, parse_model_config
    from handlab.training import AugmentConfig

    stated = parse_model_config(AUGMENT_DEFAULTS.split(), "--augment")
    actual = dataclasses.asdict(AugmentConfig())
    del actual["enabled"]
    assert {k: tuple(v) if isinstance(v, list) else v for k, v in stated.items()} == actual


def test_a_bug_keeps_its_traceback(monkeypatch):
    def broken(args):
        return {}["missing"]  # a KeyError: not the user's fault

    def not_ours(args):
        raise ValueError("raised outside handlab")

    for func in (broken, not_ours):
        parser = cli.build_parser()
        monkeypatch.setattr(cli, "build_parser", lambda p=parser: p)
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        sub.choices["zoo"].set_defaults(func=func)
        with pytest.raises((KeyError, ValueError)):
            cli.main(["zoo", "list"])


@pytest.fixture
def frei_with_bad_images(tmp_path):
    from data.fixtures import make_freihand

    make_freihand(tmp_path, n=2, n_eval=6)
    rgb = tmp_path / "evaluation" / "rgb"
    (rgb / "00000001.jpg").write_bytes((rgb / "00000001.jpg").read_bytes()[:200])  # truncated
    (rgb / "00000004.jpg").unlink()
    return tmp_path


def test_evaluate_skip_bad_counts_and_lists_the_bad_samples(frei_with_bad_images, capsys):
    root, out = frei_with_bad_images, frei_with_bad_images / "eval.json"
    words = ["evaluate", "--model", "zoo:lifting", "--data", f"freihand:{root}"]
    words += ["--split", "evaluation", "--size", "64", "--batch-size", "4"]
    assert cli.main(words) == 1  # without --skip-bad the first bad image stops it, named
    assert "00000001.jpg (sample 00000001): unreadable" in capsys.readouterr().err
    assert cli.main([*words, "--skip-bad", "--json", str(out)]) == 0
    text = capsys.readouterr()
    metrics = json.loads(out.read_text())
    assert metrics["n"] == 4 and [s["index"] for s in metrics["skipped"]] == [1, 4]
    assert "missing image" in metrics["skipped"][1]["error"]
    assert "skipped 2 unreadable samples:" in text.out and "00000004.jpg" in text.out
    assert "evaluate: 100%" in text.err  # the progress bar
