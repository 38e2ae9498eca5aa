"""Verdicts on contrary and degenerate results (issue 17): a result against a prediction gives
"not supported", never an error; non-discriminating benchmarks and invalid rows are marked."""

from __future__ import annotations

import pandas as pd
import pytest

from videoclip.book import scorecard
from videoclip.book.ablations import FULL, invalid_rows
from videoclip.provenance import write_results

CLS = "[CLS] instead of mean pooling"


def _record(headline: str, ours: float, chance: dict, oracle: dict | None, **model) -> dict:
    return {"headline": headline, "protocol": f"protocol of {headline}", "model": {headline: ours, **model},
            "untrained": {headline: 0.0}, "chance": chance, "oracle": oracle, "paper": {}}


def _records(*, youcook_r1: float = 10.0, coin_oracle: float = 70.0) -> dict[str, dict]:
    return {
        "youcook2": _record("R@1", youcook_r1, {"R@1": 2.0}, {"R@1": 60.0}),
        "msrvtt": _record("R@1", 8.0, {"R@1": 5.0}, {"R@1": 50.0}),
        "didemo": _record("rank@1", 20.0, {"rank@1": 13.0}, {"rank@1": 40.0}),
        "msrvtt_mc": _record("accuracy", 40.0, {"accuracy": 20.0}, {"accuracy": 90.0}),
        "coin": _record("frame_accuracy", 60.2, {"all_background": 60.2},
                        {"frame_accuracy": coin_oracle, "gamma": 1.0}, background_baseline=60.2),
        "crosstask": _record("recall", 15.0, {"recall": 8.0}, {"recall": 50.0}),
    }


def _items(records: dict[str, dict]) -> list[dict]:
    return [{"chapter": "x", "benchmark": b, "record": r} for b, r in records.items()]


def _runs(values: dict[str, list[float]]) -> pd.DataFrame:
    return pd.DataFrame([{"row": row, "seed": seed, "R@1": v, "R@5": 2 * v, "R@10": 3 * v}
                         for row, r1 in values.items() for seed, v in enumerate(r1)])


def _groups(full: list[float], random: list[float]) -> pd.DataFrame:
    return pd.DataFrame([{"row": FULL, "seed": seed, "epoch": 0, "same_task_share": f,
                          "random_groups_same_task_share": r} for seed, (f, r) in enumerate(zip(full, random))])


def _sweep(gains: dict[float, list[float]]) -> pd.DataFrame:
    rows = []
    for scale, per_seed in gains.items():
        for seed, gain in enumerate(per_seed):
            rows += [{"lag_scale": scale, "seed": seed, "sampler": "exact", "R@1": 10.0},
                     {"lag_scale": scale, "seed": seed, "sampler": "overlap", "R@1": 10.0 + gain}]
    return pd.DataFrame(rows)


def test_a_coin_oracle_on_the_background_baseline_is_non_discriminating():
    records = _records(coin_oracle=60.2)
    reason = scorecard.non_discriminating(records["coin"], "coin")
    assert reason.startswith("non-discriminating") and "60.2" in reason and "γ = 1.000" in reason
    assert scorecard.non_discriminating(_records()["coin"], "coin") == ""  # oracle 70 vs 60.2
    assert scorecard.non_discriminating(_record("R@1", 5.0, {"R@1": 2.0}, None), "youcook2") == ""  # real data
    zero_shot = scorecard.predict_zero_shot(_items(records))
    assert zero_shot.verdict == scorecard.SUPPORTED  # the other five pass; COIN is excluded, with its reason
    assert "excluded: coin (non-discriminating" in zero_shot.evidence
    background = scorecard.predict_background(_items(records))
    assert background.verdict == scorecard.INCONCLUSIVE and "decided by the world" in background.evidence
    only_coin = scorecard.predict_zero_shot(_items({"coin": records["coin"]}))
    assert only_coin.verdict == scorecard.INCONCLUSIVE


def test_the_scorecard_shows_protocol_and_validity(tmp_path):
    write_results(tmp_path / "07_action_segmentation.json",
                  {"benchmarks": {"coin": _records(coin_oracle=60.2)["coin"]}}, config={})
    table = scorecard.zero_shot_scorecard(scorecard.collect_results(tmp_path))
    coin = table[table.status == "ok"].iloc[0]
    assert coin.protocol == "protocol of frame_accuracy" and coin.validity.startswith("non-discriminating")
    assert {"protocol", "validity"} <= set(table.columns)


def test_contrary_results_give_not_supported(tmp_path):
    """A world where every prediction fails: the scorecard says so and raises nothing."""
    records = _records(youcook_r1=75.0)  # above the oracle (60)
    records["coin"] = _record("frame_accuracy", 80.0, {"all_background": 60.2}, {"frame_accuracy": 70.0},
                              background_baseline=60.2)  # far from background, above the oracle
    runs = _runs({FULL: [10.0, 20.0, 30.0], "w/o retrieval": [12.0, 22.0, 32.0],  # retrieval hurts
                  "shared video/text transformer": [0.0, 5.0, 10.0], CLS: [10.0, 20.0, 30.0]})
    groups = _groups([0.1, 0.1, 0.1], [0.3, 0.3, 0.3])  # random groups are harder
    sweep = _sweep({0.0: [3.0, 4.0, 5.0], 1.0: [-3.0, -4.0, -5.0]})  # overlap loses with the lag
    write_results(tmp_path / "05_text_video_retrieval.json", {"benchmarks": records}, config={})
    write_results(tmp_path / "09_ablations.json",
                  {"runs": runs.to_dict("records"), "groups": groups.to_dict("records"),
                   "lag_sweep": sweep.to_dict("records")}, config={})
    verdicts = scorecard.evaluate_predictions(scorecard.collect_results(tmp_path)).set_index("prediction")
    assert (verdicts.verdict == scorecard.NOT_SUPPORTED).all(), verdicts


def test_an_invalid_row_is_marked_and_counted_as_unclear(tmp_path):
    reasons = invalid_rows({FULL: {"video": 0.53, "text": 0.58}, CLS: {"video": 0.003, "text": 0.002}})
    assert list(reasons) == [CLS] and "starts collapsed" in reasons[CLS] and "0.003" in reasons[CLS]
    runs = _runs({FULL: [10.0, 14.0, 12.0], "shared video/text transformer": [10.5, 14.0, 12.0],
                  CLS: [0.2, 0.2, 0.2]})  # collapsed: far below the full model
    groups = pd.concat([_groups([0.5, 0.6, 0.55], [0.1] * 3),
                        _groups([0.3, 0.35, 0.3], [0.1] * 3).assign(row="use first 32 sec for retrieval")])
    assert scorecard.predict_small_choices(runs, groups).verdict == scorecard.NOT_SUPPORTED
    verdict = scorecard.predict_small_choices(runs, groups, invalid=reasons)
    assert verdict.verdict == scorecard.INCONCLUSIVE and "rule changed after seeing results" in verdict.evidence
    write_results(tmp_path / "09_ablations.json",
                  {"runs": runs.to_dict("records"), "groups": groups.to_dict("records"), "lag_sweep": [],
                   "invalid_rows": reasons}, config={})
    table = scorecard.ablation_scorecard(scorecard.collect_results(tmp_path))
    assert table[table.row == CLS].validity.str.startswith("invalid on this backbone").all()
    assert (table[table.row == FULL].validity == "ok").all()


@pytest.mark.parametrize("bad", [{"video": 0.5}, {}])
def test_invalid_rows_need_both_sides(bad):
    with pytest.raises(KeyError):
        invalid_rows({FULL: bad})
