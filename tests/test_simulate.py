"""The simulated world: determinism, official formats (read by the project's own loaders),
disjoint pre-training/evaluation videos, knobs that do what they say (chance and oracle
levels: tests/test_levels.py)."""

from __future__ import annotations

import csv
import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest

from videoclip.cli import main
from videoclip.data.benchmarks import (
    crosstask_split,
    load_coin,
    load_crosstask,
    load_didemo,
    load_msrvtt_mc,
    load_msrvtt_test,
    load_youcook2_val,
    read_step_annotation,
)
from videoclip.data.captions import load_captions
from videoclip.data.features import open_feature_store
from videoclip.sim.config import SimConfig, make_config
from videoclip.sim.levels import oracle_levels
from videoclip.sim.video import sample_lag
from videoclip.sim.world import simulate
from videoclip.text import concepts_of, stem

BENCH_DIRS = ("youcook2", "msrvtt", "didemo", "coin", "crosstask")


@pytest.fixture(scope="session")
def world(smoke_world: Path) -> Path:
    return smoke_world


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path) -> None:
    # fresh worlds: the session's smoke world gains token caches as other tests train on it
    first = simulate(tmp_path / "first", preset="smoke", seed=0)
    again = simulate(tmp_path / "again", preset="smoke", seed=0)
    assert _digest(again) == _digest(first)
    other = simulate(tmp_path / "other", preset="smoke", seed=1)
    assert _digest(other)["howto100m/caption.json"] != _digest(first)["howto100m/caption.json"]


def test_refuses_to_overwrite_and_rejects_unknown_knobs(world: Path, tmp_path: Path) -> None:
    with pytest.raises(FileExistsError, match="already holds"):
        simulate(world, preset="smoke")
    with pytest.raises(ValueError, match="lag_scael"):
        simulate(tmp_path / "x", preset="smoke", lag_scael=0)
    with pytest.raises(ValueError, match="unknown preset"):
        make_config("huge")


def test_every_file_parses_with_the_loaders(world: Path) -> None:
    youcook = load_youcook2_val(world)
    assert len(youcook) == json.loads((world / "world.json").read_text())["sizes"]["youcook2"][
        "validation_clips"]
    assert len(load_youcook2_val(world, clip_list="annotations")) == len(youcook)
    msrvtt = load_msrvtt_test(world)
    mc = load_msrvtt_mc(world)
    assert len(msrvtt) == len(mc) == 20
    assert {q.video_id for q in mc} == {p.video_id for p in msrvtt}
    didemo = load_didemo(world)
    assert all(len(q.times) == 4 and all(0 <= s <= e <= 5 for s, e in q.times) for q in didemo)
    coin = load_coin(world / "coin" / "COIN.json")
    assert len(coin.videos) == 12 and coin.labels
    crosstask = load_crosstask(world)
    train, test = crosstask_split(crosstask.videos, crosstask.val_videos)
    assert all(len(v) == 30 for v in train.values()) and all(len(v) == 4 for v in test.values())
    captions = load_captions(world / "howto100m" / "caption.json")
    assert captions.report["num_videos"] == 60
    # Every video any file names has features of the right length, unit rows, float16.
    needs = {"youcook2": {p.video_id for p in youcook}, "msrvtt": {p.video_id for p in msrvtt},
             "didemo": {q.video_id for q in didemo}, "coin": {v.video_id for v in coin.videos},
             "crosstask": {v for vids in crosstask.videos.values() for v in vids},
             "howto100m": set(captions.videos)}
    for sub, vids in needs.items():
        store = open_feature_store(world / sub / "features")
        assert vids <= set(store.ids()), sub
        for vid in sorted(vids)[:5]:
            raw = np.load(world / sub / "features" / f"{vid}.npy")
            assert raw.dtype == np.float16 and raw.shape[1] == 512
            assert np.allclose(np.linalg.norm(raw.astype(np.float32), axis=1), 1.0, atol=2e-3)
    for pair in youcook:
        assert pair.end <= store_len(world, "youcook2", pair.video_id) + 1
    for task, vids in crosstask.videos.items():
        for vid in vids:
            num_t = store_len(world, "crosstask", vid)
            y = read_step_annotation(crosstask.annotation_path(task, vid), num_t,
                                     len(crosstask.tasks[task].steps))
            assert y.any()


def store_len(root: Path, sub: str, vid: str) -> int:
    return int(np.load(root / sub / "features" / f"{vid}.npy", mmap_mode="r").shape[0])


def test_official_layouts_field_for_field(world: Path) -> None:
    db = json.loads((world / "youcook2" / "youcookii_annotations_trainval.json").read_text())
    entry = next(iter(db["database"].values()))
    assert list(entry) == ["duration", "subset", "recipe_type", "annotations", "video_url"]
    assert list(entry["annotations"][0]) == ["segment", "id", "sentence"]
    assert isinstance(entry["recipe_type"], str)
    coin = json.loads((world / "coin" / "COIN.json").read_text())["database"]
    entry = next(iter(coin.values()))
    assert list(entry) == ["recipe_type", "annotation", "video_url", "start", "end", "duration",
                           "class", "subset"]
    assert {e["subset"] for e in coin.values()} == {"training", "testing"}
    rows = (world / "didemo" / "test_data.json").read_text()
    assert list(json.loads(rows)[0]) == ["num_segments", "description", "dl_link", "times", "video",
                                        "annotation_id"]
    header = (world / "howto100m" / "HowTo100M_v1.csv").read_text().splitlines()[0]
    assert header == "video_id,category_1,category_2,rank,task_id"
    assert (world / "youcook2" / "validation_youcook.csv").read_text().startswith("end,start,task,text,video_id\n")
    assert (world / "msrvtt" / "MSRVTT_JSFUSION_test.csv").read_text().startswith("key,vid_key,video_id,sentence\n")
    cards = (world / "crosstask" / "tasks_primary.txt").read_text()
    assert cards.endswith("\n\n")
    first = cards.split("\n")
    assert int(first[3]) == len(first[4].split(","))
    task_ids = (world / "howto100m" / "task_ids.csv").read_text().splitlines()
    assert all(line.split("\t")[0].isdigit() for line in task_ids)


def test_evaluation_videos_are_disjoint_from_pretraining(world: Path) -> None:
    pretrain = set((world / "howto100m" / "train.lst").read_text().split())
    val = set((world / "howto100m" / "val.lst").read_text().split())
    assert pretrain and val and not pretrain & val
    corpus = {p.stem for p in (world / "howto100m" / "features").glob("*.npy")}
    assert corpus == pretrain | val
    seen: set[str] = set(corpus)
    for sub in BENCH_DIRS:
        ids = {p.stem for p in (world / sub / "features").glob("*.npy")}
        assert ids and not ids & seen, sub
        seen |= ids


def test_zero_lag_puts_narration_inside_the_step(tmp_path: Path) -> None:
    root = simulate(tmp_path / "w", preset="smoke", seed=1, lag_scale=0.0, unspoken_prob=0.0)
    with np.load(root / "world_truth.npz") as truth:
        onset, start, end = truth["pretrain_step_onset"], truth["pretrain_step_start"], truth["pretrain_step_end"]
        speech_end = truth["pretrain_step_speech_end"]
    spoken = ~np.isnan(onset)
    assert spoken.mean() > 0.95  # unspoken only when a step runs past the video's end
    assert np.all(np.abs(onset[spoken] - start[spoken]) < 1e-6)
    assert np.all(speech_end[spoken] <= end[spoken] + 1e-6)
    # The knob is what moves it: at the default lag, much of the speech leaves its step.
    default = simulate(tmp_path / "d", preset="smoke", seed=1, unspoken_prob=0.0)
    with np.load(default / "world_truth.npz") as truth:
        onset, start, end = truth["pretrain_step_onset"], truth["pretrain_step_start"], truth["pretrain_step_end"]
    spoken = ~np.isnan(onset)
    outside = (onset[spoken] < start[spoken] - 1e-6) | (onset[spoken] >= end[spoken])
    assert outside.mean() > 0.4


def test_default_lag_spreads_narration_before_and_after() -> None:
    cfg = SimConfig()
    rng = np.random.default_rng(0)
    lags = np.array([sample_lag(rng, 6.0, cfg) for _ in range(4000)])
    assert 0.40 < np.mean(lags < 0) < 0.50  # lag_before_prob = 0.45
    assert 0.15 < np.mean(lags > 6.0) < 0.25  # the rest (0.20) speaks after the step
    assert abs(-np.mean(lags[lags < 0]) - cfg.lag_before_mean_s) < 0.4
    zero = SimConfig(lag_scale=0.0)
    assert all(sample_lag(rng, 6.0, zero) == 0 for _ in range(100))


def test_unspoken_and_feature_noise_knobs(tmp_path: Path) -> None:
    loud = simulate(tmp_path / "a", preset="smoke", num_videos=20, unspoken_prob=0.0)
    quiet = simulate(tmp_path / "b", preset="smoke", num_videos=20, unspoken_prob=1.0)
    with np.load(loud / "world_truth.npz") as a, np.load(quiet / "world_truth.npz") as b:
        assert np.isnan(b["pretrain_step_onset"]).all()
        onsets = a["pretrain_step_onset"]
    dropped = json.loads((loud / "world.json").read_text())["narration"]["dropped_step_utterances"]
    assert np.isnan(onsets).sum() <= dropped + 0.05 * len(onsets)  # only the v2 text guard silences steps
    clean = simulate(tmp_path / "c", preset="smoke", num_videos=20, feature_noise=0.0)
    noisy = simulate(tmp_path / "d", preset="smoke", num_videos=20, feature_noise=3.0)

    def neighbour_cos(root: Path) -> float:
        f = np.load(next((root / "howto100m" / "features").glob("*.npy"))).astype(np.float32)
        return float(np.mean(np.sum(f[1:] * f[:-1], axis=1)))

    assert neighbour_cos(clean) > 0.9 > neighbour_cos(noisy)


def test_captions_share_words_with_narration(world: Path) -> None:
    """Learnability: benchmark caption concepts occur in the pre-training narration."""
    narration = json.loads((world / "howto100m" / "caption.json").read_text())
    spoken = {stem(w) for c in narration.values() for t in c["text"] for w in t.split()}
    clips = load_youcook2_val(world)
    covered = [any(c in spoken for c in concepts_of(p.text)) for p in clips]
    assert np.mean(covered) > 0.9


@pytest.mark.realdata
def test_grounded_world_uses_real_text(real_data_dir: Path, tmp_path: Path) -> None:
    root = simulate(tmp_path / "g", preset="smoke", real_data_dir=real_data_dir)
    info = json.loads((root / "world.json").read_text())
    assert info["grounded"] is True
    real_cards = (real_data_dir / "crosstask" / "tasks_primary.txt").read_text()
    ours = (root / "crosstask" / "tasks_primary.txt").read_text()
    assert ours.split("\n\n")[0] in real_cards
    with (real_data_dir / "msrvtt" / "MSRVTT_JSFUSION_test.csv").open() as fh:
        real_sentences = {r["sentence"] for r in csv.DictReader(fh)}
    assert {p.text for p in load_msrvtt_test(root)} <= real_sentences
    assert load_coin(root / "coin" / "COIN.json").labels
    assert math.isfinite(oracle_levels(root)["youcook2"]["R@1"])


def test_cli_writes_a_world(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--out", str(tmp_path / "cli"), "--preset", "smoke", "--num-videos", "5"]) == 0
    assert "howto100m" in capsys.readouterr().out
    assert len((tmp_path / "cli" / "howto100m" / "train.lst").read_text().split()) == 4
