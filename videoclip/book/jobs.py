"""Run a chapter's independent jobs (ablation rows × seeds, sweep points) in parallel processes.

Each job is a picklable module-level function with keyword arguments and a stable ``key``. Its
JSON result is written atomically to ``<out_dir>/<key>.json``, so a killed build resumes where it
stopped: a key whose file exists, written by the same code, is not run again. Each job runs in its
own process forked from a clean server process (``forkserver``: torch imported there, never run,
so no OpenMP state is inherited) with ``threads`` torch threads; ``workers`` processes run at once.

Why processes of one thread (bench/RESULTS.md, "Runs per hour"): on 2 shared cores, one process of
two OpenMP threads spin-waits whenever either thread is descheduled, and the small ops of a toy
model scale badly across threads anyway; two independent runs of one thread each keep both cores
busy. The same seed at the same thread count gives the same weights in either way of running.

A failing job does not stop the others: its traceback goes to ``<key>.log`` (with everything it
printed) and :class:`JobsFailed` names every failed key once all jobs ended.

    jobs = [Job(f"row{r}-seed{s}", train_row, {"row": r, "seed": s}) for r in rows for s in seeds]
    results = run_jobs(jobs, work_dir / "jobs" / "09_ablations", desc="ablation runs")
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import select
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

from videoclip._io import atomic_write_json
from videoclip.book.dependencies import files_digest, module_dependencies

__all__ = ["Job", "JobsFailed", "default_workers", "run_jobs"]

_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class Job:
    """One independent unit of work: ``fn(**kwargs)`` returns a JSON-able value.

    ``key`` names its result file: stable across builds for the same work (put a hash of the
    settings in it), unique within a set, letters, digits, ``.``, ``_``, ``-``.
    """

    key: str
    fn: Callable[..., Any]
    kwargs: Mapping[str, Any] = field(default_factory=dict)


class JobsFailed(RuntimeError):
    """Some jobs failed; the others finished and their results are on disk."""

    def __init__(self, failures: Mapping[str, str], out_dir: Path) -> None:
        self.failures = dict(failures)
        lines = [f"{len(failures)} job(s) failed (logs in {out_dir}):"]
        lines += [f"  {key}: {message}" for key, message in failures.items()]
        super().__init__("\n".join(lines))


def default_workers() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def code_digest(fn: Callable[..., Any]) -> str:
    """A hash of the package files ``fn``'s module can run (its own file outside the package)."""
    files = module_dependencies(fn.__module__) or [Path(sys.modules[fn.__module__].__file__)]
    return files_digest(files)[:16]


def run_jobs(jobs: Sequence[Job], out_dir: str | Path, *, workers: int | None = None, threads: int = 1,
             desc: str = "jobs", preload: Sequence[str] = ()) -> dict[str, Any]:
    """Run every job whose result is missing or stale; return ``{key: result}`` in the jobs' order.

    Args:
        jobs: the set; keys unique.
        out_dir: where ``<key>.json`` (result) and ``<key>.log`` (output, traceback) go.
        workers: processes at once (default: :func:`default_workers`); ``0`` runs the jobs one by
            one in this process, at its own thread count (for debugging).
        threads: torch threads of each worker process.
        desc: what the progress line calls the jobs.
        preload: modules the jobs import, imported once in the fork server (as torch is) instead
            of in every worker (videoclip.train and transformers: ~7 s a job on a toy CPU).

    Raises:
        JobsFailed: after every job ended, when any failed (the others' results are kept).
    """
    keys = [job.key for job in jobs]
    bad = [k for k in keys if not _KEY.fullmatch(k)]
    if bad:
        raise ValueError(f"job keys must be letters, digits, '.', '_', '-': {bad}")
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        raise ValueError(f"job keys repeated: {repeated}")
    workers = default_workers() if workers is None else workers
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    codes = {fn: code_digest(fn) for fn in {job.fn for job in jobs}}
    todo = [job for job in jobs if _stored(out_dir, job.key, codes[job.fn]) is None]
    progress = _Progress(desc, total=len(jobs), done=len(jobs) - len(todo))
    failures: dict[str, str] = {}
    if workers == 0:
        for job in todo:
            error = _run_one(job, out_dir, codes[job.fn])
            if error:
                failures[job.key] = error
            progress.finished()
    else:
        failures = _run_in_processes(todo, out_dir, codes, workers, threads, progress, preload)
    progress.close()
    if failures:
        raise JobsFailed(failures, out_dir)
    return {key: _stored(out_dir, key, codes[job.fn])["result"] for key, job in zip(keys, jobs)}


def _stored(out_dir: Path, key: str, code: str) -> dict[str, Any] | None:
    """The stored record of ``key`` (``result``, ``seconds``) written by code of digest ``code``;
    None when missing or stale."""
    path = out_dir / f"{key}.json"
    if not path.is_file():
        return None
    stored = json.loads(path.read_text())
    return stored if stored.get("code") == code else None


def _plain(value: Any) -> Any:
    """numpy scalars as Python numbers; anything else is not JSON: a clear error."""
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        return value.item()
    raise TypeError(f"a job returned {type(value).__name__}, which JSON cannot hold: {value!r}")


def _run_one(job: Job, out_dir: Path, code: str) -> str | None:
    """Run ``job`` here and store its result; the error's last line when it raised."""
    start = time.perf_counter()
    try:
        result = job.fn(**job.kwargs)
        atomic_write_json(out_dir / f"{job.key}.json", {"key": job.key, "code": code, "result": result,
                          "seconds": round(time.perf_counter() - start, 1)}, indent=1, default=_plain)
    except Exception as err:  # noqa: BLE001 -- reported by run_jobs with its key; the others go on
        with open(out_dir / f"{job.key}.log", "a") as log:
            log.write(traceback.format_exc())
        return f"{type(err).__name__}: {err}".splitlines()[0]
    return None


def _end_with(build_pid: int) -> None:
    """End this worker when the build process that started it ends, killed at any point (SIGKILL
    included), so that no worker trains on for nobody. The fork server keeps a worker's parent
    alive, so the worker watches the build itself (a pidfd: readable once the build has exited)."""
    if not hasattr(os, "pidfd_open"):  # not Linux ≥ 5.3: a killed build may leave workers running
        return
    try:
        pidfd = os.pidfd_open(build_pid)
    except ProcessLookupError:  # the build ended before this worker started
        os._exit(1)

    def watch() -> None:
        select.select([pidfd], [], [])
        os._exit(1)

    threading.Thread(target=watch, name="end with the build", daemon=True).start()


def _child(job: Job, out_dir: Path, code: str, threads: int, build_pid: int) -> None:
    """A worker process: one thread count, output to the job's log, exit code 1 on failure."""
    _end_with(build_pid)
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)
    import torch

    torch.set_num_threads(threads)
    log = os.open(out_dir / f"{job.key}.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(log, 1)
    os.dup2(log, 2)
    sys.exit(1 if _run_one(job, out_dir, code) else 0)


def _context(preload: Sequence[str]) -> multiprocessing.context.BaseContext:
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    # Imported once, in the server (for the server this process starts first); no op runs there.
    context.set_forkserver_preload(["torch", *preload])
    return context


def _run_in_processes(todo: Sequence[Job], out_dir: Path, codes: Mapping[Callable, str], workers: int,
                      threads: int, progress: _Progress, preload: Sequence[str]) -> dict[str, str]:
    context = _context(preload)
    pending, running, failures = list(todo), {}, {}
    try:
        while pending or running:
            while pending and len(running) < workers:
                job = pending.pop(0)
                process = context.Process(target=_child, args=(job, out_dir, codes[job.fn], threads, os.getpid()),
                                          name=f"job {job.key}")
                process.start()
                running[process.sentinel] = (job, process)
            for sentinel in wait(list(running)):
                job, process = running.pop(sentinel)
                process.join()
                if process.exitcode != 0:
                    failures[job.key] = _failure(out_dir, job.key, process.exitcode)
                progress.finished()
    finally:  # interrupted: stop the workers, keep what finished
        for _, process in running.values():
            process.terminate()
            process.join()
    return failures


def _failure(out_dir: Path, key: str, exitcode: int) -> str:
    log = out_dir / f"{key}.log"
    lines = [line for line in log.read_text().splitlines() if line.strip()] if log.is_file() else []
    if exitcode < 0:
        return f"worker killed by signal {-exitcode} (out of memory?); see {log.name}"
    return (lines[-1] if lines else f"worker exited with code {exitcode}") + f"; see {log.name}"


class _Progress:
    """One line, rewritten: ``desc: done/total, time so far, time left``. Time left: the wall time
    so far per job finished in this call, times the jobs left."""

    def __init__(self, desc: str, *, total: int, done: int) -> None:
        self.desc, self.total, self.done, self.skipped = desc, total, done, done
        self.start = time.perf_counter()
        self.handle = self._display_handle()
        self.show()

    @staticmethod
    def _display_handle() -> Any:
        """In a notebook kernel, an output updated in place (papermill keeps its last state)."""
        if "ipykernel" not in sys.modules:
            return None
        from IPython import get_ipython
        from IPython.display import display

        if not hasattr(get_ipython(), "kernel"):
            return None
        return display("", display_id=True)

    def finished(self) -> None:
        self.done += 1
        self.show()

    def text(self) -> str:
        ran = self.done - self.skipped
        elapsed = time.perf_counter() - self.start
        text = f"{self.desc}: {self.done}/{self.total} done"
        if self.skipped:
            text += f" ({self.skipped} from an earlier build)"
        text += f", {_minutes(elapsed)}"
        if ran and self.done < self.total:
            text += f", about {_minutes(elapsed / ran * (self.total - self.done))} left"
        return text

    def show(self) -> None:
        if self.handle is not None:
            self.handle.update(self.text())
        elif sys.stderr.isatty():
            print(f"\r{self.text()}", end="", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.handle is not None:
            self.show()
        elif sys.stderr.isatty():
            print(f"\r{self.text()}", file=sys.stderr, flush=True)
        else:
            print(self.text(), file=sys.stderr, flush=True)


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"
