"""Qualitative text→video retrieval: seeded examples of hits and misses, and what the misses are.

Paper: §5.7, Table 6 (queries of YouCook2 beside the text of the top-1 retrieved clip). Works on the
``predictions`` table of :func:`videoclip.evaluation.evaluate_retrieval` (one row per query:
``item_id``, ``video_id``, ``text``, ``rank`` of its own clip, ``top1_item_id``, ``top1_text``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from videoclip.text import text_concepts

__all__ = ["annotate", "error_breakdown", "pick_examples"]

_NEEDED = ("item_id", "video_id", "text", "rank", "top1_item_id", "top1_text")


def annotate(predictions: pd.DataFrame) -> pd.DataFrame:
    """Add to each query: ``correct`` (its own clip ranks first), ``top1_video_id``,
    ``same_video`` (the top-1 clip is another segment of the query's video), ``same_text`` (the
    top-1 clip's text equals the query: the two cannot be told apart from the text) and
    ``shared_concepts`` (content-word stems the query shares with the top-1 text,
    :func:`videoclip.sim.taxonomy.text_concepts`)."""
    missing = [c for c in _NEEDED if c not in predictions.columns]
    if missing:
        raise KeyError(f"predictions lack {missing}; pass the table evaluate_retrieval returns")
    video_of = dict(zip(predictions.item_id, predictions.video_id))
    out = predictions.copy()
    out["correct"] = out["rank"] == 1
    out["top1_video_id"] = out.top1_item_id.map(video_of)
    out["same_video"] = ~out.correct & (out.top1_video_id == out.video_id)
    out["same_text"] = ~out.correct & (out.top1_text.str.strip().str.lower() == out.text.str.strip().str.lower())
    out["shared_concepts"] = [sorted(set(text_concepts(q)) & set(text_concepts(t)))
                              for q, t in zip(out.text, out.top1_text)]
    return out


def pick_examples(predictions: pd.DataFrame, *, num_success: int = 4, num_failure: int = 6,
                  seed: int = 0) -> tuple[pd.DataFrame, dict[str, int]]:
    """A seeded draw of queries whose clip ranks first (successes) and of the others (failures).

    Returns:
        ``(examples, counts)``: ``examples`` (:func:`annotate`'s columns; successes first, then
        failures by rank) and ``counts`` — ``successes``/``failures`` available and ``shown`` of
        each (fewer than asked when fewer exist).
    """
    if num_success < 0 or num_failure < 0:
        raise ValueError(f"num_success={num_success}, num_failure={num_failure} must be >= 0")
    table = annotate(predictions)
    rng = np.random.default_rng(seed)
    parts, counts = [], {}
    for name, mask, wanted in (("successes", table.correct, num_success),
                               ("failures", ~table.correct, num_failure)):
        pool = np.flatnonzero(mask.to_numpy())
        chosen = rng.choice(pool, size=min(wanted, len(pool)), replace=False) if len(pool) else pool
        parts.append(table.iloc[np.sort(chosen)].sort_values("rank", kind="stable"))
        counts[name], counts[f"{name}_shown"] = len(pool), len(chosen)
    return pd.concat(parts, ignore_index=True), counts


def error_breakdown(predictions: pd.DataFrame) -> dict[str, Any]:
    """What the failures (own clip not first) retrieved instead, as counts and percent of failures.

    Categories, checked in this order (each failure counts once): ``same_text`` (the top-1 clip
    has the query's very text), ``same_video`` (another segment of the query's video),
    ``shared_concept`` (another video's clip whose text shares a content word), ``unrelated``.
    """
    table = annotate(predictions)
    failures = table[~table.correct]
    category = np.select([failures.same_text, failures.same_video, failures.shared_concepts.str.len() > 0],
                         ["same_text", "same_video", "shared_concept"], "unrelated")
    counts = {name: int((category == name).sum())
              for name in ("same_text", "same_video", "shared_concept", "unrelated")}
    total = len(failures)
    return {"queries": len(table), "failures": total, **counts,
            **{f"{k}_pct": 100.0 * v / total if total else float("nan") for k, v in counts.items()}}
