"""The command line's error policy: one line ``error: …`` per error, exit 2 for usage and 1 for
failures, ``--debug`` (anywhere) for the traceback (reliability review §1, cross-cutting)."""

from __future__ import annotations

import numpy as np
import pytest

from videoclip import cli
from videoclip.checkpoint import CheckpointError
from videoclip.data.benchmarks import AnnotationError
from videoclip.data.captions import CaptionError
from videoclip.data.features import FeatureError
from videoclip.train import ConfigError


def _one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err


def test_unknown_command_is_named(capsys):
    assert cli.main(["bogus"]) == 2
    assert "invalid choice: 'bogus'" in _one_line(capsys)


def test_argparse_usage_errors_are_one_line(capsys):
    assert cli.main(["simulate"]) == 2
    assert "--out" in _one_line(capsys)
    assert cli.main(["pretrain", "--seed", "-1"]) == 2
    assert "seed=-1 must be >= 0" in _one_line(capsys)


@pytest.mark.parametrize("error, code", [
    (ConfigError("lr='x': expected float, got str"), 2),
    (FeatureError("f/v.npy: truncated; write it again"), 1),
    (AnnotationError("a.csv, line 3: repeats line 2; remove the duplicate row"), 1),
    (CheckpointError("c.pt: cannot read it\nIf you trust the file, pass --trust-pickle"), 1),
    (CaptionError("caption.json: not valid JSON"), 1),
    (FileExistsError("--out x is not empty; pass --overwrite"), 2),
])
def test_package_errors_are_one_line_with_their_exit_code(monkeypatch, capsys, error, code):
    def fail(args):
        raise error

    monkeypatch.setattr(cli, "_simulate", fail)
    assert cli.main(["simulate", "--out", "x"]) == code
    line = _one_line(capsys)
    assert "Traceback" not in line and "unexpected" not in line
    assert line.split(": ", 1)[1].split()[0] == str(error).split()[0]
    with pytest.raises(type(error)):
        cli.main(["simulate", "--out", "x", "--debug"])


def test_a_value_error_the_package_raises_is_plain(tmp_path, capsys):
    assert cli.main(["simulate", "--out", str(tmp_path / "w"), "--num-videos", "0"]) == 1
    line = _one_line(capsys)
    assert "num_videos must be at least 2" in line and "ValueError" not in line
    assert not (tmp_path / "w").exists()


def test_an_error_from_a_dependency_names_its_type_and_debug(monkeypatch, capsys):
    monkeypatch.setattr(cli, "_simulate", lambda args: np.random.default_rng(-1))
    assert cli.main(["simulate", "--out", "x"]) == 1
    line = _one_line(capsys)
    assert line.startswith("error: ValueError: ") and "rerun with --debug" in line


def test_pretrain_help_documents_the_overrides(capsys):
    assert cli.main(["pretrain", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--KEY VALUE" in out and "1e-3 is a float" in out
