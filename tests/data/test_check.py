import pytest

from data.fixtures import make_freihand, make_rhd
from handlab.cli import main
from handlab.data.check import check_dataset


def test_cli_good_folder(tmp_path, capsys):
    make_rhd(tmp_path, split="training", n=2)
    make_rhd(tmp_path, split="evaluation", n=1, seed=1)
    assert main(["datasets", "check", "rhd", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "training" in out and "evaluation" in out and "problems: 0" in out
    rows = {line.split()[0]: line.split()[1:3] for line in out.splitlines()[2:4]}
    assert rows == {"training": ["2", "2"], "evaluation": ["1", "1"]}


def test_cli_broken_folder(tmp_path, capsys):
    make_freihand(tmp_path, n=2, n_eval=1)
    (tmp_path / "training" / "rgb" / "00000003.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    (tmp_path / "evaluation_K.json").unlink()
    assert main(["datasets", "check", "freihand", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "problems: 2" in out
    assert "00000003.jpg (sample 00000003): unreadable or truncated image" in out
    assert "evaluation: " in out and "evaluation_K.json: missing file" in out
    # one split, limited: the broken image (item 3) is not reached
    assert (
        main(
            ["datasets", "check", "freihand", str(tmp_path), "--split", "training", "--limit", "3"]
        )
        == 0
    )
    assert "problems: 0" in capsys.readouterr().out


def test_check_dataset_api(tmp_path):
    report = check_dataset("rhd", tmp_path, ["training"])
    assert not report.ok and report.counts == {"training": None}
    assert "anno_training.pickle: missing file" in report.problems[0]
    with pytest.raises(ValueError, match="splits"):
        check_dataset("rhd", tmp_path, ["test"])
    with pytest.raises(ValueError, match="name"):
        check_dataset("mpii", tmp_path)


def test_cli_rejects_unknown_name(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["datasets", "check", "nope", str(tmp_path)])
    assert "invalid choice" in capsys.readouterr().err
