"""The fine-tuning chapter's code: cached fine-tuning runs, zero-shot beside fine-tuned, tables.

Runs live under ``work_dir/runs/finetune-<task>-<hash of the settings>``, trained once and then
reused (a killed run resumes), as :func:`videoclip.book.workspace.ensure_pretrained` keeps pre-training
runs; a chapter's runs train in parallel processes (:func:`ensure_finetuned_runs`).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from videoclip.book.stats import mean_ci
from videoclip.book.workspace import preset_path, settings_key
from videoclip.finetune.evaluate import evaluate_zero_shot
from videoclip.finetune.examples import TEST_BENCHMARK
from videoclip.finetune.loop import FinetuneConfig, finetune, load_preset
from videoclip.finetune.selection import PRIMARY_METRIC
from videoclip.paper import FINETUNED, FINETUNED_ROWS, ZERO_SHOT
from videoclip.provenance import write_results

__all__ = ["CHAPTER", "cost_table", "ensure_finetuned", "ensure_finetuned_runs", "finetuned_scorecard", "paper_row",
           "selection_table", "summary_table", "write_results_file", "zero_shot"]

#: The chapter whose results file (``results.finetuned``) the scorecard's fine-tuned rows read.
CHAPTER = "13_finetuning"

_RUN_ONLY = ("run_dir", "resume", "progress", "stop_after_steps", "keep_checkpoints",
             "checkpoint_every", "device", "prefetch")


def paper_row(task: str) -> tuple[str, str, float, float]:
    """``(paper benchmark name, table, zero-shot value, fine-tuned value)`` of a task's headline."""
    metric = PRIMARY_METRIC[task]
    fine = next(r for r in FINETUNED_ROWS if r.benchmark == task and r.metric == metric)
    zero = next(r for r in ZERO_SHOT if r.benchmark == TEST_BENCHMARK[task] and r.metric == metric)
    return fine.paper_benchmark, fine.table, zero.value, fine.value


def _run_dir_and_config(work_dir: str | Path, task: str, *, init: str | Path, data_root: str | Path,
                        preset: str | Path, **overrides: Any) -> tuple[Path, dict[str, Any]]:
    """Where the run of these settings lives, and its flat fine-tuning config."""
    values = {"task": task, "init": str(Path(init).resolve()),
              "data_dir": str(Path(data_root).resolve()), **overrides}
    flat = load_preset(preset_path(preset, kind="finetune"), values).flat()
    key = settings_key({k: v for k, v in flat.items() if k not in _RUN_ONLY})
    return Path(work_dir).resolve() / "runs" / f"finetune-{task}-{key}", flat


def ensure_finetuned(work_dir: str | Path, task: str, *, init: str | Path, data_root: str | Path,
                     preset: str | Path, **overrides: Any) -> Path:
    """The run directory of a fine-tuning run with these settings, trained once, then reused.

    Args:
        work_dir: the notebooks' artefact directory.
        task: one of the five fine-tuning tasks.
        init: the pre-trained model directory (a pre-training run's ``final/``).
        data_root: the data root (official formats).
        preset: a fine-tuning preset's name (``params/finetune/<name>.yaml``: shared keys plus a
            section per task) or a YAML file.
        overrides: flat fine-tuning keys on top (e.g. ``seed``).
    """
    run_dir, flat = _run_dir_and_config(work_dir, task, init=init, data_root=data_root, preset=preset,
                                        **overrides)
    if not (run_dir / "results.json").exists():
        finetune(FinetuneConfig.from_dict({**flat, "run_dir": str(run_dir), "resume": True,
                                           "progress": False}))
    if (run_dir / "checkpoints").exists():  # a finished run needs only final/ and its results
        shutil.rmtree(run_dir / "checkpoints")
    return run_dir


def _finetune_job(**kwargs: Any) -> str:
    """:func:`ensure_finetuned` as a job of :func:`videoclip.book.jobs.run_jobs` (a JSON result)."""
    work_dir, task = kwargs.pop("work_dir"), kwargs.pop("task")
    return str(ensure_finetuned(work_dir, task, **kwargs))


def ensure_finetuned_runs(work_dir: str | Path, tasks: Sequence[str], seeds: Sequence[int], *,
                          init: str | Path, data_root: str | Path, preset: str | Path,
                          workers: int | None = None) -> dict[str, list[Path]]:
    """:func:`ensure_finetuned` for every task × seed: ``{task: [run directory per seed]}``.

    The runs are independent, so they train in parallel processes of one thread each
    (:func:`videoclip.book.jobs.run_jobs`, one per core unless ``workers`` says otherwise; ``0``:
    one by one in this process). A run's job key is its run directory's name, so changed settings
    make a new job and a killed build resumes with the runs it finished.
    """
    from videoclip.book.jobs import Job, run_jobs

    common = {"init": str(init), "data_root": str(data_root), "preset": str(preset)}
    jobs = {}
    for task in tasks:
        for seed in seeds:
            run_dir, _ = _run_dir_and_config(work_dir, task, seed=seed, **common)
            jobs[task, seed] = Job(run_dir.name, _finetune_job,
                                   {"work_dir": str(work_dir), "task": task, "seed": seed, **common})
    done = run_jobs(list(jobs.values()), Path(work_dir) / "jobs" / "finetuning", workers=workers,
                    desc="fine-tuning runs", preload=(__name__,))
    return {task: [Path(done[jobs[task, seed].key]) for seed in seeds] for task in tasks}


def read_run(run_dir: str | Path) -> dict[str, Any]:
    """A finished run's ``results.json`` results."""
    return json.loads((Path(run_dir) / "results.json").read_text())["results"]


def zero_shot(task: str, model: Any, data_root: str | Path, *, batch_size: int = 64,
              device: Any = None) -> dict[str, Any]:
    """The zero-shot results of ``model`` on the task's test set (design §7), on the same test
    set as the fine-tuned rows (:func:`videoclip.finetune.evaluate.evaluate_zero_shot`)."""
    return evaluate_zero_shot(task, model, data_root, batch_size=batch_size, device=device,
                              progress=False)


def _interval(values: Sequence[float]) -> str:
    ci = mean_ci(values)
    if ci["n"] == 1:
        return f"{ci['mean']:.1f} (1 seed)"
    return f"{ci['mean']:.1f} [{ci['ci_low']:.1f}, {ci['ci_high']:.1f}]"


def summary_table(zero: Mapping[str, Mapping[str, Any]],
                  runs: Mapping[str, Sequence[Mapping[str, Any]]]) -> pd.DataFrame:
    """One row per task: the paper's zero-shot and fine-tuned numbers, ours zero-shot, and ours
    fine-tuned under each selection rule (mean over seeds, 95% Student-t interval), and the gap
    the test-set selection adds over the last epoch (per-seed differences)."""
    rows = []
    for task, results in runs.items():
        metric = PRIMARY_METRIC[task]
        chosen = {rule: [r["selection"][rule]["metrics"][metric] for r in results]
                  for rule in ("test_selection", "last_epoch")}
        gaps = [a - b for a, b in zip(chosen["test_selection"], chosen["last_epoch"])]
        rows.append({
            "task": task, "metric": metric,
            "paper zero-shot": paper_row(task)[2],
            "paper fine-tuned": paper_row(task)[3],
            "ours zero-shot": round(float(zero[task][metric]), 1),
            "ours fine-tuned, test-set selection": _interval(chosen["test_selection"]),
            "ours fine-tuned, last epoch": _interval(chosen["last_epoch"]),
            "selection gain (test-set − last)": _interval(gaps),
            "seeds": len(results),
        })
    return pd.DataFrame(rows).set_index("task")


def selection_table(runs: Mapping[str, Sequence[Mapping[str, Any]]],
                    seeds: Sequence[int]) -> pd.DataFrame:
    """Per task and seed: the epoch each rule picks and its headline metric."""
    rows = []
    for task, results in runs.items():
        metric = PRIMARY_METRIC[task]
        for seed, r in zip(seeds, results):
            picked = r["selection"]
            rows.append({"task": task, "seed": seed, "metric": metric,
                         "test-set rule": picked["test_selection"]["rule"],
                         "epoch (test-set)": picked["test_selection"]["epoch"],
                         "value (test-set)": picked["test_selection"]["metrics"][metric],
                         "epoch (last)": picked["last_epoch"]["epoch"],
                         "value (last)": picked["last_epoch"]["metrics"][metric]})
    return pd.DataFrame(rows).set_index(["task", "seed"])


def cost_table(runs: Mapping[str, Sequence[Mapping[str, Any]]]) -> pd.DataFrame:
    """Per task: updates, training and per-epoch scoring seconds per run (mean over seeds)."""
    rows = []
    for task, results in runs.items():
        costs = [r["cost"] for r in results]
        rows.append({"task": task, "training items": costs[0]["num_items"],
                     "updates per run": costs[0]["steps"],
                     "train s per run": sum(c["train_seconds"] for c in costs) / len(costs),
                     "scoring s per run": sum(c["eval_seconds"] for c in costs) / len(costs),
                     "runs": len(costs)})
    table = pd.DataFrame(rows).set_index("task")
    return table.round(1)


def write_results_file(work_dir: str | Path, zero: Mapping[str, Mapping[str, Any]],
                       runs: Mapping[str, Sequence[Mapping[str, Any]]], seeds: Sequence[int], *,
                       config: Mapping[str, Any]) -> Path:
    """``work_dir/results/13_finetuning.json``: per task the headline metric, the zero-shot
    value, each seed's two selections and cost, and the paper's numbers (key ``finetuned``, so
    the zero-shot scorecard, which reads ``benchmarks``, passes it by)."""
    records = {}
    for task, results in runs.items():
        metric = PRIMARY_METRIC[task]
        records[task] = {
            "headline": metric, "zero_shot": float(zero[task][metric]),
            "seeds": [{"seed": s, "selection": r["selection"], "cost": r["cost"]}
                      for s, r in zip(seeds, results)],
            "paper": {"zero_shot": paper_row(task)[2], "finetuned": FINETUNED[task]}}
    path = Path(work_dir) / "results" / f"{CHAPTER}.json"
    return write_results(path, {"chapter": CHAPTER, "finetuned": records}, config=dict(config))


def finetuned_scorecard(collected: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """The paper's fine-tuned rows beside ours, for the scorecard: one row per task and selection
    rule — ``table``, ``benchmark``, ``metric``, ``paper``, ``ours`` (mean over seeds and 95%
    interval), ``seeds``, ``selection`` (the rule's label), ``profile`` (the fine-tuning preset).
    ``collected`` is :func:`videoclip.book.scorecard.collect_results`' output; "not run" rows when the
    fine-tuning chapter has not run."""
    payload = collected.get(CHAPTER)
    rows = []
    for task in TEST_BENCHMARK:
        bench, table, _, paper = paper_row(task)
        base = {"table": table, "benchmark": bench, "metric": PRIMARY_METRIC[task], "paper": paper}
        record = (payload or {}).get("results", {}).get("finetuned", {}).get(task)
        if record is None:
            rows.append({**base, "ours": "not run"})
            continue
        preset = Path(payload.get("config", {}).get("finetune_preset", "?")).stem
        for rule in ("test_selection", "last_epoch"):
            values = [s["selection"][rule]["metrics"][base["metric"]] for s in record["seeds"]]
            rows.append({**base, "ours": _interval(values), "seeds": len(values),
                         "selection": record["seeds"][0]["selection"][rule]["label"],
                         "profile": preset})
    return pd.DataFrame(rows).reindex(columns=["table", "benchmark", "metric", "paper", "ours",
                                               "seeds", "selection", "profile"])
