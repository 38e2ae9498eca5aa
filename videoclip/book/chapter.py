"""What the evaluation chapters of the book share: reference rows, verdicts, result files, plots.

The zero-shot chapters (text→video retrieval, VideoQA, action segmentation, step localisation)
each print the book's pre-trained model beside four references — the same architecture
*before* pre-training, chance, the simulated world's concept oracle and the paper's number —
and say in a sentence computed from the numbers where the model stands. This module holds
those pieces so that every chapter computes them the same way:

* :func:`setup_chapter` → :class:`Chapter` — the data, the model, the references; its
  ``standing``, ``record`` and ``write`` fill in a benchmark's references;
* :func:`untrained_model` — the reference "same architecture, no pre-training" model;
* :func:`reference_levels` — chance and oracle levels (:mod:`videoclip.sim.levels`);
* :func:`paper_numbers`, :func:`comparison_table` — the table of a benchmark;
* :func:`task_recall_ci`, :func:`standing` — CrossTask's interval and a plain-words verdict
  (other intervals: :func:`videoclip.book.stats.bootstrap_ci`);
* :func:`answer_margins` — per-question margins of a multiple-choice scorer;
* :func:`benchmark_record`, :func:`write_chapter_results` — ``work_dir/results/<chapter>.json``;
* figures: :mod:`videoclip.book.plots`.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from videoclip.book.stats import interval_side
from videoclip.paper import paper_numbers, paper_table

__all__ = [
    "MODEL_ROWS",
    "ORACLE_ROW",
    "Chapter",
    "answer_margins",
    "benchmark_record",
    "comparison_table",
    "given_model",
    "milnce_baseline",
    "model_rows",
    "paper_numbers",
    "reference_levels",
    "scorers",
    "setup_chapter",
    "standing",
    "task_recall_ci",
    "untrained_model",
    "write_chapter_results",
]

# How chapters 05-08 label their scorers in tables.
MODEL_ROWS = {"model": "VideoCLIP (pre-trained here)", "untrained": "untrained (same architecture)",
              "milnce": "MIL-NCE (S3D features)"}


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


#: How chapters 05-08 label the oracle row in tables.
ORACLE_ROW = "oracle (concept reference)"


@dataclass
class Chapter:
    """A zero-shot chapter (05-08): its data, the book's model and references, and its records.

    Made by :func:`setup_chapter`; :meth:`standing` and :meth:`record` take the references of a
    benchmark from it, :meth:`write` writes the chapter's results file.
    """

    name: str
    work_dir: str
    pretrain_preset: str
    root: Path
    simulated: bool
    run_dir: Path
    device: str
    model: Any
    untrained: Any
    chance: dict
    oracle: dict | None
    records: dict = field(default_factory=dict)
    model_dir: str = ""  # a given model evaluated instead of pre-training (the released profile)

    def standing(self, benchmark: str, label: str, value: float, ci: tuple[float, float], *,
                 metric: str, untrained: float, chance: float | None = None,
                 chance_name: str = "chance") -> dict[str, Any]:
        """:func:`standing` of ``metric`` on ``benchmark``: chance (``chance`` overrides the level of
        ``metric``), the oracle and the paper's number come from the chapter."""
        return standing(label, value, ci,
                        chance=self.chance[benchmark][metric] if chance is None else chance,
                        untrained=untrained, chance_name=chance_name,
                        oracle=self.oracle[benchmark][metric] if self.oracle else None,
                        paper=paper_numbers(benchmark)[metric], simulated=self.simulated)

    def record(self, benchmark: str, model: Mapping[str, Any], untrained: Mapping[str, Any], *,
               headline: str, chance: Mapping[str, Any] | None = None,
               variants: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        """Keep :func:`benchmark_record` of ``benchmark`` for :meth:`write` (chance and oracle
        levels from the chapter unless ``chance`` is given)."""
        self.records[benchmark] = benchmark_record(
            model, untrained, benchmark=benchmark, headline=headline,
            chance=self.chance[benchmark] if chance is None else chance,
            oracle=self.oracle and self.oracle[benchmark], variants=variants)

    def write(self, **config: Any) -> Path:
        """Write the records to ``work_dir/results/<chapter>.json`` (:func:`write_chapter_results`)
        with the chapter's settings and ``config``; prints and returns the path."""
        path = write_chapter_results(self.work_dir, self.name, self.records, config={
            "data_root": str(self.root), "simulated": self.simulated,
            "pretrain_preset": self.pretrain_preset, "model_dir": self.model_dir,
            "run_dir": str(self.run_dir), **config})
        print(f"wrote {path}")
        return path


def setup_chapter(name: str, *, data_root: str, work_dir: str, world_preset: str, world_seed: int,
                  real_data_dir: str, pretrain_preset: str, device: str, seed: int,
                  model_dir: str = "") -> Chapter:
    """Resolve the data root, load (or train) the book's model and the untrained reference, compute
    chance/oracle levels, and print where each came from (the notebooks' shared first cell).

    With ``model_dir`` (:func:`given_model`) that model is evaluated instead and nothing is
    pre-trained; ``run_dir`` is then the model's directory."""
    import torch

    from videoclip.book.workspace import ensure_run, pretrain_config, resolve_data_root
    from videoclip.model import VideoCLIP
    from videoclip.sim.truth import has_world_truth

    device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
    root = resolve_data_root(data_root, work_dir=work_dir, world_preset=world_preset,
                             world_seed=world_seed, real_data=real_data_dir)
    simulated = has_world_truth(root)
    given = given_model(model_dir)
    config = pretrain_config(root, preset=pretrain_preset)  # the preset, parsed once
    run_dir = given or ensure_run(work_dir, config)
    model = VideoCLIP.from_pretrained(given or run_dir / "final").to(device)
    untrained = untrained_model(config.model, seed=seed).to(device)
    chance, oracle = reference_levels(root, seed=world_seed, cache_dir=Path(work_dir) / "levels")
    print(f"data root: {root}")
    print(f"given model: {given} (not pre-trained here)" if given else
          f"pre-trained model: {run_dir / 'final'} (preset {Path(pretrain_preset).name})")
    print("These numbers come from a SIMULATED world: they test the mechanisms, not the paper's values."
          if simulated else "Real data root: no oracle row (real data has no ground-truth concepts).")
    return Chapter(name, work_dir, pretrain_preset, root, simulated, run_dir, device, model,
                   untrained, chance, oracle, model_dir=model_dir)


def milnce_baseline(s3d_weights: str, s3d_dict: str, *, device: str):
    """MIL-NCE's scorer on the stored S3D features (design §12), or None without weights.

    The paper's tables carry a MIL-NCE row; the paper profile sets ``s3d_weights`` and
    ``s3d_dict`` (``$VARS`` expanded) so that every zero-shot table computes it.
    """
    import os

    if not s3d_weights:
        print(f"{MODEL_ROWS['milnce']} row: not run (no s3d_weights; the paper profile sets it)")
        return None
    from videoclip.video.milnce import MilNCEScorer

    return MilNCEScorer.from_milnce_checkpoint(os.path.expandvars(s3d_weights),
                                               dict_path=os.path.expandvars(s3d_dict)).to(device)


def scorers(model: Any, untrained: Any, milnce: Any = None) -> list[tuple[str, Any]]:
    """``[(row key, scorer)]`` of a zero-shot table: the model, the untrained one, MIL-NCE if given."""
    return [("model", model), ("untrained", untrained)] + ([("milnce", milnce)] if milnce else [])


def untrained_model(model_cfg: Any, *, seed: int = 0):
    """The book's architecture *before* pre-training: a pre-training config's model settings
    (``PretrainConfig.model``), fresh weights.

    Both towers start from the config's backbone (design §1) and the video MLP is newly drawn
    (seeded with ``seed``), exactly as pre-training starts; the reference row "untrained" of
    every zero-shot table.
    """
    import torch

    from videoclip.train import build_model

    torch.manual_seed(seed)
    return build_model(model_cfg).eval()


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
    """Where ``value`` lies relative to the interval ``[low, high]``: below, above or inside."""
    return {"above": "below", "below": "above"}.get(interval_side(low, high, ref=value), "inside")


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
        sentence += f", {_CEILING[out['vs_oracle']]} the concept oracle ({oracle:.1f})"
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
