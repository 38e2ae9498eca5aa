"""DiDeMo zero-shot **moment localisation** (paper Table 2; design §7).

The paper calls this "video-paragraph retrieval", but its code (and this module) ranks the
21 candidate moments *inside the query's own video*: six 5-s chunks, every ``[first, last]``
chunk range, each moment embedded as the **unmasked** mean of the video tower's token states
over its 5-s slots (``[CLS]`` visible), scored by the dot product with the pooled text.
Scored with LocalizingMoments' ``eval.py``: rank@1 / rank@5 of the mean of the best three
annotator ranks, and the mean IoU of the top moment with the best three annotations.

Protocols: ``"official"`` ranks all 21 moments for every query (LocalizingMoments expects
21); ``"original"`` is the VideoCLIP code, which drops moments with no feature second
(videos shorter than 30 s) from the ranking and skips annotations that point at them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from videoclip.data.benchmarks import DIDEMO_MOMENTS, load_didemo
from videoclip.data.features import FeatureStore
from videoclip.evaluation.common import (
    MAX_VIDEO_LEN,
    ZeroShotModel,
    batched,
    encode_texts,
    finish,
    open_store,
    pad_clips,
    progress_bar,
    resolve_device,
    with_features,
)
from videoclip.paper import paper_numbers

__all__ = ["CHUNK_SECONDS", "evaluate_didemo", "moment_iou", "moment_metrics", "moment_pooling"]

#: One DiDeMo chunk is 5 s of video (one feature per second).
CHUNK_SECONDS = 5
Moment = tuple[int, int]


def moment_iou(pred: Moment, gt: Moment) -> float:
    """IoU of two inclusive chunk ranges, as LocalizingMoments computes it."""
    intersection = max(0, min(pred[1], gt[1]) + 1 - max(pred[0], gt[0]))
    union = max(pred[1], gt[1]) + 1 - min(pred[0], gt[0])
    return intersection / union


def _query_scores(ranked: Sequence[Moment], times: Sequence[Moment], *, missing: str, index: int
                  ) -> tuple[float, float]:
    """``(mean of the best 3 ranks, mean of the best 3 IoUs)`` of one query."""
    ranked = [tuple(m) for m in ranked]
    if not ranked:
        raise ValueError(f"query {index}: empty ranking; rank the 21 moments")
    ious = sorted(moment_iou(ranked[0], t) for t in times)
    position = {m: i + 1 for i, m in reversed(list(enumerate(ranked)))}  # first occurrence wins
    ranks = []
    for t in times:
        if tuple(t) in position:
            ranks.append(position[tuple(t)])
        elif missing == "error":
            raise ValueError(
                f"query {index}: annotated moment {tuple(t)} is not in the ranking; rank all 21 "
                "moments (or use missing='skip', the original code's rule)")
    best_rank = float(np.mean(sorted(ranks)[:3])) if ranks else float("inf")
    return best_rank, float(np.mean(ious[-3:]))


def moment_metrics(ranked_moments: Sequence[Sequence[Moment]], gt_times: Sequence[Sequence[Moment]],
                   *, missing: str = "error") -> dict[str, float]:
    """DiDeMo rank@1, rank@5 and mIoU exactly as LocalizingMoments ``utils/eval.py``.

    Per query: the ranks (1-based) of each annotator's moment in the ranking; the query's
    rank is the mean of its best 3; rank@k is the percent of queries whose rank is <= k
    (so rank@1 needs 3 annotators to agree with the top moment). IoU is that of the top
    moment with each annotation, averaged over the best 3; mIoU is its mean, in percent.

    Args:
        ranked_moments: per query, moments ``(first, last)`` chunk, best first.
        gt_times: per query, the annotators' moments.
        missing: ``"error"`` (official: every annotated moment must be ranked) or ``"skip"``
            (the original VideoCLIP code: annotations absent from the ranking are ignored; a
            query with none left counts as a miss).
    """
    if missing not in ("error", "skip"):
        raise ValueError(f"missing={missing!r}; use 'error' or 'skip'")
    if len(ranked_moments) != len(gt_times) or not gt_times:
        raise ValueError(f"{len(ranked_moments)} rankings for {len(gt_times)} queries")
    scores = np.array([_query_scores(r, t, missing=missing, index=i)
                       for i, (r, t) in enumerate(zip(ranked_moments, gt_times))])
    best_rank, iou = scores[:, 0], scores[:, 1]
    return {"rank@1": float(100.0 * np.mean(best_rank <= 1)),
            "rank@5": float(100.0 * np.mean(best_rank <= 5)),
            "mIoU": float(100.0 * np.mean(iou)),
            "num_queries": len(gt_times),
            "num_queries_without_ranked_annotation": int(np.sum(np.isinf(best_rank)))}


def moment_pooling(num_slots: int = MAX_VIDEO_LEN) -> torch.Tensor:
    """``(21, num_slots)`` weights: row m averages the slots of moment m (unmasked mean)."""
    weights = torch.zeros(len(DIDEMO_MOMENTS), num_slots)
    for m, (first, last) in enumerate(DIDEMO_MOMENTS):
        weights[m, first * CHUNK_SECONDS:(last + 1) * CHUNK_SECONDS] = 1.0
    return weights / weights.sum(dim=1, keepdim=True)


def evaluate_didemo(
    model: ZeroShotModel,
    data_dir: str | Path,
    *,
    protocol: str = "official",
    features: FeatureStore | str | Path | None = None,
    batch_size: int = 64,
    device: str | torch.device | None = None,
    out_path: str | Path | None = None,
    progress: bool = True,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Zero-shot DiDeMo moment localisation on LocalizingMoments ``test_data.json`` (design §7).

    Args:
        model: anything with ``video_token_states`` and ``encode_texts`` (:class:`videoclip.evaluation.common.ZeroShotModel`).
        data_dir: the data root holding ``didemo/test_data.json``; features are looked up by
            :func:`videoclip.data.benchmarks.didemo_feature_id` (the name without extension).
        protocol: ``"official"`` (all 21 moments ranked) or ``"original"`` (the VideoCLIP code:
            moments without any feature second dropped), see the module docstring.
        features, batch_size, device, out_path, progress: as the other evaluators.

    Returns:
        ``(results, predictions)``; results hold rank@1, rank@5, mIoU (%), the protocol, the
        counts of skipped queries; predictions one row per query with its ranked moments.
    """
    if protocol not in ("official", "original"):
        raise ValueError(f"protocol={protocol!r}; use 'official' or 'original'")
    queries = load_didemo(data_dir)
    store = open_store(data_dir, "didemo", features)
    device = resolve_device(model, device)
    kept, skipped = with_features(queries, store, what="DiDeMo")
    video_ids = sorted({q.video_id for q in kept})
    text_emb = encode_texts(model, [q.description for q in kept], batch_size=batch_size,
                            device=device, progress=progress, desc="didemo texts")
    pooling = moment_pooling().to(device)
    slot_of_moment = pooling > 0  # (21, 32)
    moment_emb: dict[str, torch.Tensor] = {}
    moment_valid: dict[str, np.ndarray] = {}
    with torch.inference_mode():
        for chunk in progress_bar(batched(video_ids, batch_size), total=-(-len(video_ids) // batch_size),
                                  desc="didemo videos", enabled=progress):
            video, vmask = pad_clips([store.load(v)[:MAX_VIDEO_LEN] for v in chunk])
            states = model.video_token_states(video.to(device), vmask.to(device), mask_cls=False)
            pooled = torch.einsum("ms,bsd->bmd", pooling, states.float())  # (B, 21, D)
            valid = (slot_of_moment[None] & vmask.to(device)[:, None, :]).any(dim=2)  # (B, 21)
            for i, vid in enumerate(chunk):
                moment_emb[vid] = pooled[i]
                moment_valid[vid] = valid[i].cpu().numpy()
    ranked, tops, scores_out = [], [], []
    for i, q in enumerate(kept):
        scores = (moment_emb[q.video_id] @ text_emb[i]).cpu().numpy()
        if not np.isfinite(scores).all():  # argsort would rank NaN silently
            raise ValueError(f"{q.video_id}: moment scores hold NaN or inf; check the model's "
                             f"weights and the features (all finite?)")
        order = np.argsort(-scores, kind="stable")  # ties keep LocalizingMoments' moment order
        if protocol == "original":
            order = order[moment_valid[q.video_id][order]]
        ranked.append([DIDEMO_MOMENTS[m] for m in order])
        tops.append(DIDEMO_MOMENTS[order[0]])
        scores_out.append(scores)
    metrics = moment_metrics(ranked, [q.times for q in kept],
                             missing="error" if protocol == "official" else "skip")
    predictions = pd.DataFrame({
        "annotation_id": [q.annotation_id for q in kept],
        "video": [q.video for q in kept],
        "description": [q.description for q in kept],
        "times": [list(q.times) for q in kept],
        "top_moment": tops,
        "ranked_moments": ranked,
        "scores": scores_out,
    })
    results = {
        "task": "moment localisation (ranking 21 moments inside the query's video; "
                "the paper's 'video-paragraph retrieval' row)",
        "benchmark": "didemo",
        "protocol": (
            "official: LocalizingMoments eval.py over all 21 moments, unmasked mean of token "
            "states per moment, stable ties" if protocol == "official" else
            "original: VideoCLIP code, moments without a feature second dropped from the "
            "ranking, annotations pointing at them ignored"),
        **metrics,
        "num_queries_total": len(queries),
        "skipped": skipped,
        "paper": paper_numbers("didemo"),
    }
    finish(results, out_path, {"protocol": protocol, "batch_size": batch_size,
                               "data_dir": str(data_dir)})
    return results, predictions
