"""Benchmark: pre-training throughput (pairs/s, model FLOP/s, MFU), fast path vs plain baseline.

Two configurations (the fast path, design §11):

* ``paper``: BERT-base-sized towers built from a random ``BertConfig`` (no hub needed), 12 text
  layers, 6 video layers, 512 pairs a step (32 videos x 16 clips) on a GPU. A CPU cannot run
  512 pairs a step in a benchmark: ``--paper-pairs`` sets a smaller batch there (reported).
* ``toy``: the offline MiniLM-L6 backbone, 2 video layers, 3 text layers, 32 videos x 4 clips.

Batches come from the real sampler (:func:`videoclip.data.samplers.make_batch`, ``overlap``) on a
synthetic packed store with HowTo100M-like captions (``bench_sampler.synthetic_world``), so the
text and clip lengths, and hence the padding, are realistic. Each step is the training loop's
step: forward (autocast on the fast path), the two-way contrastive loss, backward, gradient
clipping, Adam.

Variants, timed interleaved in one process (``_common.interleaved``), medians reported:

* ``baseline``: fp32, eager attention, no length buckets, for-loop Adam, batches built inline;
* ``fast``: the training defaults of ``videoclip.train``: sdpa attention, 4 length buckets,
  fused Adam, prefetched (pinned) batches, bf16 autocast on CUDA;
* ``fast+compile`` (``--compile``): ``fast`` with the towers under ``torch.compile``.

FLOPs are counted per pair (``videoclip.book.projection.train_flops_per_pair``) at the padded paper shapes
(text 63, video 34 tokens: the issue's MFU definition) and at the batches' real token counts
(the work the model needs; the baseline spends more, on padding). MFU divides the former by the
card's dense bf16 peak. On a CPU: pairs/s and GFLOP/s, no MFU.

    .venv/bin/python bench/bench_train.py [--configs toy,paper] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import copy
import itertools
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _common import (
    OUT_DIR,
    clock,
    device_info,
    interleaved,
    save,
    seconds,
    table,
)
from bench_sampler import synthetic_world
from transformers import BertConfig

from videoclip.backbone import load_tokenizer
from videoclip.book.projection import train_flops_per_pair
from videoclip.data.features import open_feature_store
from videoclip.data.samplers import ClipSampler, Prefetcher, make_batch
from videoclip.loss import contrastive_loss
from videoclip.model import ModelConfig, VideoCLIP
from videoclip.train import ModelCfg

FAST_BUCKETS = ModelCfg().length_buckets  # the training default


def paper_model(*, attn_implementation: str) -> VideoCLIP:
    """BERT-base-sized VideoCLIP from a random ``BertConfig`` (bert-base-uncased's sizes)."""
    bert = BertConfig(vocab_size=30522, hidden_size=768, num_hidden_layers=12,
                      num_attention_heads=12, intermediate_size=3072)
    tokenizer = load_tokenizer("minilm-l6")  # the same uncased WordPiece vocabulary (30,522)
    config = ModelConfig(bert=bert.to_dict(), backbone="random bert-base", num_video_layers=6,
                         num_text_layers=12, attn_implementation=attn_implementation,
                         cls_token_id=tokenizer.cls_token_id, sep_token_id=tokenizer.sep_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    return VideoCLIP(config, tokenizer)


def toy_model(*, attn_implementation: str) -> VideoCLIP:
    torch.manual_seed(0)
    return VideoCLIP.from_backbone("minilm-l6", num_video_layers=2, num_text_layers=3,
                                   attn_implementation=attn_implementation)


CONFIGS = {"paper": paper_model, "toy": toy_model}
SHAPES = {"paper": {"videos": 32, "clips": 16}, "toy": {"videos": 32, "clips": 4}}


def build_variant(name: str, config: str, device: torch.device, reference: dict[str, Any]
                  ) -> tuple[VideoCLIP, torch.optim.Optimizer]:
    """``baseline``, ``fast``, ``fast+compile`` or ``fast[bN]`` (fast with N length buckets)."""
    fast = name.startswith("fast")
    model = CONFIGS[config](attn_implementation="sdpa" if fast else "eager")
    model.load_state_dict(reference)  # the same weights in every variant
    buckets = int(name[len("fast[b"):-1]) if name.startswith("fast[b") else FAST_BUCKETS
    model.length_buckets = buckets if fast else 0
    model.check_feature_norms = False  # features are unit-norm; skip the per-step check in both
    model.to(device).train()
    if name == "fast+compile":
        for tower in (model.text_encoder, model.video_encoder):
            tower.compile(dynamic=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-5, betas=(0.9, 0.98), fused=fast)
    return model, optimizer


def make_step(model: VideoCLIP, optimizer: torch.optim.Optimizer, batches: Any,
              device: torch.device, bf16: bool) -> Any:
    """One training step of ``videoclip.train`` (no scheduler, no logging)."""
    def step() -> None:
        batch = next(batches).to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            video_emb, text_emb = model(batch)
        loss = contrastive_loss(video_emb.float(), text_emb.float())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 2.0)
        optimizer.step()
    return step


def bench_config(config: str, args: argparse.Namespace, device: torch.device, store: Any,
                 cache: Any) -> list[dict[str, Any]]:
    shape = dict(SHAPES[config])
    if config == "paper" and device.type == "cpu":
        shape = {"videos": max(1, args.paper_pairs // 4), "clips": 4}
    rng = np.random.default_rng(args.seed)
    ids = cache.ids()
    groups = [rng.choice(ids, size=shape["videos"], replace=False).tolist() for _ in range(16)]
    sampler = ClipSampler(kind="overlap")

    def build(step: int) -> Any:
        return make_batch(groups[step % len(groups)], store, cache, clip_per_video=shape["clips"],
                          sampler=sampler, rng=np.random.default_rng([args.seed, step]))

    sample = [build(i) for i in range(len(groups))]
    text_len = float(np.mean([b.attention_mask.sum(1).float().mean() for b in sample]))
    video_len = float(np.mean([b.vmask.sum(1).float().mean() for b in sample])) + 2
    probe = CONFIGS[config](attn_implementation="eager")
    reference = probe.state_dict()
    dims = {"hidden": probe.config.bert["hidden_size"],
            "intermediate": probe.config.bert["intermediate_size"],
            "num_text_layers": probe.config.num_text_layers,
            "num_video_layers": probe.config.num_video_layers}
    del probe
    flops_padded = train_flops_per_pair(**dims, text_len=63, video_len=34)
    flops_real = train_flops_per_pair(**dims, text_len=text_len, video_len=video_len)

    names = ["baseline", "fast"] + (["fast+compile"] if args.compile else [])
    names += [f"fast[b{b}]" for b in args.fast_buckets if b != FAST_BUCKETS]
    steps, prefetchers = {}, []
    for name in names:
        model, optimizer = build_variant(name, config, device, copy.deepcopy(reference))
        if name == "baseline":
            batches = map(build, itertools.count())
        else:
            loader = Prefetcher(build, range(10**6), pin_memory=device.type == "cuda")
            prefetchers.append(loader)
            batches = iter(loader)
        steps[name] = make_step(model, optimizer, batches, device,
                                bf16=name != "baseline" and device.type == "cuda")
    try:
        timings = interleaved(steps, repeats=args.repeats, warmup=args.warmup, device=device)
    finally:
        for loader in prefetchers:
            loader.close()
    pairs = shape["videos"] * shape["clips"]
    rows = []
    base_s = seconds(timings["baseline"], device)
    info = device_info(device)
    for name, timing in timings.items():
        step_s = seconds(timing, device)
        row = {"config": config, "variant": name, "pairs_per_step": pairs,
               "step_s": step_s, "step_wall_s": timing.median_wall, "step_cpu_s": timing.median_cpu,
               "pairs_per_s": pairs / step_s,
               "gflops_padded": pairs * flops_padded / step_s / 1e9,
               "gflops_real": pairs * flops_real / step_s / 1e9,
               "speedup": base_s / step_s, "clock": clock(device),
               "mean_text_tokens": text_len, "mean_video_tokens": video_len,
               "train_gflop_per_pair_padded": flops_padded / 1e9,
               "train_gflop_per_pair_real": flops_real / 1e9,
               "wall_s": timing.wall, "cpu_s": timing.cpu}
        peak = info.get("bf16_peak_tflops")
        row["mfu_padded"] = row["gflops_padded"] / (peak * 1e3) if peak else float("nan")
        row["mfu_real"] = row["gflops_real"] / (peak * 1e3) if peak else float("nan")
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="toy,paper")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--paper-pairs", type=int, default=16,
                        help="pairs per step of the paper config on a CPU (512 on a GPU)")
    parser.add_argument("--compile", action="store_true", help="add a torch.compile variant")
    parser.add_argument("--fast-buckets", type=lambda x: [int(b) for b in x.split(",") if b],
                        default=[], help="also time the fast path with these length_buckets")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads on a CPU (1: on a shared machine 2 threads time the "
                             "OpenMP spin-waits of a descheduled thread, not the work)")
    parser.add_argument("--videos", type=int, default=64, help="videos of the synthetic store")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=OUT_DIR / "bench_train.json")
    args = parser.parse_args(argv)
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu")
                          if args.device == "auto" else args.device)
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root, cache = synthetic_world(Path(tmp), num_videos=args.videos, seed=args.seed)
        store = open_feature_store(root / "packed")
        for config in args.configs.split(","):
            if config not in CONFIGS:
                raise SystemExit(f"unknown config {config!r}; choose from {sorted(CONFIGS)}")
            rows.extend(bench_config(config, args, device, store, cache))
    info = device_info(device)
    print(f"training throughput on {info['device']} (medians of {args.repeats}, "
          f"interleaved; clock: {clock(device)} time)")
    print(table(rows, [("config", "config", "s"), ("variant", "variant", "s"),
                       ("pairs_per_step", "pairs/step", "d"), ("step_s", "s/step", ".3f"),
                       ("pairs_per_s", "pairs/s", ".1f"), ("gflops_padded", "GFLOP/s 63/34", ".1f"),
                       ("gflops_real", "GFLOP/s real", ".1f"), ("mfu_padded", "MFU 63/34", ".3f"),
                       ("speedup", "x baseline", ".2f")]))
    result = {"rows": rows, "device": info}
    save(args.out, result, args)
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
