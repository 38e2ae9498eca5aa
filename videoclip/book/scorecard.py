"""The book's scorecard: every number of the paper beside ours, and the predictions' verdicts.

Reads the chapters' results files (``work_dir/results/*.json``, written with
:func:`videoclip.provenance.write_results`):

* evaluation chapters (05–08) follow :mod:`videoclip.book.chapter`'s schema —
  ``results.benchmarks.<benchmark> = {headline, protocol, model, untrained, chance, oracle, paper}``;
* the ablations chapter (:data:`ABLATION_CHAPTER`) writes ``results.runs`` (one record per Table 7
  row and seed: ``row``, ``seed``, ``R@1``, ``R@5``, ``R@10``), ``results.groups`` (the retrieval
  stage of those runs per epoch: ``row``, ``seed``, ``epoch``, ``same_task_share``,
  ``random_groups_same_task_share``) and ``results.lag_sweep`` (``lag_scale``, ``seed``,
  ``sampler``, ``R@1``, ...).

The predictions of chapter 00 (:data:`PREDICTIONS`) are judged by fixed rules, each a function
below returning a :class:`Verdict` — "supported", "not supported" or "inconclusive" — with the
evidence in numbers. Where a rule compares intervals, they are Student-t intervals over training
seeds (:func:`videoclip.book.stats.mean_ci`) of seed-by-seed differences.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from videoclip._io import atomic_write_json
from videoclip.book.ablations import FULL, METRICS, lag_gains, paired_differences, summarize_runs
from videoclip.book.finetuning import CHAPTER as FINETUNE_CHAPTER
from videoclip.book.stats import interval_side, mean_ci
from videoclip.evaluation.registry import BENCHMARKS
from videoclip.paper import PAPER_ABLATIONS, ZERO_SHOT
from videoclip.provenance import read_results

__all__ = [
    "ABLATION_CHAPTER",
    "DISCRIMINATION_MARGIN",
    "INCONCLUSIVE",
    "NOT_SUPPORTED",
    "PREDICTIONS",
    "SUPPORTED",
    "Verdict",
    "ablation_scorecard",
    "ablation_tables",
    "benchmark_records",
    "collect_results",
    "describe_source",
    "evaluate_predictions",
    "invalid_ablation_rows",
    "load_collected",
    "non_discriminating",
    "predict_background",
    "predict_harder_groups",
    "predict_overlap_lag",
    "predict_retrieval_helps",
    "predict_small_choices",
    "predict_world_v2_harder",
    "predict_zero_shot",
    "save_collected",
    "zero_shot_scorecard",
]

ABLATION_CHAPTER = "09_ablations"
SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE = "supported", "not supported", "inconclusive"

#: Chapter 00's predictions (their short titles; the full text is in the overview chapter).
PREDICTIONS: dict[int, str] = {
    1: "Overlap helps when narration is loose (and less as the lag goes to zero)",
    2: "Retrieved groups are harder (more same-task pairs than random groups, every epoch)",
    3: "Harder groups help, a little (retrieval-augmented ≥ random groups in R@1)",
    4: "Zero-shot transfer works above chance everywhere, below the oracle",
    5: "Action segmentation is dominated by background (COIN ≈ all-background baseline)",
    6: "Small design choices are small (shared towers, [CLS] within the seed spread; "
       "first-32-s retrieval gives less coherent groups)",
    7: "Fine-tuning beats zero-shot on every task (last epoch, no test-set selection)",
}

#: How close (percentage points) COIN's frame accuracy must lie to the all-background baseline
#: for prediction 5 ("close to", fixed with the rule, before the scorecard read any result).
BACKGROUND_TOLERANCE = 5.0

#: A benchmark whose oracle does not beat its chance level (COIN: the all-background baseline) by
#: more than this many points cannot tell a model from chance under its protocol: it leaves the
#: verdicts, with the reason printed. A rule added after seeing results (design §13.3).
DISCRIMINATION_MARGIN = 5.0


@dataclass(frozen=True)
class Verdict:
    """A prediction's verdict and the numbers behind it."""

    prediction: int
    verdict: str  # SUPPORTED | NOT_SUPPORTED | INCONCLUSIVE
    evidence: str

    @property
    def title(self) -> str:
        return PREDICTIONS[self.prediction]


# ------------------------------------------------------------------------------ reading results


def _is_results(payload: Any) -> bool:
    """Whether ``payload`` has the shape of :func:`videoclip.provenance.write_results`'s files."""
    return isinstance(payload, dict) and "results" in payload


def collect_results(results_dir: str | Path) -> dict[str, dict[str, Any]]:
    """Every ``*.json`` results file of a directory, keyed by chapter (file stem), sorted.

    A missing directory gives ``{}`` (no chapter ran yet); an unreadable file raises naming it.
    """
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        return {}
    collected = {}
    for path in sorted(results_dir.glob("*.json")):
        try:
            payload = read_results(path)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not valid JSON ({err}); re-run the chapter that wrote it") from err
        if not _is_results(payload):
            raise ValueError(f"{path}: expected {{'results', 'config', 'provenance'}} "
                             "(videoclip.provenance.write_results); re-run the chapter that wrote it")
        collected[path.stem] = payload
    return collected


def save_collected(results_dir: str | Path, path: str | Path) -> Path:
    """Write every results file of ``results_dir`` (:func:`collect_results`) into one JSON file,
    keyed by chapter (the world-v1 appendix keeps a build's results this way: ``make world-v1``)."""
    collected = collect_results(results_dir)
    if not collected:
        raise FileNotFoundError(f"no results files in {Path(results_dir).resolve()}; run the chapters first")
    return atomic_write_json(path, collected, indent=1)


def load_collected(path: str | Path) -> dict[str, dict[str, Any]]:
    """The results saved by :func:`save_collected`, checked as :func:`collect_results` checks a file."""
    try:
        collected = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: cannot read the saved results ({err}); rewrite it with make world-v1") from err
    if not isinstance(collected, dict) or not all(map(_is_results, collected.values())):
        raise ValueError(f"{path}: expected {{chapter: {{'results', 'config', 'provenance'}}}} "
                         "(videoclip.book.scorecard.save_collected); rewrite it with make world-v1")
    return collected


def describe_source(payload: Mapping[str, Any]) -> dict[str, str]:
    """Where a results file's numbers come from: ``data`` (simulated world or real root), the
    pre-training preset (or the given model a chapter evaluated), and its provenance (git SHA,
    device, time)."""
    from videoclip.book.workspace import world_info

    config = payload.get("config", {})
    prov = payload.get("provenance", {})
    root = config.get("data_root")
    if root and (Path(root) / "world.json").is_file():
        info = world_info(root)
        data = f"simulated {info.get('preset', '?')} world (seed {info.get('seed', '?')})"
    elif config.get("simulated"):
        data = f"simulated world ({root}, no longer on disk)"
    else:
        data = f"real data ({root})" if root else "unknown data root"
    preset = config.get("pretrain_preset") or config.get("ablation_preset")
    pretrain = (f"given model ({config['model_dir']})" if config.get("model_dir")
                else Path(preset).stem if preset else "?")
    return {"data": data, "pretrain": pretrain,
            "git_sha": str(prov.get("git_sha", "?"))[:12], "device": str(prov.get("device", "?")),
            "time_utc": str(prov.get("time_utc", "?"))}


def benchmark_records(collected: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The benchmark entries of every evaluation chapter: ``{"chapter", "benchmark", "record"}``
    (``record`` in :func:`videoclip.book.chapter.benchmark_record`'s schema), in chapter order."""
    out = []
    for chapter, payload in collected.items():
        benchmarks = payload["results"].get("benchmarks")
        if not isinstance(benchmarks, Mapping):
            continue
        for benchmark, record in benchmarks.items():
            if not isinstance(record, Mapping) or "model" not in record:
                raise ValueError(f"results/{chapter}.json: benchmark {benchmark!r} has no 'model' "
                                 "results (schema: videoclip.book.chapter); re-run the chapter")
            out.append({"chapter": chapter, "benchmark": benchmark, "record": record})
    return out


def _level(levels: Mapping[str, Any] | None, benchmark: str, metric: str, *, chance: bool) -> float:
    """A chance (or oracle) level of ``metric``; COIN's chance is its all-background baseline."""
    if not levels:
        return np.nan
    key = metric
    if chance and benchmark in BENCHMARKS and BENCHMARKS[benchmark].headline == metric:
        key = BENCHMARKS[benchmark].chance_key
    value = levels.get(key)
    return float(value) if isinstance(value, (int, float)) else np.nan


def non_discriminating(record: Mapping[str, Any], benchmark: str) -> str:
    """Why a benchmark's headline cannot tell a model from chance, or "" when it can (or when
    there is no oracle to judge by: real data).

    It cannot when the oracle beats chance by :data:`DISCRIMINATION_MARGIN` points or less
    (design §13.3): on COIN the γ rule can label every second Outside even for the oracle.
    """
    headline = record.get("headline") or BENCHMARKS[benchmark].headline
    chance = _level(record.get("chance"), benchmark, headline, chance=True)
    oracle = _level(record.get("oracle"), benchmark, headline, chance=False)
    if np.isnan(oracle) or np.isnan(chance) or oracle - chance > DISCRIMINATION_MARGIN:
        return ""
    gamma = (record.get("oracle") or {}).get("gamma")
    return (f"non-discriminating: the oracle's {headline} {oracle:.1f} is within "
            f"{DISCRIMINATION_MARGIN:g} points of chance {chance:.1f}"
            + (f" (its γ = {gamma:.3f} labels every second below it Outside)" if gamma is not None else ""))


def zero_shot_scorecard(collected: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """Every zero-shot number of the paper (Tables 1–5) beside ours.

    One row per paper number and per chapter that measured it ("not run" when none did):
    ``table``, ``benchmark``, ``metric`` (the paper's names), ``paper``, ``ours``, ``untrained``,
    ``chance``, ``oracle``, ``status``, ``validity`` ("ok", or why the benchmark cannot
    discriminate: :func:`non_discriminating`), ``chapter``, ``protocol`` and the source
    (:func:`describe_source`).
    """
    records = benchmark_records(collected)
    rows = []
    for number in ZERO_SHOT:
        ours_bench, ours_metric = number.benchmark, number.metric
        base = {"table": number.table, "benchmark": number.paper_benchmark,
                "metric": number.paper_metric, "paper": number.value}
        found = [r for r in records if r["benchmark"] == ours_bench]
        if not found:
            rows.append({**base, "status": "not run"})
        for item in found:
            record = item["record"]
            ours = record["model"].get(ours_metric)
            untrained = (record.get("untrained") or {}).get(ours_metric)
            rows.append({**base, "ours": np.nan if ours is None else float(ours),
                         "untrained": np.nan if untrained is None else float(untrained),
                         "chance": _level(record.get("chance"), ours_bench, ours_metric, chance=True),
                         "oracle": _level(record.get("oracle"), ours_bench, ours_metric, chance=False),
                         "status": "ok" if ours is not None else f"no {ours_metric} in results",
                         "validity": non_discriminating(record, ours_bench) or "ok",
                         "chapter": item["chapter"], "protocol": record.get("protocol", ""),
                         **describe_source(collected[item["chapter"]])})
    columns = ["table", "benchmark", "metric", "paper", "ours", "untrained", "chance", "oracle",
               "status", "validity", "chapter", "protocol", "data", "pretrain", "git_sha", "device", "time_utc"]
    return pd.DataFrame(rows).reindex(columns=columns)


def ablation_tables(collected: Mapping[str, Mapping[str, Any]]
                    ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame] | None:
    """``(runs, groups, lag_sweep)`` of the ablations chapter, or None when it has not run."""
    payload = collected.get(ABLATION_CHAPTER)
    if payload is None:
        return None
    results = payload["results"]
    missing = [k for k in ("runs", "groups", "lag_sweep") if k not in results]
    if missing:
        raise ValueError(f"results/{ABLATION_CHAPTER}.json lacks {missing}; re-run chapter 09")
    return (pd.DataFrame(results["runs"]), pd.DataFrame(results["groups"]),
            pd.DataFrame(results["lag_sweep"]))


def invalid_ablation_rows(collected: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """``{row: reason}`` of the Table 7 rows the ablations chapter marked invalid on this
    backbone (``results.invalid_rows``, :func:`videoclip.book.ablations.invalid_rows`)."""
    payload = collected.get(ABLATION_CHAPTER)
    return dict(payload["results"].get("invalid_rows", {})) if payload else {}


def ablation_scorecard(collected: Mapping[str, Mapping[str, Any]], *, level: float = 0.95) -> pd.DataFrame:
    """Table 7 beside ours: one row per ablation and metric with the paper's number, our mean
    over seeds with its interval (``status`` "not run" without the ablations chapter) and its
    ``validity`` ("ok", or why the row is invalid on this backbone)."""
    tables = ablation_tables(collected)
    paper = pd.DataFrame([{"row": row, "metric": metric, "paper": values[i]}
                          for row, values in PAPER_ABLATIONS.items() for i, metric in enumerate(METRICS)])
    if tables is None or tables[0].empty:
        return paper.assign(status="not run")
    summary = summarize_runs(tables[0], level=level).drop(columns="paper")
    merged = paper.merge(summary, on=["row", "metric"], how="left")
    merged["status"] = np.where(merged["n"].notna(), "ok", "not run")
    invalid = invalid_ablation_rows(collected)
    merged["validity"] = [invalid.get(row, "ok") for row in merged.row]
    source = describe_source(collected[ABLATION_CHAPTER])
    return merged.assign(**{k: np.where(merged.status == "ok", v, "") for k, v in source.items()})


# ------------------------------------------------------------------------------ prediction rules


def _fmt(ci: Mapping[str, float]) -> str:
    n = int(ci["n"])
    if np.isnan(ci["ci_low"]):
        return f"{ci['mean']:+.2f} (n={n}, no interval)"
    return f"{ci['mean']:+.2f} [{ci['ci_low']:+.2f}, {ci['ci_high']:+.2f}] (n={n})"


def _sign(ci: Mapping[str, float]) -> str:
    """"above" / "below" when the interval excludes 0, else "includes 0" (or "no interval")."""
    side = interval_side(ci["ci_low"], ci["ci_high"])
    return {"none": "no interval", "includes": "includes 0"}.get(side, side)


def predict_overlap_lag(sweep: pd.DataFrame, *, level: float = 0.95) -> Verdict:
    """Prediction 1. With ``sweep`` the YouCook2 R@1 of overlap and exact runs (both with random
    groups) per lag scale and seed: **supported** when the gain at the largest lag has an
    interval above 0 *and* the seed-by-seed change of the gain from the smallest to the largest
    lag has an interval above 0; **not supported** when either interval lies below 0;
    **inconclusive** otherwise (or with fewer than two lags, or one seed)."""
    if sweep.empty or sweep.lag_scale.nunique() < 2:
        return Verdict(1, INCONCLUSIVE, "needs runs at two lag scales or more")
    per_seed, summary = lag_gains(sweep, level=level)
    low, high = summary.lag_scale.min(), summary.lag_scale.max()
    at_high = summary.set_index("lag_scale").loc[high]
    wide = per_seed.pivot(index="seed", columns="lag_scale", values="gain")[[low, high]].dropna()
    trend = mean_ci((wide[high] - wide[low]).to_numpy(), level) if len(wide) else None
    evidence = (f"gain of overlap over exact in R@1 at lag×{high:g}: {_fmt(at_high)}; "
                f"change of the gain from lag×{low:g} to lag×{high:g}: "
                + (_fmt(trend) if trend else "no seed at both lags"))
    signs = {_sign(at_high), _sign(trend) if trend else "no interval"}
    if "below" in signs:
        return Verdict(1, NOT_SUPPORTED, evidence)
    if signs == {"above"}:
        return Verdict(1, SUPPORTED, evidence)
    return Verdict(1, INCONCLUSIVE, evidence)


def predict_harder_groups(groups: pd.DataFrame) -> Verdict:
    """Prediction 2. **supported** when, in every epoch of every seed of the full model, the
    retrieved groups' same-task share exceeds that of random groups of the same videos;
    **not supported** when it does not in some epoch; **inconclusive** without task labels."""
    needed = {"row", "seed", "epoch", "same_task_share", "random_groups_same_task_share"}
    if groups.empty or not needed <= set(groups.columns):
        return Verdict(2, INCONCLUSIVE, "no group statistics (the data root has no task labels?)")
    full = groups[groups.row == FULL].dropna(subset=["same_task_share", "random_groups_same_task_share"])
    if full.empty:
        return Verdict(2, INCONCLUSIVE, "no group statistics of the full model's runs")
    wins = full.same_task_share > full.random_groups_same_task_share
    evidence = (f"retrieved groups beat random groups in {int(wins.sum())} of {len(full)} epochs "
                f"(seeds × epochs); mean same-task share {100 * full.same_task_share.mean():.1f}% vs "
                f"{100 * full.random_groups_same_task_share.mean():.1f}%")
    return Verdict(2, SUPPORTED if wins.all() else NOT_SUPPORTED, evidence)


def predict_retrieval_helps(runs: pd.DataFrame, *, level: float = 0.95) -> Verdict:
    """Prediction 3. The seed-by-seed difference full − "w/o retrieval" in YouCook2 R@1:
    **supported** when its interval lies above 0, **not supported** when below 0,
    **inconclusive** when it includes 0 (the prediction expected overlapping intervals at toy
    scale; the rule does not count that as support)."""
    if not {FULL, "w/o retrieval"} <= set(runs.get("row", [])):
        return Verdict(3, INCONCLUSIVE, "needs runs of the full model and of 'w/o retrieval'")
    diff = paired_differences(runs[runs.row.isin([FULL, "w/o retrieval"])], level=level).iloc[0]
    ci = {"mean": -diff["mean"], "ci_low": -diff["ci_high"], "ci_high": -diff["ci_low"], "n": diff["n"]}
    evidence = f"R@1 of full − w/o retrieval: {_fmt(ci)} points"
    sign = _sign(ci)
    return Verdict(3, SUPPORTED if sign == "above" else NOT_SUPPORTED if sign == "below" else INCONCLUSIVE,
                   evidence)


def predict_small_choices(runs: pd.DataFrame, groups: pd.DataFrame, *, level: float = 0.95,
                          invalid: Mapping[str, str] | None = None) -> Verdict:
    """Prediction 6, three parts. (a, b) shared towers and [CLS] pooling: the absolute mean
    seed-by-seed change of R@1 is smaller than the seed-to-seed spread (the standard deviation of
    the full model's R@1 over seeds) — else the part fails. (c) first 32 s for retrieval: the
    seed-by-seed difference of the same-task share of the groups (mean over epochs), first-32-s
    minus full, has an interval below 0 (holds), above 0 (fails), or including 0 (unclear).
    **supported** when all parts hold, **not supported** when one fails, else **inconclusive**.
    The evidence names runs that collapsed (:func:`videoclip.book.ablations.training_outcome`).
    A row in ``invalid`` (row → reason: it starts collapsed on this backbone) makes its part
    "unclear", not "fails" — a rule changed after seeing results (design §13.4)."""
    parts, evidence = [], []
    invalid = invalid or {}
    full = runs[runs.row == FULL] if "row" in runs else runs.iloc[0:0]
    spread = mean_ci(full["R@1"].to_numpy(), level)["sd"] if len(full) else np.nan
    for row, name in (("shared video/text transformer", "shared towers"),
                      ("[CLS] instead of mean pooling", "[CLS] pooling")):
        if row not in set(runs.get("row", [])) or not len(full):
            parts.append("unclear")
            evidence.append(f"{name}: not run")
            continue
        if row in invalid:
            parts.append("unclear")
            evidence.append(f"{name}: counted as unclear, {invalid[row]} (rule changed after seeing "
                            "results, design §13.4)")
            continue
        diff = paired_differences(runs[runs.row.isin([FULL, row])], level=level).iloc[0]
        if np.isnan(spread):
            parts.append("unclear")
        else:
            parts.append("holds" if abs(diff["mean"]) < spread else "fails")
        collapsed = int(runs[runs.row == row].get("collapsed", pd.Series(dtype=bool)).sum())
        evidence.append(f"{name}: ΔR@1 {diff['mean']:+.2f} vs seed spread (sd) {spread:.2f}"
                        + (f" ({collapsed} of {diff['n']} seeds collapsed to the chance loss)"
                           if collapsed else ""))
    needed = {"row", "seed", "same_task_share"}
    first = "use first 32 sec for retrieval"
    if needed <= set(groups.columns) and {FULL, first} <= set(groups.row):
        per_run = groups.dropna(subset=["same_task_share"]).groupby(["row", "seed"]).same_task_share.mean()
        wide = per_run.unstack("row")[[FULL, first]].dropna()
        if len(wide):
            ci = mean_ci(100 * (wide[first] - wide[FULL]).to_numpy(), level)
            sign = _sign(ci)
            parts.append("holds" if sign == "below" else "fails" if sign == "above" else "unclear")
            evidence.append(f"first 32 s − whole video, same-task share of groups: {_fmt(ci)} points")
        else:
            parts.append("unclear")
            evidence.append("first 32 s: no seed shared with the full model")
    else:
        parts.append("unclear")
        evidence.append("first 32 s: no group statistics")
    verdict = (NOT_SUPPORTED if "fails" in parts else SUPPORTED if set(parts) == {"holds"}
               else INCONCLUSIVE)
    return Verdict(6, verdict, "; ".join(evidence))


def predict_zero_shot(records: list[dict[str, Any]]) -> Verdict:
    """Prediction 4. For each benchmark's headline metric: the model's number must exceed the
    chance level (COIN: the all-background baseline) and stay below the oracle (where the world
    has one). Point estimates: the evaluation chapters give the intervals. A benchmark that cannot
    discriminate (:func:`non_discriminating`; a rule added after seeing results) is excluded, with
    its reason in the evidence. **not supported** when one benchmark fails, **supported** when
    every other benchmark ran and passes, else **inconclusive**."""
    failures, passes, excluded, seen = [], [], [], set()
    for item in records:
        record, bench = item["record"], item["benchmark"]
        headline = record.get("headline") or BENCHMARKS[bench].headline
        ours = record["model"].get(headline)
        chance = _level(record.get("chance"), bench, headline, chance=True)
        oracle = _level(record.get("oracle"), bench, headline, chance=False)
        if ours is None or np.isnan(chance):
            continue
        seen.add(bench)
        reason = non_discriminating(record, bench)
        if reason:
            excluded.append(f"{bench} ({reason})")
            continue
        text = f"{bench} {headline} {ours:.1f} (chance {chance:.1f}, oracle {oracle:.1f})"
        ok = ours > chance and (np.isnan(oracle) or ours < oracle)
        (passes if ok else failures).append(text)
    missing = [b for b in BENCHMARKS if b not in seen]
    parts = [f"{label}: {'; '.join(items)}" for label, items in
             (("not above chance or not below the oracle", failures), ("in range", passes),
              ("excluded", excluded), ("not run", missing)) if items]
    evidence = " | ".join(parts)
    if failures:
        return Verdict(4, NOT_SUPPORTED, evidence)
    return Verdict(4, SUPPORTED if passes and not missing else INCONCLUSIVE, evidence)


def predict_background(records: list[dict[str, Any]], *, tolerance: float = BACKGROUND_TOLERANCE) -> Verdict:
    """Prediction 5. COIN frame accuracy within ``tolerance`` points of the all-background
    baseline of the same seconds: **supported**; further away: **not supported**; COIN not run, or
    unable to discriminate (:func:`non_discriminating`: then the gap is a property of the world
    and the protocol, not of the model): **inconclusive**."""
    coin = [item["record"] for item in records if item["benchmark"] == "coin"]
    if not coin:
        return Verdict(5, INCONCLUSIVE, "COIN was not run")
    reason = non_discriminating(coin[-1], "coin")
    model = coin[-1]["model"]
    baseline = model.get("background_baseline", _level(coin[-1].get("chance"), "coin", "frame_accuracy",
                                                       chance=True))
    gap = model["frame_accuracy"] - baseline
    evidence = (f"frame accuracy {model['frame_accuracy']:.1f} vs all-background {baseline:.1f} "
                f"({gap:+.1f} points; 'close' = within ±{tolerance:g})")
    if reason:
        return Verdict(5, INCONCLUSIVE, f"{evidence}; COIN {reason}: the gap is decided by the world "
                                        "and the protocol, not by the model")
    return Verdict(5, SUPPORTED if abs(gap) <= tolerance else NOT_SUPPORTED, evidence)


def predict_finetuning(collected: Mapping[str, Mapping[str, Any]], *, level: float = 0.95) -> Verdict:
    """Prediction 7. Per fine-tuning task, the headline metric after the last epoch (the honest
    rule: no selection on test data) over the seeds, against the same model's zero-shot number on
    the same test set: the per-seed gains' Student-t interval. **not supported** when one task's
    interval lies below zero (fine-tuning hurts), **supported** when every task's lies above,
    else **inconclusive** (also when the fine-tuning chapter has not run)."""
    tasks = (collected.get(FINETUNE_CHAPTER) or {}).get("results", {}).get("finetuned")
    if not tasks:
        return Verdict(7, INCONCLUSIVE, f"not run: no results/{FINETUNE_CHAPTER}.json")
    sides, parts = [], []
    for task, record in tasks.items():
        metric = record["headline"]
        gains = [s["selection"]["last_epoch"]["metrics"][metric] - record["zero_shot"]
                 for s in record["seeds"]]
        ci = mean_ci(gains, level=level)
        side = interval_side(ci["ci_low"], ci["ci_high"])
        sides.append(side)
        parts.append(f"{task} {metric} {record['zero_shot']:.1f} → gain {_fmt(ci)} ({side} 0)")
    evidence = "; ".join(parts)
    if "below" in sides:
        return Verdict(7, NOT_SUPPORTED, evidence)
    return Verdict(7, SUPPORTED if set(sides) == {"above"} else INCONCLUSIVE, evidence)


def evaluate_predictions(collected: Mapping[str, Mapping[str, Any]], *, level: float = 0.95) -> pd.DataFrame:
    """All seven predictions' verdicts from the results files: ``prediction``, ``title``,
    ``verdict``, ``evidence`` (the ablation ones "inconclusive" when chapter 09 has not run)."""
    records = benchmark_records(collected)
    verdicts = [predict_zero_shot(records), predict_background(records)]
    tables = ablation_tables(collected)
    if tables is None:
        verdicts += [Verdict(n, INCONCLUSIVE, f"not run: no results/{ABLATION_CHAPTER}.json")
                     for n in (1, 2, 3, 6)]
    else:
        runs, groups, sweep = tables
        verdicts += [predict_overlap_lag(sweep, level=level), predict_harder_groups(groups),
                     predict_retrieval_helps(runs, level=level),
                     predict_small_choices(runs, groups, level=level,
                                           invalid=invalid_ablation_rows(collected))]
    verdicts.append(predict_finetuning(collected, level=level))
    rows = [{"prediction": v.prediction, "title": v.title, "verdict": v.verdict, "evidence": v.evidence}
            for v in sorted(verdicts, key=lambda v: v.prediction)]
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------ world v1 against v2

#: World v2's prediction 4 (design §13.2): these two fall in v2 ...
V2_HARDER = (("YouCook2", "R@1"), ("CrossTask", "recall"))
#: ... and these two change less than either of them.
V2_STEADIER = (("MSR-VTT", "R@1"), ("DiDeMo", "R@1"))


def predict_world_v2_harder(v2: pd.DataFrame, v1: pd.DataFrame) -> tuple[str, str]:
    """World v2's prediction 4 (design §13.2), from two :func:`zero_shot_scorecard` tables:
    ``(verdict, evidence)``.

    Supported when YouCook2 R@1 and CrossTask recall are both lower in v2 than in v1 and MSR-VTT's
    and DiDeMo's R@1 each move (either way) by less than the smaller of those two drops; not
    supported otherwise. One trained model per world, so there is no interval: any drop counts.
    Inconclusive when a number is missing from either table.
    """
    def ours(table: pd.DataFrame, key: tuple[str, str]) -> float | None:
        row = table[(table.benchmark == key[0]) & (table.metric == key[1])]
        return float(row.ours.iloc[0]) if len(row) and "ours" in row and pd.notna(row.ours.iloc[0]) else None

    values = {key: (ours(v1, key), ours(v2, key)) for key in V2_HARDER + V2_STEADIER}
    missing = [f"{b} {m}" for (b, m), pair in values.items() if None in pair]
    if missing:
        return INCONCLUSIVE, f"not measured in both worlds: {', '.join(missing)}"
    evidence = "; ".join(f"{b} {m} {old:.1f} → {new:.1f}" for (b, m), (old, new) in values.items())
    drops = [values[k][0] - values[k][1] for k in V2_HARDER]
    moves = [abs(values[k][1] - values[k][0]) for k in V2_STEADIER]
    supported = min(drops) > 0 and max(moves) < min(drops)
    return (SUPPORTED if supported else NOT_SUPPORTED), f"{evidence} (v1 → v2, one model each, no interval)"
