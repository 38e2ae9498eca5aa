"""The book's job runner: the same results sequential or parallel, resume, failures reported."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from videoclip.book.jobs import Job, JobsFailed, run_jobs


def train_tiny(seed: int) -> list[float]:
    """A few Adam steps of a small MLP on random data: the weights, to compare bit for bit."""
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.GELU(), torch.nn.Linear(128, 8))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    x, y = torch.randn(256, 64), torch.randn(256, 8)
    for _ in range(5):
        loss = torch.nn.functional.mse_loss(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return torch.cat([p.detach().flatten() for p in model.parameters()]).tolist()


def record(key: str, log: str) -> str:
    """Append ``key`` to ``log`` (counts how often each job ran)."""
    with open(log, "a") as f:
        f.write(key + "\n")
    return key.upper()


def note(key: str, log: str) -> None:
    record(key, log)


def fail(message: str) -> None:
    raise ValueError(message)


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def wait_forever(pid_file: str) -> None:
    with open(pid_file, "w") as f:
        f.write(str(os.getpid()))
    time.sleep(600)


def _ran(log) -> list[str]:
    return log.read_text().split() if log.exists() else []


def test_parallel_equals_sequential_bit_for_bit(tmp_path):
    jobs = [Job(f"tiny-{seed}", train_tiny, {"seed": seed}) for seed in range(3)]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the workers' thread count
    try:
        sequential = run_jobs(jobs, tmp_path / "seq", workers=0)
    finally:
        torch.set_num_threads(threads)
    parallel = run_jobs(jobs, tmp_path / "par", workers=2, threads=1)
    assert list(parallel) == ["tiny-0", "tiny-1", "tiny-2"]
    assert parallel == sequential
    assert parallel["tiny-0"] != parallel["tiny-1"]
    stored = json.loads((tmp_path / "par" / "tiny-2.json").read_text())
    assert stored["key"] == "tiny-2" and stored["result"] == sequential["tiny-2"]


def test_resume_runs_only_missing_keys(tmp_path):
    log = tmp_path / "ran.txt"
    jobs = [Job(k, record, {"key": k, "log": str(log)}) for k in ("a", "b", "c")]
    assert run_jobs(jobs[:2], tmp_path / "out", workers=2) == {"a": "A", "b": "B"}
    assert sorted(_ran(log)) == ["a", "b"]
    assert run_jobs(jobs, tmp_path / "out", workers=2) == {"a": "A", "b": "B", "c": "C"}
    assert sorted(_ran(log)) == ["a", "b", "c"]  # a and b were not run again
    run_jobs(jobs, tmp_path / "out", workers=0)
    assert len(_ran(log)) == 3


def test_a_none_result_counts_as_done(tmp_path):
    log = tmp_path / "ran.txt"
    job = Job("quiet", note, {"key": "quiet", "log": str(log)})
    assert run_jobs([job], tmp_path / "out", workers=0) == {"quiet": None}
    assert run_jobs([job], tmp_path / "out", workers=0) == {"quiet": None}
    assert _ran(log) == ["quiet"]


def test_result_of_other_code_is_rerun(tmp_path):
    log = tmp_path / "ran.txt"
    job = Job("a", record, {"key": "a", "log": str(log)})
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a.json").write_text(json.dumps({"key": "a", "code": "older", "result": "OLD"}))
    assert run_jobs([job], tmp_path / "out", workers=0) == {"a": "A"}
    assert _ran(log) == ["a"]


@pytest.mark.parametrize("workers", [0, 2])
def test_failure_is_reported_and_others_kept(tmp_path, workers):
    log = tmp_path / "ran.txt"
    jobs = [Job("good-1", record, {"key": "good-1", "log": str(log)}),
            Job("bad", fail, {"message": "broken row 3"}),
            Job("good-2", record, {"key": "good-2", "log": str(log)})]
    with pytest.raises(JobsFailed) as caught:
        run_jobs(jobs, tmp_path / "out", workers=workers)
    assert list(caught.value.failures) == ["bad"]
    assert "ValueError: broken row 3" in str(caught.value)
    assert "broken row 3" in (tmp_path / "out" / "bad.log").read_text()  # the traceback
    assert sorted(_ran(log)) == ["good-1", "good-2"]
    assert not (tmp_path / "out" / "bad.json").exists()
    assert run_jobs(jobs[::2], tmp_path / "out", workers=workers) == {"good-1": "GOOD-1", "good-2": "GOOD-2"}
    assert len(_ran(log)) == 2


def test_killed_worker_is_reported(tmp_path):
    log = tmp_path / "ran.txt"
    jobs = [Job("dies", die), Job("lives", record, {"key": "lives", "log": str(log)})]
    with pytest.raises(JobsFailed, match="dies: worker killed by signal 9"):
        run_jobs(jobs, tmp_path / "out", workers=2)
    assert _ran(log) == ["lives"]


@pytest.mark.parametrize("keys", [["a", "a"], ["a/b"], [""], [".hidden"]])
def test_bad_keys_refused(tmp_path, keys):
    with pytest.raises(ValueError, match="job keys"):
        run_jobs([Job(k, record, {"key": k, "log": "x"}) for k in keys], tmp_path, workers=0)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    stat = stat.read_text() if stat.exists() else ""
    return ") Z " not in stat  # a zombie has ended


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_killed_build_leaves_no_worker_running(tmp_path):
    pid_file = tmp_path / "worker.pid"
    script = (f"import sys; sys.path.insert(0, {os.path.dirname(__file__)!r})\n"
              "from test_jobs import wait_forever\n"
              "from videoclip.book.jobs import Job, run_jobs\n"
              f"run_jobs([Job('w', wait_forever, {{'pid_file': {str(pid_file)!r}}})], {str(tmp_path / 'out')!r}, workers=1)")
    build = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.monotonic() + 120
    while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < deadline:
        time.sleep(0.2)
    worker = int(pid_file.read_text())
    assert _alive(worker)
    build.kill()  # SIGKILL: no finally, no handler runs in the build
    build.wait()
    deadline = time.monotonic() + 30
    while _alive(worker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(worker), f"worker {worker} outlived the killed build"
