"""The notebook runner: parameters, presets, unknown-parameter errors, stamps."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from videoclip.book import runner as nbrun

NOTEBOOK = '''# %% [markdown]
# # A tiny notebook

# %% tags=["parameters"]
num_epochs = 2  # paper: 25
backbone = "minilm-l6"

# %%
result = num_epochs * 2
'''


@pytest.fixture
def tiny_notebook(tmp_path: Path) -> Path:
    path = tmp_path / "99_tiny.py"
    path.write_text(NOTEBOOK)
    return path


def test_declared_parameters_reads_the_parameters_cell(tiny_notebook):
    assert nbrun.declared_parameters(tiny_notebook) == {"num_epochs": 2, "backbone": "minilm-l6"}


def test_unknown_override_names_the_parameter(tiny_notebook):
    with pytest.raises(nbrun.UnknownParameterError, match="num_epoch\\b.*declares: backbone, num_epochs"):
        nbrun.resolve_parameters(tiny_notebook, "smoke", {"num_epoch": 3})


def test_known_override_wins(tiny_notebook):
    assert nbrun.resolve_parameters(tiny_notebook, "smoke", {"num_epochs": 3}) == {"num_epochs": 3}


def test_parameters_cell_must_be_flat_literals(tmp_path):
    path = tmp_path / "98_bad.py"
    path.write_text(NOTEBOOK.replace('backbone = "minilm-l6"', "import os"))
    with pytest.raises(ValueError, match="only `name = literal`"):
        nbrun.declared_parameters(path)


def test_stamp_changes_with_parameters_and_upstream(tiny_notebook):
    a = nbrun.stamp(tiny_notebook, "toy", {"num_epochs": 2})
    assert a == nbrun.stamp(tiny_notebook, "toy", {"num_epochs": 2})
    assert a != nbrun.stamp(tiny_notebook, "toy", {"num_epochs": 3})
    assert a != nbrun.stamp(tiny_notebook, "toy", {"num_epochs": 2}, upstream="x")
    assert a != nbrun.stamp(tiny_notebook, "paper", {"num_epochs": 2})


@pytest.mark.parametrize("profile", ["toy", "paper", "released"])
def test_every_preset_names_only_declared_parameters(profile):
    notebooks = nbrun.list_notebooks()
    assert notebooks, "no notebooks found"
    for path in notebooks:
        nbrun.resolve_parameters(path, profile)  # raises on a typo or a missing preset


def test_command_line_typo_fails_before_executing():
    first = nbrun.list_notebooks()[0].stem
    proc = subprocess.run([sys.executable, "-m", "videoclip.book", "run", first, "-p", "bakcbone=x"],
                          check=False, capture_output=True, text=True)
    assert proc.returncode == 2
    assert "unknown parameter(s) bakcbone" in proc.stderr


def test_run_records_its_seconds_and_reuses_an_unchanged_notebook(tiny_notebook, tmp_path):
    executed = tmp_path / "executed"
    output, first = nbrun.run_notebook(str(tiny_notebook), "smoke", output_dir=executed)
    [row] = nbrun.execution_times(executed)
    assert row["chapter"] == "99_tiny" and row["profile"] == "smoke" and row["seconds"] > 0
    written = output.stat().st_mtime_ns
    assert nbrun.run_notebook(str(tiny_notebook), "smoke", output_dir=executed) == (output, first)
    assert output.stat().st_mtime_ns == written  # reused, not executed again
    _, changed = nbrun.run_notebook(str(tiny_notebook), "smoke", overrides={"num_epochs": 3}, output_dir=executed)
    assert changed != first and output.stat().st_mtime_ns != written


def test_run_writes_into_the_folder_given(tiny_notebook, tmp_path):
    out = tmp_path / "elsewhere"
    proc = subprocess.run([sys.executable, "-m", "videoclip.book", "run", str(tiny_notebook), "--out", str(out),
                           "-p", "num_epochs=3"], check=False, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    [row] = nbrun.execution_times(out)
    assert row["chapter"] == "99_tiny"
    assert not (nbrun.EXECUTED_DIR / "99_tiny.ipynb").exists()


HEADER = "# ---\n# jupyter:\n#   videoclip:\n#     reads_earlier_chapters: true\n# ---\n\n"


def _chapter(directory: Path, name: str, body: str, *, reader: bool = False) -> Path:
    path = directory / f"{name}.py"
    path.write_text((HEADER if reader else "") + '# %% tags=["parameters"]\npreset = "p.yaml"\n\n# %%\n'
                    + body)
    return path


def _pretend_executed(chapters: list[dict], output_dir: Path) -> None:
    import nbformat

    output_dir.mkdir(exist_ok=True)
    for chapter in chapters:
        nb = nbformat.v4.new_notebook(metadata={nbrun.STAMP_KEY: chapter["stamp"], nbrun.SECONDS_KEY: 60.0})
        nbformat.write(nb, chapter["output"])


@pytest.fixture
def fake_book(tmp_path: Path, monkeypatch) -> Path:
    """A package ``videoclip`` of two modules and a book of three chapters, in ``tmp_path``."""
    from videoclip.book import dependencies

    package = tmp_path / "videoclip"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "stats.py").write_text("from videoclip import plots\n")
    (package / "plots.py").write_text("x = 1\n")
    (package / "train.py").write_text("y = 1\n")
    monkeypatch.setattr(dependencies, "PACKAGE_DIR", package)
    monkeypatch.setattr(dependencies, "REPO", tmp_path)
    chapters = tmp_path / "notebooks"
    chapters.mkdir()
    monkeypatch.setattr(nbrun, "NOTEBOOK_DIR", chapters)
    (chapters / "p.yaml").write_text("lr: 1\n")
    _chapter(chapters, "01_train", "import videoclip.train\n")
    _chapter(chapters, "02_stats", "from videoclip.stats import x\n")
    _chapter(chapters, "03_card", "print(1)\n", reader=True)
    return tmp_path


def _executed(root: Path) -> list[str]:
    return [c["path"].stem for c in nbrun.plan("smoke", output_dir=root / "out") if c["execute"]]


def test_only_chapters_that_can_run_a_change_re_execute(fake_book):
    assert _executed(fake_book) == ["01_train", "02_stats", "03_card"]
    _pretend_executed(nbrun.plan("smoke", output_dir=fake_book / "out"), fake_book / "out")
    assert _executed(fake_book) == []
    (fake_book / "videoclip" / "plots.py").write_text("x = 2\n")  # imported by stats, transitively
    assert _executed(fake_book) == ["02_stats", "03_card"]  # the card reads the chapters before it
    _pretend_executed(nbrun.plan("smoke", output_dir=fake_book / "out"), fake_book / "out")
    (fake_book / "notebooks" / "p.yaml").write_text("lr: 2\n")  # a preset every chapter names
    assert _executed(fake_book) == ["01_train", "02_stats", "03_card"]


def test_time_left_from_the_previous_build(fake_book):
    chapters = nbrun.plan("smoke", output_dir=fake_book / "out")
    assert nbrun.time_left(chapters) == "3 chapter(s) never timed"
    _pretend_executed(chapters, fake_book / "out")
    chapters = nbrun.plan("smoke", output_dir=fake_book / "out", force=True)
    assert nbrun.time_left(chapters) == "about 3 min left by recorded chapter times"


def test_a_cold_build_estimates_from_the_last_measured_cold_build(fake_book, monkeypatch):
    records = fake_book / "cold_builds.json"
    monkeypatch.setattr(nbrun, "COLD_BUILDS", records)
    records.write_text(json.dumps([{"status": 0, "chapters": {"01_train": 600.0, "02_stats": 120.0}},
                                   {"status": 2, "chapters": {"01_train": 60.0}}]))  # failed: not used
    monkeypatch.setattr(nbrun, "PARAMS_DIR", fake_book / "params")
    (fake_book / "params" / "toy").mkdir(parents=True)
    for name in ("01_train", "02_stats", "03_card"):
        (fake_book / "params" / "toy" / f"{name}.yaml").write_text("{}\n")
    chapters = nbrun.plan("toy", output_dir=fake_book / "out")
    assert nbrun.time_left(chapters) == "about 12 min left by recorded chapter times + 1 chapter(s) never timed"
    assert nbrun.measured_times("smoke") == {}  # the records are toy builds
