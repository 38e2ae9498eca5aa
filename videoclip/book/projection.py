"""Projection: wall time of the full paper pre-training on one GPU (bench/RESULTS.md).

25 epochs of the paper's corpus (1.1M HowTo100M videos), one group of 32 videos x 16 clips =
512 pairs per step (design §4, §6): 25 x 1.1M x 16 = 440M pairs, 859k steps. A step's cost is
the counted training FLOPs of its pairs (:func:`train_flops_per_pair`) divided by an
*assumed* MFU times the card's dense bf16 peak, unless a measured pairs/s is given. Each
epoch adds its retrieval stage: the embedding pass (forward only, one third of a training
pair's FLOPs, 16 pairs per video; with ``retrieval_source="reuse"`` only the share of videos
the previous epoch left out) plus FAISS (``faiss_s`` per epoch, from bench_retrieval).

Two FLOP counts: at the padded shapes (text 63, video 34 tokens: the plain path's work) and at
the real token counts of the sampler's batches (what length buckets approach).

Chapter 03 and ``bench/project.py`` (its command line) use it.
"""

from __future__ import annotations

from typing import Any

NUM_VIDEOS, NUM_EPOCHS, CLIPS, GROUP = 1_100_000, 25, 16, 32  # the paper / design §4, §6
PAPER_DIMS = {"hidden": 768, "intermediate": 3072, "num_text_layers": 12, "num_video_layers": 6}
# Real token counts of the overlap sampler's batches (bench_train's synthetic captions): used
# when no bench_train.json gives them.
DEFAULT_REAL_TOKENS = {"text_len": 42.5, "video_len": 19.7}


def bert_layer_flops(num_tokens: float, seq_len: float, hidden: int, intermediate: int) -> float:
    """Forward FLOPs of one post-LN BERT layer over ``num_tokens`` tokens in sequences of
    ``seq_len`` (multiply-add = 2): Q, K, V, O projections, the two FFN matrices, and the
    attention scores and weighted sum. LayerNorm, softmax, GELU, dropout are not counted."""
    projections = 2 * num_tokens * (4 * hidden * hidden + 2 * hidden * intermediate)
    attention = 2 * 2 * num_tokens * seq_len * hidden
    return projections + attention


def pair_flops(*, hidden: int, intermediate: int, num_text_layers: int, num_video_layers: int,
               text_len: float, video_len: float, video_dim: int = 512) -> float:
    """Forward FLOPs of one video-text pair: the video MLP on ``video_len - 2`` slots, the
    video tower on ``video_len`` tokens, the text tower on ``text_len`` tokens (design §1)."""
    slots = video_len - 2
    mlp = 2 * slots * (video_dim * hidden + hidden * hidden)
    video = num_video_layers * bert_layer_flops(video_len, video_len, hidden, intermediate)
    text = num_text_layers * bert_layer_flops(text_len, text_len, hidden, intermediate)
    return mlp + video + text


def train_flops_per_pair(**shape: Any) -> float:
    """Training FLOPs of one pair: forward + backward = 3 x forward (the usual MFU count)."""
    return 3 * pair_flops(**shape)


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
