"""Evaluation after fine-tuning (design §10.1–10.5): the zero-shot evaluators on the fine-tuned
weights, except COIN, which the new classifier labels (argmax over all 779 classes, no γ).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from videoclip.data.benchmarks import load_coin
from videoclip.data.features import FeatureStore
from videoclip.evaluation.common import (
    finish,
    open_store,
    progress_bar,
    resolve_device,
    windowed_logits,
    with_features,
)
from videoclip.evaluation.registry import BENCHMARKS
from videoclip.evaluation.segmentation import (
    OUTSIDE,
    coin_targets,
    frame_accuracy,
    per_class_accuracy,
)
from videoclip.finetune.examples import TEST_BENCHMARK
from videoclip.finetune.heads import CoinHead
from videoclip.model import VideoCLIP
from videoclip.paper import FINETUNED

__all__ = ["evaluate_coin_head", "evaluate_finetuned", "evaluate_zero_shot"]


@torch.inference_mode()
def evaluate_coin_head(
    model: VideoCLIP,
    head: CoinHead,
    data_dir: str | Path,
    *,
    features: FeatureStore | str | Path | None = None,
    batch_size: int = 64,
    device: str | torch.device | None = None,
    out_path: str | Path | None = None,
    progress: bool = True,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Fine-tuned COIN segmentation (design §10.4; MMPT ``COINPredictor``): frame accuracy.

    32-s windows with a 16-s stride, ``[CLS]`` key masked; the head's logits are averaged over
    the windows covering each second (the bias is common to all windows, so it is added after
    averaging the state · weight products); the label is the argmax over all classes,
    background (0) included. The all-background baseline is reported beside it (design §7).
    """
    coin = load_coin(Path(data_dir) / "coin" / "COIN.json", subset="testing")
    store = open_store(data_dir, "coin", features)
    device = resolve_device(model, device)
    head.eval().to(device)
    weight, bias = head.classifier.weight.float(), head.classifier.bias.float().cpu()  # (C, D), (C,)
    kept, skipped = with_features(coin.videos, store, what="COIN test")
    too_large = sorted({s.label_id for v in kept for s in v.segments if s.label_id >= len(bias)})
    if too_large:
        raise ValueError(f"COIN step ids {too_large[:5]} do not fit the head's {len(bias)} classes")
    inputs = ((i, store.load(v.video_id), weight) for i, v in enumerate(kept))
    frames = []
    for i, logits in progress_bar(
            windowed_logits(model, inputs, batch_size=batch_size, device=device, mask_cls=True),
            total=len(kept), desc="coin videos", enabled=progress):
        video = kept[i]
        targets, _ = coin_targets(video, len(logits))
        pred = (logits + bias).argmax(dim=1).numpy()  # (T,) class ids; column c is class c
        frames.append(pd.DataFrame({"video_id": video.video_id, "second": np.arange(len(pred)),
                                    "true": targets, "pred": pred}))
    predictions = pd.concat(frames, ignore_index=True)
    true, pred = predictions["true"].to_numpy(), predictions["pred"].to_numpy()
    per_class = per_class_accuracy(pred, true)
    results = {
        "task": "action segmentation (fine-tuned)",
        "benchmark": "coin",
        "protocol": "original fine-tuned: COIN testing subset, 32-s windows with 16-s stride, "
                    "[CLS] masked, classifier logits averaged over windows, argmax over all "
                    f"{len(bias)} classes (background included), no gamma",
        "frame_accuracy": frame_accuracy(pred, true),
        "background_baseline": frame_accuracy(np.full_like(true, OUTSIDE), true),
        "mean_class_accuracy": float(np.mean(list(per_class.values()))),
        "predicted_outside_share": float(100.0 * np.mean(pred == OUTSIDE)),
        "num_classes": len(bias),
        "num_videos": len(kept),
        "num_seconds": len(true),
        "skipped": skipped,
        "paper": FINETUNED["coin"],
    }
    finish(results, out_path, {"batch_size": batch_size, "data_dir": str(data_dir)})
    return results, predictions


def evaluate_zero_shot(task: str, model: Any, data_dir: str | Path, **options: Any) -> dict[str, Any]:
    """The zero-shot evaluator of ``task``'s test benchmark (design §7) on ``model``. CrossTask
    uses the original's split (features filtered before the draw), the complement of its
    fine-tuning videos (:func:`videoclip.finetune.examples.crosstask_videos`)."""
    if task not in TEST_BENCHMARK:
        raise ValueError(f"task={task!r}; choose one of {sorted(TEST_BENCHMARK)}")
    if task == "crosstask":
        options = {**options, "split": "original"}
    results, _ = BENCHMARKS[TEST_BENCHMARK[task]].evaluate(model, data_dir, **options)
    return results


def evaluate_finetuned(task: str, model: VideoCLIP, data_dir: str | Path, *,
                       head: CoinHead | None = None, batch_size: int = 64,
                       device: str | torch.device | None = None, progress: bool = False,
                       out_path: str | Path | None = None) -> dict[str, Any]:
    """The test results of a fine-tuned model on ``task`` (design §10: the zero-shot evaluators,
    :func:`evaluate_zero_shot`, except COIN, which its classifier head labels)."""
    options = {"batch_size": batch_size, "device": device, "progress": progress,
               "out_path": out_path}
    if task != "coin":
        return evaluate_zero_shot(task, model, data_dir, **options)
    if head is None:
        raise ValueError("the fine-tuned COIN evaluator needs the classifier head")
    results, _ = evaluate_coin_head(model, head, data_dir, **options)
    return results
