"""Metrics shared by the zero-shot evaluators (design §7). All percentages are 0–100."""

from __future__ import annotations

import numpy as np

__all__ = ["accuracy", "pessimistic_ranks", "retrieval_metrics"]


def _as_finite_matrix(sim: object) -> np.ndarray:
    sim = np.asarray(sim, dtype=np.float64)
    if sim.ndim != 2:
        raise ValueError(f"sim has shape {sim.shape}; pass a (num_texts, num_videos) matrix")
    if not np.isfinite(sim).all():
        raise ValueError("sim holds NaN or inf; check the embeddings (all finite?)")
    return sim


def pessimistic_ranks(sim: object) -> np.ndarray:
    """1-based rank of each text's match, ``(num_texts,)``: text ``i`` matches video ``i``.

    Ties are broken **pessimistically**: a video that scores exactly as high as the match
    ranks before it, so ``rank_i = #{j : sim[i, j] >= sim[i, i]}``. (The original code looked
    the match's score up in the sorted row, which counts ties optimistically and, with tied
    scores, returns more than one rank per text.) A constant scorer thus ranks every match
    last instead of first.
    """
    sim = _as_finite_matrix(sim)
    num_texts, num_videos = sim.shape
    if num_texts == 0 or num_texts > num_videos:
        raise ValueError(
            f"sim is {num_texts}x{num_videos}; need 1 <= num_texts <= num_videos with text i's "
            "match at video i")
    matched = sim[np.arange(num_texts), np.arange(num_texts)]
    return (sim >= matched[:, None]).sum(axis=1)


def retrieval_metrics(sim: object) -> dict[str, float]:
    """Text→video retrieval metrics of a ``(num_texts, num_videos)`` score matrix.

    Text ``i``'s match is video ``i``; ties are broken pessimistically (:func:`pessimistic_ranks`).

    Returns:
        ``R@1``, ``R@5``, ``R@10`` (percent of texts whose match ranks within k), ``MdR``
        (median 1-based rank), ``MnR`` (mean rank), ``num_texts``, ``num_videos``.
    """
    ranks = pessimistic_ranks(sim)
    out = {f"R@{k}": float(100.0 * np.mean(ranks <= k)) for k in (1, 5, 10)}
    out["MdR"] = float(np.median(ranks))
    out["MnR"] = float(np.mean(ranks))
    out["num_texts"], out["num_videos"] = int(ranks.shape[0]), int(np.asarray(sim).shape[1])
    return out


def accuracy(pred: object, true: object) -> float:
    """Percent of positions where ``pred == true`` (1-D arrays of equal, non-zero length)."""
    pred, true = np.asarray(pred), np.asarray(true)
    if pred.shape != true.shape or pred.ndim != 1 or pred.size == 0:
        raise ValueError(f"pred {pred.shape} and true {true.shape} must be equal-length 1-D arrays")
    return float(100.0 * np.mean(pred == true))
