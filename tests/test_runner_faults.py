"""The notebook runner never loses a good executed notebook, checks parameter types before it
runs, and reports errors as one line (reliability review §5)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from videoclip.book import runner

NOTEBOOK = '''# %% tags=["parameters"]
num_epochs = 2
lr = 0.5
name = "x"
fail = False
pause = 0.0

# %%
import time
time.sleep(pause)
assert not fail, "asked to fail"
result = num_epochs * lr
'''


@pytest.fixture
def notebook(tmp_path: Path) -> Path:
    path = tmp_path / "98_faulty.py"
    path.write_text(NOTEBOOK)
    return path


@pytest.mark.parametrize("overrides, message", [
    ({"num_epochs": "abc"}, "num_epochs='abc' is a str, but the notebook's default 2 is a int"),
    ({"num_epochs": 2.5}, "num_epochs=2.5 is a float"),
    ({"fail": 1}, "fail=1 is a int"),
    ({"num_epochs": True}, "num_epochs=True is a bool"),
])
def test_parameter_types_are_checked_before_running(notebook, overrides, message):
    with pytest.raises(runner.ParameterTypeError, match=message):
        runner.resolve_parameters(notebook, "smoke", overrides)


def test_int_passes_as_float(notebook):
    assert runner.resolve_parameters(notebook, "smoke", {"lr": 1})["lr"] == 1


def test_bad_yaml_override_is_one_line(capsys):
    first = runner.list_notebooks()[0].stem
    assert runner.main(["run", first, "-p", "seed=[1,"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "not a YAML literal" in err


def test_unknown_notebook_is_a_usage_error_and_help_names_real_ones(capsys):
    assert runner.main(["run", "05_pretraining_nope"]) == 2
    assert "no notebook named '05_pretraining_nope'" in capsys.readouterr().err
    assert runner.main(["run", "--help"]) == 0
    out = capsys.readouterr().out
    assert all(p.stem in out for p in runner.list_notebooks())


@pytest.mark.slow
def test_a_failed_run_keeps_the_last_good_notebook(notebook, tmp_path, capsys):
    executed = tmp_path / "executed"
    output, _ = runner.run_notebook(str(notebook), "smoke", output_dir=executed)
    good = output.read_bytes()
    with pytest.raises(runner.NotebookFailed, match=r"98_faulty: cell \[\d+\] raised AssertionError: "
                                                     r"asked to fail; the partial output is"):
        runner.run_notebook(str(notebook), "smoke", overrides={"fail": True}, output_dir=executed)
    assert output.read_bytes() == good
    assert (executed / ".98_faulty.failed.ipynb").is_file()
    assert sorted(p.name for p in executed.iterdir()) == [".98_faulty.failed.ipynb", "98_faulty.ipynb"]


@pytest.mark.slow
def test_sigkill_mid_execution_keeps_the_last_good_notebook(notebook, tmp_path):
    executed = tmp_path / "executed"
    output, _ = runner.run_notebook(str(notebook), "smoke", output_dir=executed)
    good = output.read_bytes()
    code = ("import sys; from pathlib import Path; from videoclip.book import runner; "
            "runner.run_notebook(sys.argv[1], 'smoke', overrides={'pause': 60.0}, "
            "output_dir=Path(sys.argv[2]))")
    proc = subprocess.Popen([sys.executable, "-c", code, str(notebook), str(executed)],
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    deadline = time.monotonic() + 300
    while not list(executed.glob(".98_faulty.*.executing.ipynb")):  # papermill has started
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.5)
    time.sleep(2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert output.read_bytes() == good
    assert json.loads(good)["metadata"][runner.STAMP_KEY]
