"""Every command the README and book/paper_profile.md tell a user to type is run here or by
`make rehearsal` (which runs the paper and released profiles end to end, paper_profile.md §5).

Each shell line of their ```bash blocks must match one row of COVERED, which says how it is
checked; a new documented command without a row fails `test_every_documented_command_is_covered`.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
DOCS = ("README.md", "book/paper_profile.md")

# (pattern of a documented command, how it is exercised)
COVERED = [
    (r"make (book|test)$", "make_dry_run; `make test` is CI itself"),
    (r"make (run|book) .*PROFILE=(paper|released)", "make_dry_run; executed by make rehearsal"),
    (r"make rehearsal$", "make_dry_run; the rehearsal's own run (paper_profile.md §5)"),
    (r"conda env create -f environment.yml$", "test_environment_yml_installs_no_second_faiss"),
    (r"conda activate videoclip$", "test_environment_yml_installs_no_second_faiss"),
    (r"export VIDEOCLIP_DATA_DIR=", "shell"),
    (r"videoclip (features pack|convert) ", "cli_parses; run by make rehearsal and tests"),
    (r"python -m videoclip convert ", "cli_parses"),
    (r"mv \S+/howto100m/features", "run by make rehearsal (pack_howto100m)"),
    (r"RUN_DIR=\$\(python -c ", "test_run_dir_snippet; run by make rehearsal"),
    (r"torchrun --nproc_per_node 8 -m videoclip pretrain ", "cli_parses; one process in make rehearsal"),
    (r"bash bench/gpu.sh$", "test_gpu_script_dry_run"),
    (r"make world-v1$", "make_dry_run; its output is committed (book/world_v1.json)"),
    (r"python3 bench/cold_build.py$", "test_cold_build_script_parses; its records are committed (bench/cold_builds.json)"),
    (r"^wget https://", "a download (no network here); the next commands read what it names"),
    (r"python -m videoclip (extract|index|search) ", "cli_parses; chapter 12 runs the same pipeline"),
]


def documented_commands() -> list[tuple[str, str]]:
    """``(doc, command)`` for every shell command in the docs' ```bash blocks (comments dropped,
    continuation lines joined, ``a && b`` split)."""
    commands = []
    for doc in DOCS:
        text = (REPO / doc).read_text()
        for block in re.findall(r"```bash\n(.*?)```", text, re.DOTALL):
            joined = re.sub(r"\\\n\s*", " ", block)
            for line in joined.splitlines():
                line = re.sub(r"\s+#.*$", "", line).strip()
                if line and not line.startswith("#"):
                    commands += [(doc, part.strip()) for part in line.split("&&")]
    return commands


def _how(command: str) -> str | None:
    return next((how for pattern, how in COVERED if re.search(pattern, command)), None)


def test_every_documented_command_is_covered():
    commands = documented_commands()
    assert len(commands) >= 12
    uncovered = [f"{doc}: {cmd}" for doc, cmd in commands if _how(cmd) is None]
    assert uncovered == []


@pytest.mark.parametrize("command", sorted({c for _, c in documented_commands() if c.startswith("make ")}))
def test_make_commands_resolve(command):
    env = {k: v for k, v in os.environ.items() if k not in ("CONDA_PREFIX", "MAKEFLAGS")}
    proc = subprocess.run(["make", "-n", *shlex.split(command)[1:]], cwd=REPO, env=env,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    target = shlex.split(command)[1]
    runner = {"book": "videoclip.book all", "run": "videoclip.book run", "test": "pytest",
              "rehearsal": "videoclip.book.rehearsal", "world-v1": "videoclip.book run"}[target]
    assert runner in proc.stdout


def test_released_model_reaches_the_chapters():
    """`make book PROFILE=released MODEL=converted/` hands the chapters an absolute model path."""
    proc = subprocess.run(["make", "-s", "--eval", "show: ; @echo $$VIDEOCLIP_MODEL", "show",
                           "MODEL=converted/"], cwd=REPO, capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == str(REPO / "converted")


@pytest.mark.parametrize("command", sorted({c for _, c in documented_commands()
                                            if "videoclip " in c and "python -c" not in c}))
def test_cli_commands_parse(command):
    from videoclip.cli import build_parser

    command = re.sub(r"\[([^\]]*)\]", r"\1", command)  # "[--json]": an optional flag
    words = shlex.split(os.path.expandvars(command.replace("$RUN_DIR", "runs/x")))
    words = words[words.index("videoclip") + 1:]
    args, rest = build_parser().parse_known_args(words)
    assert args.command in ("features", "convert", "pretrain", "extract", "index", "search")
    assert rest == [] or getattr(args, "takes_overrides", False)


@pytest.mark.slow
def test_run_dir_snippet(tmp_path):
    (command,) = [c for _, c in documented_commands() if c.startswith("RUN_DIR=")]
    snippet = shlex.split(command[len("RUN_DIR=$("):-1])[2]
    env = {**os.environ, "VIDEOCLIP_DATA_DIR": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", os.path.expandvars(snippet.replace("$VIDEOCLIP_DATA_DIR",
                                                                                    str(tmp_path)))],
                         cwd=REPO, env=env, capture_output=True, text=True, check=True).stdout.strip()
    assert Path(out).parent == REPO / "artifacts" / "paper" / "runs"


def test_environment_yml_installs_no_second_faiss():
    """conda gives CUDA PyTorch (>= 2.5) and faiss-gpu; pip adds the package without pip's faiss."""
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert any(d.startswith("faiss-gpu") for d in conda)
    assert any(d.startswith("pytorch-cuda") for d in conda)
    version = next(d for d in conda if d.startswith("pytorch=")).split("=")[1]
    assert tuple(int(x) for x in version.split(".")[:2]) >= (2, 5)
    assert pip == ["-e .[test,book]"]  # not [faiss]: pip's faiss-cpu would shadow faiss-gpu
    pyproject = (REPO / "pyproject.toml").read_text()
    assert "faiss-cpu" not in pyproject.split("[project.optional-dependencies]")[0]


def test_gpu_script_dry_run():
    proc = subprocess.run(["bash", "bench/gpu.sh", "--dry-run"], cwd=REPO, capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "videoclip.book.rehearsal" in proc.stdout


def test_cold_build_script_parses():
    proc = subprocess.run([sys.executable, "bench/cold_build.py", "--help"], cwd=REPO, capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "cold `make book`" in proc.stdout
    records = json.loads((REPO / "bench" / "cold_builds.json").read_text())
    assert records and all({"commit", "machine", "load_during", "total_s", "status", "chapters"} <= set(r)
                           for r in records)
