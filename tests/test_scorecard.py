"""Tests of the ablation summaries, the t-interval, the results collector and the prediction rules."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from videoclip.book import scorecard
from videoclip.book.ablations import (
    ABLATIONS,
    FULL,
    evaluate_run,
    lag_gains,
    overrides_of,
    paired_differences,
    plan_runs,
    retrieval_log,
    summarize_runs,
    training_outcome,
)
from videoclip.book.stats import mean_ci
from videoclip.paper import PAPER_ABLATIONS, PAPER_ZERO_SHOT, ZERO_SHOT
from videoclip.provenance import write_results
from videoclip.train import PretrainConfig

# ----------------------------------------------------------------------------- mean_ci


@pytest.mark.parametrize(("n", "t"), [(2, 12.706), (3, 4.303), (5, 2.776), (11, 2.228)])
def test_mean_ci_uses_the_student_t_table(n, t):
    values = np.arange(n, dtype=float)
    ci = mean_ci(values)
    half = t * values.std(ddof=1) / np.sqrt(n)
    assert ci["mean"] == pytest.approx(values.mean())
    assert ci["ci_low"] == pytest.approx(values.mean() - half, abs=1e-3 * half)  # table: 3 decimals
    assert ci["ci_high"] == pytest.approx(values.mean() + half, abs=1e-3 * half)
    assert ci["n"] == n


def test_mean_ci_covers_the_true_mean_about_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    draws = rng.normal(1.0, 2.0, size=(2000, 3))
    covered = [(c := mean_ci(d))["ci_low"] <= 1.0 <= c["ci_high"] for d in draws]
    assert 0.93 < np.mean(covered) < 0.97


def test_mean_ci_of_one_value_has_no_interval_and_bad_input_raises():
    ci = mean_ci([3.0])
    assert ci["mean"] == 3.0 and np.isnan(ci["ci_low"]) and np.isnan(ci["sd"])
    with pytest.raises(ValueError, match="finite"):
        mean_ci([1.0, np.nan])
    with pytest.raises(ValueError, match="level"):
        mean_ci([1.0, 2.0], level=95)


# ----------------------------------------------------------------------------- ablations


def test_every_table7_row_has_overrides_that_the_config_accepts():
    assert list(ABLATIONS) == list(PAPER_ABLATIONS)
    for row in ABLATIONS:
        cfg = PretrainConfig.from_dict(overrides_of(row))  # raises on a typo or a bad value
        for key, value in ABLATIONS[row].items():
            assert cfg.flat()[key] == value
    with pytest.raises(ValueError, match="undo the ablation"):
        overrides_of("w/o retrieval", {"grouping": "retrieval"})
    assert overrides_of("retrieve k", {"max_videos": 5}) == {"max_videos": 5, "grouping": "nearest"}


def _runs(values: dict[str, list[float]]) -> pd.DataFrame:
    rows = []
    for row, r1 in values.items():
        for seed, v in enumerate(r1):
            rows.append({"row": row, "seed": seed, "R@1": v, "R@5": 2 * v, "R@10": 3 * v})
    return pd.DataFrame(rows)


def test_summarize_runs_matches_a_naive_mean_and_keeps_table7_order():
    runs = _runs({"retrieve k": [1.0, 2.0, 6.0], FULL: [4.0, 5.0, 6.0]})
    summary = summarize_runs(runs)
    assert list(summary.row.unique()) == [FULL, "retrieve k"]
    r10 = summary[(summary.row == "retrieve k") & (summary.metric == "R@10")].iloc[0]
    assert r10["mean"] == pytest.approx(9.0)
    assert r10["paper"] == PAPER_ABLATIONS["retrieve k"][2]
    assert r10["ci_low"] < 9.0 < r10["ci_high"]
    with pytest.raises(KeyError, match="not in Table 7"):
        summarize_runs(_runs({"bogus": [1.0]}))
    with pytest.raises(ValueError, match="repeated"):
        summarize_runs(pd.concat([runs, runs]))


def test_paired_differences_are_per_seed_differences():
    runs = _runs({FULL: [10.0, 20.0, 30.0], "w/o retrieval": [8.0, 17.75, 28.25]})
    diff = paired_differences(runs).iloc[0]
    assert diff["per_seed"] == [-2.0, -2.25, -1.75]
    assert diff["mean"] == pytest.approx(-2.0)
    assert diff["ci_high"] < 0  # paired: the seed effect (10/20/30) does not widen the interval
    assert diff["paper"] == pytest.approx(18.5 - 22.7)
    unpaired = runs.assign(seed=np.where(runs.row == FULL, runs.seed, runs.seed + 10))
    with pytest.raises(ValueError, match="share no seed"):
        paired_differences(unpaired)


def _sweep(gains: dict[float, list[float]]) -> pd.DataFrame:
    rows = []
    for scale, per_seed in gains.items():
        for seed, g in enumerate(per_seed):
            rows.append({"lag_scale": scale, "seed": seed, "sampler": "exact", "R@1": 10.0 + seed})
            rows.append({"lag_scale": scale, "seed": seed, "sampler": "overlap", "R@1": 10.0 + seed + g})
    return pd.DataFrame(rows)


def test_lag_gains_pairs_overlap_and_exact_by_seed():
    per_seed, summary = lag_gains(_sweep({2.0: [3.0, 4.0, 5.0], 0.0: [0.0, 1.0, -1.0]}))
    assert list(summary.lag_scale) == [0.0, 2.0]
    assert summary.set_index("lag_scale").loc[2.0, "mean"] == pytest.approx(4.0)
    assert per_seed[per_seed.lag_scale == 0.0].gain.tolist() == [0.0, 1.0, -1.0]


def test_evaluate_run_refuses_an_unfinished_run(tmp_path):
    (tmp_path / "log.jsonl").write_text("")
    with pytest.raises(FileNotFoundError, match="no finished model"):
        evaluate_run(tmp_path, tmp_path)


def test_retrieval_log_reads_the_retrieval_rows(tmp_path):
    lines = [{"type": "start"}, {"type": "retrieval", "epoch": 0, "same_task_share": 0.5},
             {"type": "step", "loss": 1.0}, {"type": "retrieval", "epoch": 1, "same_task_share": 0.6}]
    (tmp_path / "log.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    assert retrieval_log(tmp_path).same_task_share.tolist() == [0.5, 0.6]
    with pytest.raises(FileNotFoundError, match="log.jsonl"):
        retrieval_log(tmp_path / "missing")


def _write_steps(run_dir, losses, chance=8.318):
    lines = [{"type": "start"}] + [{"type": "step", "loss": x, "chance_loss": chance} for x in losses]
    (run_dir / "log.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")


def test_training_outcome_flags_a_run_stuck_at_the_chance_loss(tmp_path):
    _write_steps(tmp_path, [12.1, 9.0, 7.9, 7.6, 7.5, 7.6, 7.4])
    learned = training_outcome(tmp_path)
    assert learned["first_loss"] == 12.1 and learned["final_loss"] == pytest.approx(7.6)
    assert learned["chance_loss"] == pytest.approx(8.318) and not learned["collapsed"]
    _write_steps(tmp_path, [8.76, 8.5, 8.33, 8.32, 8.33, 8.318, 8.32])
    assert training_outcome(tmp_path)["collapsed"]
    (tmp_path / "log.jsonl").write_text(json.dumps({"type": "step", "loss": 8.0}) + "\n")
    with pytest.raises(ValueError, match="older version.*delete the run directory"):
        training_outcome(tmp_path)


# ----------------------------------------------------------------------------- prediction rules


def test_prediction_1_rule():
    supported = scorecard.predict_overlap_lag(_sweep({0.0: [0.0, 0.5, -0.5], 2.0: [3.0, 4.0, 5.0]}))
    assert supported.verdict == scorecard.SUPPORTED
    reversed_ = scorecard.predict_overlap_lag(_sweep({0.0: [3.0, 4.0, 5.0], 2.0: [-3.0, -4.0, -5.0]}))
    assert reversed_.verdict == scorecard.NOT_SUPPORTED
    noisy = scorecard.predict_overlap_lag(_sweep({0.0: [0.0, 1.0, -1.0], 2.0: [2.0, -1.0, 1.0]}))
    assert noisy.verdict == scorecard.INCONCLUSIVE
    one_seed = scorecard.predict_overlap_lag(_sweep({0.0: [0.0], 2.0: [5.0]}))
    assert one_seed.verdict == scorecard.INCONCLUSIVE and "no interval" in one_seed.evidence


def test_prediction_3_rule_follows_the_interval_of_the_paired_difference():
    def verdict(full, random):
        return scorecard.predict_retrieval_helps(_runs({FULL: full, "w/o retrieval": random})).verdict

    assert verdict([11.0, 21.0, 31.0], [10.0, 20.0, 30.0]) == scorecard.SUPPORTED
    assert verdict([10.0, 20.0, 30.0], [11.0, 21.0, 31.0]) == scorecard.NOT_SUPPORTED
    assert verdict([11.0, 19.0, 30.5], [10.0, 20.0, 30.0]) == scorecard.INCONCLUSIVE
    assert scorecard.predict_retrieval_helps(_runs({FULL: [1.0]})).verdict == scorecard.INCONCLUSIVE


def _groups(full: list[float], first: list[float], random: float = 0.1) -> pd.DataFrame:
    rows = []
    for row, shares in ((FULL, full), ("use first 32 sec for retrieval", first)):
        for seed, share in enumerate(shares):
            rows.append({"row": row, "seed": seed, "epoch": 0, "same_task_share": share,
                         "random_groups_same_task_share": random})
    return pd.DataFrame(rows)


def test_prediction_2_rule_needs_every_epoch():
    assert scorecard.predict_harder_groups(_groups([0.3, 0.4], [0.2, 0.2])).verdict == scorecard.SUPPORTED
    assert scorecard.predict_harder_groups(_groups([0.3, 0.05], [0.2, 0.2])).verdict == scorecard.NOT_SUPPORTED
    assert scorecard.predict_harder_groups(pd.DataFrame()).verdict == scorecard.INCONCLUSIVE


def test_prediction_6_rule_combines_its_parts():
    runs = _runs({FULL: [10.0, 14.0, 12.0], "shared video/text transformer": [10.5, 14.0, 12.0],
                  "[CLS] instead of mean pooling": [9.5, 14.0, 12.5]})
    coherent = _groups([0.5, 0.6, 0.55], [0.3, 0.35, 0.3])
    assert scorecard.predict_small_choices(runs, coherent).verdict == scorecard.SUPPORTED
    big = runs.assign(**{"R@1": np.where(runs.row == "[CLS] instead of mean pooling", runs["R@1"] - 10,
                                         runs["R@1"])})
    assert scorecard.predict_small_choices(big, coherent).verdict == scorecard.NOT_SUPPORTED
    more_coherent = _groups([0.3, 0.35, 0.3], [0.5, 0.6, 0.55])
    assert scorecard.predict_small_choices(runs, more_coherent).verdict == scorecard.NOT_SUPPORTED
    unclear = _groups([0.5, 0.3, 0.4], [0.4, 0.4, 0.4])
    assert scorecard.predict_small_choices(runs, unclear).verdict == scorecard.INCONCLUSIVE


def _record(bench: str, headline: str, ours: float, chance: dict, oracle: dict | None, **model) -> dict:
    return {"headline": headline, "protocol": "p", "model": {headline: ours, **model},
            "untrained": {headline: chance.get(headline, 0.0)}, "chance": chance, "oracle": oracle,
            "paper": {}}


def _all_records(youcook_r1: float = 10.0) -> dict[str, dict]:
    return {
        "youcook2": _record("youcook2", "R@1", youcook_r1, {"R@1": 2.0}, {"R@1": 60.0}),
        "msrvtt": _record("msrvtt", "R@1", 8.0, {"R@1": 5.0}, {"R@1": 50.0}),
        "didemo": _record("didemo", "rank@1", 20.0, {"rank@1": 13.0}, {"rank@1": 40.0}),
        "msrvtt_mc": _record("msrvtt_mc", "accuracy", 40.0, {"accuracy": 20.0}, {"accuracy": 90.0}),
        "coin": _record("coin", "frame_accuracy", 57.0, {"all_background": 55.0}, {"frame_accuracy": 70.0},
                        background_baseline=55.0),
        "crosstask": _record("crosstask", "recall", 15.0, {"recall": 8.0}, {"recall": 50.0}),
    }


def _items(records: dict[str, dict]) -> list[dict]:
    return [{"chapter": "x", "benchmark": b, "record": r} for b, r in records.items()]


def test_prediction_4_and_5_rules():
    records = _all_records()
    assert scorecard.predict_zero_shot(_items(records)).verdict == scorecard.SUPPORTED
    assert scorecard.predict_zero_shot(_items(_all_records(youcook_r1=1.0))).verdict == scorecard.NOT_SUPPORTED
    partial = {k: v for k, v in records.items() if k != "crosstask"}
    verdict = scorecard.predict_zero_shot(_items(partial))
    assert verdict.verdict == scorecard.INCONCLUSIVE and "not run: crosstask" in verdict.evidence
    assert scorecard.predict_background(_items(records)).verdict == scorecard.SUPPORTED
    far = {**records, "coin": _record("coin", "frame_accuracy", 75.0, {"all_background": 55.0}, None,
                                      background_baseline=55.0)}
    assert scorecard.predict_background(_items(far)).verdict == scorecard.NOT_SUPPORTED
    assert scorecard.predict_background(_items(partial)).verdict == scorecard.SUPPORTED
    assert scorecard.predict_background([]).verdict == scorecard.INCONCLUSIVE


# ----------------------------------------------------------------------------- reading results


def test_scorecard_reads_results_files_and_says_not_run(tmp_path):
    results = tmp_path / "results"
    assert scorecard.collect_results(results) == {}
    records = _all_records()
    write_results(results / "05_text_video_retrieval.json",
                  {"chapter": "05", "benchmarks": {"youcook2": records["youcook2"]}},
                  config={"data_root": str(tmp_path / "gone"), "simulated": True,
                          "pretrain_preset": "../params/pretrain/toy.yaml"})
    collected = scorecard.collect_results(results)
    table = scorecard.zero_shot_scorecard(collected)
    assert len(table) == len(PAPER_ZERO_SHOT) == len(ZERO_SHOT)
    youcook = table[(table.benchmark == "YouCook2") & (table.metric == "R@1")].iloc[0]
    assert (youcook.ours, youcook.chance, youcook.oracle, youcook.paper) == (10.0, 2.0, 60.0, 22.7)
    assert youcook.status == "ok" and youcook.pretrain == "toy" and "simulated" in youcook.data
    assert youcook.git_sha != "?"
    assert set(table[table.benchmark != "YouCook2"].status) == {"not run"}
    ablations = scorecard.ablation_scorecard(collected)
    assert set(ablations.status) == {"not run"} and len(ablations) == 3 * len(PAPER_ABLATIONS)
    verdicts = scorecard.evaluate_predictions(collected)
    assert list(verdicts.prediction) == [1, 2, 3, 4, 5, 6, 7]
    assert set(verdicts.verdict) == {scorecard.INCONCLUSIVE}


def test_scorecard_reads_the_ablation_chapter(tmp_path):
    runs = _runs({FULL: [10.0, 14.0, 12.0], "w/o retrieval": [8.0, 12.0, 10.5]})
    groups = _groups([0.5, 0.6, 0.55], [0.3, 0.35, 0.3])
    sweep = _sweep({0.0: [0.0, 0.5, -0.5], 2.0: [3.0, 4.0, 5.0]})
    write_results(tmp_path / "09_ablations.json",
                  {"runs": runs.to_dict("records"), "groups": groups.to_dict("records"),
                   "lag_sweep": sweep.to_dict("records")},
                  config={"data_root": "/real", "ablation_preset": "toy_ablation.yaml"})
    collected = scorecard.collect_results(tmp_path)
    table = scorecard.ablation_scorecard(collected)
    full = table[(table.row == FULL) & (table.metric == "R@1")].iloc[0]
    assert full["mean"] == pytest.approx(12.0) and full.status == "ok" and full.data == "real data (/real)"
    assert table[table.row == "retrieve k"].status.eq("not run").all()
    verdicts = scorecard.evaluate_predictions(collected).set_index("prediction").verdict
    assert verdicts[1] == scorecard.SUPPORTED and verdicts[2] == scorecard.SUPPORTED
    assert verdicts[3] == scorecard.SUPPORTED and verdicts[4] == scorecard.INCONCLUSIVE


def test_a_broken_results_file_is_named(tmp_path):
    (tmp_path / "07_action_segmentation.json").write_text("{not json")
    with pytest.raises(ValueError, match="07_action_segmentation.json"):
        scorecard.collect_results(tmp_path)
    (tmp_path / "07_action_segmentation.json").write_text(json.dumps({"x": 1}))
    with pytest.raises(ValueError, match="write_results"):
        scorecard.collect_results(tmp_path)


def test_saved_results_round_trip_and_bad_files_are_named(tmp_path):
    results = tmp_path / "results"
    with pytest.raises(FileNotFoundError, match="no results files"):
        scorecard.save_collected(results, tmp_path / "saved.json")
    write_results(results / "05_text_video_retrieval.json", {"chapter": "05", "benchmarks": {}},
                  config={"pretrain_preset": "toy.yaml"})
    saved = scorecard.save_collected(results, tmp_path / "saved.json")
    assert scorecard.load_collected(saved) == scorecard.collect_results(results)
    saved.write_text(json.dumps({"05_text_video_retrieval": {"x": 1}}))
    with pytest.raises(ValueError, match="saved.json.*save_collected"):
        scorecard.load_collected(saved)
    saved.write_text("{broken")
    with pytest.raises(ValueError, match="saved.json: cannot read"):
        scorecard.load_collected(saved)


class ConstantModel:
    """Every clip and every text embeds to the same vector: a collapsed model."""

    def encode_video(self, video, vmask):
        return torch.ones(len(video), 4)

    def encode_texts(self, texts):
        return torch.ones(len(texts), 4)


@pytest.mark.slow
def test_embedding_spread_is_zero_for_a_collapsed_model_only(tmp_path):
    from videoclip.book.ablations import embedding_spread, initial_spread
    from videoclip.book.workspace import ensure_world

    world = ensure_world(tmp_path, preset="smoke", seed=0)
    assert embedding_spread(ConstantModel(), world, num_pairs=16) == {"video": 0.0, "text": 0.0}
    preset = Path(__file__).resolve().parent.parent / "params/pretrain/smoke.yaml"
    start = initial_spread(world, preset=preset, row=FULL, num_pairs=16)
    assert start["video"] > 0.01 and start["text"] > 0.01


def test_plan_runs_trains_a_run_both_tables_need_once(tmp_path):
    main, other = tmp_path / "main", tmp_path / "lag2"
    jobs = plan_runs(main, "toy", [0, 1], sweep_worlds={1.0: main, 2.0: other}, sweep_preset="toy")
    assert len(jobs) == len(ABLATIONS) * 2 + 2 * 2  # the default world's sweep runs are Table 7's
    assert jobs[main, "toy", "w/o retrieval", 1] == [("main", None), ("sweep", (1.0, "overlap"))]
    assert jobs[other, "toy", "w/o retrieval and overlap", 0] == [("sweep", (2.0, "exact"))]
    other_preset = plan_runs(main, "toy", [0], sweep_worlds={1.0: main}, sweep_preset="smoke")
    assert len(other_preset) == len(ABLATIONS) + 2


def _finetuned(zero_shot: float, last_epoch: list[float]) -> dict:
    """A fine-tuning chapter's results for one task (the schema of book.finetuning)."""
    return {"headline": "R@1", "zero_shot": zero_shot,
            "seeds": [{"seed": i, "selection": {"last_epoch": {"metrics": {"R@1": v}},
                                                "test_selection": {"metrics": {"R@1": v + 1}}}}
                      for i, v in enumerate(last_epoch)]}


def test_fine_tuning_prediction_reads_the_last_epoch_against_zero_shot(tmp_path):
    assert scorecard.predict_finetuning({}).verdict == scorecard.INCONCLUSIVE
    tasks = {"youcook2": _finetuned(10.0, [14.0, 15.0, 16.0]), "msrvtt": _finetuned(5.0, [9.0, 9.5, 10.0])}
    write_results(tmp_path / "13_finetuning.json", {"finetuned": tasks}, config={})
    verdict = scorecard.predict_finetuning(scorecard.collect_results(tmp_path))
    assert verdict.verdict == scorecard.SUPPORTED and "youcook2 R@1 10.0" in verdict.evidence
    tasks["msrvtt"] = _finetuned(5.0, [4.0, 4.5, 4.2])  # fine-tuning hurts one task
    write_results(tmp_path / "13_finetuning.json", {"finetuned": tasks}, config={})
    verdict = scorecard.predict_finetuning(scorecard.collect_results(tmp_path))
    assert verdict.verdict == scorecard.NOT_SUPPORTED
    tasks["msrvtt"] = _finetuned(5.0, [4.0, 6.0, 5.5])  # the interval includes no gain
    write_results(tmp_path / "13_finetuning.json", {"finetuned": tasks}, config={})
    assert scorecard.predict_finetuning(scorecard.collect_results(tmp_path)).verdict == scorecard.INCONCLUSIVE


def _table(values: dict) -> pd.DataFrame:
    return pd.DataFrame([{"benchmark": b, "metric": m, "ours": v} for (b, m), v in values.items()])


def test_world_v2_prediction_four():
    v1 = _table({("YouCook2", "R@1"): 20.0, ("CrossTask", "recall"): 30.0, ("MSR-VTT", "R@1"): 10.0,
                 ("DiDeMo", "R@1"): 8.0})
    harder = _table({("YouCook2", "R@1"): 15.0, ("CrossTask", "recall"): 26.0, ("MSR-VTT", "R@1"): 11.0,
                     ("DiDeMo", "R@1"): 5.0})
    verdict, evidence = scorecard.predict_world_v2_harder(harder, v1)
    assert verdict == scorecard.SUPPORTED and "YouCook2 R@1 20.0 → 15.0" in evidence
    moved = harder.assign(ours=[15.0, 26.0, 11.0, 3.0])  # DiDeMo moves 5 > the smaller drop, 4
    assert scorecard.predict_world_v2_harder(moved, v1)[0] == scorecard.NOT_SUPPORTED
    easier = harder.assign(ours=[21.0, 26.0, 10.0, 8.0])
    assert scorecard.predict_world_v2_harder(easier, v1)[0] == scorecard.NOT_SUPPORTED
    verdict, evidence = scorecard.predict_world_v2_harder(harder.iloc[:3], v1)
    assert verdict == scorecard.INCONCLUSIVE and "DiDeMo R@1" in evidence
