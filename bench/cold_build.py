"""Measure a cold `make book` (issue 19): a clean clone of HEAD, `make install`, then `make book`.

Each measurement is appended to ``bench/cold_builds.json`` (the README and the scorecard's cost
table read it): the commit, the machine (CPU model, cores), the load average sampled every 30 s
during the build (a build on a shared machine says so), the wall seconds of the install and of
the book (chapters + HTML), each chapter's execution seconds as the runner recorded them, and the
exit status. A failed build is recorded too, with its status. Only committed work is measured (the
clone is of HEAD); a dirty working tree is recorded as such.

    python3 bench/cold_build.py [--data-dir ../shared/data] [--keep]

Standard library only, on purpose: it runs before any environment exists, so it reads the executed
notebooks' JSON itself instead of importing ``videoclip.book.runner.execution_times`` and does not
use ``bench/_common.py`` (which imports torch).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RECORDS = REPO / "bench" / "cold_builds.json"


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


class LoadSampler(threading.Thread):
    """The 1-minute load average every ``period`` seconds until stopped."""

    def __init__(self, period: float = 30.0):
        super().__init__(daemon=True)
        self.period, self.samples, self.done = period, [], threading.Event()

    def run(self) -> None:
        while not self.done.wait(self.period):
            self.samples.append(os.getloadavg()[0])

    def summary(self) -> dict[str, float]:
        s = self.samples or [os.getloadavg()[0]]
        return {"mean": round(statistics.fmean(s), 2), "max": round(max(s), 2)}


def timed(command: list[str], cwd: Path, env: dict[str, str], log: Path) -> tuple[int, float]:
    """Run ``command`` with its output appended to ``log``: (exit status, wall seconds)."""
    start = time.monotonic()
    with log.open("a") as sink:
        status = subprocess.run(command, check=False, cwd=cwd, env=env, stdout=sink,
                                stderr=subprocess.STDOUT).returncode
    return status, round(time.monotonic() - start, 1)


def chapter_seconds(clone: Path) -> dict[str, float]:
    """Each executed chapter's seconds (notebook metadata ``videoclip_seconds``), read without the package."""
    seconds = {}
    for notebook in sorted((clone / "book" / "executed").glob("[0-9][0-9]_*.ipynb")):
        metadata = json.loads(notebook.read_text()).get("metadata", {})
        if "videoclip_seconds" in metadata:
            seconds[notebook.stem] = round(metadata["videoclip_seconds"], 1)
    return seconds


def append_record(record: dict[str, Any], path: Path = RECORDS) -> None:
    records = json.loads(path.read_text()) if path.exists() else []
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps([*records, record], indent=1) + "\n")
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("VIDEOCLIP_DATA_DIR", str(REPO.parent / "shared" / "data")),
                        help="VIDEOCLIP_DATA_DIR for the build (the real annotation files)")
    parser.add_argument("--keep", action="store_true", help="keep the clone and its log (kept anyway when the build fails)")
    args = parser.parse_args(argv)

    git = lambda *a: subprocess.run(["git", *a], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
    workdir = Path(tempfile.mkdtemp(prefix="videoclip-cold-"))
    clone, log = workdir / "videoclip", workdir / "build.log"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    env = {**os.environ, "VIDEOCLIP_DATA_DIR": str(Path(args.data_dir).resolve())}
    env.pop("CONDA_PREFIX", None)  # the bare-machine path: make builds its own .venv
    commit, dirty = git("rev-parse", "HEAD"), bool(git("status", "--porcelain"))  # what the clone holds
    print(f"cold build of {commit[:7]} in {clone} (log: {log})", flush=True)

    sampler = LoadSampler()
    load_before = os.getloadavg()[0]
    sampler.start()
    install_status, install_s = timed(["make", "install"], clone, env, log)
    book_status, book_s = (timed(["make", "book"], clone, env, log) if install_status == 0 else (None, 0.0))
    sampler.done.set()
    chapters = chapter_seconds(clone)
    record = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": commit,
        "working_tree_dirty": dirty,
        "machine": f"{cpu_name()} ({os.cpu_count()} cores)",
        "load_before": round(load_before, 2),
        "load_during": sampler.summary(),
        "install_s": install_s,
        "book_s": book_s,
        "total_s": round(install_s + book_s, 1),
        "chapters_s": round(sum(chapters.values()), 1),
        "status": install_status if install_status else book_status,
        "chapters": chapters,
    }
    append_record(record)
    print(json.dumps({k: v for k, v in record.items() if k != "chapters"}, indent=1))
    print(f"recorded in {RECORDS}")
    if args.keep or record["status"]:
        print(f"kept {workdir} (the clone and build.log)")
    else:
        shutil.rmtree(workdir)
    return record["status"] or 0


if __name__ == "__main__":
    sys.exit(main())
