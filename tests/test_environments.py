"""Which python `make` uses (the CPU .venv, or an active conda environment with PyTorch) and the
documented switch that lets the paper profile reach the Hugging Face hub."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")


def _make(*args: str, env: dict[str, str] | None = None) -> str:
    """``make -s`` in the repository with an extra rule ``show`` (no target added to the Makefile)."""
    base = {k: v for k, v in os.environ.items() if k not in ("CONDA_PREFIX", "ENV_PYTHON",
                                                              "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    proc = subprocess.run(["make", "-s", "--no-print-directory", *args], cwd=REPO, env={**base, **(env or {})},
                          capture_output=True, text=True, check=True)
    return proc.stdout


def _python(**env: str) -> str:
    return _make("--eval", "show: ; @echo $(BIN)/python", "show", env=env).strip()


def test_bare_machine_uses_the_cpu_venv():
    assert _python() == ".venv/bin/python"
    # -B: as on a fresh clone, where .venv does not exist yet (CI has made it before this test)
    assert "-m venv .venv" in _make("-n", "-B", "run", "NB=05_text_video_retrieval", "PROFILE=paper")


def test_conda_environment_with_torch_is_used_and_no_venv_is_made(tmp_path):
    """A conda-like environment: CONDA_PREFIX names this test's own environment (it has torch)."""
    prefix = str(Path(sys.executable).parent.parent)
    assert _python(CONDA_PREFIX=prefix) == f"{prefix}/bin/python"
    plan = _make("-n", "run", "NB=05_text_video_retrieval", "PROFILE=paper", env={"CONDA_PREFIX": prefix})
    assert "venv" not in plan.replace(prefix, "PREFIX")
    assert f"{prefix}/bin/python -m videoclip" in plan
    # an environment without torch (e.g. conda's base) keeps the .venv; ENV_PYTHON= forces it
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "python").symlink_to(shutil.which("false"))
    assert _python(CONDA_PREFIX=str(tmp_path)) == ".venv/bin/python"
    assert _make("--eval", "show: ; @echo $(BIN)", "show", f"CONDA_PREFIX={prefix}", "ENV_PYTHON=") == ".venv/bin\n"


def test_hub_switch_lifts_both_offline_flags():
    show = ["--eval", "show: ; @echo $$HF_HUB_OFFLINE $$TRANSFORMERS_OFFLINE", "show"]
    assert _make(*show).split() == ["1", "1"]
    assert _make(*show, "HF_HUB_OFFLINE=0").split() == ["0", "0"]
