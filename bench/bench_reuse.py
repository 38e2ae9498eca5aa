"""Benchmark: the retrieval stage from reused training embeddings vs a separate embedding pass.

``retrieval_source="reuse"`` (design §11) builds each epoch's retrieval vectors from the pairs the
previous epoch's training steps already encoded; only videos that sat that epoch out are
embedded. This script pre-trains the same configuration twice on the simulated toy world, once
per source, the two runs interleaved epoch by epoch (each stops after an epoch and resumes, so
both see the same machine load), and reports per epoch: retrieval-stage seconds, videos
embedded, the groups' same-task share (cluster quality) and, at the end, YouCook2 zero-shot
retrieval of both final models.

Epoch 0 is identical in both runs (nothing to reuse yet: same vectors, same groups, same
weights), so epoch 1 compares the two sources on the same model.

    .venv/bin/python bench/bench_reuse.py [--preset params/pretrain/toy.yaml] [--epochs 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import torch
import yaml
from _common import OUT_DIR, device_info, save, table

from videoclip.evaluation.retrieval import evaluate_retrieval
from videoclip.model import VideoCLIP
from videoclip.sim.world import simulate
from videoclip.train import RunLog, pretrain, read_log

SOURCES = ("embed", "reuse")


def run(args: argparse.Namespace, data_dir: Path, work: Path) -> dict:
    preset = yaml.safe_load(Path(args.preset).read_text())
    base = {**preset, "data_dir": str(data_dir), "num_epochs": args.epochs, "progress": False,
            "checkpoint_every": 0, "seed": args.seed, **json.loads(args.overrides)}
    if args.max_videos:
        base["max_videos"] = args.max_videos
    configs = {s: {**base, "retrieval_source": s, "run_dir": str(work / s)} for s in SOURCES}

    def advance(source: str, stop: int) -> None:
        """Run (or resume) ``source`` until global step ``stop`` (0 = to the end)."""
        pretrain({**configs[source], "resume": True, "stop_after_steps": stop})

    advance("embed", 1)  # learns the epoch length; no checkpoint yet, so the run restarts
    steps_per_epoch = read_log(work / "embed")[0]["steps_per_epoch"]
    for epoch in range(args.epochs):
        last = epoch == args.epochs - 1
        for source in SOURCES:  # interleaved: embed, reuse, embed, reuse, ...
            advance(source, 0 if last else (epoch + 1) * steps_per_epoch)
    rows, per_source = [], {}
    for source in SOURCES:
        log = RunLog.read(work / source)
        retrieval, steps = log.retrieval, log.steps
        model = VideoCLIP.from_pretrained(work / source / "final")
        model.length_buckets = base.get("length_buckets", 4)
        results, _ = evaluate_retrieval(model, data_dir, benchmark="youcook2", progress=False)
        per_source[source] = {"retrieval": retrieval, "youcook2": {k: results[k] for k in
                                                                   ("R@1", "R@5", "R@10")},
                              "median_pairs_per_s": statistics.median(
                                  r["pairs_per_s"] for r in steps)}
        for r in retrieval:
            rows.append({"source": source, "epoch": r["epoch"], "seconds": r["seconds"],
                         "embedded": r["videos_embedded"], "share": r["same_task_share"],
                         "random": r["random_groups_same_task_share"]})
    return {"rows": rows, "per_source": per_source, "steps_per_epoch": steps_per_epoch}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="params/pretrain/toy.yaml")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--max-videos", type=int, default=0, help="0 = every training video")
    parser.add_argument("--world", default="toy", help="simulator preset of the world")
    parser.add_argument("--data-dir", default="", help="an existing data root (skips simulating)")
    parser.add_argument("--overrides", default="{}", help="JSON of extra pre-training keys")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads; 0 = torch's default")
    parser.add_argument("--out", type=Path, default=OUT_DIR / "bench_reuse.json")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(args.data_dir) if args.data_dir else simulate(
            Path(tmp) / "world", preset=args.world, seed=args.seed)
        result = run(args, data_dir, Path(tmp) / "runs")
    print(table(result["rows"], [("source", "source", "s"), ("epoch", "epoch", "d"),
                                 ("seconds", "stage s", ".1f"), ("embedded", "embedded", "d"),
                                 ("share", "same-task share", ".3f"),
                                 ("random", "random groups", ".3f")]))
    for source, values in result["per_source"].items():
        print(f"{source}: YouCook2 {values['youcook2']}")
    result["device"] = device_info(torch.device("cpu"))
    save(args.out, result, args)
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
