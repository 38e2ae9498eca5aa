"""Projection: wall time of the full paper pre-training on one GPU (the command line of
:mod:`videoclip.book.projection`, which holds the FLOP count and the arithmetic).

    .venv/bin/python bench/project.py [--peak-tflops 989] [--mfu 0.3,0.4,0.5] [--pairs-per-s X]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from _common import OUT_DIR, save, table

from videoclip.book.projection import CLIPS, DEFAULT_REAL_TOKENS, NUM_EPOCHS, NUM_VIDEOS, project


def real_tokens(train_json: Path) -> dict[str, float]:
    if train_json.is_file():
        rows = json.loads(train_json.read_text())["results"]["rows"]
        paper = [r for r in rows if r["config"] == "paper"]
        if paper:
            return {"text_len": paper[0]["mean_text_tokens"],
                    "video_len": paper[0]["mean_video_tokens"]}
    return DEFAULT_REAL_TOKENS


def measured_inputs(train_json: Path, retrieval_json: Path) -> tuple[float, float, float]:
    """From the suite's JSON: the best fast pairs/s of the paper config, and the left-out share
    and FAISS seconds of the largest corpus of the retrieval benchmark."""
    rows = json.loads(train_json.read_text())["results"]["rows"]
    rate = max((r["pairs_per_s"] for r in rows
                if r["config"] == "paper" and r["variant"].startswith("fast")), default=0.0)
    stages = json.loads(retrieval_json.read_text())["results"]["stage"]
    largest = max(stages, key=lambda r: r["videos"])
    return rate, largest["left_out_share"], largest["faiss_s"]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peak-tflops", type=float, default=989.0, help="H100 SXM dense bf16")
    parser.add_argument("--mfu", default="0.3,0.4,0.5")
    parser.add_argument("--pairs-per-s", type=float, default=0.0, help="a measured rate (GPU)")
    parser.add_argument("--left-out-share", type=float, default=0.4,
                        help="videos an epoch leaves out of its groups (bench_retrieval/reuse)")
    parser.add_argument("--faiss-s", type=float, default=60.0, help="FAISS seconds per epoch")
    parser.add_argument("--train-json", type=Path, default=OUT_DIR / "bench_train.json")
    parser.add_argument("--retrieval-json", type=Path, default=OUT_DIR / "bench_retrieval.json")
    parser.add_argument("--inputs", action="store_true",
                        help="print 'pairs/s left-out-share faiss-s' from the JSON files; exit")
    parser.add_argument("--out", type=Path, default=OUT_DIR / "project.json")
    args = parser.parse_args(argv)
    if args.inputs:
        print(*measured_inputs(args.train_json, args.retrieval_json))
        return {}
    tokens = real_tokens(args.train_json)
    rows = project(peak_tflops=args.peak_tflops, mfus=[float(m) for m in args.mfu.split(",")],
                   tokens=tokens, left_out_share=args.left_out_share, faiss_s=args.faiss_s,
                   pairs_per_s=args.pairs_per_s or None)
    print(f"PROJECTION (not a measurement): {NUM_EPOCHS} epochs x {NUM_VIDEOS:,} videos x "
          f"{CLIPS} pairs on one GPU of {args.peak_tflops:.0f} bf16 TFLOP/s; real tokens "
          f"text {tokens['text_len']:.1f}, video {tokens['video_len']:.1f}")
    print(table(rows, [("flops", "FLOPs counted", "s"), ("scenario", "rate", "s"),
                       ("gflop_per_pair", "GFLOP/pair", ".1f"), ("pairs_per_s", "pairs/s", ",.0f"),
                       ("step_ms", "ms/step", ".0f"), ("train_h", "train h", ".1f"),
                       ("with_embed_h", "+embed pass h", ".1f"),
                       ("with_reuse_h", "+reuse h", ".1f")]))
    result = {"rows": rows, "tokens": tokens, "projection": True}
    save(args.out, result, args)
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
