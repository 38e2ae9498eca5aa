"""Zero-shot multiple-choice VideoQA on MSR-VTT (paper §4, Table 3; design §7).

Retrieval inside each question: the video (first 32 s) is encoded once, each candidate
caption by the text tower, and the answer is the candidate with the largest dot product.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from videoclip.data.benchmarks import load_msrvtt_mc
from videoclip.data.features import FeatureStore
from videoclip.evaluation.common import (
    MAX_VIDEO_LEN,
    ZeroShotModel,
    encode_clips,
    encode_texts,
    finish,
    open_store,
    resolve_device,
    with_features,
)
from videoclip.paper import paper_numbers

__all__ = ["evaluate_videoqa", "multiple_choice_correct"]


def multiple_choice_correct(scores: np.ndarray, answers: np.ndarray) -> np.ndarray:
    """``(Q,)`` bool: the answer's score is **strictly** the largest of its ``(Q, C)`` row.

    Ties count as wrong (pessimistic), so a constant scorer gets 0%, not the share of
    questions whose answer is the first option.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or len(scores) != len(answers) or not np.isfinite(scores).all():
        raise ValueError(f"scores {scores.shape} must be finite (num_questions, num_options)")
    rows = np.arange(len(scores))
    answer_score = scores[rows, answers]
    return (scores >= answer_score[:, None]).sum(axis=1) == 1


def evaluate_videoqa(
    model: ZeroShotModel,
    data_dir: str | Path,
    *,
    features: FeatureStore | str | Path | None = None,
    batch_size: int = 256,
    device: str | torch.device | None = None,
    out_path: str | Path | None = None,
    progress: bool = True,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """MSR-VTT multiple-choice accuracy (JSFusion test, ``msrvtt/msrvtt_mc_test.jsonl``).

    Questions whose video has no features are dropped and counted (``skipped.no_features``).

    Returns:
        ``(results, predictions)``: ``results["accuracy"]`` in percent (ties pessimistic), with
        counts and the paper's number; ``predictions`` has one row per question: the answer,
        the arg-max option, whether it is correct and the option scores.
    """
    questions = load_msrvtt_mc(data_dir)
    store = open_store(data_dir, "msrvtt", features)
    device = resolve_device(model, device)
    kept, skipped = with_features(questions, store, what="MSR-VTT multiple-choice")
    video_ids = sorted({q.video_id for q in kept})
    row_of = {vid: i for i, vid in enumerate(video_ids)}
    clips = [store.load(vid)[:MAX_VIDEO_LEN] for vid in video_ids]
    video_emb = encode_clips(model, clips, batch_size=batch_size, device=device,
                             progress=progress, desc="msrvtt-mc videos")
    num_options = len(kept[0].options)
    if any(len(q.options) != num_options for q in kept):
        raise ValueError("questions have different numbers of options; this evaluator expects 5")
    text_emb = encode_texts(model, [o for q in kept for o in q.options], batch_size=batch_size,
                            device=device, progress=progress, desc="msrvtt-mc answers")
    text_emb = text_emb.view(len(kept), num_options, -1)
    rows = torch.tensor([row_of[q.video_id] for q in kept], device=device)
    scores = torch.einsum("qd,qcd->qc", video_emb[rows], text_emb).cpu().numpy()
    answers = np.array([q.answer for q in kept])
    correct = multiple_choice_correct(scores, answers)
    predictions = pd.DataFrame({
        "qid": [q.qid for q in kept],
        "video_id": [q.video_id for q in kept],
        "answer": answers,
        "predicted": scores.argmax(axis=1),
        "correct": correct,
        "scores": list(scores),
        "answer_text": [q.options[q.answer] for q in kept],
    })
    results = {
        "task": "multiple-choice VideoQA",
        "benchmark": "msrvtt_mc",
        "protocol": "official: JSFusion MSR-VTT multiple-choice test, first 32 s of each video; "
                    "arg-max over video·answer dot products, ties count as wrong",
        "accuracy": float(100.0 * correct.mean()),
        "chance": float(100.0 / num_options),
        "num_questions": len(questions),
        "num_scored": len(kept),
        "skipped": skipped,
        "paper": paper_numbers("msrvtt_mc"),
    }
    finish(results, out_path, {"batch_size": batch_size, "data_dir": str(data_dir)})
    return results, predictions
