"""Fine-tuning examples (design §10): COIN windows and targets, the CrossTask split, fixed batches,
the training lists — against hand-made cases, a naive reading of the original's rule, and the
real annotation files (``realdata``)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from videoclip.data.benchmarks import (
    CoinSegment,
    CoinVideo,
    crosstask_split,
    load_coin,
    load_crosstask,
    load_msrvtt_mc,
    load_msrvtt_test,
    load_msrvtt_train,
    load_youcook2_train,
)
from videoclip.evaluation.common import sliding_windows
from videoclip.evaluation.segmentation import coin_targets
from videoclip.finetune.examples import (
    COIN_TRAIN_STRIDE,
    IGNORE,
    RetrievalExample,
    coin_window_targets,
    crosstask_videos,
    epoch_batches,
    fixed_batches,
)


def naive_coin_windows(num_seconds, segments, window=32, stride=8):
    """The original's per-window construction as design §10.4 words it, one window at a time."""
    out = []
    for ws in range(0, num_seconds, stride):
        length = min(num_seconds - ws, window)
        target = [IGNORE] * window
        target[:length] = [0] * length
        for seg in segments:
            first = max(0, math.floor(seg.start) - ws)
            last = min(length, math.ceil(seg.end) - ws)
            if first < last:  # the segment overlaps the window
                target[first:last] = [seg.label_id] * (last - first)
        out.append(((ws, ws + length), target))
        if num_seconds - ws <= window:
            break
    return out


def ours(video, num_seconds):
    windows = sliding_windows(num_seconds, 32, COIN_TRAIN_STRIDE)
    labels, _ = coin_targets(video, num_seconds)
    return windows, coin_window_targets(labels, windows)


def test_coin_windows_and_targets_on_a_hand_made_video():
    segments = (CoinSegment(3.4, 10.2, 5, "a"), CoinSegment(9.0, 40.0, 7, "b"),
                CoinSegment(45.5, 70.0, 2, "c"), CoinSegment(60.0, 65.0, 9, "past the end"))
    video = CoinVideo("v", "C", 0, "training", 50.0, segments)
    windows, targets = ours(video, 50)
    assert windows == [(0, 32), (8, 40), (16, 48), (24, 50)]  # stride 8, the last ends at the end
    assert targets.shape == (4, 32)
    assert targets[0, :3].tolist() == [0, 0, 0]
    assert targets[0, 3:9].tolist() == [5] * 6  # ⌊3.4⌋ = 3 .. 8; second 9 is overwritten by id 7
    assert targets[0, 9:32].tolist() == [7] * 23
    assert targets[3, :16].tolist() == [7] * 16  # seconds 24..39
    assert targets[3, 16:21].tolist() == [0] * 5  # 40..44 background
    assert targets[3, 21:26].tolist() == [2] * 5  # ⌊45.5⌋ = 45 .. 49
    assert targets[3, 26:].tolist() == [IGNORE] * 6  # padded slots
    naive = naive_coin_windows(50, segments)
    assert [w for w, _ in naive] == windows
    assert targets.tolist() == [t for _, t in naive]


def test_coin_targets_match_the_naive_rule_on_random_videos():
    rng = np.random.default_rng(0)
    for _ in range(50):
        num_seconds = int(rng.integers(1, 150))
        segments = []
        for _ in range(int(rng.integers(0, 6))):
            start = float(rng.uniform(0, num_seconds + 10))
            segments.append(CoinSegment(start, start + float(rng.uniform(0, 30)),
                                        int(rng.integers(1, 779)), "x"))
        video = CoinVideo("v", "C", 0, "training", float(num_seconds), tuple(segments))
        windows, targets = ours(video, num_seconds)
        naive = naive_coin_windows(num_seconds, segments)
        assert windows == [w for w, _ in naive]
        assert targets.tolist() == [t for _, t in naive]


def test_fixed_batches_are_contiguous_and_epochs_shuffle_only_their_order():
    batches = fixed_batches(10, 4)
    assert [b.tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    one = epoch_batches(batches, seed=1, epoch=0, rank=0, world_size=1)
    assert sorted(b.tolist() for b in one) == sorted(b.tolist() for b in batches)
    assert [b.tolist() for b in one] == [b.tolist() for b in epoch_batches(
        batches, seed=1, epoch=0, rank=0, world_size=1)]
    orders = {tuple(tuple(b.tolist()) for b in epoch_batches(batches, seed=1, epoch=e, rank=0,
                                                             world_size=1)) for e in range(8)}
    assert len(orders) > 1
    ranks = [epoch_batches(batches, seed=1, epoch=3, rank=r, world_size=2) for r in range(2)]
    assert [len(r) for r in ranks] == [1, 1]  # 3 batches over 2 processes: one each
    assert ranks[0][0].tolist() != ranks[1][0].tolist()


def test_retrieval_example_takes_the_first_32_seconds_of_its_span():
    features = np.arange(100)[:, None].repeat(2, axis=1)
    assert RetrievalExample("v", 10, 60, ("t",)).clip(features)[:, 0].tolist() == list(range(10, 42))
    assert RetrievalExample("v", 90, 120, ("t",)).clip(features)[:, 0].tolist() == list(range(90, 100))
    assert len(RetrievalExample("v", None, None, ("t",)).clip(features)) == 32


class AllStore:
    """A feature store holding every video but ``missing``."""

    def __init__(self, missing=()):
        self.missing = set(missing)

    def __contains__(self, vid):
        return vid not in self.missing


def write_crosstask(root: Path, videos: dict[str, list[str]], val: dict[str, list[str]]) -> None:
    ct = root / "crosstask"
    (ct / "annotations").mkdir(parents=True)
    cards = "".join(f"{t}\nTask {t}\nhttp://x/{t}\n2\nstep a,step b\n\n" for t in videos)
    (ct / "tasks_primary.txt").write_text(cards)
    (ct / "videos.csv").write_text("".join(f"{t},{v},u\n" for t, vs in videos.items() for v in vs))
    (ct / "videos_val.csv").write_text("".join(f"{t},{v},u\n" for t, vs in val.items() for v in vs))
    for t, vs in videos.items():
        for v in vs:
            (ct / "annotations" / f"{t}_{v}.csv").write_text("1,0.5,3.2\n2,4.0,6.0\n")


def test_crosstask_split_filters_before_the_draw(tmp_path):
    videos = {"11": [f"a{i}" for i in range(8)], "22": [f"b{i}" for i in range(6)]}
    write_crosstask(tmp_path, videos, {"11": ["a0"]})
    store = AllStore(missing={"a3"})
    train, skipped = crosstask_videos(tmp_path, store, num_train=3)
    test, _ = crosstask_videos(tmp_path, store, split="test", num_train=3)
    assert skipped == {"no_features_before_split": 1}
    usable = {"11": [v for v in videos["11"] if v != "a3"], "22": videos["22"]}
    expected_train, expected_test = crosstask_split(usable, {"11": ["a0"]}, num_train=3, seed=0)
    assert sorted(i.video_id for i in train) == sorted(v for vs in expected_train.values() for v in vs)
    assert sorted(i.video_id for i in test) == sorted(v for vs in expected_test.values() for v in vs)
    assert [i.task for i in train[:2]] == ["11", "22"]  # interleaved across tasks
    assert "a0" not in {i.video_id for i in train + test}  # validation videos: neither
    assert train[0].steps == ("step a", "step b")


@pytest.mark.realdata
def test_crosstask_training_split_on_the_real_release(real_data_dir):
    train, skipped = crosstask_videos(real_data_dir, AllStore())
    test, _ = crosstask_videos(real_data_dir, AllStore(), split="test")
    data = load_crosstask(real_data_dir)
    assert skipped == {}
    assert len(train) == 540  # 30 per primary task (paper A.1)
    assert len(test) == 1850  # design §10.5: every feature present
    assert {i.task for i in train} == set(data.tasks)
    val = {v for vs in data.val_videos.values() for v in vs}
    assert not val & {i.video_id for i in train + test}
    assert not {i.video_id for i in train} & {i.video_id for i in test}
    assert all(i.annotation.is_file() for i in train)


@pytest.mark.realdata
def test_coin_window_targets_on_the_real_excerpt(real_data_dir):
    path = real_data_dir / "coin" / "COIN_excerpt_first12.json"
    videos = load_coin(path, subset="training").videos + load_coin(path, subset="testing").videos
    assert len(videos) == 12
    for video in videos:
        num_seconds = math.ceil(video.duration)
        _, targets = ours(video, num_seconds)
        naive = naive_coin_windows(num_seconds, video.segments)
        assert targets.tolist() == [t for _, t in naive]
        assert set(targets.unique().tolist()) - {IGNORE, 0} == {s.label_id for s in video.segments}


@pytest.mark.realdata
def test_training_lists_on_the_real_files(real_data_dir):
    youcook = load_youcook2_train(real_data_dir)
    assert len(youcook) == 10337 and len({p.video_id for p in youcook}) == 1333
    nine, seven = load_msrvtt_train(real_data_dir), load_msrvtt_train(real_data_dir, split="7k")
    assert (len(nine), len(seven)) == (9000, 7010) and set(seven) <= set(nine)
    jsfusion = {p.video_id for p in load_msrvtt_test(real_data_dir)}
    mc = {q.video_id for q in load_msrvtt_mc(real_data_dir)}
    assert not jsfusion & set(nine)  # retrieval fine-tuning never sees its test videos
    assert not mc & set(seven)  # QA fine-tuning (7k) never sees a multiple-choice video
    assert len(mc & set(nine)) == 1990  # ... which the 9k list would (design §10.3)


def check_msrvtt_training_split(root: Path) -> tuple[list[str], list[str]]:
    """The simulated MSR-VTT training split, read by the official loaders."""
    from videoclip.data.benchmarks import load_msrvtt_captions
    from videoclip.data.features import open_feature_store

    nine, seven = load_msrvtt_train(root), load_msrvtt_train(root, split="7k")
    captions = load_msrvtt_captions(root)
    store = open_feature_store(root / "msrvtt" / "features")
    assert set(seven) < set(nine)
    assert not set(nine) & {p.video_id for p in load_msrvtt_test(root)}
    assert all(len(captions[v]) == 20 and v in store for v in nine)
    return nine, seven


def test_the_simulated_world_writes_the_msrvtt_training_split(smoke_world):
    nine, seven = check_msrvtt_training_split(smoke_world)
    assert (len(nine), len(seven)) == (20, 14)  # the smoke preset's sizes
    assert seven[0] == "video0" and nine[-1] == "video7015"  # procedural ids


@pytest.mark.slow
@pytest.mark.realdata
def test_a_grounded_world_takes_msrvtt_training_ids_from_the_real_lists(real_data_dir, tmp_path):
    from videoclip.sim.world import simulate

    root = simulate(tmp_path / "w", preset="smoke", seed=0, real_data_dir=real_data_dir)
    nine, seven = check_msrvtt_training_split(root)
    real_seven = load_msrvtt_train(real_data_dir, split="7k")
    assert seven == real_seven[:14]
    assert set(nine) <= set(load_msrvtt_train(real_data_dir))
