"""The CPU benchmark suite (``make bench``): ~5 CPU-minutes on 2 cores, results in bench/out/.

Runs, with CPU-sized arguments, each benchmark's fast path against its plain baseline in one
process (interleaved, medians; one torch thread, see ``bench_train --threads``):

1. ``bench_sampler``: sampling + collate pairs/s from the packed store (and .npy files);
2. ``bench_train``: training pairs/s and GFLOP/s, toy config and the paper-sized model on a
   small batch;
3. ``bench_retrieval``: the paper-sized embedding pass (projected) and FAISS at 10k / 100k
   videos (measured) and 1.1M (projected from an IVF run on 20k);
4. ``bench_eval``: zero-shot YouCook2 retrieval, 3,350 clips (toy model; paper-sized model on
   100 clips, projected);
5. ``bench_video``: decoding frames/s and S3D video-s/s per core, projected extraction times;
6. ``project``: the projected time of the full paper pre-training on one H100 (assumed MFU).

``bench_reuse`` (a few toy pre-training epochs) takes longer and runs on its own.

    .venv/bin/python bench/run_cpu.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import bench_eval
import bench_retrieval
import bench_sampler
import bench_train
import bench_video
import project
from _common import OUT_DIR


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one repetition each (a smoke run)")
    args = parser.parse_args(argv)
    repeats = ["--repeats", "1", "--warmup", "0"] if args.quick else ["--repeats", "3"]
    started = time.perf_counter()
    timings = {}

    def stage(name: str, run, *stage_args: str) -> None:
        print(f"\n=== {name} ===", flush=True)
        t = time.perf_counter()
        run(list(stage_args))
        timings[name] = time.perf_counter() - t

    stage("bench_sampler", bench_sampler.main, "--videos", "96", "--batches", "8",
          "--out", str(OUT_DIR / "bench_sampler.json"))
    stage("bench_train", bench_train.main, "--configs", "toy,paper", "--paper-pairs", "16",
          *repeats)
    stage("bench_retrieval", bench_retrieval.main, "--configs", "paper", "--sample-paper", "4",
          "--sizes", "10000,100000,1100000", "--measure-max", "100000", "--ivf-probe", "20000",
          "--repeats", "1" if args.quick else "2")
    stage("bench_eval", bench_eval.main, "--configs", "toy,paper", "--paper-clips", "100",
          "--repeats", "1" if args.quick else "2")
    stage("bench_video", bench_video.main, "--seconds", "2" if args.quick else "4",
          "--repeats", "1" if args.quick else "2")
    _, left_out, faiss_s = project.measured_inputs(OUT_DIR / "bench_train.json",
                                                    OUT_DIR / "bench_retrieval.json")
    stage("project", project.main, "--left-out-share", f"{left_out:.3f}", "--faiss-s",
          f"{faiss_s:.1f}")
    print(f"\nCPU suite done in {time.perf_counter() - started:.0f} s: "
          + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()))
    (OUT_DIR / "run_cpu_timings.json").write_text(json.dumps(timings, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
