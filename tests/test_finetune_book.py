"""The fine-tuning chapter's tables and results file (videoclip.book.finetuning) on hand-made runs."""

from __future__ import annotations

import pytest

from videoclip.book import finetuning as ft
from videoclip.finetune.selection import selections
from videoclip.provenance import read_results


def fake_run(task: str, values: list[float], losses: list[float]) -> dict:
    metric = {"youcook2": "R@1", "coin": "frame_accuracy"}[task]
    epochs = [{"epoch": e + 1, "metrics": {metric: v}, "test_loss": loss}
              for e, (v, loss) in enumerate(zip(values, losses))]
    return {"task": task, "epochs": epochs, "selection": selections(task, epochs),
            "cost": {"steps": 4, "train_seconds": 2.0, "eval_seconds": 1.0, "num_items": 8,
                     "batches_per_epoch": 2}}


@pytest.fixture
def runs():
    return {"youcook2": [fake_run("youcook2", [10, 14, 12], [3, 2, 1]),
                         fake_run("youcook2", [11, 12, 13], [3, 2, 1]),
                         fake_run("youcook2", [9, 15, 11], [3, 2, 1])],
            "coin": [fake_run("coin", [60, 70], [2.0, 2.5]), fake_run("coin", [61, 65], [1.0, 0.5]),
                     fake_run("coin", [62, 66], [1.0, 1.0])]}


def test_summary_and_selection_tables(runs):
    zero = {"youcook2": {"R@1": 5.0}, "coin": {"frame_accuracy": 58.0}}
    table = ft.summary_table(zero, runs)
    # youcook2: best test R@1 per seed 14, 13, 15 (mean 14); last epoch 12, 13, 11 (mean 12)
    assert table.loc["youcook2", "ours fine-tuned, test-set selection"].startswith("14.0 [")
    assert table.loc["youcook2", "ours fine-tuned, last epoch"].startswith("12.0 [")
    assert table.loc["youcook2", "selection gain (test-set − last)"].startswith("2.0 [")
    # coin: lowest test loss picks epochs 1, 2, 1 (ties: the earliest) -> 60, 65, 62
    picked = ft.selection_table(runs, [1, 2, 3]).loc["coin"]
    assert picked["epoch (test-set)"].tolist() == [1, 2, 1]
    assert picked["value (test-set)"].tolist() == [60, 65, 62]
    assert (table.loc["coin", "paper fine-tuned"], table.loc["coin", "paper zero-shot"]) == (68.7, 58.9)
    assert ft.cost_table(runs).loc["coin", "updates per run"] == 4


def test_results_file_feeds_the_scorecard_rows(runs, tmp_path):
    zero = {"youcook2": {"R@1": 5.0}, "coin": {"frame_accuracy": 58.0}}
    path = ft.write_results_file(tmp_path, zero, runs, [1, 2, 3],
                                 config={"finetune_preset": "../params/finetune/toy.yaml"})
    payload = read_results(path)
    assert "benchmarks" not in payload["results"]  # the zero-shot scorecard's key: not ours
    card = ft.finetuned_scorecard({ft.CHAPTER: payload})
    yc = card[card.benchmark == "YouCook2"]
    assert yc["selection"].str.contains("test-set selection").tolist() == [True, False]
    assert yc["ours"].str.startswith("14.0").tolist()[0] and (yc["profile"] == "toy").all()
    assert (yc["paper"] == 32.2).all()
    assert card[card.benchmark == "CrossTask"]["ours"].tolist() == ["not run"]
    assert ft.finetuned_scorecard({})["ours"].eq("not run").all()
