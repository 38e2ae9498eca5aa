"""Projection: wall time of the full paper pre-training on one GPU (issue 9).

25 epochs of the paper's corpus (1.1M HowTo100M videos), one group of 32 videos x 16 clips =
512 pairs per step (SPEC §4, §6): 25 x 1.1M x 16 = 440M pairs, 859k steps. A step's cost is
the counted training FLOPs of its pairs (``_common.train_flops_per_pair``) divided by an
*assumed* MFU times the card's dense bf16 peak, unless a measured pairs/s is given. Each
epoch adds its retrieval stage: the embedding pass (forward only, one third of a training
pair's FLOPs, 16 pairs per video; with ``retrieval_source="reuse"`` only the share of videos
the previous epoch left out) plus FAISS (``--faiss-s`` per epoch, from bench_retrieval).

Two FLOP counts: at the padded shapes (text 63, video 34 tokens: the plain path's work) and at
the real token counts of the sampler's batches (what length buckets approach).

    .venv/bin/python bench/project.py [--peak-tflops 989] [--mfu 0.3,0.4,0.5] [--pairs-per-s X]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from _common import OUT_DIR, save, table, train_flops_per_pair

NUM_VIDEOS, NUM_EPOCHS, CLIPS, GROUP = 1_100_000, 25, 16, 32  # the brief / SPEC §4, §6
PAPER_DIMS = {"hidden": 768, "intermediate": 3072, "num_text_layers": 12, "num_video_layers": 6}
# Real token counts of the overlap sampler's batches (bench_train's synthetic captions): used
# when no bench_train.json gives them.
DEFAULT_REAL_TOKENS = {"text_len": 42.5, "video_len": 19.7}


def real_tokens(train_json: Path) -> dict[str, float]:
    if train_json.is_file():
        rows = json.loads(train_json.read_text())["results"]["rows"]
        paper = [r for r in rows if r["config"] == "paper"]
        if paper:
            return {"text_len": paper[0]["mean_text_tokens"],
                    "video_len": paper[0]["mean_video_tokens"]}
    return DEFAULT_REAL_TOKENS


def project(*, peak_tflops: float, mfus: list[float], tokens: dict[str, float],
            left_out_share: float, faiss_s: float, pairs_per_s: float | None) -> list[dict]:
    pairs_per_epoch = NUM_VIDEOS * CLIPS
    counts = {"padded 63/34": train_flops_per_pair(**PAPER_DIMS, text_len=63, video_len=34),
              "real tokens": train_flops_per_pair(**PAPER_DIMS, **tokens)}
    rows = []
    scenarios: list[tuple[str, float | None]] = [(f"MFU {m:.0%} (assumed)", m) for m in mfus]
    if pairs_per_s:
        scenarios.append((f"measured {pairs_per_s:,.0f} pairs/s", None))
    for count_name, flops in counts.items():
        for label, mfu in scenarios:
            rate = pairs_per_s if mfu is None else mfu * peak_tflops * 1e12 / flops
            epoch_s = pairs_per_epoch / rate
            embed_s = epoch_s / 3  # forward only: a third of a training pair, 16 pairs a video
            rows.append({
                "flops": count_name, "scenario": label, "gflop_per_pair": flops / 1e9,
                "pairs_per_s": rate, "step_ms": 1e3 * GROUP * CLIPS / rate,
                "train_h": NUM_EPOCHS * epoch_s / 3600,
                "with_embed_h": NUM_EPOCHS * (epoch_s + embed_s + faiss_s) / 3600,
                "with_reuse_h": NUM_EPOCHS * (epoch_s + left_out_share * embed_s + faiss_s) / 3600,
            })
    return rows


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
