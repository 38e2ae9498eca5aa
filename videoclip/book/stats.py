"""Small statistics the book's chapters share: bootstrap intervals, how alike the videos of a
group are, nearest-neighbour label precision, and a 2-D PCA map.

* :func:`bootstrap_ci` / :func:`bootstrap_difference` — percentile bootstrap intervals of a
  (weighted) mean, resampling whole rows (a row is a cluster: a group of videos, a seed, a video).
* :func:`group_pair_stats` — per group of videos (Paper: §3.4, Algorithm 1 line 4): its
  same-task pairs and the mean cosine similarity of its video vectors over distinct pairs.
* :func:`neighbour_precision` — the share of each video's nearest other videos that share its
  label (how task-coherent an embedding's neighbourhoods are; design §5).
* :func:`pca` — principal components by an SVD of the centred vectors (no scikit-learn).

Plain numpy and pandas; nothing here plots.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd


def _check_level(level: float, num_boot: int) -> None:
    if not 0 < level < 1:
        raise ValueError(f"level={level} must be in (0, 1), e.g. 0.95")
    if num_boot < 1:
        raise ValueError(f"num_boot={num_boot} must be >= 1")


def _as_rows(values: Sequence[float] | np.ndarray, weights: Sequence[float] | np.ndarray | None,
             what: str) -> tuple[np.ndarray, np.ndarray]:
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or len(values) == 0:
        raise ValueError(f"{what}: expected a non-empty 1-D sequence of values, got shape {values.shape}")
    weights = np.ones_like(values) if weights is None else np.asarray(weights, dtype=np.float64)
    if weights.shape != values.shape:
        raise ValueError(f"{what}: {len(weights)} weights for {len(values)} values")
    bad = np.where(~np.isfinite(values) | ~np.isfinite(weights) | (weights < 0))[0]
    if len(bad):
        raise ValueError(f"{what}: rows {bad[:5].tolist()} have a non-finite value or a non-finite "
                         "or negative weight; drop or fix them first")
    if weights.sum() <= 0:
        raise ValueError(f"{what}: the weights sum to {weights.sum()}; at least one must be positive")
    return values, weights


def _weighted_means(values: np.ndarray, weights: np.ndarray, num_boot: int,
                    rng: np.random.Generator) -> np.ndarray:
    """(num_boot,) weighted means of rows resampled with replacement (NaN where all weights are 0)."""
    idx = rng.integers(0, len(values), (num_boot, len(values)))
    num = (values[idx] * weights[idx]).sum(axis=1)
    den = weights[idx].sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def bootstrap_ci(values: Sequence[float] | np.ndarray, *,
                 weights: Sequence[float] | np.ndarray | None = None, num_boot: int = 2000,
                 level: float = 0.95, seed: int = 0) -> dict[str, float]:
    """A (weighted) mean and its percentile bootstrap interval.

    The estimate is ``sum(w * v) / sum(w)`` (the plain mean without ``weights``). Rows are
    resampled with replacement, so a row should be an independent unit: a group of videos (with
    ``values`` its same-task share and ``weights`` its number of pairs, the estimate is the
    pooled share of all pairs), a seed, a video.

    Args:
        values: (n,) finite values.
        weights: (n,) non-negative weights, or None.
        num_boot: bootstrap draws.
        level: coverage of the interval (0.95: the 2.5th and 97.5th percentiles).
        seed: the resampling's random seed.

    Returns:
        ``{"estimate", "ci_low", "ci_high", "n"}`` (a single row gives a zero-width interval).
    """
    _check_level(level, num_boot)
    values, weights = _as_rows(values, weights, "bootstrap_ci")
    draws = _weighted_means(values, weights, num_boot, np.random.default_rng(seed))
    low, high = np.nanpercentile(draws, [50 * (1 - level), 50 * (1 + level)])
    return {"estimate": float((values * weights).sum() / weights.sum()), "ci_low": float(low),
            "ci_high": float(high), "n": len(values)}


def bootstrap_difference(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, *,
                         weights_a: Sequence[float] | np.ndarray | None = None,
                         weights_b: Sequence[float] | np.ndarray | None = None, num_boot: int = 2000,
                         level: float = 0.95, seed: int = 0) -> dict[str, float]:
    """The (weighted) mean of ``a`` minus that of ``b``, with a percentile bootstrap interval
    that resamples the rows of ``a`` and of ``b`` independently (two independent samples, e.g.
    clustered groups and random groups; for paired rows bootstrap the per-row differences with
    :func:`bootstrap_ci` instead).

    Returns:
        ``{"estimate", "ci_low", "ci_high", "n_a", "n_b"}``.
    """
    _check_level(level, num_boot)
    a, weights_a = _as_rows(a, weights_a, "bootstrap_difference (a)")
    b, weights_b = _as_rows(b, weights_b, "bootstrap_difference (b)")
    rng = np.random.default_rng(seed)
    draws = _weighted_means(a, weights_a, num_boot, rng) - _weighted_means(b, weights_b, num_boot, rng)
    low, high = np.nanpercentile(draws, [50 * (1 - level), 50 * (1 + level)])
    estimate = (a * weights_a).sum() / weights_a.sum() - (b * weights_b).sum() / weights_b.sum()
    return {"estimate": float(estimate), "ci_low": float(low), "ci_high": float(high),
            "n_a": len(a), "n_b": len(b)}


def group_pair_stats(groups: Sequence[np.ndarray], vectors: np.ndarray,
                     labels: Sequence) -> pd.DataFrame:
    """How alike the videos of each group are. Paper: §3.4 (a cluster's videos should be
    "mutually closer to each other"); design §5.

    Over the unordered pairs of *distinct* videos of a group (repeated indices count once, as
    in :func:`videoclip.retrieval.group_stats`):

    Args:
        groups: arrays of row indices into ``vectors`` and ``labels``.
        vectors: (N, D) video vectors (``videoclip.retrieval.embed_videos``).
        labels: (N,) one label per video (e.g. the HowTo100M task id).

    Returns:
        One row per group: ``group``, ``size`` (distinct videos), ``pairs``, ``same_task_pairs``,
        ``same_task_share`` (NaN for a group of one) and ``mean_cosine`` (the mean cosine
        similarity of its vectors' distinct pairs; NaN for a group of one).
    """
    vectors = np.asarray(vectors, dtype=np.float64)
    labels_arr = np.asarray(labels, dtype=object)
    if vectors.ndim != 2 or len(vectors) != len(labels_arr):
        raise ValueError(f"group_pair_stats: expected (N, D) vectors and N labels, got "
                         f"{vectors.shape} and {len(labels_arr)}")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    if (norms == 0).any():
        raise ValueError(f"group_pair_stats: rows {np.where(norms[:, 0] == 0)[0][:5].tolist()} are zero "
                         "vectors, which have no cosine similarity")
    unit = vectors / norms
    _, codes = np.unique(labels_arr.astype(str), return_inverse=True)
    rows = []
    for index, group in enumerate(groups):
        members = np.unique(np.asarray(group, dtype=np.int64))
        if len(members) and (members.min() < 0 or members.max() >= len(vectors)):
            raise ValueError(f"group_pair_stats: group {index} holds indices outside [0, {len(vectors)})")
        size = len(members)
        pairs = size * (size - 1) // 2
        counts = np.bincount(codes[members]) if size else np.zeros(0, dtype=np.int64)
        same = int((counts * (counts - 1)).sum() // 2)
        gram = unit[members] @ unit[members].T  # (size, size)
        cosine_sum = (gram.sum() - np.trace(gram)) / 2
        rows.append({"group": index, "size": size, "pairs": pairs, "same_task_pairs": same,
                     "same_task_share": same / pairs if pairs else np.nan,
                     "mean_cosine": cosine_sum / pairs if pairs else np.nan})
    return pd.DataFrame(rows, columns=["group", "size", "pairs", "same_task_pairs", "same_task_share",
                                       "mean_cosine"])


def neighbour_precision(vectors: np.ndarray, labels: Sequence, *, k: int = 10,
                        metric: Literal["l2", "ip"] = "l2") -> np.ndarray:
    """Per video, the share of its ``k`` nearest *other* videos with the same label.

    Nearest by squared L2 distance (the retrieval index's metric, design §5) or by inner product,
    by exact search (``videoclip.retrieval.build_retriever(index="flat")``).

    Args:
        vectors: (N, D) video vectors.
        labels: (N,) one label per video.
        k: neighbours per video (1 <= k < N).

    Returns:
        (N,) float64 shares in [0, 1]; their mean is the embedding's precision@k.
    """
    from videoclip.retrieval import build_retriever

    labels_arr = np.asarray(labels, dtype=object).astype(str)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if len(vectors) != len(labels_arr):
        raise ValueError(f"neighbour_precision: {len(vectors)} vectors for {len(labels_arr)} labels")
    if not 1 <= k < len(vectors):
        raise ValueError(f"neighbour_precision: k={k} must be in [1, {len(vectors) - 1}] (N - 1)")
    retriever = build_retriever(vectors, index="flat", metric=metric)
    _, positions = retriever.search(vectors, k + 1)  # + 1: each video usually finds itself first
    shares = np.empty(len(vectors))
    for query, found in enumerate(positions):
        others = found[(found >= 0) & (found != query)][:k]
        shares[query] = (labels_arr[others] == labels_arr[query]).mean()
    return shares


def pca(vectors: np.ndarray, num_components: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Project vectors on their first principal components (an SVD of the centred matrix).

    Each component's sign is fixed so that its loading of largest magnitude is positive, which
    makes the map deterministic.

    Args:
        vectors: (N, D) with N >= 2.
        num_components: K <= min(N, D).

    Returns:
        coords (N, K) float64, and the share of the total variance each component explains (K,).
    """
    vectors = np.asarray(vectors, dtype=np.float64)
    if vectors.ndim != 2 or len(vectors) < 2:
        raise ValueError(f"pca: expected (N, D) vectors with N >= 2, got shape {vectors.shape}")
    if not 1 <= num_components <= min(vectors.shape):
        raise ValueError(f"pca: num_components={num_components} must be in [1, {min(vectors.shape)}]")
    centred = vectors - vectors.mean(axis=0)
    _, singular, components = np.linalg.svd(centred, full_matrices=False)  # components (r, D)
    components = components[:num_components]
    signs = np.sign(components[np.arange(num_components), np.abs(components).argmax(axis=1)])
    components = components * signs[:, None]
    variance = singular**2
    total = variance.sum()
    explained = variance[:num_components] / total if total > 0 else np.zeros(num_components)
    return centred @ components.T, explained


def mean_ci(values: Sequence[float] | np.ndarray, level: float = 0.95) -> dict[str, float]:
    """The mean of a few independent values (e.g. one metric over seeds) and its Student-t interval.

    ``mean ± t_{(1+level)/2, n-1} · sd / √n`` with the sample standard deviation ``sd`` (ddof 1):
    the usual interval for a handful of training seeds, where a bootstrap of 3–5 values would be
    too narrow. Use it on per-seed *differences* for a paired comparison.

    Args:
        values: (n,) finite values, n >= 1.
        level: coverage of the interval.

    Returns:
        ``{"mean", "ci_low", "ci_high", "sd", "n"}``; with a single value ``sd`` and the bounds are
        NaN (one seed gives no interval).
    """
    from scipy.stats import t as student_t

    if not 0 < level < 1:
        raise ValueError(f"level={level} must be in (0, 1), e.g. 0.95")
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or len(values) == 0 or not np.isfinite(values).all():
        raise ValueError(f"mean_ci: expected a non-empty 1-D sequence of finite values, got {values!r}")
    n, mean = len(values), float(values.mean())
    if n == 1:
        return {"mean": mean, "ci_low": float("nan"), "ci_high": float("nan"), "sd": float("nan"), "n": 1}
    sd = float(values.std(ddof=1))
    half = float(student_t.ppf((1 + level) / 2, n - 1)) * sd / np.sqrt(n)
    return {"mean": mean, "ci_low": mean - half, "ci_high": mean + half, "sd": sd, "n": n}


def detectable_difference(n: int, sd: float = 1.0, *, level: float = 0.95, power: float = 0.8) -> float:
    """The smallest true mean difference that :func:`mean_ci` over ``n`` paired values of standard
    deviation ``sd`` puts above 0 with probability ``power`` (two-sided ``level``), approximately
    ``(t_{(1+level)/2, n-1} + t_{power, n-1}) · sd / √n``; in units of ``sd`` with the default.
    Needs n >= 2 (one value gives no interval)."""
    from scipy.stats import t as student_t

    if n < 2 or not 0 < level < 1 or not 0 < power < 1:
        raise ValueError(f"detectable_difference(n={n}, level={level}, power={power}): need n >= 2 and "
                         "level, power in (0, 1)")
    return float((student_t.ppf((1 + level) / 2, n - 1) + student_t.ppf(power, n - 1)) * sd / np.sqrt(n))


def interval_side(low: float, high: float, *, ref: float = 0.0) -> str:
    """Where the interval ``[low, high]`` lies relative to ``ref``: ``"above"`` (it excludes ``ref``
    from above), ``"below"``, ``"includes"``, or ``"none"`` when there is no interval (NaN)."""
    if np.isnan(low) or np.isnan(high):
        return "none"
    return "above" if low > ref else "below" if high < ref else "includes"
