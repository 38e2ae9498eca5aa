"""Zero-shot action step localisation on CrossTask (paper §4, Table 5; design §7).

For each test video of a primary task: per-second logits = token states (``[CLS]`` masked,
32-s windows, 16-s stride, averaged) · pooled step texts; log-softmax over the task's
steps; the official ordered alignment (:func:`align_steps`) puts each step on exactly one
second; recall counts the steps whose second falls inside a ground-truth interval of that
step (:func:`recall`), per task, and the benchmark number is the mean over tasks.

Split (``split=``): ``"official"`` draws the official random split (DmZhukov/CrossTask,
seeded 0 as the VideoCLIP code does) over every primary-task video of ``videos.csv`` minus
the validation list, then drops test videos without features (counted); ``"original"`` is
the VideoCLIP code, which removes videos without features *before* drawing, so the draw —
and the test set — change with the features at hand (the paper's 1,690 test videos).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from videoclip.data.benchmarks import crosstask_split, load_crosstask, read_step_annotation
from videoclip.data.features import FeatureStore
from videoclip.evaluation.common import (
    ZeroShotModel,
    count,
    encode_texts,
    finish,
    open_store,
    progress_bar,
    resolve_device,
    windowed_logits,
)
from videoclip.paper import paper_numbers

__all__ = ["align_steps", "evaluate_step_localization", "recall"]


def align_steps(scores: np.ndarray | torch.Tensor) -> np.ndarray:
    """The official CrossTask ordered alignment (``dp.pyx``, ``exactly_one=True``, background cost 0).

    Each of the K steps is put on exactly one second, the steps in their canonical order at
    strictly increasing seconds, background everywhere else, minimising the summed cost of
    the chosen (second, step) cells. Ties are broken as the official dynamic programme does
    (stay in background, then come from the previous state, then skip the background
    between two steps; at the end, the last step beats trailing background on a tie).

    Args:
        scores: ``(T, K)`` costs to minimise, e.g. negative log-probabilities; ``T >= K``.

    Returns:
        ``(T, K)`` uint8 with exactly one 1 per column.
    """
    cost = np.asarray(scores, dtype=np.float32)  # the official code takes float32 costs
    if cost.ndim != 2 or cost.shape[1] == 0:
        raise ValueError(f"scores have shape {cost.shape}; pass (num_seconds, num_steps >= 1)")
    num_seconds, num_steps = cost.shape
    if num_seconds < num_steps:
        raise ValueError(f"{num_seconds} seconds cannot hold {num_steps} steps one second each")
    if not np.isfinite(cost).all():
        raise ValueError("scores hold NaN or inf; pass finite costs")
    # Extended states: even k = background before step k/2 + 1 (k = 2K: after the last
    # step), odd k = step (k + 1) / 2. best[k] = least cost of a path ending in state k.
    # Plain Python floats over the few states: ~20x faster than NumPy calls on 2K + 1 values
    # (the loop runs once per second of every test video); float64 sums as before.
    num_states = 2 * num_steps + 1
    inf = math.inf
    best = [0.0] + [inf] * (num_states - 1)
    back = []  # back[t][k]: the state before state k at second t
    for row in cost.astype(np.float64).tolist():
        new, came = [0.0] * num_states, list(range(num_states))
        for k in range(num_states):
            prev = best[k - 1] if k >= 1 else inf
            if k % 2 == 0:  # background: stay, or come from the previous state; ties stay
                if prev < best[k]:
                    new[k], came[k] = prev, k - 1
                else:
                    new[k] = best[k]
            else:  # a step lasts one second: from the previous state, or skip the background
                skip = best[k - 2] if k >= 2 else inf
                if prev <= skip and prev < inf:
                    new[k], came[k] = prev + row[k // 2], k - 1
                elif skip < inf:
                    new[k], came[k] = skip + row[k // 2], k - 2
                else:
                    new[k] = inf
        best = new
        back.append(came)
    state = num_states - 1 if best[-1] < best[-2] else num_states - 2
    y = np.zeros((num_seconds, num_steps), dtype=np.uint8)
    for t in range(num_seconds - 1, -1, -1):
        if state % 2 == 1:
            y[t, (state - 1) // 2] = 1
        state = back[t][state]
    return y


def recall(y_true: Mapping[str, Mapping[str, np.ndarray]],
           y_pred: Mapping[str, Mapping[str, np.ndarray]]) -> dict[str, float]:
    """Per-task step recall in percent, counted as the official ``get_recalls``.

    ``y_*[task][video]`` are ``(T, K)`` 0/1 arrays. Over the videos of a task present in both:
    the number of predicted (second, step) cells inside the ground truth, divided by the
    number of steps that occur in the ground truth (a step annotated several times counts
    once). The benchmark number is the mean over tasks.
    """
    out = {}
    for task, truths in y_true.items():
        if task not in y_pred:
            raise ValueError(f"task {task} has ground truth but no predictions")
        matched = total = 0
        for vid in set(truths) & set(y_pred[task]):
            true, pred = np.asarray(truths[vid]), np.asarray(y_pred[task][vid])
            if true.shape != pred.shape:
                raise ValueError(f"task {task}, video {vid}: y_true {true.shape} vs y_pred {pred.shape}")
            total += int((true.sum(axis=0) > 0).sum())
            matched += int((true * pred).sum())
        if total == 0:
            raise ValueError(f"task {task}: no ground-truth step in its scored videos; "
                             "recall is undefined (drop the task and report it)")
        out[task] = 100.0 * matched / total
    return out


def usable_before_split(data: Any, store: Any, skipped: dict[str, int]) -> dict[str, list[str]]:
    """The original code's filter before its seeded split (design §10.5): per primary task, the
    videos with a feature file in ``store`` and an annotation file; the others counted in
    ``skipped`` (``no_features_before_split``, ``no_annotation_before_split``)."""
    usable: dict[str, list[str]] = {}
    for task, vids in data.videos.items():
        for vid in vids:
            if vid not in store:
                count(skipped, "no_features_before_split")
            elif not data.annotation_path(task, vid).is_file():
                count(skipped, "no_annotation_before_split")
            else:
                usable.setdefault(task, []).append(vid)
    return usable


def evaluate_step_localization(
    model: ZeroShotModel,
    data_dir: str | Path,
    *,
    split: str = "official",
    seed: int = 0,
    num_train: int = 30,
    features: FeatureStore | str | Path | None = None,
    batch_size: int = 64,
    device: str | torch.device | None = None,
    out_path: str | Path | None = None,
    progress: bool = True,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Zero-shot CrossTask step localisation: average recall over the 18 primary tasks.

    Args:
        model: anything with ``video_token_states`` and ``encode_texts`` (:class:`videoclip.evaluation.common.ZeroShotModel`).
        data_dir: the data root (``crosstask/`` in the ``crosstask_release`` format,
            ``crosstask/features``).
        split: ``"official"`` or ``"original"`` (module docstring).
        seed, num_train: the random split (30 training videos per task, seed 0).
        features, batch_size (windows per forward pass), device, out_path, progress: as the
            other evaluators.

    Returns:
        ``(results, predictions)``: results hold ``recall`` (mean over tasks, %),
        ``recall_per_task``, the split counts and the skipped videos by reason; predictions
        one row per scored video (steps present, steps matched, the second of each step).
    """
    if split not in ("official", "original"):
        raise ValueError(f"split={split!r}; use 'official' or 'original'")
    data = load_crosstask(data_dir)
    store = open_store(data_dir, "crosstask", features)
    device = resolve_device(model, device)
    skipped: dict[str, int] = {}
    task_vids = usable_before_split(data, store, skipped) if split == "original" else data.videos
    _, test = crosstask_split(task_vids, data.val_videos, num_train=num_train, seed=seed)
    num_test = sum(len(v) for v in test.values())

    step_texts = [(task, step) for task in data.tasks for step in data.tasks[task].steps]
    step_emb = encode_texts(model, [s for _, s in step_texts], batch_size=batch_size,
                            device=device, progress=progress, desc="crosstask steps")
    task_emb, first = {}, 0
    for task, info in data.tasks.items():
        task_emb[task] = step_emb[first:first + len(info.steps)]
        first += len(info.steps)

    todo = []
    for task, vids in test.items():
        num_steps = len(data.tasks[task].steps)
        for vid in vids:
            if vid not in store:
                count(skipped, "no_features")
            elif not data.annotation_path(task, vid).is_file():
                count(skipped, "no_annotation")
            elif store.num_seconds(vid) < num_steps:
                count(skipped, "fewer_seconds_than_steps")
            else:
                todo.append((task, vid))
    inputs = ((key, store.load(key[1]), task_emb[key[0]]) for key in todo)
    y_true: dict[str, dict[str, np.ndarray]] = {}
    y_pred: dict[str, dict[str, np.ndarray]] = {}
    rows = []
    steps_past_end = 0
    for (task, vid), logits in progress_bar(
            windowed_logits(model, inputs, batch_size=batch_size, device=device, mask_cls=True),
            total=len(todo), desc="crosstask videos", enabled=progress):
        num_seconds, num_steps = logits.shape
        pred = align_steps(-torch.log_softmax(logits, dim=1).numpy())
        true = read_step_annotation(data.annotation_path(task, vid), num_seconds, num_steps)
        steps_past_end += _steps_past_end(data.annotation_path(task, vid), num_seconds)
        y_pred.setdefault(task, {})[vid] = pred
        y_true.setdefault(task, {})[vid] = true
        rows.append({"task": task, "video_id": vid, "num_seconds": num_seconds,
                     "num_steps": num_steps, "steps_present": int((true.sum(axis=0) > 0).sum()),
                     "steps_matched": int((true * pred).sum()),
                     "step_seconds": pred.argmax(axis=0).tolist()})
    no_steps = [t for t, videos in y_true.items() if not any(y.any() for y in videos.values())]
    for task in no_steps:
        del y_true[task]
        count(skipped, "tasks_without_ground_truth_steps")
    if not y_true:
        raise ValueError(f"no CrossTask test video could be scored with the features in {store}")
    per_task = recall(y_true, y_pred)
    results = {
        "task": "action step localisation",
        "benchmark": "crosstask",
        "protocol": (
            f"{split}: CrossTask random split (seed {seed}, {num_train} training videos per "
            "task) " + ("over all primary videos minus videos_val.csv; test videos without "
                        "features dropped after the draw" if split == "official" else
                        "drawn after removing videos without features (VideoCLIP code)")
            + "; 32-s windows, 16-s stride, [CLS] masked, log-softmax, official ordered "
              "alignment, official recall"),
        "recall": float(np.mean(list(per_task.values()))),
        "recall_per_task": per_task,
        "num_tasks": len(per_task),
        "num_test_videos": num_test,
        "num_scored": len(rows),
        "annotated_steps_past_end": steps_past_end,
        "skipped": skipped,
        "paper": paper_numbers("crosstask"),
    }
    finish(results, out_path, {"split": split, "seed": seed, "num_train": num_train,
                               "batch_size": batch_size, "data_dir": str(data_dir)})
    return results, pd.DataFrame(rows)


def _steps_past_end(path: Path, num_seconds: int) -> int:
    """Annotated step intervals that start at or after the last feature second (not scorable)."""
    with open(path, encoding="utf-8") as fh:
        return sum(int(float(line.split(",")[1])) >= num_seconds for line in fh if line.strip())
