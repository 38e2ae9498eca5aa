"""The book's figures: rank histograms, label timelines, forest plots.

matplotlib is imported inside each function, never at import time; each returns what it drew on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["forest", "plot_label_timelines", "plot_rank_histogram"]


def plot_rank_histogram(
    ranks: Mapping[str, np.ndarray | Sequence[int]],
    num_candidates: int,
    *,
    ax=None,
    title: str = "",
):
    """Histogram of the 1-based rank of each query's match, one step line per scorer.

    Bins are logarithmic from 1 to ``num_candidates``; the dashed line is what a random ranking
    gives (ranks uniform over 1..N). Returns the axes.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.2))
    edges = np.unique(
        np.geomspace(1, num_candidates + 1, num=min(25, num_candidates + 1)).astype(int)
    )
    if edges[-1] <= num_candidates:
        edges = np.append(edges, num_candidates + 1)
    for name, values in ranks.items():
        values = np.asarray(values)
        if values.min() < 1 or values.max() > num_candidates:
            raise ValueError(f"{name}: ranks must lie in 1..{num_candidates}")
        counts, _ = np.histogram(values, bins=edges)
        ax.stairs(100 * counts / len(values), edges, label=name, linewidth=1.8)
    ax.stairs(
        100 * np.diff(edges) / num_candidates,
        edges,
        color="black",
        linestyle="--",
        label="random ranking",
    )
    ax.set_xscale("log")
    ax.set_xlim(1, num_candidates + 1)
    ax.set_xlabel(f"rank of the matching clip (1 = retrieved first; {num_candidates} candidates)")
    ax.set_ylabel("% of queries")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    return ax


def plot_label_timelines(
    timelines: Sequence[Mapping[str, np.ndarray]],
    *,
    label_names: Mapping[int, str],
    titles: Sequence[str] | None = None,
    point_tracks: Sequence[str] = (),
    max_legend: int = 20,
):
    """Step-coloured strip plots: one panel per video, one strip per track, coloured by label.

    Args:
        timelines: per video, ``{track name: (T,) int labels}`` (0 = background, drawn blank);
            the tracks of one video have the same length ``T`` seconds.
        label_names: label id -> text, for the legend (the labels shown share one palette).
        titles: a title per panel.
        point_tracks: tracks whose labelled seconds are one-second events (e.g. CrossTask's
            aligned steps): drawn as a triangle above the second as well as the bar.
        max_legend: show at most this many labels in the legend.

    Returns:
        The figure.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    if not timelines:
        raise ValueError("no timelines to draw")
    shown = sorted(
        {int(v) for tracks in timelines for y in tracks.values() for v in np.unique(y) if v != 0}
    )
    missing = [v for v in shown if v not in label_names]
    if missing:
        raise KeyError(f"labels {missing[:5]} have no name in label_names")
    size = 10 if len(shown) <= 10 else 20  # tab10's hues are distinct; tab20 pairs light/dark ones
    palette = plt.get_cmap(f"tab{size}")
    colour = {label: palette(i % size) for i, label in enumerate(shown)}
    fig, axes = plt.subplots(
        len(timelines),
        1,
        squeeze=False,
        figsize=(12, 0.5 + sum(0.45 * len(t) + 0.5 for t in timelines)),
        gridspec_kw={"height_ratios": [len(t) for t in timelines]},
    )
    for i, (ax, tracks) in enumerate(zip(axes[:, 0], timelines)):
        lengths = {len(y) for y in tracks.values()}
        if len(lengths) != 1:
            raise ValueError(f"timeline {i}: tracks differ in length ({sorted(lengths)} seconds)")
        for row, (name, y) in enumerate(tracks.items()):
            y = np.asarray(y)
            change = np.flatnonzero(np.diff(y)) + 1
            for start, end in zip(np.r_[0, change], np.r_[change, len(y)]):
                if y[start] != 0:
                    ax.broken_barh(
                        [(start, end - start)], (row - 0.35, 0.7), color=colour[int(y[start])]
                    )
            if name in point_tracks:
                seconds = np.flatnonzero(y)
                ax.scatter(
                    seconds + 0.5,
                    np.full(len(seconds), row - 0.45),
                    marker="v",
                    s=30,
                    c=[colour[int(y[s])] for s in seconds],
                    edgecolors="black",
                    linewidths=0.5,
                    zorder=3,
                )
        ax.set_yticks(range(len(tracks)), list(tracks))
        ax.set_ylim(len(tracks) - 0.4, -0.7)
        ax.set_xlim(0, lengths.pop())
        if titles is not None:
            ax.set_title(titles[i], fontsize=9, loc="left")
    axes[-1, 0].set_xlabel("seconds (blank: background / Outside)")
    handles = [Patch(color=colour[v], label=str(label_names[v])[:40]) for v in shown[:max_legend]]
    fig.legend(
        handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7, frameon=False
    )
    fig.tight_layout()
    return fig


def forest(
    ax,
    means: Sequence[float],
    lows: Sequence[float],
    highs: Sequence[float],
    per_seed: Sequence[Sequence[float]],
    *,
    interval_label: str,
    seed_label: str,
    seed_offset: float = 0.15,
    color: str | None = None,
) -> np.ndarray:
    """One row per item: its mean with an interval (error bar), and each seed's value (grey dots,
    ``seed_offset`` below the row). A NaN interval (one seed) draws no bar. Returns the rows' y."""
    means, lows, highs = (np.asarray(v, dtype=float) for v in (means, lows, highs))
    y = np.arange(len(means))
    err = np.vstack([means - lows, highs - means])
    ax.errorbar(
        means,
        y,
        xerr=np.nan_to_num(err),
        fmt="o",
        capsize=3,
        label=interval_label,
        **({"color": color} if color else {}),
    )
    for i, values in enumerate(per_seed):
        ax.scatter(
            values,
            np.full(len(values), i + seed_offset),
            s=12,
            color="grey",
            alpha=0.7,
            label=seed_label if i == 0 else None,
        )
    return y
