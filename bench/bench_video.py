"""Benchmark: raw video → S3D features, per core on the CPU (or on one GPU), with projections.

Two rates, each on a synthetic H.264 video written with PyAV (a moving gradient with noise):

1. **decode**: frames of MMPT's recipe (30 fps, 224², ``videoclip.video.read_frames``) per
   CPU-second of this process — one core, as each extraction worker decodes one video;
2. **S3D**: seconds of video (30-frame chunks, 224²) embedded per second by MIL-NCE's S3D with
   random weights (the cost does not depend on the values), one torch thread on the CPU or a
   batch of chunks on CUDA.

Then the projected extraction time of YouCook2's 3,350 validation clips (MIL-NCE's list, their
mean duration read from ``validation_youcook.csv`` under ``$VIDEOCLIP_DATA_DIR``; also the 457
whole validation videos, durations from the official annotation file) and of HowTo100M's 1.1M
videos at an assumed mean duration of 6.5 min (the HowTo100M paper's reported average).

    .venv/bin/python bench/bench_video.py [--device cpu|cuda] [--seconds 4] [--repeats 3]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import tempfile
import time
from pathlib import Path

import torch
from _common import OUT_DIR, device_info, save, synchronize, table

from videoclip.sim.media import random_s3d_files, write_video
from videoclip.video import S3D, read_frames

HOWTO100M_VIDEOS = 1_100_000  # the videos VideoCLIP pre-trains on (paper §4.1: 1.1M)
HOWTO100M_MEAN_S = 6.5 * 60  # the HowTo100M paper's average video duration (assumed here)


def youcook2_durations(data_dir: Path | None) -> dict[str, float] | None:
    """Total seconds of MIL-NCE's 3,350 validation clips and of the 457 validation videos."""
    if data_dir is None or not (data_dir / "youcook2" / "validation_youcook.csv").is_file():
        return None
    with open(data_dir / "youcook2" / "validation_youcook.csv") as fh:
        clips = [float(r["end"]) - float(r["start"]) for r in csv.DictReader(fh)]
    database = json.loads((data_dir / "youcook2" / "youcookii_annotations_trainval.json")
                          .read_text())["database"]
    videos = [v["duration"] for v in database.values() if v["subset"] == "validation"]
    return {"num_clips": len(clips), "clip_s": sum(clips), "num_videos": len(videos),
            "video_s": sum(videos)}


def time_decode(path: Path, repeats: int) -> dict[str, float]:
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        frames = read_frames(path)
        best = min(best, time.process_time() - start)
    return {"frames": len(frames), "frames_per_cpu_s": len(frames) / best}


@torch.inference_mode()
def time_s3d(s3d: S3D, device: torch.device, *, batch: int, repeats: int) -> dict[str, float]:
    """Video seconds per second: wall time on CUDA; on the CPU this process's CPU time (one
    thread), so other work on a shared machine does not count against S3D."""
    clock = time.perf_counter if device.type == "cuda" else time.process_time
    video = torch.rand(batch, 3, 30, 224, 224, device=device)
    s3d(video)  # warm-up: allocator, cuDNN algorithm choice
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = clock()
        s3d(video)
        synchronize(device)
        times.append(clock() - start)
    best = min(times)
    return {"chunks": batch, "s3d_s_per_s": batch / best, "clock": clock.__name__}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seconds", type=int, default=4, help="length of the synthetic video")
    parser.add_argument("--width", type=int, default=640, help="synthetic video width (360p)")
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--batch", type=int, default=None,
                        help="30-frame chunks per S3D call (default: 1 on CPU, 16 on CUDA)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=OUT_DIR / "bench_video.json")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(1)
    batch = args.batch or (16 if device.type == "cuda" else 1)
    data_dir = Path(os.environ["VIDEOCLIP_DATA_DIR"]) if os.environ.get("VIDEOCLIP_DATA_DIR") \
        else None

    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "video.mp4"
        write_video(video, width=args.width, height=args.height, num_frames=30 * args.seconds,
                    codec="libx264")
        decode = time_decode(video, args.repeats)
        weights, vocab = random_s3d_files(Path(tmp) / "s3d")
        s3d = S3D.from_milnce_checkpoint(weights, dict_path=vocab).to(device)
        s3d_rate = time_s3d(s3d, device, batch=batch, repeats=args.repeats)

    # one extraction worker decodes 30 frames per second of video; S3D runs beside it
    decode_s_per_s = decode["frames_per_cpu_s"] / 30
    rows = [{"stage": "decode (1 core)", "rate": decode["frames_per_cpu_s"], "unit": "frames/s",
             "video_s_per_s": decode_s_per_s},
            {"stage": f"S3D ({device.type}, {batch} chunk{'s' * (batch > 1)})",
             "rate": s3d_rate["s3d_s_per_s"], "unit": "video s/s",
             "video_s_per_s": s3d_rate["s3d_s_per_s"]}]
    print(table(rows, [("stage", "stage", ""), ("rate", "rate", ",.3g"), ("unit", "", ""),
                       ("video_s_per_s", "video s / s", ",.3g")]))

    durations = youcook2_durations(data_dir)
    workloads = {"HowTo100M (1.1M videos × 6.5 min, assumed)": HOWTO100M_VIDEOS * HOWTO100M_MEAN_S}
    if durations:
        workloads[f"YouCook2 val clips ({durations['num_clips']:,})"] = durations["clip_s"]
        workloads[f"YouCook2 val videos ({durations['num_videos']})"] = durations["video_s"]
    projections = [{"workload": name, "video_hours": total_s / 3600,
                    "decode_core_hours": total_s / decode_s_per_s / 3600,
                    "s3d_hours": total_s / s3d_rate["s3d_s_per_s"] / 3600}
                   for name, total_s in workloads.items()]
    s3d_unit = "S3D GPU-h" if device.type == "cuda" else "S3D core-h"
    print(table(projections, [("workload", "workload", ""), ("video_hours", "video h", ",.1f"),
                              ("decode_core_hours", "decode core-h", ",.1f"),
                              ("s3d_hours", s3d_unit, ",.1f")]))
    if not durations:
        print("YouCook2: no validation_youcook.csv under $VIDEOCLIP_DATA_DIR; not projected")
    save(args.out, {"device": device_info(device), "decode": decode, "s3d": s3d_rate,
                    "rows": rows, "projections": projections, "youcook2": durations,
                    "howto100m_assumed_mean_s": HOWTO100M_MEAN_S,
                    "load_average": os.getloadavg()[0]}, args)


if __name__ == "__main__":
    main()
