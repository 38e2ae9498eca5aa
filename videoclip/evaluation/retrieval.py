"""Zero-shot text→video retrieval on YouCook2 and MSR-VTT (paper §4, Table 1; design §7).

Each clip is encoded by the video tower from the first 32 s of its features (a YouCook2
segment's own seconds; an MSR-VTT video from its start), each text by the text tower, and
every text ranks every clip by the dot product of the pooled embeddings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from videoclip.data.benchmarks import TextVideoPair, load_msrvtt_test, load_youcook2_val
from videoclip.data.features import FeatureStore
from videoclip.evaluation.common import (
    MAX_VIDEO_LEN,
    ZeroShotModel,
    count,
    encode_clips,
    encode_texts,
    finish,
    open_store,
    resolve_device,
)
from videoclip.evaluation.metrics import pessimistic_ranks, retrieval_metrics
from videoclip.paper import paper_numbers

__all__ = ["clip_features", "evaluate_retrieval"]

_PROTOCOLS = {
    ("youcook2", "milnce"): (
        "official: YouCook2 validation clips of MIL-NCE's validation_youcook.csv (3,350; the "
        "paper's 3,305 are those whose video has features), first 32 s of each segment"),
    ("youcook2", "annotations"): (
        "variant: every validation segment of youcookii_annotations_trainval.json (3,492), "
        "first 32 s of each segment"),
    ("msrvtt", None): "official: MSR-VTT 1k-A (JSFusion test, 1,000 pairs), first 32 s of each video",
}


def clip_features(
    store: FeatureStore, pairs: list[TextVideoPair]
) -> tuple[list[TextVideoPair], list[np.ndarray], dict[str, int], int]:
    """The first 32 s of each pair's clip: ``(kept pairs, clips, skipped, num_cut)``.

    ``skipped`` counts the pairs dropped, by reason: ``no_features`` (the video is not in the
    store), ``segment_past_end`` (the segment starts at or after the last feature second).
    ``num_cut`` counts segments that run past the end; they are cut there and still scored.
    """
    kept, clips = [], []
    skipped: dict[str, int] = {}
    num_cut = 0
    cache: dict[str, np.ndarray] = {}
    for pair in pairs:
        if pair.video_id not in store:
            count(skipped, "no_features")
            continue
        if pair.video_id not in cache:
            cache.clear()  # pairs come grouped by video: keep one video in memory
            cache[pair.video_id] = store.load(pair.video_id)
        features = cache[pair.video_id]
        start = pair.start or 0
        end = len(features) if pair.end is None else pair.end
        if start >= len(features):
            count(skipped, "segment_past_end")
            continue
        num_cut += end > len(features)
        kept.append(pair)
        clips.append(features[start:min(end, len(features), start + MAX_VIDEO_LEN)])
    return kept, clips, skipped, num_cut


def evaluate_retrieval(
    model: ZeroShotModel,
    data_dir: str | Path,
    *,
    benchmark: str = "youcook2",
    clip_list: str = "milnce",
    features: FeatureStore | str | Path | None = None,
    batch_size: int = 256,
    device: str | torch.device | None = None,
    out_path: str | Path | None = None,
    progress: bool = True,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Zero-shot text→video retrieval (paper §4; design §7).

    Args:
        model: anything with ``encode_video`` and ``encode_texts`` (:class:`videoclip.evaluation.common.ZeroShotModel`).
        data_dir: the data root holding ``youcook2/`` or ``msrvtt/`` in the official formats.
        benchmark: ``"youcook2"`` or ``"msrvtt"``.
        clip_list: YouCook2 only: ``"milnce"`` (the zero-shot protocol) or ``"annotations"``
            (every validation segment of the official JSON), see
            :func:`videoclip.data.benchmarks.load_youcook2_val`.
        features: a feature store or its path (default ``<data_dir>/<benchmark>/features``).
        batch_size: clips and texts per forward pass.
        device: where to run (default: the model's device).
        out_path: write the results JSON with provenance there.
        progress: show progress bars.

    Returns:
        ``(results, predictions)``: ``results`` holds ``R@1/5/10`` (%), ``MdR``, ``MnR``, the
        protocol, the counts and the reasons of skipped pairs, and the paper's numbers;
        ``predictions`` has one row per scored text: its clip, the 1-based rank of its clip
        (pessimistic ties) and the top-1 clip with its text.
    """
    if benchmark == "youcook2":
        pairs = load_youcook2_val(data_dir, clip_list=clip_list)
        protocol = _PROTOCOLS[(benchmark, clip_list)]
    elif benchmark == "msrvtt":
        pairs = load_msrvtt_test(data_dir)
        protocol = _PROTOCOLS[(benchmark, None)]
    else:
        raise ValueError(f"benchmark={benchmark!r}; use 'youcook2' or 'msrvtt'")
    store = open_store(data_dir, benchmark, features)
    device = resolve_device(model, device)
    kept, clips, skipped, num_cut = clip_features(store, pairs)
    if not kept:
        raise ValueError(f"no {benchmark} clip has features in {store}; check the feature store")
    video_emb = encode_clips(model, clips, batch_size=batch_size, device=device,
                             progress=progress, desc=f"{benchmark} videos")
    text_emb = encode_texts(model, [p.text for p in kept], batch_size=batch_size, device=device,
                            progress=progress, desc=f"{benchmark} texts")
    sim = (text_emb @ video_emb.T).cpu().numpy()
    metrics = retrieval_metrics(sim)
    top1 = sim.argmax(axis=1)
    predictions = pd.DataFrame({
        "item_id": [p.item_id for p in kept],
        "video_id": [p.video_id for p in kept],
        "start": [p.start for p in kept],
        "end": [p.end for p in kept],
        "text": [p.text for p in kept],
        "rank": pessimistic_ranks(sim),
        "top1_item_id": [kept[j].item_id for j in top1],
        "top1_text": [kept[j].text for j in top1],
    })
    results = {
        "task": "text-to-video retrieval",
        "benchmark": benchmark,
        "protocol": protocol,
        "ties": "pessimistic (a clip scoring as high as the match ranks before it)",
        **metrics,
        "num_pairs": len(pairs),
        "num_scored": len(kept),
        "skipped": skipped,
        "segments_cut_at_video_end": num_cut,
        "paper": paper_numbers(benchmark),
    }
    finish(results, out_path, {"benchmark": benchmark, "clip_list": clip_list,
                               "batch_size": batch_size, "data_dir": str(data_dir)})
    return results, predictions
