"""Zero-shot action segmentation on COIN (paper §4, Table 4; design §7).

Every second of a test video is labelled with one of the step labels or *Outside*
(background). Token states of the video tower (``[CLS]`` masked) over 32-s windows with a
16-s stride are dotted with the pooled label texts; overlapping windows are averaged; a
second is Outside when its best logit is at most γ, the largest dot product between two
different label embeddings (paper §4). Frame accuracy counts every second, background
included, so the all-background prediction is reported beside it: the released
checkpoint's 58.9 equals that baseline (design §7).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from videoclip.data.benchmarks import CoinVideo, load_coin
from videoclip.data.features import FeatureStore
from videoclip.evaluation.common import (
    ZeroShotModel,
    encode_texts,
    finish,
    open_store,
    progress_bar,
    resolve_device,
    windowed_logits,
    with_features,
)
from videoclip.evaluation.metrics import accuracy
from videoclip.paper import paper_numbers

__all__ = [
    "OUTSIDE",
    "coin_targets",
    "evaluate_segmentation",
    "frame_accuracy",
    "label_with_outside",
    "outside_threshold",
    "per_class_accuracy",
]

#: The background ("O") label id; COIN step ids start at 1.
OUTSIDE = 0


def outside_threshold(label_emb: torch.Tensor | np.ndarray) -> float:
    """γ = the largest dot product between two different label embeddings ``(N, D)`` (paper §4)."""
    emb = torch.as_tensor(label_emb, dtype=torch.float64)
    if emb.ndim != 2 or emb.shape[0] < 2:
        raise ValueError(f"label_emb has shape {tuple(emb.shape)}; need (num_labels >= 2, dim)")
    sim = emb @ emb.T
    sim.fill_diagonal_(-math.inf)
    return float(sim.max())


def label_with_outside(logits: torch.Tensor | np.ndarray, gamma: float,
                       label_ids: np.ndarray | None = None) -> np.ndarray:
    """Per-second labels from ``(T, N)`` logits: the arg-max label, or Outside (0) when its logit <= γ.

    ``label_ids[n]`` is the id of column n (default ``n + 1``).
    """
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2 or logits.shape[1] == 0:
        raise ValueError(f"logits have shape {logits.shape}; pass (num_seconds, num_labels)")
    if not np.isfinite(logits).all():  # argmax would pick a NaN column silently
        raise ValueError("logits hold NaN or inf; check the model's weights (all finite?)")
    ids = np.arange(1, logits.shape[1] + 1) if label_ids is None else np.asarray(label_ids)
    pred = ids[logits.argmax(axis=1)].astype(np.int64)  # ties: the first label
    pred[logits.max(axis=1) <= gamma] = OUTSIDE
    return pred


def frame_accuracy(pred: np.ndarray, true: np.ndarray) -> float:
    """Percent of seconds whose predicted label (Outside included) equals the true one."""
    return accuracy(pred, true)


def per_class_accuracy(pred: np.ndarray, true: np.ndarray) -> dict[int, float]:
    """``{label id: percent of that label's seconds predicted as it}`` for every true label."""
    pred, true = np.asarray(pred), np.asarray(true)
    if pred.shape != true.shape or pred.ndim != 1:
        raise ValueError(f"pred {pred.shape} and true {true.shape} must be equal-length 1-D arrays")
    return {int(c): float(100.0 * np.mean(pred[true == c] == c)) for c in np.unique(true)}


def coin_targets(video: CoinVideo, num_seconds: int) -> tuple[np.ndarray, int]:
    """``(per-second label ids (T,), segments starting past the end)`` of one COIN video.

    Seconds ``floor(start) .. ceil(end) - 1`` of each segment get its step id (later segments
    overwrite earlier ones, as the original code does); the rest are Outside.
    """
    targets = np.full(num_seconds, OUTSIDE, dtype=np.int64)
    past_end = 0
    for seg in video.segments:
        first, last = math.floor(seg.start), math.ceil(seg.end)
        past_end += first >= num_seconds
        targets[max(0, first):min(num_seconds, last)] = seg.label_id
    return targets, past_end


def evaluate_segmentation(
    model: ZeroShotModel,
    data_dir: str | Path,
    *,
    coin_path: str | Path | None = None,
    features: FeatureStore | str | Path | None = None,
    batch_size: int = 64,
    device: str | torch.device | None = None,
    out_path: str | Path | None = None,
    progress: bool = True,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Zero-shot COIN action segmentation: frame accuracy, the all-background baseline, per class.

    Args:
        model: anything with ``video_token_states`` and ``encode_texts`` (:class:`videoclip.evaluation.common.ZeroShotModel`).
        data_dir: the data root (``coin/COIN.json``, ``coin/features``).
        coin_path: another COIN-format JSON (e.g. an excerpt) instead of ``coin/COIN.json``.
        features, batch_size (windows per forward pass), device, out_path, progress: as the
            other evaluators.

    Returns:
        ``(results, predictions)``: results hold ``frame_accuracy``, ``background_baseline``
        (every second predicted Outside), ``per_class_accuracy`` (label id → %, 0 = Outside),
        ``mean_class_accuracy``, γ and the counts; predictions one row per second (``true``,
        ``pred``, ``best``: the arg-max label before the Outside rule, ``max_logit``).
    """
    coin = load_coin(coin_path or Path(data_dir) / "coin" / "COIN.json", subset="testing")
    store = open_store(data_dir, "coin", features)
    device = resolve_device(model, device)
    label_ids = np.array(list(coin.labels))
    label_emb = encode_texts(model, list(coin.labels.values()), batch_size=batch_size,
                             device=device, progress=progress, desc="coin labels")
    gamma = outside_threshold(label_emb)
    kept, skipped = with_features(coin.videos, store, what="COIN test")
    segments_past_end = 0
    videos: list[tuple[CoinVideo, np.ndarray]] = []
    for video in kept:
        targets, past_end = coin_targets(video, store.num_seconds(video.video_id))
        segments_past_end += past_end
        videos.append((video, targets))
    inputs = ((i, store.load(v.video_id), label_emb) for i, (v, _) in enumerate(videos))
    frames = []
    for i, logits in progress_bar(
            windowed_logits(model, inputs, batch_size=batch_size, device=device, mask_cls=True),
            total=len(videos), desc="coin videos", enabled=progress):
        video, targets = videos[i]
        pred = label_with_outside(logits, gamma, label_ids)
        frames.append(pd.DataFrame({"video_id": video.video_id, "second": np.arange(len(pred)),
                                    "true": targets, "pred": pred,
                                    "best": label_ids[np.asarray(logits).argmax(axis=1)],
                                    "max_logit": logits.max(dim=1).values.numpy()}))
    predictions = pd.concat(frames, ignore_index=True)
    true, pred = predictions["true"].to_numpy(), predictions["pred"].to_numpy()
    per_class = per_class_accuracy(pred, true)
    results = {
        "task": "action segmentation",
        "benchmark": "coin",
        "protocol": "official: COIN testing subset, label set of the testing subset, 32-s windows "
                    "with 16-s stride, [CLS] masked, logits averaged over windows, Outside when "
                    "the best logit <= gamma",
        "frame_accuracy": frame_accuracy(pred, true),
        "background_baseline": frame_accuracy(np.full_like(true, OUTSIDE), true),
        "mean_class_accuracy": float(np.mean(list(per_class.values()))),
        "per_class_accuracy": {str(k): v for k, v in per_class.items()},
        "predicted_outside_share": float(100.0 * np.mean(pred == OUTSIDE)),
        "gamma": gamma,
        "num_labels": len(label_ids),
        "num_videos_total": len(coin.videos),
        "num_videos": len(videos),
        "num_seconds": len(true),
        "segments_past_end": segments_past_end,
        "skipped": skipped,
        "paper": paper_numbers("coin"),
    }
    finish(results, out_path, {"coin_path": str(coin.path), "batch_size": batch_size,
                               "data_dir": str(data_dir)})
    return results, predictions
