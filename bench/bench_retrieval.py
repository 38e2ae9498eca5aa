"""Benchmark: the retrieval stage (embedding pass + FAISS index + clustering) per corpus size.

Paper §3.4 / design §5: at the start of every epoch each training video is embedded from 16
aligned pairs (``videoclip.retrieval.embed_videos``), the vectors are indexed and cut into
groups of 32 (``cluster_groups``: exact search up to 100k videos, IVF above).

* Embedding pass: measured on a sample of videos of a synthetic packed store (fast path vs plain
  baseline, interleaved, medians) and projected linearly to 10k / 100k / 1.1M videos.
* FAISS build + search + clustering: measured on synthetic clustered vectors of the model's
  width up to ``--measure-max`` videos (memory and time), projected above it from an IVF run
  at the largest measured size (build linear in N; search by its cost model); the table says
  which numbers are measured.
* ``reuse`` (``retrieval_source="reuse"``): only the videos an epoch left out of its groups are
  embedded; their share is measured from the clustering itself.

If ``bench_train.json`` from the same device is in the output folder, each stage is also given
as a share of an epoch's training time (target: <= 10% at paper scale).

    .venv/bin/python bench/bench_retrieval.py [--configs toy,paper] [--measure-max 100000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import torch
from _common import OUT_DIR, clock, device_info, interleaved, save, seconds, table
from bench_sampler import synthetic_world
from bench_train import CONFIGS, FAST_BUCKETS

from videoclip.data.features import open_feature_store
from videoclip.retrieval import (
    FLAT_MAX_VIDEOS,
    build_retriever,
    cluster_groups,
    embed_videos,
    faiss_gpu_available,
)

GROUP_SIZE, NUM_NEIGHBOURS, NLIST, NPROBE, CLIPS = 32, 64, 512, 1, 16  # design §5


def embedding_rate(config: str, args: argparse.Namespace, device: torch.device, store: Any,
                   cache: Any) -> dict[str, Any]:
    """Seconds per video of the embedding pass, fast vs baseline (interleaved medians)."""
    sample = cache.ids()[: args.sample_videos[config]]
    reference = CONFIGS[config](attn_implementation="eager").state_dict()
    runs = {}
    for name in ("baseline", "fast"):
        model = CONFIGS[config](attn_implementation="sdpa" if name == "fast" else "eager")
        model.load_state_dict(reference)
        model.length_buckets = FAST_BUCKETS if name == "fast" else 0
        model.check_feature_norms = False
        model.to(device)
        bf16 = name == "fast" and device.type == "cuda"

        def run(model: Any = model, bf16: bool = bf16) -> None:
            embed_videos(model, store, cache, sample, num_clips=CLIPS,
                         rng=np.random.default_rng(0), batch_size=args.embed_batch_size, bf16=bf16)
        runs[name] = run
    timings = interleaved(runs, repeats=args.repeats, warmup=1, device=device)
    per_video = {name: seconds(t, device) / len(sample) for name, t in timings.items()}
    return {"config": config, "sample_videos": len(sample), "clock": clock(device),
            "s_per_video": per_video, "speedup": per_video["baseline"] / per_video["fast"],
            "width": reference["video_mlp.linear2.weight"].shape[0]}


def clustered_vectors(num: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    """Vectors around ``num // 200`` centres (HowTo100M has ~23k tasks for 1.2M videos)."""
    centres = rng.standard_normal((max(num // 200, 1), dim), dtype=np.float32)
    labels = rng.integers(0, len(centres), size=num)
    return centres[labels] + 0.5 * rng.standard_normal((num, dim), dtype=np.float32)


def faiss_time(num: int, dim: int, index: str, seed: int) -> dict[str, Any]:
    """Wall seconds of cluster_groups on ``num`` vectors, split into build and the rest; the index
    is on the GPU when FAISS can put it there (conda's faiss-gpu, ``faiss_gpu`` in the row)."""
    rng = np.random.default_rng(seed)
    vectors = clustered_vectors(num, dim, rng)
    started = time.perf_counter()
    build_retriever(vectors, index=index, nlist=NLIST, nprobe=NPROBE)
    build_s = time.perf_counter() - started
    started = time.perf_counter()
    groups = cluster_groups(vectors, group_size=GROUP_SIZE, num_neighbours=NUM_NEIGHBOURS,
                            rng=rng, index=index, nlist=NLIST, nprobe=NPROBE)
    total_s = time.perf_counter() - started
    covered = len(np.unique(np.concatenate(groups)))
    return {"videos": num, "index": index, "faiss_gpu": faiss_gpu_available(), "build_s": build_s,
            "search_and_groups_s": max(total_s - build_s, 0.0), "total_s": total_s,
            "left_out_share": 1 - covered / num}


def project_ivf(measured: dict[str, Any], num: int) -> float:
    """IVF seconds at ``num`` videos from a measured IVF run: build (k-means on a capped sample
    + assignment of every vector) taken linear in N; search of N/32 queries over nlist
    centroids and ~nprobe * N / nlist vectors each."""
    n = measured["videos"]

    def search_cost(x: int) -> float:
        return x / GROUP_SIZE * (NLIST + NPROBE * x / NLIST)

    return measured["build_s"] * num / n + measured["search_and_groups_s"] * search_cost(
        num) / search_cost(n)


def train_pairs_per_s(path: Path, config: str, device: str) -> dict[str, float]:
    """Fast and baseline training pairs/s of ``config`` from bench_train.json (same device)."""
    if not path.is_file():
        return {}
    data = json.loads(path.read_text())["results"]
    if data["device"]["device"] != device:
        return {}
    return {r["variant"]: r["pairs_per_s"] for r in data["rows"] if r["config"] == config}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="toy,paper")
    parser.add_argument("--sizes", default="10000,100000,1100000")
    parser.add_argument("--measure-max", type=int, default=100_000,
                        help="largest corpus whose FAISS stage is measured (above: projected)")
    parser.add_argument("--ivf-probe", type=int, default=0,
                        help="videos of the IVF run the projection scales (0 = --measure-max)")
    parser.add_argument("--sample-toy", type=int, default=16, help="videos embedded (toy)")
    parser.add_argument("--sample-paper", type=int, default=4, help="videos embedded (paper)")
    parser.add_argument("--embed-batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=1, help="torch threads on a CPU")
    parser.add_argument("--videos", type=int, default=64, help="videos of the synthetic store")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-json", type=Path, default=OUT_DIR / "bench_train.json")
    parser.add_argument("--out", type=Path, default=OUT_DIR / "bench_retrieval.json")
    args = parser.parse_args(argv)
    args.sample_videos = {"toy": args.sample_toy, "paper": args.sample_paper}
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu")
                          if args.device == "auto" else args.device)
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    info = device_info(device)
    sizes = [int(x) for x in args.sizes.split(",")]
    configs = args.configs.split(",")

    with tempfile.TemporaryDirectory() as tmp:
        root, cache = synthetic_world(Path(tmp), num_videos=args.videos, seed=args.seed)
        store = open_feature_store(root / "packed")
        embedding = {c: embedding_rate(c, args, device, store, cache) for c in configs}

    faiss_rows, stage_rows = [], []
    for config in configs:
        dim = embedding[config]["width"]
        measured: dict[int, dict[str, Any]] = {}
        for num in sizes:
            if num <= args.measure_max:
                measured[num] = faiss_time(num, dim, "auto", args.seed) | {"measured": True}
        largest = max(measured) if measured else None
        ivf_probe = None
        for num in sizes:
            if num in measured:
                row = measured[num]
            else:
                if ivf_probe is None:
                    if largest is None:
                        raise SystemExit("--measure-max is below every size: nothing to project from")
                    # IVF trains on >= 39 points per centroid
                    probe = max(args.ivf_probe or largest, 39 * NLIST)
                    ivf_probe = faiss_time(probe, dim, "ivf", args.seed)
                row = {"videos": num, "index": "ivf", "total_s": project_ivf(ivf_probe, num),
                       "left_out_share": ivf_probe["left_out_share"], "measured": False,
                       "projected_from": ivf_probe}
            faiss_rows.append({"config": config, **row})
        train = train_pairs_per_s(args.train_json, config, info["device"])
        rate = embedding[config]["s_per_video"]
        for row in (r for r in faiss_rows if r["config"] == config):
            num = row["videos"]
            embed = {name: rate[name] * num for name in ("baseline", "fast")}
            reuse_embed = embed["fast"] * row["left_out_share"]
            stage = {"config": config, "videos": num, "index": row["index"],
                     "faiss_s": row["total_s"], "faiss": "measured" if row["measured"]
                     else "projected", "embed_baseline_s": embed["baseline"],
                     "embed_fast_s": embed["fast"], "embed_reuse_s": reuse_embed,
                     "stage_baseline_s": embed["baseline"] + row["total_s"],
                     "stage_fast_s": embed["fast"] + row["total_s"],
                     "stage_reuse_s": reuse_embed + row["total_s"],
                     "left_out_share": row["left_out_share"]}
            stage["reuse_saving"] = stage["stage_fast_s"] / stage["stage_reuse_s"]
            if train:
                epoch = {name: num * 16 / train[name] for name in ("baseline", "fast")}
                stage["epoch_fast_s"] = epoch["fast"]
                stage["share_fast"] = stage["stage_fast_s"] / epoch["fast"]
                stage["share_reuse"] = stage["stage_reuse_s"] / epoch["fast"]
                stage["share_baseline"] = stage["stage_baseline_s"] / epoch["baseline"]
            else:
                stage["share_fast"] = stage["share_reuse"] = stage["share_baseline"] = float("nan")
            stage_rows.append(stage)

    print(f"retrieval stage on {info['device']}; embedding pass measured on a sample and "
          f"projected; clock: {clock(device)} time")
    for config, e in embedding.items():
        print(f"  {config}: embedding {1 / e['s_per_video']['fast']:.2f} videos/s fast, "
              f"{1 / e['s_per_video']['baseline']:.2f} baseline ({e['speedup']:.2f}x; "
              f"{e['sample_videos']} videos x {CLIPS} clips)")
    print(table(stage_rows, [("config", "config", "s"), ("videos", "videos", ",d"),
                             ("index", "index", "s"), ("faiss_s", "FAISS s", ".1f"),
                             ("faiss", "FAISS", "s"), ("embed_baseline_s", "embed base s", ".0f"),
                             ("embed_fast_s", "embed fast s", ".0f"),
                             ("embed_reuse_s", "embed reuse s", ".0f"),
                             ("reuse_saving", "reuse x", ".2f"),
                             ("share_fast", "% epoch fast", ".1%"),
                             ("share_reuse", "% epoch reuse", ".1%")]))
    result = {"embedding": embedding, "faiss": faiss_rows, "stage": stage_rows, "device": info,
              "faiss_threads": faiss.omp_get_max_threads(),
              "faiss_flat_max_videos": FLAT_MAX_VIDEOS}
    save(args.out, result, args)
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
