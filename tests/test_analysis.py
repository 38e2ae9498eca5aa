"""videoclip.book.analysis: data-root descriptions and the "text describes the screen" measure
(Paper §3.3), checked against hand-made cases and naive per-pair loops."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from videoclip.book import analysis
from videoclip.data.benchmarks import AnnotationError
from videoclip.data.captions import TokenCache
from videoclip.data.samplers import ClipSampler, Pairs
from videoclip.evaluation.registry import BENCHMARKS
from videoclip.sim.config import SimConfig
from videoclip.sim.truth import WorldTruth, has_world_truth, load_world_truth


class WordTokenizer:
    """A whitespace tokenizer with the interface the token cache uses (one id per word)."""

    name_or_path = "words"
    cls_token_id, sep_token_id, pad_token_id = 1, 2, 0

    def __call__(self, text: list[str], *, add_special_tokens: bool) -> dict[str, list[list[int]]]:
        return {"input_ids": [[10 + len(w) for w in t.split()] for t in text]}

    def get_vocab(self) -> dict[str, int]:
        return {}


@pytest.fixture(scope="session")
def world(smoke_world: Path) -> Path:
    return smoke_world


@pytest.fixture(scope="module")
def corpus(world: Path, tmp_path_factory: pytest.TempPathFactory):
    return analysis.pretraining_corpus(world, WordTokenizer(), cache_dir=tmp_path_factory.mktemp("cache"))


# --------------------------------------------------------------------------- hand-made truth

def _truth(rows: list[tuple[str, float, float, float, float]], video: str = "v") -> WorldTruth:
    """Steps (text, start, end, onset, speech_end) of one video."""
    steps = pd.DataFrame(rows, columns=["text", "start", "end", "onset", "speech_end"])
    steps.insert(0, "video_id", video)
    steps.insert(1, "video_row", 0)
    steps.insert(2, "step_index", range(len(rows)))
    steps["lag"] = steps.onset - steps.start
    return WorldTruth(steps, ["a"], np.eye(1, 512, dtype=np.float32), {video: 0})


def _cache(starts: list[float], ends: list[float], tokens: list[int], video: str = "v") -> TokenCache:
    return TokenCache(
        video_ids=[video], video_offsets=np.array([0, len(starts)]),
        starts=np.array(starts, float), ends=np.array(ends, float),
        token_offsets=np.concatenate([[0], np.cumsum(tokens)]).astype(np.int64),
        tokens=np.ones(sum(tokens), np.int32), meta={"report": {}},
    )


def _pairs(spans: list[tuple[int, int, int, int]], video: str = "v") -> Pairs:
    """Pairs of captions [c0, c1) with video seconds [v0, v1)."""
    c0, c1, v0, v1 = (np.array(x, np.int64) for x in zip(*spans))
    n = len(spans)
    return Pairs([video], np.zeros(n, np.int64), v0, v1, np.full(n, -1), c0, c1, np.arange(n), "exact")


STEPS = [("crack the eggs", 10.0, 20.0, 2.0, 5.0),     # announced ahead of the action
         ("whisk the eggs", 30.0, 40.0, 30.0, 33.0),   # spoken while done
         ("crack the eggs", 60.0, 65.0, np.nan, np.nan),  # a silent repeat of step 0
         ("serve", 70.0, 72.0, np.nan, np.nan)]        # silent
CAPTIONS = ([2.0, 30.0, 50.0], [5.0, 33.0, 52.0], [4, 5, 40])  # step 0, step 1, filler


@pytest.mark.parametrize(("span", "narrated", "describes", "share"), [
    ((0, 1, 10, 15), 1, True, 1.0),    # the text's step is on screen
    ((0, 1, 0, 8), 1, False, 0.0),     # exact alignment misses an announced step
    ((2, 3, 30, 35), 0, False, 0.0),   # filler narrates nothing
    ((1, 3, 35, 45), 1, True, 0.5),    # half of the clip shows the narrated step
    ((0, 1, 60, 62), 1, True, 1.0),    # a repeat of the narrated step shows the same thing
    ((1, 2, 60, 75), 1, False, 0.0),   # other steps on screen do not count
])
def test_pair_truth_hand_made_cases(span, narrated, describes, share):
    table = analysis.pair_truth(_pairs([span]), _cache(*CAPTIONS), _truth(STEPS))
    row = table.iloc[0]
    assert row.narrated == narrated
    assert bool(row.describes_screen) is describes
    assert row.screen_share == pytest.approx(share)
    assert row.text_tokens_raw == sum(CAPTIONS[2][span[0]:span[1]])


def test_pair_table_truncates_tokens_and_checks_bags():
    table = analysis.pair_table(_pairs([(0, 3, 0, 5)]), _cache(*CAPTIONS), max_text_len=20)
    assert (table.text_tokens[0], table.text_tokens_raw[0], table.num_captions[0]) == (20, 49, 3)
    assert (table.text_start[0], table.text_end[0]) == (2.0, 52.0)
    bag = dataclasses.replace(_pairs([(0, 1, 0, 5)]), caption_start=np.array([0, 1]),
                              caption_end=np.array([1, 2]))
    with pytest.raises(ValueError, match="one text per pair"):
        analysis.pair_table(bag, _cache(*CAPTIONS))


def test_pair_truth_names_a_foreign_video():
    with pytest.raises(KeyError, match="not in world_truth.npz"):
        analysis.pair_truth(_pairs([(0, 1, 0, 5)], video="w"), _cache(*CAPTIONS, video="w"), _truth(STEPS))


def test_narrated_by_matches_a_naive_loop():
    rng = np.random.default_rng(0)
    truth = _truth([(f"s{k}", 0, 1, *sorted(rng.uniform(0, 60, 2))) for k in range(6)]
                   + [("silent", 0, 1, np.nan, np.nan)])
    start = rng.uniform(0, 60, 50)
    end = start + rng.uniform(0, 10, 50)
    got = analysis.narrated_by(start, end, truth.steps, min_speech_overlap_s=0.1)
    for i in range(50):
        for k, row in enumerate(truth.steps.itertuples()):
            shared = min(end[i], row.speech_end) - max(start[i], row.onset)
            assert got[i, k] == (not np.isnan(row.onset) and shared > 0.1)


# --------------------------------------------------------------------------- on a simulated world

def naive_pair_truth(table: pd.DataFrame, truth: WorldTruth) -> list[tuple[bool, float]]:
    """describes_screen and screen_share, one pair and one second at a time."""
    out = []
    for row in table.itertuples():
        steps = truth.steps[truth.steps.video_id == row.video_id]
        spoken_texts = {s.text for s in steps.itertuples() if not np.isnan(s.onset)
                        and min(row.text_end, s.speech_end) - max(row.text_start, s.onset) > 0.1}
        shown = [s for s in steps.itertuples() if s.text in spoken_texts]
        describes = any(min(row.video_end, s.end) > max(row.video_start, s.start) for s in shown)
        covered = 0.0
        for t in range(row.video_start, row.video_end):
            covered += max([max(0.0, min(t + 1, s.end) - max(t, s.start)) for s in shown] + [0.0])
        out.append((describes, covered / max(row.video_end - row.video_start, 1)))
    return out


@pytest.mark.parametrize("kind", ["overlap", "exact"])
def test_pair_truth_matches_the_naive_loop_on_a_world(world, corpus, kind):
    store, cache, ids, _ = corpus
    truth = load_world_truth(world)
    pairs = ClipSampler(kind=kind).sample(ids[:20], store, cache, clip_per_video=8,
                                          rng=np.random.default_rng(1))
    table = analysis.pair_truth(pairs, cache, truth)
    expected = naive_pair_truth(table, truth)
    assert table.describes_screen.tolist() == [d for d, _ in expected]
    np.testing.assert_allclose(table.screen_share, [s for _, s in expected], atol=1e-9)
    assert table.describes_screen.any() and not table.describes_screen.all()


def test_sample_pair_table_and_shuffled_reference(world, corpus):
    store, cache, ids, report = corpus
    assert report["num_usable"] == len(ids) > 0
    truth = load_world_truth(world)
    table = analysis.sample_pair_table(ids, store, cache, truth=truth, clip_per_video=4, rounds=2,
                                       shuffled=True, rng=np.random.default_rng(0))
    assert sorted(table.kind.unique()) == ["exact", "exact (shuffled)", "overlap", "overlap (shuffled)"]
    assert (table.groupby("kind").size() == 2 * 4 * len(ids)).all()
    over = table[table.kind == "overlap"]
    assert over.video_seconds.between(3, 32).all() and (table.text_tokens <= 61).all()
    # shuffling keeps the texts and the clip lengths, and stays inside the video
    shuffled = table[table.kind == "overlap (shuffled)"]
    np.testing.assert_array_equal(shuffled.video_seconds.to_numpy(), over.video_seconds.to_numpy())
    np.testing.assert_array_equal(shuffled.text_start.to_numpy(), over.text_start.to_numpy())
    seconds = shuffled.video_id.map(store.num_seconds)
    assert (shuffled.video_start >= 0).all() and (shuffled.video_end <= seconds).all()
    summary = analysis.screen_match_summary(table).set_index(["kind", "measure"])
    # the sampler's pairs are more relevant than the same clips put anywhere in the video
    assert summary.loc[("overlap", "describes screen"), "percent"] > \
        summary.loc[("overlap (shuffled)", "describes screen"), "percent"]
    with pytest.raises(ValueError, match="pass truth"):
        analysis.sample_pair_table(ids, store, cache, shuffled=True, rng=np.random.default_rng(0))


def test_screen_match_summary_equals_direct_means():
    rng = np.random.default_rng(0)
    table = pd.DataFrame({"video_id": rng.choice(list("abcdefgh"), 400), "kind": "overlap",
                          "narrated": rng.integers(0, 3, 400), "describes_screen": rng.random(400) < 0.4,
                          "screen_share": rng.random(400)})
    table.loc[table.narrated == 0, "describes_screen"] = False
    got = analysis.screen_match_summary(table, num_boot=100).set_index("measure")
    narrates = table.narrated > 0
    expected = {"text narrates a step": narrates.mean(), "describes screen": table.describes_screen.mean(),
                "describes screen | narrates": table.describes_screen[narrates].mean(),
                "on-screen share of seconds": table.screen_share.mean()}
    for name, value in expected.items():
        assert got.loc[name, "percent"] == pytest.approx(100 * value)
        assert got.loc[name, "ci_low"] <= got.loc[name, "percent"] <= got.loc[name, "ci_high"]
    assert (got.pairs == 400).all() and (got.videos == 8).all()


# --------------------------------------------------------------------------- describing data roots

def test_benchmark_counts_agree_with_world_json(world):
    sizes = json.loads((world / "world.json").read_text())["sizes"]
    counts = analysis.benchmark_counts(world).set_index("benchmark")
    assert (counts.status == "ok").all() and (counts.with_features == counts.videos).all()
    assert counts.loc["youcook2", "items"] == sizes["youcook2"]["validation_clips"]
    assert counts.loc["youcook2", "videos"] == sizes["youcook2"]["validation_videos"]
    assert counts.loc["msrvtt", "items"] == sizes["msrvtt"]["clips"]
    assert counts.loc["msrvtt_mc", "items"] == sizes["msrvtt"]["mc_questions"]
    assert counts.loc["didemo", "items"] == sizes["didemo"]["queries"]
    assert counts.loc["coin", "videos"] == sizes["coin"]["testing_videos"]
    ct = sizes["crosstask"]
    assert counts.loc["crosstask", "videos"] == ct["tasks"] * (ct["videos_per_task"] - ct["val_per_task"] - 30)


def test_benchmark_counts_report_missing_and_raise_on_malformed(world, tmp_path):
    root = tmp_path / "partial"
    (root / "coin").mkdir(parents=True)
    (root / "coin" / "COIN.json").write_text('{"not": "coin"}')
    with pytest.raises(AnnotationError, match="COIN.json"):
        analysis.benchmark_counts(root)
    (root / "coin" / "COIN.json").unlink()
    counts = analysis.benchmark_counts(root).set_index("benchmark")
    assert counts.loc["youcook2", "status"].startswith("missing: youcook2/youcookii_annotations_trainval.json")
    assert (counts["items"] == 0).all()
    inventory = analysis.data_inventory(root).set_index("path")
    assert not inventory.exists.any()


def test_corpus_summary_and_truth(world):
    summary, per_video = analysis.corpus_summary(world, max_videos=10)
    sizes = json.loads((world / "world.json").read_text())["sizes"]["howto100m"]
    assert summary["videos_with_captions"] == summary["captioned_videos_with_features"] == sizes["videos"]
    assert (summary["train_list"], summary["val_list"]) == (sizes["train"], sizes["val"])
    assert len(per_video) == 10 and (per_video.feature_seconds >= per_video.caption_span_s - 1).all()
    truth = load_world_truth(world)
    assert set(truth.steps.video_id) <= set(truth.video_task)
    np.testing.assert_allclose(truth.steps.lag, truth.steps.onset - truth.steps.start)
    lags = analysis.lag_summary(truth.steps)
    assert lags["unspoken"] + lags["before_start"] + lags["during"] + lags["after_end"] == pytest.approx(1)
    vectors = truth.text_directions(["slice the bread", "the of and"])
    assert np.linalg.norm(vectors[0]) == pytest.approx(1, abs=1e-5)


def test_real_roots_have_no_truth_or_corpus(tmp_path):
    assert not has_world_truth(tmp_path)
    with pytest.raises(FileNotFoundError, match="real data has none"):
        load_world_truth(tmp_path)
    with pytest.raises(FileNotFoundError, match="caption.json is missing"):
        analysis.corpus_summary(tmp_path)


def test_simconfig_table_lists_every_knob_with_its_reason():
    table = analysis.simconfig_table({"lag_scale": 2.0, "pretrain_seconds": [1.0, 2.0]}).set_index("knob")
    assert set(table.index) == {f.name for f in dataclasses.fields(SimConfig)}
    assert table.loc["lag_scale", "value"] == 2.0 and table.loc["lag_scale", "default"] == 1.0
    assert table.loc["pretrain_seconds", "value"] == (1.0, 2.0)
    assert table.loc["lag_scale", "group"] == "narration"
    assert "S3D" in table.loc["appearance_weight", "why"]  # continuation lines are joined
    assert (table.why != "").all()


def test_levels_table_reads_headline_metrics():
    chance = {name: {b.chance_key: 1.0} for name, b in BENCHMARKS.items()}
    oracle = {name: {b.headline: 50.0} for name, b in BENCHMARKS.items()}
    table = analysis.levels_table(chance, oracle)
    assert len(table) == 6 and (table.chance == 1.0).all() and (table.oracle == 50.0).all()
    assert analysis.levels_table(chance).oracle.isna().all()


@pytest.mark.realdata
def test_benchmark_counts_on_the_real_files(real_data_dir):
    counts = analysis.benchmark_counts(real_data_dir).set_index("benchmark")
    present = counts[counts.status == "ok"]
    assert {"youcook2", "msrvtt", "msrvtt_mc", "didemo", "crosstask"} <= set(present.index)
    assert counts.loc["msrvtt", "items"] == 1000
    assert (present.videos > 0).all() and (present["items"] > 0).all()


def test_paired_difference_is_the_difference_of_means():
    rng = np.random.default_rng(0)
    videos = rng.choice(list("abcdefghij"), 600)
    table = pd.DataFrame({"video_id": videos, "kind": np.repeat(["a", "b"], 300),
                          "describes_screen": np.r_[rng.random(300) < 0.7, rng.random(300) < 0.4]})
    got = analysis.paired_difference(table, "a", "b", num_boot=200)
    a, b = table[table.kind == "a"], table[table.kind == "b"]
    assert got["difference"] == pytest.approx(100 * (a.describes_screen.mean() - b.describes_screen.mean()))
    assert got["ci_low"] < got["difference"] < got["ci_high"] and got["ci_low"] > 0
    assert got["videos"] == 10
    with pytest.raises(ValueError, match="no pairs of kind"):
        analysis.paired_difference(table, "a", "exact")
