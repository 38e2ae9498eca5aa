"""Benchmark: ablation runs per hour, one process of 2 threads against 2 processes of 1 thread (issue 19).

The same runs both ways: the book's toy ablation run (``params/pretrain/toy_ablation.yaml``, one
Table 7 row, pre-trained and evaluated zero-shot on YouCook2, ``videoclip.book.ablations.train_and_evaluate``) at
seeds ``0 .. runs-1`` on the toy world, through the book's job runner (``videoclip.book.jobs``):

* ``1x2``: ``workers=1, threads=2`` (the runs one after another, as chapter 09 ran them);
* ``2x1``: ``workers=2, threads=1``.

The machine is shared, so the two are timed in one sitting, interleaved in blocks (A B B A ...,
the order reversed every round so that a drift in the load hits both alike), each block in a fresh
work directory (nothing cached). Reported: wall seconds per block, runs per hour, the load average
around each block, and each run's metrics (the arms differ in thread count only: float noise).

    .venv/bin/python bench/bench_jobs.py [--rounds 2] [--runs 2] [--row "VideoCLIP (full)"]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from _common import OUT_DIR, save, table

from videoclip.book.ablations import FULL, train_and_evaluate
from videoclip.book.jobs import Job, run_jobs
from videoclip.book.workspace import ensure_token_cache, ensure_world

REPO = Path(__file__).resolve().parent.parent
ARMS = {"1x2": {"workers": 1, "threads": 2}, "2x1": {"workers": 2, "threads": 1}}


def nothing() -> None:
    """A job that does nothing: starts the runner's server process before the timing."""


def block(arm: str, args: argparse.Namespace, root: Path, work_dir: Path) -> dict[str, Any]:
    shutil.rmtree(work_dir, ignore_errors=True)
    jobs = [Job(f"seed{seed}", train_and_evaluate,
                {"work_dir": str(work_dir), "data_root": str(root), "preset": str(args.preset),
                 "row": args.row, "seed": seed, "extra": args.extra, "batch_size": 64, "device": "cpu"})
            for seed in range(args.runs)]
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    results = run_jobs(jobs, work_dir / "jobs", desc=f"{arm} runs", **ARMS[arm])
    wall = time.perf_counter() - start
    metrics = {key: {m: value[0][m] for m in ("R@1", "R@5", "R@10", "final_loss")}
               for key, value in results.items()}
    shutil.rmtree(work_dir)
    return {"arm": arm, "runs": len(jobs), "wall_s": wall, "runs_per_hour": len(jobs) / wall * 3600,
            "load_before": load_before, "load_after": os.getloadavg()[0], "metrics": metrics}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="rounds of one block per arm")
    parser.add_argument("--runs", type=int, default=2, help="runs (seeds) per block")
    parser.add_argument("--row", default=FULL)
    parser.add_argument("--preset", type=Path, default=REPO / "params/pretrain/toy_ablation.yaml")
    parser.add_argument("--world", default="toy", help="simulated world preset")
    parser.add_argument("--extra", type=lambda text: yaml.safe_load(text) or {}, default={},
                        help='pre-training overrides of every run, YAML: "{max_videos: 128}" (shorter runs)')
    parser.add_argument("--work-dir", type=Path, default=REPO / "artifacts/bench_jobs")
    parser.add_argument("--out", type=Path, default=OUT_DIR / "bench_jobs.json")
    args = parser.parse_args(argv)
    root = ensure_world(args.work_dir, preset=args.world, seed=0,
                        real_data=os.environ.get("VIDEOCLIP_DATA_DIR", ""))
    ensure_token_cache(root, preset=args.preset, **args.extra)  # what the runs share, made once
    run_jobs([Job("warm-up", nothing)], args.work_dir / "warm-up", workers=1)
    rows = []
    for round_ in range(args.rounds):
        for arm in (ARMS if round_ % 2 == 0 else reversed(ARMS)):
            row = block(arm, args, root, args.work_dir / f"block-{round_}-{arm}")
            rows.append({"round": round_, **row})
            print(f"round {round_} {arm}: {row['wall_s']:.0f} s, {row['runs_per_hour']:.1f} runs/h, "
                  f"load {row['load_before']:.1f} -> {row['load_after']:.1f}", flush=True)
            save(args.out, {"rows": rows, "world": str(root)}, args)  # each block kept as it ends
    summary = {arm: statistics.median(r["runs_per_hour"] for r in rows if r["arm"] == arm) for arm in ARMS}
    print(table(rows, [("round", "round", "d"), ("arm", "arm", "s"), ("wall_s", "wall s", ".0f"),
                       ("runs_per_hour", "runs/h", ".1f"), ("load_before", "load before", ".1f"),
                       ("load_after", "load after", ".1f")]))
    print(f"median runs/h: {summary}; 2x1 / 1x2 = {summary['2x1'] / summary['1x2']:.2f}")
    result = {"rows": rows, "median_runs_per_hour": summary, "cores": os.cpu_count(),
              "world": str(root)}
    save(args.out, result, args)
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
