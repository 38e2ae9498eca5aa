"""What the evaluation chapters of the book share: reference rows, verdicts, result files, plots.

The zero-shot chapters (text→video retrieval, VideoQA, action segmentation, step localisation)
each print the book's pre-trained model beside four references — the same architecture
*before* pre-training, chance, the simulated world's concept oracle and the paper's number —
and say in a sentence computed from the numbers where the model stands. This module holds
those pieces so that every chapter computes them the same way:

* :func:`untrained_model` — the reference "same architecture, no pre-training" model;
* :func:`reference_levels` — chance and oracle levels (:mod:`videoclip.sim.levels`);
* :func:`paper_numbers`, :func:`comparison_table` — the table of a benchmark;
* :func:`task_recall_ci`, :func:`standing` — CrossTask's interval and a plain-words verdict
  (other intervals: :func:`videoclip.book.stats.bootstrap_ci`);
* :func:`answer_margins` — per-question margins of a multiple-choice scorer;
* :func:`benchmark_record`, :func:`write_chapter_results` — ``work_dir/results/<chapter>.json``;
* :func:`plot_rank_histogram`, :func:`plot_label_timelines` — figures (matplotlib is imported
  inside them, never at import time).

Result file schema (read by the scorecard)::

    {"results": {"chapter": "05_text_video_retrieval",
                 "benchmarks": {"youcook2": {"headline": "R@1", "protocol": "...",
                                             "model": {...}, "untrained": {...},
                                             "chance": {...}, "oracle": {...} | null,
                                             "paper": {"R@1": 22.7, ...}, "variants": {...}}}},
     "config": {...}, "provenance": {...}}

``model`` and ``untrained`` are the evaluators' results dicts (:mod:`videoclip.evaluation`),
``chance`` / ``oracle`` the world-level dicts of that benchmark, ``variants`` further results of
the model under other protocols (e.g. the original code's), keyed by protocol name.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from videoclip.paper import paper_numbers, paper_table

__all__ = [
    "answer_margins",
    "benchmark_record",
    "comparison_table",
    "given_model",
    "model_rows",
    "paper_numbers",
    "plot_label_timelines",
    "plot_rank_histogram",
    "reference_levels",
    "standing",
    "task_recall_ci",
    "untrained_model",
    "write_chapter_results",
]

# How chapters 05-08 label their two scorers in tables (see model_rows for a given model).
MODEL_ROWS = {"model": "VideoCLIP (pre-trained here)", "untrained": "untrained (same architecture)"}


def model_rows(model_dir: str) -> dict[str, str]:
    """The scorers' table labels: :data:`MODEL_ROWS`, or "given model" when ``model_dir`` is set."""
    return {**MODEL_ROWS, "model": "VideoCLIP (given model)"} if model_dir else dict(MODEL_ROWS)


def given_model(model_dir: str) -> Path | None:
    """A chapter's ``model_dir`` parameter: ``""`` → ``None`` (pre-train), else the saved model it
    names (``$VARS`` expanded; the released profile passes ``$VIDEOCLIP_MODEL``, ``make ... MODEL=``)."""
    if not model_dir:
        return None
    path = Path(os.path.expandvars(model_dir).strip())
    if str(path).startswith("$") or not str(path).strip():
        raise FileNotFoundError(f"model_dir={model_dir!r} is not set: name the converted model, e.g. "
                                "make book PROFILE=released MODEL=converted/")
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"model_dir={model_dir!r} ({path}) holds no saved model (config.json); "
                                "convert the released checkpoint first: "
                                "videoclip convert checkpoint_best.pt converted/")
    return path.resolve()


class Chapter(NamedTuple):
    """What every zero-shot chapter (05-08) starts from: the data, the book's model and references
    (a tuple, so a notebook unpacks it in one line)."""

    root: Path
    simulated: bool
    run_dir: Path
    device: str
    model: Any
    untrained: Any
    chance: dict
    oracle: dict | None


def setup_chapter(*, data_root: str, work_dir: str, world_preset: str, world_seed: int,
                  real_data_dir: str, pretrain_preset: str, device: str, seed: int,
                  model_dir: str = "") -> Chapter:
    """Resolve the data root, load (or train) the book's model and the untrained reference, compute
    chance/oracle levels, and print where each came from (the notebooks' shared first cell).

    With ``model_dir`` (:func:`given_model`) that model is evaluated instead and nothing is
    pre-trained; ``run_dir`` is then the model's directory."""
    import torch

    from videoclip.book.workspace import ensure_pretrained, resolve_data_root
    from videoclip.model import VideoCLIP
    from videoclip.sim.truth import has_world_truth

    device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
    root = resolve_data_root(data_root, work_dir=work_dir, world_preset=world_preset,
                             world_seed=world_seed, real_data=real_data_dir)
    simulated = has_world_truth(root)
    given = given_model(model_dir)
    run_dir = given or ensure_pretrained(work_dir, root, preset=pretrain_preset)
    model = VideoCLIP.from_pretrained(given or run_dir / "final").to(device)
    untrained = untrained_model(pretrain_preset, seed=seed).to(device)
    chance, oracle = reference_levels(root, seed=world_seed, cache_dir=Path(work_dir) / "levels")
    print(f"data root: {root}")
    print(f"given model: {given} (not pre-trained here)" if given else
          f"pre-trained model: {run_dir / 'final'} (preset {Path(pretrain_preset).name})")
    print("These numbers come from a SIMULATED world: they test the mechanisms, not the paper's values."
          if simulated else "Real data root: no oracle row (real data has no ground-truth concepts).")
    return Chapter(root, simulated, run_dir, device, model, untrained, chance, oracle)


def untrained_model(pretrain_preset: str | Path, *, seed: int = 0):
    """The book's architecture *before* pre-training: the preset's model settings, fresh weights.

    Both towers start from the preset's backbone (SPEC §1) and the video MLP is newly drawn
    (seeded with ``seed``), exactly as pre-training starts; the reference row "untrained" of
    every zero-shot table. ``pretrain_preset`` is a ``params/pretrain/*.yaml`` file.
    """
    import torch

    from videoclip.train import PretrainConfig, build_model

    torch.manual_seed(seed)
    return build_model(PretrainConfig.from_yaml(pretrain_preset).model).eval()


def reference_levels(data_root: str | Path, *, seed: int = 0, cache_dir: str | Path | None = None
                     ) -> tuple[dict[str, dict], dict[str, dict] | None]:
    """``(chance, oracle)`` levels of every benchmark of a data root, in percent.

    ``oracle`` is ``None`` for a data root without ground truth (real data): only a simulated
    world knows its concepts. See :mod:`videoclip.sim.levels` for both definitions.

    With ``cache_dir`` the chance levels are computed once per data root, seed, feature
    directories (their modification times) and levels code, and read back after: CrossTask's
    alone is five runs of the evaluator over every test video (minutes at the real size).
    """
    import hashlib
    import json

    from videoclip import sim
    from videoclip._io import atomic_write_json
    from videoclip.book.workspace import settings_key
    from videoclip.sim.levels import chance_levels, oracle_levels
    from videoclip.sim.truth import has_world_truth

    root = Path(data_root).resolve()
    oracle = oracle_levels(root) if has_world_truth(root) else None
    if cache_dir is None:
        return chance_levels(root, seed=seed), oracle
    code = hashlib.sha256((Path(sim.__file__).parent / "levels.py").read_bytes()).hexdigest()
    features = {str(p): p.stat().st_mtime_ns for p in sorted(root.glob("*/features"))}
    key = settings_key({"root": str(root), "seed": seed, "features": features, "code": code})
    cache = Path(cache_dir) / f"chance-{key}.json"
    if cache.is_file():
        return json.loads(cache.read_text()), oracle
    chance = chance_levels(root, seed=seed)
    atomic_write_json(cache, chance, default=float)
    return chance, oracle


def comparison_table(rows: Mapping[str, Mapping[str, Any] | None], metrics: Sequence[str], *,
                     benchmark: str) -> pd.DataFrame:
    """One benchmark's table: a row per scorer (``None`` rows left out) and the paper's row last.

    Args:
        rows: ``{row name: {metric: value}}`` in display order (e.g. the model's results dict,
            the untrained model's, chance, oracle); a missing metric shows as NaN.
        metrics: the columns, our metric keys (e.g. ``["R@1", "R@5", "R@10", "MdR"]``).
        benchmark: our benchmark id, for the paper's row (``paper (Table N)``).
    """
    table = {name: {m: float(values[m]) if m in values else np.nan for m in metrics}
             for name, values in rows.items() if values is not None}
    paper = paper_numbers(benchmark)
    table[f"paper ({paper_table(benchmark)})"] = {m: paper.get(m, np.nan) for m in metrics}
    return pd.DataFrame.from_dict(table, orient="index", columns=list(metrics))


def task_recall_ci(tasks: Sequence[Any], matched: Sequence[float], present: Sequence[float], *,
                   num_boot: int = 1000, level: float = 0.95, seed: int = 0
                   ) -> tuple[float, float, float]:
    """``(mean, low, high)`` of CrossTask's average recall with a stratified bootstrap interval.

    Per task, recall is ``100 · Σ matched / Σ present`` over its videos (the official count); the
    benchmark number is the mean over tasks. The interval resamples *videos within each task*
    (tasks in sorted order, one ``(num_boot, n_task)`` draw each), keeping the task set fixed, so
    it is meaningful even with few tasks. A draw in which a task has no step present leaves that
    task out of that draw's mean.

    Args:
        tasks, matched, present: one entry per scored video (its task, steps matched, steps present).
    """
    tasks = np.asarray(tasks)
    matched, present = np.asarray(matched, np.float64), np.asarray(present, np.float64)
    if not len(tasks) == len(matched) == len(present) or len(tasks) == 0:
        raise ValueError(f"need one task, matched and present per video; got {len(tasks)}, "
                         f"{len(matched)}, {len(present)}")
    rng = np.random.default_rng(seed)
    recalls, draws = [], []
    for task in np.unique(tasks):
        rows = np.flatnonzero(tasks == task)
        if present[rows].sum() == 0:
            raise ValueError(f"task {task}: no step present in its videos; recall is undefined")
        recalls.append(100 * matched[rows].sum() / present[rows].sum())
        pick = rows[rng.integers(0, len(rows), size=(num_boot, len(rows)))]
        with np.errstate(invalid="ignore", divide="ignore"):
            draws.append(100 * matched[pick].sum(axis=1) / present[pick].sum(axis=1))
    means = np.nanmean(np.stack(draws), axis=0)  # (num_boot,)
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(np.mean(recalls)), float(low), float(high)


def _compare(value: float, low: float, high: float) -> str:
    """Where ``value`` lies relative to the interval ``[low, high]``."""
    return "below" if value < low else "above" if value > high else "inside"


_RELATION = {"below": "better than", "inside": "not distinguishable from", "above": "worse than"}
_CEILING = {"above": "short of", "inside": "level with", "below": "above"}


def standing(label: str, value: float, ci: tuple[float, float], *, chance: float,
             untrained: float, oracle: float | None = None, paper: float | None = None,
             simulated: bool, chance_name: str = "chance") -> dict[str, Any]:
    """Where the model's number (higher is better) stands against chance, the untrained model,
    the oracle and the paper.

    ``value`` is the model's metric with its interval ``ci`` (e.g. :func:`videoclip.book.stats.bootstrap_ci`); a
    reference counts as beaten only when it lies outside the interval. Returns, for each
    reference, where it lies relative to the interval (``vs_chance``, ``vs_untrained``,
    ``vs_oracle``: ``"below"``, ``"inside"`` or ``"above"``), ``transfers`` (chance and the
    untrained model both lie below the interval) and ``sentence``, plain words for the book.
    ``chance_name`` names the trivial baseline in the sentence (e.g. "the all-background baseline").
    """
    low, high = ci
    if not low <= value <= high:
        raise ValueError(f"{label}: value {value} lies outside its interval [{low}, {high}]")
    out: dict[str, Any] = {"value": value, "ci": (low, high),
                           "vs_chance": _compare(chance, low, high),
                           "vs_untrained": _compare(untrained, low, high),
                           "vs_oracle": None if oracle is None else _compare(oracle, low, high)}
    out["transfers"] = out["vs_chance"] == "below" and out["vs_untrained"] == "below"
    sentence = (f"{label} is {value:.1f} [95% CI {low:.1f}, {high:.1f}]: "
                f"{_RELATION[out['vs_chance']]} {chance_name} ({chance:.1f}), "
                f"{_RELATION[out['vs_untrained']]} the untrained model ({untrained:.1f})")
    if oracle is not None:
        sentence += f", {_CEILING[out['vs_oracle']]} the oracle ceiling ({oracle:.1f})"
    sentence += ". " + (f"Zero-shot transfer works here: the model beats both {chance_name} and the "
                        "untrained model beyond the interval." if out["transfers"] else
                        "Zero-shot transfer does not reproduce here: the model does not beat both "
                        f"{chance_name} and the untrained model beyond the interval.")
    if paper is not None:
        sentence += (f" The paper reports {paper:.1f} on real data; a simulated world's absolute numbers "
                     "are not comparable to it." if simulated else
                     f" The paper reports {paper:.1f}; ours differs by {value - paper:+.1f} points.")
    out["sentence"] = sentence
    return out


def answer_margins(scores: np.ndarray | Sequence[Sequence[float]], answers: Sequence[int]
                   ) -> np.ndarray:
    """``(Q,)`` the answer's score minus the best other option's: > 0 exactly when answered right
    (ties count as wrong, as :func:`videoclip.evaluation.videoqa.multiple_choice_correct`)."""
    scores = np.asarray(scores, dtype=np.float64)
    answers = np.asarray(answers)
    if scores.ndim != 2 or scores.shape[1] < 2 or len(answers) != len(scores):
        raise ValueError(f"scores {scores.shape} must be (num_questions, num_options >= 2) with one "
                         f"answer per question ({len(answers)} given)")
    rows = np.arange(len(scores))
    others = scores.copy()
    others[rows, answers] = -np.inf
    return scores[rows, answers] - others.max(axis=1)


def benchmark_record(model: Mapping[str, Any], untrained: Mapping[str, Any], *, benchmark: str,
                     headline: str, chance: Mapping[str, Any], oracle: Mapping[str, Any] | None,
                     variants: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """One benchmark's entry of a chapter's results file (schema in the module docstring)."""
    for name, results in (("model", model), ("untrained", untrained)):
        if headline not in results:
            raise KeyError(f"{benchmark}: the {name} results have no {headline!r} "
                           f"(keys: {sorted(results)}); pass the evaluator's results dict")
    return {"headline": headline, "protocol": model.get("protocol", ""), "model": dict(model),
            "untrained": dict(untrained), "chance": dict(chance),
            "oracle": None if oracle is None else dict(oracle), "paper": paper_numbers(benchmark),
            "variants": {k: dict(v) for k, v in (variants or {}).items()}}


def write_chapter_results(work_dir: str | Path, chapter: str, records: Mapping[str, Mapping[str, Any]],
                          *, config: Mapping[str, Any]) -> Path:
    """Write ``work_dir/results/<chapter>.json`` with provenance; returns its path."""
    from videoclip.provenance import write_results

    path = Path(work_dir) / "results" / f"{chapter}.json"
    return write_results(path, {"chapter": chapter, "benchmarks": dict(records)}, config=dict(config))


# --------------------------------------------------------------------------------- figures


def plot_rank_histogram(ranks: Mapping[str, np.ndarray | Sequence[int]], num_candidates: int, *,
                        ax=None, title: str = ""):
    """Histogram of the 1-based rank of each query's match, one step line per scorer.

    Bins are logarithmic from 1 to ``num_candidates``; the dashed line is what a random ranking
    gives (ranks uniform over 1..N). Returns the axes.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.2))
    edges = np.unique(np.geomspace(1, num_candidates + 1, num=min(25, num_candidates + 1)).astype(int))
    if edges[-1] <= num_candidates:
        edges = np.append(edges, num_candidates + 1)
    for name, values in ranks.items():
        values = np.asarray(values)
        if values.min() < 1 or values.max() > num_candidates:
            raise ValueError(f"{name}: ranks must lie in 1..{num_candidates}")
        counts, _ = np.histogram(values, bins=edges)
        ax.stairs(100 * counts / len(values), edges, label=name, linewidth=1.8)
    ax.stairs(100 * np.diff(edges) / num_candidates, edges, color="black", linestyle="--",
              label="random ranking")
    ax.set_xscale("log")
    ax.set_xlim(1, num_candidates + 1)
    ax.set_xlabel(f"rank of the matching clip (1 = retrieved first; {num_candidates} candidates)")
    ax.set_ylabel("% of queries")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    return ax


def plot_label_timelines(timelines: Sequence[Mapping[str, np.ndarray]], *,
                         label_names: Mapping[int, str], titles: Sequence[str] | None = None,
                         point_tracks: Sequence[str] = (), max_legend: int = 20):
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
    shown = sorted({int(v) for tracks in timelines for y in tracks.values() for v in np.unique(y) if v != 0})
    missing = [v for v in shown if v not in label_names]
    if missing:
        raise KeyError(f"labels {missing[:5]} have no name in label_names")
    size = 10 if len(shown) <= 10 else 20  # tab10's hues are distinct; tab20 pairs light/dark ones
    palette = plt.get_cmap(f"tab{size}")
    colour = {label: palette(i % size) for i, label in enumerate(shown)}
    fig, axes = plt.subplots(len(timelines), 1, squeeze=False,
                             figsize=(12, 0.5 + sum(0.45 * len(t) + 0.5 for t in timelines)),
                             gridspec_kw={"height_ratios": [len(t) for t in timelines]})
    for i, (ax, tracks) in enumerate(zip(axes[:, 0], timelines)):
        lengths = {len(y) for y in tracks.values()}
        if len(lengths) != 1:
            raise ValueError(f"timeline {i}: tracks differ in length ({sorted(lengths)} seconds)")
        for row, (name, y) in enumerate(tracks.items()):
            y = np.asarray(y)
            change = np.flatnonzero(np.diff(y)) + 1
            for start, end in zip(np.r_[0, change], np.r_[change, len(y)]):
                if y[start] != 0:
                    ax.broken_barh([(start, end - start)], (row - 0.35, 0.7), color=colour[int(y[start])])
            if name in point_tracks:
                seconds = np.flatnonzero(y)
                ax.scatter(seconds + 0.5, np.full(len(seconds), row - 0.45), marker="v", s=30,
                           c=[colour[int(y[s])] for s in seconds], edgecolors="black", linewidths=0.5,
                           zorder=3)
        ax.set_yticks(range(len(tracks)), list(tracks))
        ax.set_ylim(len(tracks) - 0.4, -0.7)
        ax.set_xlim(0, lengths.pop())
        if titles is not None:
            ax.set_title(titles[i], fontsize=9, loc="left")
    axes[-1, 0].set_xlabel("seconds (blank: background / Outside)")
    handles = [Patch(color=colour[v], label=str(label_names[v])[:40]) for v in shown[:max_legend]]
    fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7, frameon=False)
    fig.tight_layout()
    return fig
