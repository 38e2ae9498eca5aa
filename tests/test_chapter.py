"""videoclip.book.chapter: reference rows, intervals, verdicts, margins, result files and figures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from videoclip.book import chapter, plots
from videoclip.paper import PAPER_ZERO_SHOT, ZERO_SHOT
from videoclip.train import PretrainConfig


def test_paper_numbers_use_our_metric_keys():
    assert chapter.paper_numbers("youcook2") == {"R@1": 22.7, "R@5": 50.4, "R@10": 63.1}
    assert chapter.paper_numbers("didemo") == {"rank@1": 16.6, "rank@5": 46.9}
    assert chapter.paper_numbers("coin") == {"frame_accuracy": 58.9}
    # every paper number is reachable under one of our keys
    assert {(r.paper_benchmark, r.paper_metric) for r in ZERO_SHOT} == set(PAPER_ZERO_SHOT)
    with pytest.raises(KeyError, match="known: "):
        chapter.paper_numbers("kinetics")


def test_comparison_table_rows_columns_and_paper_row():
    table = chapter.comparison_table(
        {"model": {"rank@1": 10.0, "mIoU": 30.0, "protocol": "official"}, "chance": {"rank@1": 1.0},
         "oracle": None}, ["rank@1", "mIoU"], benchmark="didemo")
    assert list(table.index) == ["model", "chance", "paper (Table 2)"]
    assert table.loc["model", "mIoU"] == 30.0
    assert np.isnan(table.loc["chance", "mIoU"]) and np.isnan(table.loc["paper (Table 2)", "mIoU"])
    assert table.loc["paper (Table 2)", "rank@1"] == 16.6


def test_task_recall_ci_matches_the_official_mean_and_a_naive_loop():
    from videoclip.evaluation.crosstask import recall

    rng = np.random.default_rng(0)
    tasks = np.repeat(["b", "a", "c"], [4, 3, 5])
    present = rng.integers(1, 6, size=12)
    matched = np.minimum(rng.integers(0, 4, size=12), present)
    # the same videos as (T, K) arrays for the official recall: a video with p steps present,
    # m of them matched
    y_true, y_pred = {}, {}
    for i, (task, p, m) in enumerate(zip(tasks, present, matched)):
        true = np.zeros((10, 6), np.uint8)
        true[np.arange(p), np.arange(p)] = 1
        pred = np.zeros_like(true)
        pred[np.arange(m), np.arange(m)] = 1
        y_true.setdefault(task, {})[str(i)] = true
        y_pred.setdefault(task, {})[str(i)] = pred
    mean, low, high = chapter.task_recall_ci(tasks, matched, present, num_boot=200, seed=3)
    assert mean == pytest.approx(np.mean(list(recall(y_true, y_pred).values())))
    draw_rng = np.random.default_rng(3)
    per_task = []
    for task in ("a", "b", "c"):
        rows = np.flatnonzero(tasks == task)
        picks = draw_rng.integers(0, len(rows), size=(200, len(rows)))
        per_task.append([100 * matched[rows[p]].sum() / present[rows[p]].sum() for p in picks])
    naive = np.mean(per_task, axis=0)
    assert (low, high) == pytest.approx(tuple(np.percentile(naive, [2.5, 97.5])))
    assert low <= mean <= high
    with pytest.raises(ValueError, match="no step present"):
        chapter.task_recall_ci(["a"], [0], [0])


def test_standing_says_where_each_reference_lies():
    good = chapter.standing("R@1", 20.0, (15.0, 25.0), chance=1.0, untrained=2.0, oracle=60.0,
                           paper=22.7, simulated=True)
    assert good["transfers"] and good["vs_oracle"] == "above"
    assert "better than chance (1.0)" in good["sentence"]
    assert "short of the concept oracle (60.0)" in good["sentence"]
    assert "works here" in good["sentence"] and "not comparable" in good["sentence"]
    weak = chapter.standing("R@1", 3.0, (0.0, 6.0), chance=1.0, untrained=4.0, paper=22.7,
                           simulated=False)
    assert not weak["transfers"] and weak["vs_chance"] == "inside" and weak["vs_oracle"] is None
    assert "not distinguishable from chance" in weak["sentence"]
    assert "does not reproduce" in weak["sentence"] and "differs by -19.7 points" in weak["sentence"]
    worse = chapter.standing("acc", 10.0, (8.0, 12.0), chance=20.0, untrained=5.0, simulated=True,
                            chance_name="the all-background baseline")
    assert "worse than the all-background baseline (20.0)" in worse["sentence"]
    assert not worse["transfers"]
    with pytest.raises(ValueError, match="outside its interval"):
        chapter.standing("acc", 10.0, (11.0, 12.0), chance=1.0, untrained=1.0, simulated=True)


def test_answer_margins_match_a_naive_loop_and_the_correct_rule():
    from videoclip.evaluation.videoqa import multiple_choice_correct

    rng = np.random.default_rng(0)
    scores = rng.integers(0, 4, size=(50, 5)).astype(float)  # many ties
    answers = rng.integers(0, 5, size=50)
    margins = chapter.answer_margins(scores, answers)
    naive = [row[a] - max(v for j, v in enumerate(row) if j != a) for row, a in zip(scores, answers)]
    assert margins == pytest.approx(naive)
    np.testing.assert_array_equal(margins > 0, multiple_choice_correct(scores, answers))
    with pytest.raises(ValueError, match="num_options >= 2"):
        chapter.answer_margins(scores[:, :1], answers)


def test_benchmark_record_and_results_file(tmp_path: Path):
    model = {"R@1": 12.0, "protocol": "official: x"}
    record = chapter.benchmark_record(model, {"R@1": 1.0}, benchmark="youcook2", headline="R@1",
                                     chance={"R@1": 0.5}, oracle=None,
                                     variants={"original": {"R@1": 11.0}})
    assert record["protocol"] == "official: x" and record["paper"]["R@1"] == 22.7
    path = chapter.write_chapter_results(tmp_path, "05_test", {"youcook2": record}, config={"a": 1})
    assert path == tmp_path / "results" / "05_test.json"
    payload = json.loads(path.read_text())
    assert payload["results"]["benchmarks"]["youcook2"]["variants"]["original"]["R@1"] == 11.0
    assert payload["config"] == {"a": 1} and "git_sha" in payload["provenance"]
    with pytest.raises(KeyError, match="no 'R@5'"):
        chapter.benchmark_record(model, {"R@1": 1.0}, benchmark="youcook2", headline="R@5",
                                chance={}, oracle=None)


@pytest.mark.slow
def test_untrained_model_follows_the_preset_and_the_seed(tmp_path: Path):
    preset = tmp_path / "p.yaml"
    preset.write_text("backbone: minilm-l6\nnum_video_layers: 1\nnum_text_layers: 1\npooling: cls\n")
    model_cfg = PretrainConfig.from_yaml(preset).model
    a = chapter.untrained_model(model_cfg, seed=3)
    b = chapter.untrained_model(model_cfg, seed=3)
    c = chapter.untrained_model(model_cfg, seed=4)
    assert (a.config.num_video_layers, a.config.num_text_layers, a.config.pooling) == (1, 1, "cls")
    assert not a.training
    mlp = "video_mlp.linear1.weight"
    assert a.state_dict()[mlp].equal(b.state_dict()[mlp])
    assert not a.state_dict()[mlp].equal(c.state_dict()[mlp])  # the new MLP depends on the seed
    text = next(k for k in a.state_dict() if "text" in k and "word_embeddings" in k)
    assert a.state_dict()[text].equal(c.state_dict()[text])  # the towers are the backbone's


def test_rank_histogram_draws_one_line_per_scorer():
    import matplotlib

    matplotlib.use("Agg")
    ax = plots.plot_rank_histogram({"model": [1, 1, 2, 9], "untrained": [5, 9, 10, 3]}, 10)
    assert len(ax.patches) == 3  # two scorers and the random ranking
    assert ax.get_xscale() == "log"
    with pytest.raises(ValueError, match="1..10"):
        plots.plot_rank_histogram({"bad": [0, 11]}, 10)


def test_label_timelines_draw_one_bar_per_labelled_run():
    import matplotlib

    matplotlib.use("Agg")
    truth = np.array([0, 3, 3, 0, 5, 5, 5, 0])
    pred = np.array([0, 0, 3, 0, 0, 5, 0, 0])
    fig = plots.plot_label_timelines([{"truth": truth, "pred": pred}], label_names={3: "a", 5: "b"},
                                      titles=["v"], point_tracks=["pred"])
    ax = fig.axes[0]
    bars = [c for c in ax.collections if c.__class__.__name__ == "PolyCollection"]
    assert len(bars) == 4  # truth: runs of 3 and 5; pred: two one-second runs
    assert len(fig.legends[0].get_texts()) == 2
    with pytest.raises(KeyError, match="no name"):
        plots.plot_label_timelines([{"truth": truth}], label_names={3: "a"})
    with pytest.raises(ValueError, match="differ in length"):
        plots.plot_label_timelines([{"truth": truth, "pred": pred[:4]}], label_names={3: "a", 5: "b"})


def test_forest_draws_one_row_per_item_and_the_seeds():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    y = plots.forest(ax, [1.0, 2.0], [0.5, float("nan")], [1.5, float("nan")], [[0.9, 1.1], [2.0]],
                     interval_label="mean", seed_label="seed")
    assert list(y) == [0, 1]
    assert [t.get_text() for t in ax.legend().get_texts()] == ["seed", "mean"]
    plt.close(fig)
