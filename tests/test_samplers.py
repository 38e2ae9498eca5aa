"""Clip samplers, groups and collate (Paper §3.3, design §4), checked against naive loops."""

from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
import pytest

from videoclip.data.captions import TokenCache, load_captions
from videoclip.data.features import open_feature_store, pack_features, write_features
from videoclip.data.samplers import (
    Batch,
    ClipSampler,
    GroupSampler,
    _nearest_window,
    collate,
    grow_video,
    make_batch,
    text_ids,
)

CLS, SEP, PAD = 101, 102, 0


def make_cache(video_ids: list[str], starts: list[np.ndarray], ends: list[np.ndarray],
               lengths: list[np.ndarray], rng: np.random.Generator) -> TokenCache:
    lengths_all = np.concatenate(lengths).astype(np.int64)
    return TokenCache(
        video_ids=video_ids,
        video_offsets=np.concatenate([[0], np.cumsum([len(s) for s in starts])]).astype(np.int64),
        starts=np.concatenate(starts).astype(np.float64), ends=np.concatenate(ends).astype(np.float64),
        token_offsets=np.concatenate([[0], np.cumsum(lengths_all)]).astype(np.int64),
        tokens=rng.integers(1000, 2000, size=int(lengths_all.sum())).astype(np.int32),
        meta={"cls_token_id": CLS, "sep_token_id": SEP, "pad_token_id": PAD, "report": {}},
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, TokenCache]:
    """12 videos of 3..400 s; captions every 1..6 s holding 0..15 tokens (some run past the end)."""
    root = tmp_path_factory.mktemp("world")
    rng = np.random.default_rng(0)
    ids, starts, ends, lengths = [], [], [], []
    for i, num_s in enumerate([3, 4, 7, 25, 40, 90, 150, 200, 300, 400, 60, 33]):
        vid = f"v{i:02d}"
        ids.append(vid)
        x = rng.standard_normal((num_s, 512))
        write_features(root / "npy", vid, x / np.linalg.norm(x, axis=1, keepdims=True))
        t = np.cumsum(rng.uniform(1.0, 6.0, size=max(1, num_s // 2)))
        t = t[t < num_s + 3] if (t < num_s + 3).any() else t[:1]
        starts.append(t)
        ends.append(t + rng.uniform(0.0, 8.0, size=len(t)))
        lengths.append(rng.integers(0, 16, size=len(t)))
    pack_features(root / "npy", root / "packed", shard_videos=5)
    return root, make_cache(ids, starts, ends, lengths, rng)


def joined_tokens(cache: TokenCache, c0: int, c1: int) -> list[int]:
    return [int(t) for c in range(c0, c1) for t in cache.tokens[cache.token_offsets[c]:cache.token_offsets[c + 1]]]


def naive_text_clip(cache: TokenCache, c0: int, c1: int, centre: int, budget: int,
                    coin: random.Random, max_span: float = 256.0) -> tuple[int, int]:
    """MMPT TextClipSamplingProcessor as a plain per-pair loop (global caption indices)."""
    lengths = np.diff(cache.token_offsets)
    lo, hi = centre, centre + 1
    num_tokens = lengths[centre]
    span = max(0.0, cache.ends[centre] - cache.starts[centre])
    while (lo > c0 or hi < c1) and num_tokens < budget and span < max_span:
        if coin.random() > 0.5 and hi < c1:
            num_tokens += lengths[hi]
            hi += 1
        elif lo > c0:
            lo -= 1
            num_tokens += lengths[lo]
        else:
            num_tokens += lengths[hi]
            hi += 1
        span = max(0.0, cache.ends[hi - 1] - cache.starts[lo])
    return lo, hi


def naive_video_clip(centre: int, length: int, num_seconds: int, coin: random.Random) -> tuple[int, int]:
    """MMPT VideoClipSamplingProcessor as a plain loop."""
    start = end = centre
    grown = 0
    while (start > 0 or end < num_seconds) and grown < length:
        if start <= 0:
            end += 1
        elif end >= num_seconds:
            start -= 1
        elif coin.random() > 0.5:
            end += 1
        else:
            start -= 1
        grown += 1
    return start, end


def test_overlap_pairs_follow_the_spec(world: tuple[Path, TokenCache]) -> None:
    root, cache = world
    store = open_feature_store(root / "packed")
    sampler = ClipSampler(kind="overlap")
    ids = cache.ids()
    pairs = sampler.sample(ids, store, cache, clip_per_video=150, rng=np.random.default_rng(1))
    batch = collate(pairs, store, cache, sampler)
    lengths = np.diff(cache.token_offsets)
    budgets, video_lens = pairs.extra["budget"], []
    for i in range(len(pairs.video_row)):
        vid = ids[pairs.video_row[i]]
        c0, c1 = cache.caption_range(vid)
        lo, hi = int(pairs.caption_start[i]), int(pairs.caption_end[i])
        centre_caption, budget = int(pairs.extra["centre_caption"][i]), int(budgets[i])
        # text clip: whole neighbouring captions around the centre caption
        assert c0 <= lo <= centre_caption < hi <= c1
        num_tokens = int(lengths[lo:hi].sum())
        span = max(0.0, cache.ends[hi - 1] - cache.starts[lo])
        assert num_tokens >= budget or span >= 256 or (lo, hi) == (c0, c1)
        if hi - lo > 1:  # the state before the last caption was added had not met the stop rule
            before = [(lo + 1, hi)] if lo < centre_caption else []
            before += [(lo, hi - 1)] if hi - 1 > centre_caption else []
            assert any(lengths[a:b].sum() < budget and cache.ends[b - 1] - cache.starts[a] < 256
                       for a, b in before)
        # tokens: [CLS] joined[:61] [SEP] then padding
        text = joined_tokens(cache, lo, hi)[:61]
        row = batch.input_ids[i].tolist()
        assert row == [CLS, *text, SEP] + [PAD] * (61 - len(text))
        assert batch.attention_mask[i].tolist() == [1] * (len(text) + 2) + [0] * (61 - len(text))
        # video clip: centre inside the text span (clamped to the video), 3..32 s around it
        num_s = store.num_seconds(vid)
        t0, t1 = math.floor(cache.starts[lo]), math.ceil(cache.ends[hi - 1])
        centre = int(pairs.centre[i])
        assert min(t0, num_s - 1) <= centre <= min(t1, num_s - 1)
        start, end = int(pairs.video_start[i]), int(pairs.video_end[i])
        assert 0 <= start <= centre <= end <= num_s
        assert 3 <= end - start <= 32 and end - start <= num_s
        video_lens.append(end - start)
        n = end - start
        np.testing.assert_array_equal(batch.video[i, :n].numpy(), store.load_span(vid, start, end))
        assert not batch.video[i, n:].any() and batch.vmask[i].tolist() == [True] * n + [False] * (32 - n)
    assert budgets.min() == 8 and budgets.max() == 64  # uniform 8..64, both ends drawn
    assert min(video_lens) == 3 and max(video_lens) == 32
    assert batch.video.shape == (len(ids) * 150, 32, 512) and batch.input_ids.shape[1] == 63
    assert batch.bag is None and batch.video_ids[:150] == [ids[0]] * 150


def test_grow_text_matches_the_naive_loop(world: tuple[Path, TokenCache]) -> None:
    """Same distribution of text clips as MMPT's per-pair loop (fixed centre and budget)."""
    _, cache = world
    vid = "v08"
    c0, c1 = cache.caption_range(vid)
    centre, budget, n = c0 + 5, 40, 6000
    lo, hi = ClipSampler().grow_text(cache, np.full(n, centre), np.full(n, c0), np.full(n, c1),
                                     np.full(n, budget), np.random.default_rng(2))
    fast = np.unique(np.stack([lo, hi], 1), axis=0, return_counts=True)
    coin = random.Random(3)
    naive = np.array([naive_text_clip(cache, c0, c1, centre, budget, coin) for _ in range(n)])
    slow = np.unique(naive, axis=0, return_counts=True)
    fast_freq = {tuple(k): v / n for k, v in zip(*fast)}
    slow_freq = {tuple(k): v / n for k, v in zip(*slow)}
    assert set(fast_freq) == set(slow_freq)
    assert sum(abs(fast_freq[k] - slow_freq[k]) for k in fast_freq) < 0.06


@pytest.mark.parametrize(("centre", "length", "num_seconds"), [(0, 5, 10), (2, 8, 10), (20, 32, 40), (9, 10, 10)])
def test_grow_video_matches_the_naive_loop(centre: int, length: int, num_seconds: int) -> None:
    n = 20000
    start, end = grow_video(np.full(n, centre), np.full(n, length), np.full(n, num_seconds),
                            np.random.default_rng(4))
    assert np.all(end - start == length) and np.all((start >= 0) & (end <= num_seconds))
    coin = random.Random(5)
    naive = np.array([naive_video_clip(centre, length, num_seconds, coin)[0] for _ in range(n)])
    support = np.arange(num_seconds + 1)
    fast_hist = np.bincount(start, minlength=len(support)) / n
    slow_hist = np.bincount(naive, minlength=len(support)) / n
    assert np.abs(fast_hist - slow_hist).sum() < 0.04


@pytest.mark.parametrize("kind", ["exact", "aligned"])
def test_exact_video_span_is_the_text_span(world: tuple[Path, TokenCache], kind: str) -> None:
    root, cache = world
    store = open_feature_store(root / "npy")
    sampler = ClipSampler(kind=kind)
    pairs = sampler.sample(cache.ids(), store, cache, clip_per_video=40, rng=np.random.default_rng(6))
    for i in range(len(pairs.video_row)):
        vid = cache.ids()[pairs.video_row[i]]
        lo, hi = pairs.caption_start[i], pairs.caption_end[i]
        num_s = store.num_seconds(vid)
        end = min(math.ceil(cache.ends[hi - 1]), num_s)
        start = max(min(math.floor(cache.starts[lo]), end), 0)
        assert (pairs.video_start[i], pairs.video_end[i]) == (start, min(end, start + 32))
    assert np.all(pairs.centre == -1)
    # captions run up to 3 s past the features in this world: some exact clips are empty, counted
    assert pairs.extra["num_empty_video"] == int((pairs.video_end <= pairs.video_start).sum()) > 0


def test_aligned_draws_like_exact(world: tuple[Path, TokenCache]) -> None:
    root, cache = world
    store = open_feature_store(root / "packed")
    a = make_batch(cache.ids(), store, cache, clip_per_video=8, sampler="exact", rng=np.random.default_rng(7))
    b = make_batch(cache.ids(), store, cache, clip_per_video=8, sampler="aligned", rng=np.random.default_rng(7))
    assert_same_batch(a, b)


def naive_nearest_window(starts: np.ndarray, ends: np.ndarray, ind: int, k: int) -> int:
    """MMPT How2MILNCEAligner._find_nearest_candidates on one video's captions."""
    start = end = ind
    for n_candidate in range(1, k):
        if start == 0:
            return 0
        if end == len(starts) - 1:
            return start - (k - n_candidate)
        if ends[end] - starts[start - 1] < ends[end + 1] - starts[start]:
            start -= 1
        else:
            end += 1
    return start


def test_milnce_bags(world: tuple[Path, TokenCache]) -> None:
    root, cache = world
    store = open_feature_store(root / "packed")
    sampler = ClipSampler(kind="milnce")
    pairs = sampler.sample(cache.ids(), store, cache, clip_per_video=30, rng=np.random.default_rng(8))
    batch = collate(pairs, store, cache, sampler)
    num_clips = len(cache) * 30
    assert batch.video.shape[0] == num_clips and batch.input_ids.shape[0] == 4 * num_clips
    assert batch.bag.tolist() == np.repeat(np.arange(num_clips), 4).tolist()
    assert np.all(pairs.video_end - pairs.video_start == 3)  # int(3.2) one-second features
    assert np.all(pairs.caption_end - pairs.caption_start == 1)  # each positive is one caption
    for i in range(num_clips):
        vid = cache.ids()[pairs.video_row[i]]
        c0, c1 = cache.caption_range(vid)
        assert 0 <= pairs.video_start[i] and pairs.video_end[i] <= store.num_seconds(vid)
        texts = pairs.caption_start[4 * i:4 * i + 4]
        caption = int(pairs.extra["centre_caption"][i])
        first = naive_nearest_window(cache.starts[c0:c1], cache.ends[c0:c1], caption - c0, 4)
        assert texts.tolist() == np.clip(c0 + first + np.arange(4), c0, c1 - 1).tolist()
        assert caption in texts
    # the vectorised window equals the loop on every caption of every video
    for vid in cache.ids():
        c0, c1 = cache.caption_range(vid)
        got = _nearest_window(cache, np.arange(c0, c1), np.full(c1 - c0, c0), np.full(c1 - c0, c1), 4)
        want = [c0 + naive_nearest_window(cache.starts[c0:c1], cache.ends[c0:c1], j, 4) for j in range(c1 - c0)]
        assert got.tolist() == want


def assert_same_batch(a: Batch, b: Batch) -> None:
    for name in ("video", "vmask", "input_ids", "attention_mask"):
        assert getattr(a, name).equal(getattr(b, name)), name
    assert a.video_ids == b.video_ids
    np.testing.assert_array_equal(a.video_span, b.video_span)
    np.testing.assert_array_equal(a.caption_span, b.caption_span)


@pytest.mark.parametrize("kind", ["overlap", "milnce"])
def test_seeded_reproducible_and_store_independent(world: tuple[Path, TokenCache], kind: str) -> None:
    root, cache = world
    packed, npy = open_feature_store(root / "packed"), open_feature_store(root / "npy")
    group = cache.ids()[3:9]
    a = make_batch(group, packed, cache, clip_per_video=16, sampler=kind, rng=np.random.default_rng(9))
    b = make_batch(group, npy, cache, clip_per_video=16, sampler=kind, rng=np.random.default_rng(9))
    c = make_batch(group, packed, cache, clip_per_video=16, sampler=kind, rng=np.random.default_rng(10))
    assert_same_batch(a, b)
    assert not np.array_equal(a.video_span, c.video_span)


def test_group_sampler_and_paper_sizes(world: tuple[Path, TokenCache]) -> None:
    root, cache = world
    store = open_feature_store(root / "packed")
    ids = cache.ids()
    groups = [ids[:4], ids[4:8], ids[8:]]
    batches = list(GroupSampler(groups, store, cache, clip_per_video=16, sampler="overlap",
                                rng=np.random.default_rng(11)))
    assert len(batches) == 3
    for group, batch in zip(groups, batches):
        assert batch.video_ids == [v for v in group for _ in range(16)]  # clips of a video adjacent
        assert batch.input_ids.dtype.is_floating_point is False and batch.vmask.dtype.is_floating_point is False
    paper = make_batch([ids[i % len(ids)] for i in range(32)], store, cache, clip_per_video=16,
                       sampler="overlap", rng=np.random.default_rng(12))
    assert tuple(paper.video.shape) == (512, 32, 512) and tuple(paper.input_ids.shape) == (512, 63)
    assert paper.to("cpu").video.equal(paper.video)


def test_toy_profile_lengths(world: tuple[Path, TokenCache]) -> None:
    root, cache = world
    store = open_feature_store(root / "packed")
    sampler = ClipSampler(min_text_tokens=4, max_text_tokens=12, max_text_len=10,
                          min_video_len=2, max_video_len=6, num_video_slots=8)
    batch = make_batch(cache.ids(), store, cache, clip_per_video=50, sampler=sampler,
                       rng=np.random.default_rng(13))
    lengths = batch.video_span[:, 1] - batch.video_span[:, 0]
    assert lengths.min() == 2 and lengths.max() == 6
    assert tuple(batch.video.shape[1:]) == (8, 512) and batch.input_ids.shape[1] == 12
    assert int(batch.attention_mask.sum(1).max()) <= 12


def test_text_ids_truncates_to_61() -> None:
    rng = np.random.default_rng(14)
    cache = make_cache(["a"], [np.arange(5.0)], [np.arange(5.0) + 1], [np.array([40, 30, 0, 1, 2])], rng)
    ids, mask = text_ids(cache, np.array([0, 2, 2]), np.array([2, 3, 5]))
    assert ids[0].tolist() == [CLS, *cache.tokens[:61].tolist(), SEP]
    assert ids[1].tolist() == [CLS, SEP] + [PAD] * 61  # a caption without tokens
    assert mask[0].sum() == 63 and mask[1].sum() == 2 and mask[2].sum() == 5


def test_bad_input(world: tuple[Path, TokenCache]) -> None:
    root, cache = world
    store = open_feature_store(root / "packed")
    with pytest.raises(ValueError, match=r"'v00' has 3 s.*min_video_len=4.*reconcile"):
        make_batch(["v00", "v05"], store, cache, clip_per_video=2,
                   sampler=ClipSampler(min_video_len=4), rng=np.random.default_rng(0))
    with pytest.raises(KeyError, match="no captions"):
        make_batch(["nope"], store, cache, clip_per_video=2, sampler="overlap", rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="sampler kind"):
        ClipSampler(kind="random")
    with pytest.raises(ValueError, match="slots"):
        ClipSampler(max_video_len=40)
    with pytest.raises(ValueError, match="clip_per_video"):
        make_batch(["v05"], store, cache, clip_per_video=0, sampler="overlap", rng=np.random.default_rng(0))


@pytest.mark.realdata
def test_samples_from_real_caption_timing(real_data_dir: Path, tmp_path: Path) -> None:
    """Real HowTo100M caption CSVs (timing, rolling overlap) with generated features."""
    captions = load_captions(real_data_dir / "howto100m" / "mil_nce_small_train_captions")
    rng = np.random.default_rng(15)
    ids = captions.ids()[:20]
    lengths = [rng.integers(1, 9, size=len(captions.videos[v])) for v in ids]
    cache = make_cache(ids, [captions.videos[v].start for v in ids], [captions.videos[v].end for v in ids],
                       lengths, rng)
    for vid in ids:
        num_s = math.ceil(captions.videos[vid].end.max())
        write_features(tmp_path, vid, rng.standard_normal((num_s, 512)))
    store = open_feature_store(tmp_path)
    sampler = ClipSampler()
    pairs = sampler.sample(ids, store, cache, clip_per_video=16, rng=rng)
    t0 = np.floor(cache.starts[pairs.caption_start])
    t1 = np.ceil(cache.ends[pairs.caption_end - 1])
    assert np.all((pairs.centre >= t0) & (pairs.centre <= t1))  # features cover every caption
    assert np.all((pairs.video_end - pairs.video_start >= 3) & (pairs.video_end - pairs.video_start <= 32))
