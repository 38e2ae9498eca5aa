"""Why COIN frame accuracy sits on the all-background baseline: duplicate labels and γ.

COIN's zero-shot protocol (paper §4, SPEC §7) labels a second *Outside* when its best logit is at
most γ, the largest dot product between two **different label ids'** embeddings. Two mechanisms
push every second under γ:

* **Duplicate label strings.** The real COIN taxonomy gives one text to several action ids
  ("remove the tire" is step 261 of ChangeCarTire and step 234 of ChangeBikeTires). Identical
  texts embed identically, so γ ≥ max ‖z_d‖² over duplicated labels d, for *any* text encoder;
  with unit-norm embeddings γ = 1, above every cosine a second can reach.
* **Label-space vs video-text similarity.** Labels that share words ("remove the tire", "remove
  the wheel") are closer to each other than a noisy second is to its own label, so γ can exceed
  every per-second logit even without duplicates.

:func:`duplicate_labels` finds the first, :func:`gamma_diagnosis` measures both on a label
embedding, :func:`step_logit_summary` compares the per-second logits with γ and
:func:`frame_accuracy_at` rescores the seconds under another threshold (γ over distinct texts, a
diagnostic, not the protocol). Design §13.3.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from videoclip.evaluation.segmentation import OUTSIDE, frame_accuracy, outside_threshold

__all__ = ["duplicate_labels", "frame_accuracy_at", "gamma_diagnosis", "read_taxonomy_labels",
           "step_logit_summary"]

_TAXONOMY_COLUMNS = ("Target Label", "Action Id", "Action Label")


def read_taxonomy_labels(path: str | Path) -> pd.DataFrame:
    """The steps of ``coin_taxonomy_target_action_mapping.csv``: ``action_id``, ``label``, ``target``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found; pass COIN's coin_taxonomy_target_action_mapping.csv")
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in _TAXONOMY_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}, line 1: missing columns {missing}; expected the header "
                             "'Target Id,Target Label,Action Id,Action Label'")
        rows = [{"action_id": int(r["Action Id"]), "label": r["Action Label"],
                 "target": r["Target Label"]} for r in reader]
    return pd.DataFrame(rows, columns=["action_id", "label", "target"])


def duplicate_labels(labels: Mapping[int, str], targets: Mapping[int, str] | None = None) -> pd.DataFrame:
    """Label texts carried by two or more ids: one row per text with ``label``, ``ids``
    (sorted), ``count`` and, given ``targets`` (id → task), the ``targets``; most ids first."""
    ids_of: dict[str, list[int]] = {}
    for label_id, text in labels.items():
        ids_of.setdefault(text, []).append(int(label_id))
    rows = [{"label": text, "ids": sorted(ids), "count": len(ids),
             **({"targets": [targets[i] for i in sorted(ids)]} if targets is not None else {})}
            for text, ids in ids_of.items() if len(ids) > 1]
    columns = ["label", "ids", "count"] + (["targets"] if targets is not None else [])
    table = pd.DataFrame(rows, columns=columns)
    return table.sort_values(["count", "label"], ascending=[False, True], ignore_index=True)


def gamma_diagnosis(label_emb: torch.Tensor | np.ndarray, label_ids: Sequence[int],
                    label_texts: Sequence[str]) -> dict[str, object]:
    """γ of a label embedding ``(N, D)`` and what sets it.

    Returns ``gamma`` (all ids, the protocol's), ``gamma_distinct`` (one id per distinct text),
    ``pair`` (the two ids and texts attaining γ), ``pair_identical`` (their texts are equal),
    ``duplicate_floor`` (max ‖z‖² over duplicated texts, the γ any encoder gets from them; NaN
    when no text repeats), ``num_labels`` and ``num_distinct``.
    """
    emb = torch.as_tensor(label_emb, dtype=torch.float64)
    if emb.ndim != 2 or len(emb) != len(label_ids) or len(label_ids) != len(label_texts):
        raise ValueError(f"label_emb {tuple(emb.shape)}, {len(label_ids)} ids and {len(label_texts)} "
                         "texts: pass one (D,) row per label id and text")
    sim = emb @ emb.T
    sim.fill_diagonal_(-np.inf)
    a, b = divmod(int(sim.argmax()), len(emb))
    first = list(dict.fromkeys(label_texts))
    keep = [list(label_texts).index(text) for text in first]
    repeated = {t for t in first if list(label_texts).count(t) > 1}
    floor = max((float(emb[i] @ emb[i]) for i, t in enumerate(label_texts) if t in repeated),
                default=float("nan"))
    return {"gamma": outside_threshold(emb),
            "gamma_distinct": outside_threshold(emb[keep]) if len(keep) >= 2 else float("nan"),
            "pair": (int(label_ids[a]), int(label_ids[b]), label_texts[a], label_texts[b]),
            "pair_identical": label_texts[a] == label_texts[b],
            "duplicate_floor": floor, "num_labels": len(label_ids), "num_distinct": len(first)}


def step_logit_summary(predictions: pd.DataFrame, gamma: float) -> dict[str, float]:
    """The evaluator's per-second best logits (``predictions`` of
    :func:`videoclip.evaluation.evaluate_segmentation`: ``true``, ``max_logit``) against γ:
    quantiles on step seconds and the percent of step / background seconds above γ."""
    missing = {"true", "max_logit"} - set(predictions.columns)
    if missing:
        raise KeyError(f"predictions lack {sorted(missing)}; pass evaluate_segmentation's second output")
    step = predictions["true"].to_numpy() != OUTSIDE
    logits = predictions["max_logit"].to_numpy(dtype=np.float64)
    if not step.any():
        raise ValueError("no step second in the predictions: nothing to compare with γ")
    q = np.quantile(logits[step], [0.5, 0.9, 0.99, 1.0])
    background = logits[~step]
    return {"gamma": float(gamma), "step_median": float(q[0]), "step_q90": float(q[1]),
            "step_q99": float(q[2]), "step_max": float(q[3]),
            "step_above_gamma_%": float(100 * np.mean(logits[step] > gamma)),
            "background_above_gamma_%": float(100 * np.mean(background > gamma)) if len(background)
            else float("nan")}


def frame_accuracy_at(predictions: pd.DataFrame, gamma: float) -> float:
    """Frame accuracy of the evaluator's seconds (``true``, ``best``, ``max_logit``) had the
    Outside threshold been ``gamma``: the arg-max label where its logit exceeds it, else Outside."""
    missing = {"true", "best", "max_logit"} - set(predictions.columns)
    if missing:
        raise KeyError(f"predictions lack {sorted(missing)}; pass evaluate_segmentation's second output")
    pred = np.where(predictions["max_logit"].to_numpy() > gamma, predictions["best"].to_numpy(), OUTSIDE)
    return frame_accuracy(pred, predictions["true"].to_numpy())
