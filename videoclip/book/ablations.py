"""Table 7's ablations: which setting each row changes, one train-and-evaluate run, summaries.

Paper: §5.6, Table 7. Every row is a pre-training run (:func:`videoclip.book.workspace.ensure_pretrained`,
cached) with the flat :class:`videoclip.train.PretrainConfig` overrides of :data:`ABLATIONS`,
evaluated zero-shot on YouCook2 text→video retrieval (:func:`videoclip.evaluation.evaluate_retrieval`).
Rows are repeated over training seeds; :func:`summarize_runs` gives each row's mean with a
Student-t interval over seeds (:func:`videoclip.book.stats.mean_ci`), :func:`paired_differences` each
row minus the full model seed by seed, and :func:`lag_gains` the gain of overlapped over exactly
aligned pairs per narration lag (the experiment the paper did not run).

Table layout used throughout: ``runs`` has one row per (ablation ``row``, ``seed``) with the
metrics ``R@1``, ``R@5``, ``R@10`` in percent; ``sweep`` one row per (``lag_scale``, ``seed``,
``sampler``) with the same metrics.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from videoclip._io import atomic_write_json
from videoclip.book.dependencies import files_digest, module_dependencies
from videoclip.book.stats import mean_ci
from videoclip.paper import PAPER_ABLATIONS

__all__ = [
    "ABLATIONS",
    "COLLAPSE_NATS",
    "FULL",
    "INVALID_SPREAD",
    "METRICS",
    "embedding_spread",
    "evaluate_run",
    "initial_spread",
    "invalid_rows",
    "lag_gains",
    "overrides_of",
    "paired_differences",
    "plan_runs",
    "retrieval_log",
    "run_ablations",
    "summarize_runs",
    "train_and_evaluate",
    "training_outcome",
]

#: The full model's row (Table 7's first line).
FULL = "VideoCLIP (full)"

#: Table 7's rows (the names of :data:`videoclip.paper.PAPER_ABLATIONS`) and the flat
#: pre-training overrides that make each one (Paper: §5.6; design §4–5).
ABLATIONS: dict[str, dict[str, Any]] = {
    FULL: {},
    "w/o retrieval": {"grouping": "random"},
    "w/o retrieval and overlap": {"grouping": "random", "sampler": "exact"},
    "MIL-NCE clips and loss": {"sampler": "milnce", "loss": "mil_nce"},
    "shared video/text transformer": {"shared_towers": True},
    "retrieve k": {"grouping": "nearest"},
    "use first 32 sec for retrieval": {"first_32s": True},
    "[CLS] instead of mean pooling": {"pooling": "cls"},
}

#: The two random-group rows the lag sweep trains on each sweep world, by clip sampler.
SWEEP_ROWS = {"overlap": "w/o retrieval", "exact": "w/o retrieval and overlap"}

#: What an ablation job imports (preloaded once by the job runner's fork server).
JOB_MODULES = ("videoclip.book.ablations", "videoclip.book.workspace", "videoclip.train",
               "videoclip.evaluation.retrieval")

#: The metrics of Table 7 (percent).
METRICS = ("R@1", "R@5", "R@10")

#: A run has *collapsed* when its loss over the last steps is within this many nats of the
#: chance loss (every clip and text embedded to one vector; the gradient then nearly vanishes).
COLLAPSE_NATS = 0.05

def _eval_code_digest() -> str:
    """A hash of the package files a cached zero-shot result depends on: the YouCook2 evaluator's
    imports, followed through the package (:mod:`videoclip.book.dependencies`)."""
    return files_digest(module_dependencies("videoclip.evaluation.retrieval"))[:12]


def evaluate_run(run_dir: str | Path, data_root: str | Path, *, clip_list: str = "milnce",
                 batch_size: int = 256, device: str | None = None) -> dict[str, Any]:
    """Zero-shot YouCook2 text→video retrieval of a finished run's model, cached in the run.

    The result is stored as ``run_dir/zero_shot/youcook2-<clip_list>-<key>.json``, ``key`` a hash of
    the data root and of the evaluation code, so a re-run of the book reuses it and a change of
    the evaluator re-evaluates.

    Args:
        run_dir: a pre-training run directory with ``final/`` (``ensure_pretrained``'s return).
        data_root: the data root holding ``youcook2/`` (official files and features).
        clip_list: ``"milnce"`` (the zero-shot protocol, design §7) or ``"annotations"``.
        batch_size, device: passed to :func:`videoclip.evaluation.evaluate_retrieval`.

    Returns:
        The evaluator's results dict (``R@1``, ``R@5``, ``R@10``, ``MdR``, ``num_scored``, ...).
    """
    from videoclip.evaluation.retrieval import evaluate_retrieval
    from videoclip.model import VideoCLIP

    run_dir = Path(run_dir)
    final = run_dir / "final"
    if not (final / "config.json").is_file():
        raise FileNotFoundError(f"{final} holds no finished model; train it first "
                                "(videoclip.book.workspace.ensure_pretrained)")
    key = hashlib.sha256(f"{Path(data_root).resolve()}|{_eval_code_digest()}".encode()).hexdigest()[:10]
    cached = run_dir / "zero_shot" / f"youcook2-{clip_list}-{key}.json"
    if cached.is_file():
        return json.loads(cached.read_text())
    model = VideoCLIP.from_pretrained(final)
    results, _ = evaluate_retrieval(model, data_root, benchmark="youcook2", clip_list=clip_list,
                                    batch_size=batch_size, device=device, progress=False)
    atomic_write_json(cached, results, indent=1)
    return results


def plan_runs(root: Path, preset: str, seeds: Sequence[int], *,
              sweep_worlds: Mapping[float, Path] | None = None, sweep_preset: str | None = None,
              sweep_seeds: Sequence[int] | None = None
              ) -> dict[tuple[Path, str, str, int], list[tuple[str, Any]]]:
    """Every pre-training run chapter 09 needs, each once, with what it serves.

    Keys are ``(data root, preset, row, seed)``; values list the uses: ``("main", None)`` for a
    row of Table 7 on ``root``, ``("sweep", (lag_scale, sampler))`` for a lag-sweep run (the
    :data:`SWEEP_ROWS` on each of ``sweep_worlds``, ``{lag scale: world}``, with
    ``sweep_preset`` and ``sweep_seeds``, default ``seeds``). A run both need — the sweep's
    default world is ``root`` and the presets and seeds match — is trained once and serves both.
    """
    jobs: dict[tuple[Path, str, str, int], list[tuple[str, Any]]] = {}
    for row in ABLATIONS:
        for seed in seeds:
            jobs.setdefault((root, preset, row, seed), []).append(("main", None))
    for scale, world in (sweep_worlds or {}).items():
        for sampler, row in SWEEP_ROWS.items():
            for seed in seeds if sweep_seeds is None else sweep_seeds:
                jobs.setdefault((world, sweep_preset, row, seed), []).append(("sweep", (scale, sampler)))
    return jobs


def train_and_evaluate(work_dir: str | Path, data_root: str | Path, *, preset: str | Path, row: str,
                       seed: int, extra: Mapping[str, Any] | None = None, clip_list: str = "milnce",
                       batch_size: int = 256, device: str = "auto"
                       ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One Table 7 row at one seed: pre-train (cached, ``name="ablation"``), evaluate on YouCook2.

    Args:
        work_dir: the notebooks' artefact directory.
        data_root: the data root to pre-train on and to evaluate on.
        preset: a pre-training preset's name (``params/pretrain/<name>.yaml``); ``extra`` overrides go on top for every row,
            then the row's own (:func:`overrides_of`).
        row: a key of :data:`ABLATIONS`; seed: the run's ``seed``.
        device: where to train and evaluate (``"auto"``: cuda when available, else cpu).

    Returns:
        ``(record, groups)``: ``record`` has ``row``, ``seed``, ``R@1``, ``R@5``, ``R@10``, ``MdR``,
        ``num_scored``, the :func:`training_outcome` keys, ``run_dir``; ``groups`` one dict per
        epoch of the retrieval stage (:func:`retrieval_log`) with ``row`` and ``seed``.
    """
    import torch

    from videoclip.book.workspace import ensure_pretrained

    run_dir = ensure_pretrained(work_dir, data_root, preset=preset, name="ablation", seed=seed,
                                progress=False, device=device, **overrides_of(row, extra))
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    results = evaluate_run(run_dir, data_root, clip_list=clip_list, batch_size=batch_size, device=device)
    record = {"row": row, "seed": seed, **{k: results[k] for k in (*METRICS, "MdR", "num_scored")},
              **training_outcome(run_dir), "run_dir": str(run_dir)}
    keep = ["epoch", "grouping", "first_32s", "same_task_share", "random_groups_same_task_share"]
    log = retrieval_log(run_dir)
    groups = [{"row": row, "seed": seed, **{k: r.get(k) for k in keep}} for r in log.to_dict("records")]
    return record, groups


def run_ablations(work_dir: str | Path, runs: Sequence[tuple[str | Path, str | Path, str, int]], *,
                  extra: Mapping[str, Any] | None = None, clip_list: str = "milnce", batch_size: int = 256,
                  device: str = "auto", workers: int | None = None
                  ) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """:func:`train_and_evaluate` of each ``(data_root, preset, row, seed)`` of ``runs``, in parallel
    processes of one thread each (:func:`videoclip.book.jobs.run_jobs`); results in ``runs``' order.

    What the runs share is made once, first: each data root's token cache for its preset's backbone.
    Each run's result is kept in ``work_dir/jobs/ablations/<run>-<clip_list>.json``, so a killed
    build resumes with the runs it had not finished (each run also resumes its own training).

    Args:
        workers: runs at once (default: one per core); ``0`` runs them here, one after another.
    """
    from videoclip.book.jobs import Job, run_jobs
    from videoclip.book.workspace import ensure_token_cache, pretrain_run_dir

    for data_root, preset in dict.fromkeys((data_root, preset) for data_root, preset, _, _ in runs):
        ensure_token_cache(data_root, preset=preset, **dict(extra or {}))
    jobs = []
    for data_root, preset, row, seed in runs:
        overrides = {"seed": seed, **overrides_of(row, extra)}
        run_dir = pretrain_run_dir(work_dir, data_root, preset=preset, name="ablation", **overrides)
        jobs.append(Job(f"{run_dir.name}-{clip_list}", train_and_evaluate, {
            "work_dir": str(work_dir), "data_root": str(data_root), "preset": str(preset), "row": row,
            "seed": seed, "extra": dict(extra or {}), "clip_list": clip_list, "batch_size": batch_size,
            "device": device}))
    unique = list({job.key: job for job in jobs}.values())  # one run can serve two tables
    results = run_jobs(unique, Path(work_dir) / "jobs" / "ablations", workers=workers, desc="ablation runs",
                       preload=JOB_MODULES)
    return [tuple(results[job.key]) for job in jobs]


def training_outcome(run_dir: str | Path, *, last: int = 5) -> dict[str, Any]:
    """Did the run learn? ``first_loss``, ``final_loss`` (mean of the ``last`` steps), the
    ``chance_loss`` of those steps (the loss of constant embeddings, logged by the trainer) and
    ``collapsed``: the final loss within :data:`COLLAPSE_NATS` of chance."""
    from videoclip.train import RunLog

    steps = RunLog.read(run_dir).steps
    if not steps or "chance_loss" not in steps[-1]:
        raise ValueError(f"{run_dir}/log.jsonl has no steps with a chance_loss: a run from an older "
                         "version of videoclip; delete the run directory to retrain it")
    tail = steps[-last:]
    final = float(np.mean([r["loss"] for r in tail]))
    chance = float(np.mean([r["chance_loss"] for r in tail]))
    return {"first_loss": steps[0]["loss"], "final_loss": final, "chance_loss": chance,
            "collapsed": bool(final > chance - COLLAPSE_NATS)}


def embedding_spread(model: Any, data_root: str | Path, *, num_pairs: int = 256, batch_size: int = 64,
                     device: str | None = "cpu") -> dict[str, float]:
    """How different the embeddings of different inputs are: mean ‖e_i − ē‖ / ‖ē‖ over the first
    ``num_pairs`` YouCook2 clips (``"video"``) and their texts (``"text"``); 0 when every input
    embeds to one vector (a collapsed start, see :func:`training_outcome`)."""
    import torch

    from videoclip.data.benchmarks import load_youcook2_val
    from videoclip.evaluation.common import encode_clips, encode_texts, open_store, resolve_device
    from videoclip.evaluation.retrieval import clip_features

    kept, clips, _, _ = clip_features(open_store(data_root, "youcook2", None), load_youcook2_val(data_root))
    if not kept:
        raise ValueError(f"no YouCook2 clip of {data_root} has features")
    kept, clips = kept[:num_pairs], clips[:num_pairs]
    device = resolve_device(model, device)
    with torch.inference_mode():
        embeddings = {"video": encode_clips(model, clips, batch_size=batch_size, device=device),
                      "text": encode_texts(model, [p.text for p in kept], batch_size=batch_size,
                                           device=device)}
    out = {}
    for side, emb in embeddings.items():
        centre = emb.mean(dim=0)
        out[side] = float((emb - centre).norm(dim=1).mean() / centre.norm().clamp(min=1e-12))
    return out


def initial_spread(data_root: str | Path, *, preset: str | Path, row: str, seed: int = 0,
                   extra: Mapping[str, Any] | None = None, num_pairs: int = 256) -> dict[str, float]:
    """:func:`embedding_spread` of a row's model **before** pre-training (its initial weights at
    ``seed``): where the run starts from."""
    import torch

    from videoclip.book.workspace import pretrain_config
    from videoclip.train import build_model

    cfg = pretrain_config(data_root, preset=preset, seed=seed, **overrides_of(row, extra))
    torch.manual_seed(seed)
    return embedding_spread(build_model(cfg.model), data_root, num_pairs=num_pairs)


#: A row whose untrained model embeds every input to nearly one vector — initial spread
#: (:func:`embedding_spread`) below this on the video or the text side — starts at the collapsed
#: point and measures the backbone, not the design choice: it is invalid on this backbone.
#: A rule added after seeing results (design §13.4).
INVALID_SPREAD = 0.05


def invalid_rows(spreads: Mapping[str, Mapping[str, float]]) -> dict[str, str]:
    """``{row: reason}`` for the rows of ``spreads`` (row → :func:`initial_spread`) that start
    collapsed (:data:`INVALID_SPREAD`)."""
    return {row: (f"invalid on this backbone: starts collapsed (initial spread video "
                  f"{s['video']:.3f}, text {s['text']:.3f}, below {INVALID_SPREAD:g})")
            for row, s in spreads.items() if min(s["video"], s["text"]) < INVALID_SPREAD}


def retrieval_log(run_dir: str | Path) -> pd.DataFrame:
    """The retrieval stage's rows of a run's ``log.jsonl``: one per epoch, with ``epoch``,
    ``grouping``, ``first_32s`` and, when the data root has task labels, ``same_task_share`` of
    the epoch's groups and ``random_groups_same_task_share`` of random groups of the same videos
    (:func:`videoclip.retrieval.group_stats`)."""
    from videoclip.train import RunLog

    return pd.DataFrame(RunLog.read(run_dir).retrieval)


def _check_columns(table: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise KeyError(f"{what}: missing columns {missing} (has {list(table.columns)})")


def summarize_runs(runs: pd.DataFrame, *, metrics: Sequence[str] = METRICS,
                   level: float = 0.95) -> pd.DataFrame:
    """Each row's mean over seeds with a Student-t interval, beside the paper's Table 7.

    Args:
        runs: one row per (``row``, ``seed``) with the ``metrics`` columns.

    Returns:
        Long table: ``row``, ``metric``, ``mean``, ``ci_low``, ``ci_high``, ``sd``, ``n`` (seeds),
        ``paper``; rows in Table 7's order (NaN bounds for a row of one seed).
    """
    _check_columns(runs, ["row", "seed", *metrics], "summarize_runs")
    unknown = sorted(set(runs.row) - set(PAPER_ABLATIONS))
    if unknown:
        raise KeyError(f"summarize_runs: rows {unknown} are not in Table 7 ({list(PAPER_ABLATIONS)})")
    duplicated = runs[runs.duplicated(["row", "seed"])]
    if len(duplicated):
        raise ValueError(f"summarize_runs: (row, seed) repeated: {duplicated[['row', 'seed']].values.tolist()}")
    out = []
    for row in [r for r in PAPER_ABLATIONS if r in set(runs.row)]:
        part = runs[runs.row == row]
        for metric in metrics:
            paper = PAPER_ABLATIONS[row][list(METRICS).index(metric)] if metric in METRICS else np.nan
            out.append({"row": row, "metric": metric, **mean_ci(part[metric], level), "paper": paper})
    return pd.DataFrame(out)


def _paired(table: pd.DataFrame, key: str, a: Any, b: Any, metric: str) -> pd.Series:
    """Per seed, ``metric`` of ``key == a`` minus that of ``key == b`` (seeds present in both)."""
    wide = table[table[key].isin([a, b])].pivot(index="seed", columns=key, values=metric)
    if a not in wide or b not in wide:
        raise ValueError(f"no runs of {key}={a if a not in wide else b!r}")
    both = wide.dropna()
    if both.empty:
        raise ValueError(f"{key}={a!r} and {key}={b!r} share no seed; run both with the same seeds")
    return both[a] - both[b]


def paired_differences(runs: pd.DataFrame, *, reference: str = FULL, metric: str = "R@1",
                       level: float = 0.95) -> pd.DataFrame:
    """Each ablation minus the reference row, seed by seed (the same seed: the same data order
    and initial video MLP), with a Student-t interval of the mean difference.

    Returns:
        One row per ablation other than ``reference``: ``row``, ``mean``, ``ci_low``, ``ci_high``,
        ``sd``, ``n`` (paired seeds), ``per_seed`` (the differences), ``paper`` (the paper's
        difference, Table 7).
    """
    _check_columns(runs, ["row", "seed", metric], "paired_differences")
    index = list(METRICS).index(metric) if metric in METRICS else None
    out = []
    for row in [r for r in PAPER_ABLATIONS if r in set(runs.row) and r != reference]:
        diff = _paired(runs, "row", row, reference, metric)
        paper = (PAPER_ABLATIONS[row][index] - PAPER_ABLATIONS[reference][index]
                 if index is not None and reference in PAPER_ABLATIONS else np.nan)
        out.append({"row": row, **mean_ci(diff.to_numpy(), level),
                    "per_seed": [round(float(d), 4) for d in diff], "paper": paper})
    return pd.DataFrame(out)


def lag_gains(sweep: pd.DataFrame, *, metric: str = "R@1", treatment: str = "overlap",
              control: str = "exact", level: float = 0.95) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The gain of ``treatment`` over ``control`` pairs per narration lag, seed by seed.

    Args:
        sweep: one row per (``lag_scale``, ``seed``, ``sampler``) with the ``metric`` column.

    Returns:
        ``(per_seed, summary)``: ``per_seed`` has ``lag_scale``, ``seed``, ``gain``; ``summary``
        one row per ``lag_scale`` (ascending) with ``mean``, ``ci_low``, ``ci_high``, ``sd``, ``n``.
    """
    _check_columns(sweep, ["lag_scale", "seed", "sampler", metric], "lag_gains")
    per_seed, summary = [], []
    for scale in sorted(set(sweep.lag_scale)):
        gain = _paired(sweep[sweep.lag_scale == scale], "sampler", treatment, control, metric)
        per_seed += [{"lag_scale": scale, "seed": seed, "gain": float(g)} for seed, g in gain.items()]
        summary.append({"lag_scale": scale, **mean_ci(gain.to_numpy(), level)})
    return pd.DataFrame(per_seed), pd.DataFrame(summary)


def overrides_of(row: str, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The flat pre-training overrides of a Table 7 row, with ``extra`` (applied to every row)
    underneath: the row's own settings win."""
    if row not in ABLATIONS:
        raise KeyError(f"unknown ablation {row!r}; choose one of {list(ABLATIONS)}")
    clash = sorted(set(extra or {}) & set(ABLATIONS[row]))
    if clash:
        raise ValueError(f"extra overrides {clash} would undo the ablation {row!r}; drop them")
    return {**(extra or {}), **ABLATIONS[row]}
