"""The command line: every subcommand is wired and reports its usage; evaluate and convert run."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from videoclip.cli import build_parser, main

COMMANDS = ("pretrain", "finetune", "evaluate", "convert", "features", "extract", "index", "search")


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "videoclip", *args], check=False,
                          capture_output=True, text=True, env={"HF_HUB_OFFLINE": "1", "PATH": ""})


def test_no_command_prints_usage_and_fails(capsys):
    assert main([]) == 2
    assert "pretrain" in capsys.readouterr().out


def test_the_parser_declares_every_command():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert tuple(sub.choices) == COMMANDS


def test_a_package_error_is_one_line_and_debug_shows_it(tmp_path, capsys):
    assert main(["evaluate", "youcook2", "--model", str(tmp_path / "none"), "--data-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    with pytest.raises(OSError):
        main(["--debug", "evaluate", "youcook2", "--model", str(tmp_path / "none"), "--data-dir", str(tmp_path)])


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_has_help(command):
    proc = _run(command, "--help")
    assert proc.returncode == 0, proc.stderr
    assert "usage" in proc.stdout.lower()


@pytest.mark.slow
def test_evaluate_a_saved_model_on_a_simulated_world(tmp_path, smoke_world, tiny_backbone):
    from videoclip.model import VideoCLIP

    root = smoke_world
    VideoCLIP.from_backbone(str(tiny_backbone), num_video_layers=1).save_pretrained(tmp_path / "model")
    out = tmp_path / "results.json"
    assert main(["evaluate", "youcook2", "--model", str(tmp_path / "model"), "--data-dir", str(root),
                 "--out", str(out)]) == 0
    results = json.loads(out.read_text())["results"]
    assert 0.0 <= results["R@1"] <= results["R@5"] <= results["R@10"] <= 100.0
