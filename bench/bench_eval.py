"""Benchmark: zero-shot text→video retrieval time on a YouCook2-sized set (3,350 clips).

Writes a simulated YouCook2 validation set in the official MIL-NCE format (457 videos, 3,350
clips in ``validation_youcook.csv``, unit-norm float16 features, short cooking sentences) and
times :func:`videoclip.evaluation.retrieval.evaluate_retrieval` end to end (features read,
clips and texts encoded, all-pairs similarity, ranks) for the fast path (sdpa, length buckets,
bf16 autocast on CUDA) and the plain baseline (eager, no buckets, fp32), interleaved, medians.

On a CPU the paper-sized model runs on the first ``--paper-clips`` clips and its time is
projected linearly to 3,350 (the table says so); the toy model runs the full set.

    .venv/bin/python bench/bench_eval.py [--configs toy,paper] [--paper-clips 335]
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _common import OUT_DIR, clock, device_info, interleaved, save, seconds, table
from bench_train import CONFIGS, FAST_BUCKETS

from videoclip.data.features import write_features
from videoclip.evaluation.retrieval import evaluate_retrieval

NUM_VIDEOS, NUM_CLIPS = 457, 3350  # YouCook2 validation (design §7)
WORDS = ["add", "cut", "chop", "the", "onion", "garlic", "salt", "pepper", "oil", "pan", "pot",
         "stir", "fry", "boil", "water", "mix", "bowl", "flour", "egg", "butter", "sugar",
         "slice", "tomato", "place", "into", "on", "heat", "until", "golden", "brown", "sauce",
         "pour", "and", "with", "a", "of", "to", "some", "chicken", "beef", "rice", "noodles",
         "cook", "minutes", "serve", "plate"]


def write_youcook2(root: Path, *, num_clips: int, seed: int) -> None:
    """``root/youcook2/validation_youcook.csv`` (the first ``num_clips`` clips of the seed's
    3,350) and ``root/features/<vid>.npy``; videos 2-10 min, segments ~3-60 s."""
    rng = np.random.default_rng(seed)
    durations = rng.integers(120, 600, size=NUM_VIDEOS)
    owners = np.sort(rng.integers(0, NUM_VIDEOS, size=NUM_CLIPS))
    rows = []
    for clip, video in enumerate(owners.tolist()):
        length = int(np.clip(rng.lognormal(np.log(15), 0.7), 3, 60))
        start = int(rng.integers(0, durations[video] - length))
        words = rng.choice(WORDS, size=int(rng.integers(5, 16)))
        rows.append({"end": start + length, "start": start, "task": 100 + video % 89,
                     "text": " ".join(words), "video_id": f"yc{video:04d}"})
    (root / "youcook2").mkdir(parents=True, exist_ok=True)
    with open(root / "youcook2" / "validation_youcook.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["end", "start", "task", "text", "video_id"])
        writer.writeheader()
        writer.writerows(rows[:num_clips])
    features = root.parent / "features"
    if not features.is_dir():
        for video, seconds_ in enumerate(durations.tolist()):
            x = rng.standard_normal((seconds_, 512)).astype(np.float32)
            write_features(features, f"yc{video:04d}", x / np.linalg.norm(x, axis=1, keepdims=True))


def bench_config(config: str, args: argparse.Namespace, device: torch.device, base: Path
                 ) -> dict[str, Any]:
    num_clips = args.clips if device.type == "cuda" or config == "toy" else args.paper_clips
    num_clips = min(num_clips, args.clips)
    data_dir = base / f"clips{num_clips}"
    if not (data_dir / "youcook2").is_dir():
        write_youcook2(data_dir, num_clips=num_clips, seed=args.seed)
    reference = CONFIGS[config](attn_implementation="eager").state_dict()
    runs, results = {}, {}
    for name in ("baseline", "fast"):
        model = CONFIGS[config](attn_implementation="sdpa" if name == "fast" else "eager")
        model.load_state_dict(reference)
        model.length_buckets = FAST_BUCKETS if name == "fast" else 0
        model.to(device)
        bf16 = name == "fast" and device.type == "cuda"

        def run(model: Any = model, bf16: bool = bf16, name: str = name) -> None:
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                results[name], _ = evaluate_retrieval(
                    model, data_dir, benchmark="youcook2", features=base / "features",
                    batch_size=args.batch_size, device=device, progress=False)
        runs[name] = run
    timings = interleaved(runs, repeats=args.repeats, warmup=1, device=device)
    scale = NUM_CLIPS / num_clips
    row = {"config": config, "clips_run": num_clips, "projected": num_clips != NUM_CLIPS,
           "clock": clock(device), "recall_at_1": {k: v["R@1"] for k, v in results.items()}}
    for name, timing in timings.items():
        row[f"{name}_s"] = seconds(timing, device) * scale
    row["speedup"] = row["baseline_s"] / row["fast_s"]
    return row


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="toy,paper")
    parser.add_argument("--paper-clips", type=int, default=335,
                        help="clips the paper-sized model runs on a CPU (projected to 3,350)")
    parser.add_argument("--clips", type=int, default=NUM_CLIPS,
                        help="clips of the set (a smaller set is projected to 3,350)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=1, help="torch threads on a CPU")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=OUT_DIR / "bench_eval.json")
    args = parser.parse_args(argv)
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu")
                          if args.device == "auto" else args.device)
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        rows = [bench_config(c, args, device, Path(tmp) / "yc") for c in args.configs.split(",")]
    info = device_info(device)
    print(f"zero-shot YouCook2 retrieval ({NUM_CLIPS:,} clips) on {info['device']}; "
          f"clock: {clock(device)} time")
    for r in rows:
        r["note"] = f"projected from {r['clips_run']} clips" if r["projected"] else "measured"
    print(table(rows, [("config", "config", "s"), ("baseline_s", "baseline s", ".1f"),
                       ("fast_s", "fast s", ".1f"), ("speedup", "x baseline", ".2f"),
                       ("note", "", "s")]))
    result = {"rows": rows, "device": info}
    save(args.out, result, args)
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
