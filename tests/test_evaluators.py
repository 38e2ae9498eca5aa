"""Evaluators end to end on the real annotation files with stub scorers and generated features.

Features are generated, never downloaded: :class:`CodedStore` serves, lazily, row ``t`` of
video ``v`` as a unit vector coding ``(index of v, t)``, so an oracle scorer can decode what
it is shown and look the ground truth up; a random scorer must land near chance.
"""

from __future__ import annotations

import itertools
import json
import math
import zlib
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
import torch

from videoclip.data.benchmarks import (
    DIDEMO_MOMENTS,
    crosstask_split,
    load_coin,
    load_crosstask,
    load_didemo,
    load_msrvtt_mc,
    load_msrvtt_test,
    load_youcook2_val,
)
from videoclip.data.features import write_features
from videoclip.evaluation import (
    align_steps,
    evaluate_didemo,
    evaluate_retrieval,
    evaluate_segmentation,
    evaluate_step_localization,
    evaluate_videoqa,
    recall,
)
from videoclip.evaluation.common import sliding_windows, windowed_logits
from videoclip.provenance import read_results

realdata = pytest.mark.realdata
DIM = 512


# ----------------------------------------------------------------------------- stubs


def code_rows(video_index: int, num_seconds: int) -> np.ndarray:
    """``(num_seconds, 512)`` unit rows coding (video index, second) in base-64 digits."""
    t = np.arange(num_seconds)
    rows = np.zeros((num_seconds, DIM), dtype=np.float32)
    rows[t, video_index % 64] = rows[t, 64 + video_index // 64] = 0.5
    rows[t, 128 + t % 64] = rows[t, 192 + t // 64] = 0.5
    return rows


def decode_rows(rows: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(video index, second) of each row; padding (all-zero) rows decode to -1."""
    r = rows.float().cpu().numpy()
    video = r[..., 0:64].argmax(-1) + 64 * r[..., 64:128].argmax(-1)
    second = r[..., 128:192].argmax(-1) + 64 * r[..., 192:256].argmax(-1)
    empty = ~r.any(-1)
    video[empty] = second[empty] = -1
    return video, second


class CodedStore:
    """An in-memory feature store (the FeatureStore protocol) that generates coded rows."""

    def __init__(self, seconds: dict[str, int]) -> None:
        self.seconds = dict(seconds)
        self.index = {vid: i for i, vid in enumerate(sorted(seconds))}
        self.vid_of = {i: vid for vid, i in self.index.items()}
        self.path, self.dim = Path("<memory>"), DIM

    def ids(self) -> list[str]:
        return sorted(self.seconds)

    def __contains__(self, vid: object) -> bool:
        return vid in self.seconds

    def __len__(self) -> int:
        return len(self.seconds)

    def num_seconds(self, vid: str) -> int:
        return self.seconds[vid]

    def load(self, vid: str) -> np.ndarray:
        return code_rows(self.index[vid], self.seconds[vid])

    def load_span(self, vid: str, start: int, end: int) -> np.ndarray:
        return self.load(vid)[start:end]


class RandomModel:
    """Chance-level scorer: a fixed random projection of the features, a random vector per text."""

    def __init__(self, dim: int = 32) -> None:
        self.proj = torch.from_numpy(np.random.default_rng(0).normal(size=(DIM, dim)).astype(np.float32))
        self.dim = dim
        self.mask_cls: set[bool] = set()

    def encode_video(self, video, vmask):
        m = vmask.float()[..., None]
        return ((video * m).sum(1) / m.sum(1).clamp(min=1)) @ self.proj

    def encode_texts(self, texts):
        rows = [np.random.default_rng(zlib.crc32(t.encode())).normal(size=self.dim) for t in texts]
        return torch.tensor(np.array(rows), dtype=torch.float32)

    def video_token_states(self, video, vmask, *, mask_cls):
        self.mask_cls.add(mask_cls)
        return video @ self.proj


class OneHotTexts:
    """``encode_texts``: each text is the sum of the one-hot columns the oracle assigned to it."""

    columns: dict[str, list[int]]
    width: int

    def encode_texts(self, texts):
        out = torch.zeros(len(texts), self.width)
        for i, text in enumerate(texts):
            out[i, self.columns[text]] = 1.0
        return out


# ----------------------------------------------------------------------------- windows


class PositionModel:
    """Token state = (slot index, 1) on valid slots, so averaged logits reveal the windows."""

    def video_token_states(self, video, vmask, *, mask_cls):
        slots = torch.arange(video.shape[1], dtype=torch.float32).expand(video.shape[0], -1)
        return torch.stack([slots, torch.ones_like(slots)], dim=-1) * vmask[..., None]


def test_sliding_windows_follow_the_original_layout():
    assert sliding_windows(0) == []
    assert sliding_windows(10) == [(0, 10)]
    assert sliding_windows(32) == [(0, 32)]
    assert sliding_windows(33) == [(0, 32), (16, 33)]
    assert sliding_windows(48) == [(0, 32), (16, 48)]
    assert sliding_windows(49) == [(0, 32), (16, 48), (32, 49)]


@pytest.mark.parametrize("batch_size", [1, 3, 100])
def test_windowed_logits_average_overlapping_windows(batch_size):
    lengths = [1, 32, 33, 70, 5]
    videos = [(i, np.zeros((n, DIM), np.float32), torch.tensor([[1.0, 0.0]] * (1 + i % 3)))
              for i, n in enumerate(lengths)]  # videos with different numbers of texts share batches
    out = list(windowed_logits(PositionModel(), videos, batch_size=batch_size,
                               device=torch.device("cpu")))
    assert [key for key, _ in out] == list(range(len(lengths)))  # input order
    for (key, logits), n in zip(out, lengths):
        want = []
        for t in range(n):  # naive: the slot index of t in every window covering it
            offsets = [t - s for s, e in sliding_windows(n) if s <= t < e]
            want.append(np.mean(offsets))
        assert logits.shape == (n, len(videos[key][2]))
        np.testing.assert_allclose(logits.numpy(), np.repeat(np.array(want)[:, None], logits.shape[1], 1))


# ----------------------------------------------------------------------------- retrieval


class RetrievalOracle(OneHotTexts):
    """Knows each text's clips: a clip is the one-hot of its (video, start, length) key."""

    def __init__(self, store: CodedStore, keyed_pairs) -> None:
        keys = sorted({key for key, _ in keyed_pairs})
        self.column_of = {key: i for i, key in enumerate(keys)}
        self.width = len(keys)
        self.columns = defaultdict(list)
        for key, text in keyed_pairs:
            self.columns[text].append(self.column_of[key])

    def encode_video(self, video, vmask):
        v, t = decode_rows(video[:, 0])
        out = torch.zeros(video.shape[0], self.width)
        for b, length in enumerate(vmask.sum(1).tolist()):
            out[b, self.column_of[(int(v[b]), int(t[b]), length)]] = 1.0
        return out


def clip_key(store: CodedStore, pair) -> tuple[int, int, int]:
    num_seconds = store.num_seconds(pair.video_id)
    start = pair.start or 0
    end = num_seconds if pair.end is None else min(pair.end, num_seconds)
    return store.index[pair.video_id], start, min(end, start + 32) - start


def expected_ranks(keys: list, texts: list[str]) -> np.ndarray:
    """Ranks under the oracle: sim[i, j] = #clips with text i's text and clip j's key."""
    text_id = {t: i for i, t in enumerate(dict.fromkeys(texts))}
    key_id = {k: i for i, k in enumerate(dict.fromkeys(keys))}
    tid, kid = np.array([text_id[t] for t in texts]), np.array([key_id[k] for k in keys])
    counts = np.zeros((len(text_id), len(key_id)))
    np.add.at(counts, (tid, kid), 1)
    sim = counts[tid][:, kid]
    return (sim >= np.diag(sim)[:, None]).sum(axis=1)


@realdata
@pytest.mark.slow
def test_youcook2_oracle_random_and_skips(real_data_dir):
    pairs = load_youcook2_val(real_data_dir)
    seconds: dict[str, int] = {}
    for p in pairs:
        seconds[p.video_id] = max(seconds.get(p.video_id, 0), p.end)
    by_video = defaultdict(list)
    for p in pairs:
        by_video[p.video_id].append(p)
    videos = list(by_video)
    missing, short, cut = videos[:3], videos[3], videos[4]
    for vid in missing:
        del seconds[vid]
    seconds[short] = min(p.start for p in by_video[short])  # every clip starts at the end
    first = min(by_video[cut], key=lambda p: p.start)
    seconds[cut] = first.end - 1
    store = CodedStore(seconds)
    kept = [p for p in pairs if p.video_id in seconds and p.start < seconds[p.video_id]]
    keyed = [(clip_key(store, p), p.text) for p in kept]

    results, pred = evaluate_retrieval(RetrievalOracle(store, keyed), real_data_dir,
                                       features=store, progress=False)
    assert results["skipped"] == {"no_features": sum(len(by_video[v]) for v in missing),
                                  "segment_past_end": sum(p.video_id in seconds and p.start >= seconds[p.video_id]
                                                          for p in pairs)}
    assert results["skipped"]["segment_past_end"] >= len(by_video[short])
    assert results["segments_cut_at_video_end"] == sum(
        p.start < seconds[cut] < p.end for p in by_video[cut])
    assert results["num_scored"] == len(kept) == len(pred)
    ranks = expected_ranks([k for k, _ in keyed], [t for _, t in keyed])
    assert (pred["rank"].to_numpy() == ranks).all()
    assert results["R@1"] == pytest.approx(100 * np.mean(ranks == 1))
    # the oracle is perfect wherever the text and the clip are unique; duplicates tie
    key_count = Counter(k for k, _ in keyed)
    unique = (pred["text"].map(pred["text"].value_counts()) == 1).to_numpy() & np.array(
        [key_count[k] == 1 for k, _ in keyed])
    assert (pred["rank"].to_numpy()[unique] == 1).all() and unique.mean() > 0.9
    assert results["R@10"] > 99 and "official" in results["protocol"]

    random, _ = evaluate_retrieval(RandomModel(), real_data_dir, features=store, progress=False)
    n = random["num_scored"]
    assert random["R@1"] < 1 and random["R@10"] < 2  # chance: 0.03% and 0.3%
    assert 0.35 * n < random["MdR"] < 0.65 * n


@realdata
def test_msrvtt_retrieval_oracle_and_provenance(real_data_dir, tmp_path):
    rng = np.random.default_rng(0)
    pairs = load_msrvtt_test(real_data_dir)
    store = CodedStore({p.video_id: int(rng.integers(5, 45)) for p in pairs[10:]})
    keyed = [(clip_key(store, p), p.text) for p in pairs[10:]]
    out = tmp_path / "msrvtt.json"
    results, pred = evaluate_retrieval(RetrievalOracle(store, keyed), real_data_dir,
                                       benchmark="msrvtt", features=store, progress=False,
                                       out_path=out)
    assert results["skipped"] == {"no_features": 10} and results["num_scored"] == 990
    ranks = expected_ranks([k for k, _ in keyed], [t for _, t in keyed])
    assert (pred["rank"].to_numpy() == ranks).all() and results["R@1"] > 99
    saved = read_results(out)
    assert saved["results"]["R@1"] == results["R@1"] and "git_sha" in saved["provenance"]
    assert saved["config"]["benchmark"] == "msrvtt"


# ----------------------------------------------------------------------------- VideoQA


class AnswerOracle(OneHotTexts):
    """A video is the one-hot of its index; an option text the videos it is the answer of."""

    def __init__(self, num_videos: int, answers: dict[str, list[int]]) -> None:
        self.width = num_videos
        self.columns = defaultdict(list, answers)

    def encode_video(self, video, vmask):
        v, _ = decode_rows(video[:, 0])
        return torch.nn.functional.one_hot(torch.from_numpy(v), self.width).float()


@realdata
def test_videoqa_from_npy_files_oracle_and_random(real_data_dir, tmp_path):
    questions = load_msrvtt_mc(real_data_dir)
    (tmp_path / "msrvtt").mkdir()
    (tmp_path / "msrvtt/msrvtt_mc_test.jsonl").symlink_to(real_data_dir / "msrvtt/msrvtt_mc_test.jsonl")
    videos = sorted({q.video_id for q in questions})[:300]  # a subset of the videos has features
    index = {vid: i for i, vid in enumerate(videos)}
    for vid in videos:
        write_features(tmp_path / "msrvtt/features", vid, code_rows(index[vid], 3 + index[vid] % 40))
    kept = [q for q in questions if q.video_id in index]
    answers = defaultdict(list)
    for q in kept:
        answers[q.options[q.answer]].append(index[q.video_id])
    results, pred = evaluate_videoqa(AnswerOracle(len(videos), answers), tmp_path, progress=False)
    assert results["skipped"] == {"no_features": len(questions) - len(kept)}
    assert results["num_scored"] == len(kept) == len(pred)
    want = []
    for q in kept:  # correct iff the answer is the only option that belongs to the video
        belongs = [index[q.video_id] in answers.get(o, []) for o in q.options]
        want.append(belongs[q.answer] and sum(belongs) == 1)
    assert pred["correct"].tolist() == want and results["accuracy"] > 99

    random, _ = evaluate_videoqa(RandomModel(), tmp_path, progress=False)
    assert abs(random["accuracy"] - 20) < 6  # chance: 1 in 5; 2 sigma ~ 4.5 points here


# ----------------------------------------------------------------------------- DiDeMo


class MomentOracle(OneHotTexts):
    """Token state = one-hot of the slot's 5-s chunk; a text = the chunk it is about."""

    def __init__(self, chunk_of_text: dict[str, int]) -> None:
        self.width = 6
        self.columns = {text: [c] for text, c in chunk_of_text.items()}
        self.mask_cls: set[bool] = set()

    def video_token_states(self, video, vmask, *, mask_cls):
        self.mask_cls.add(mask_cls)
        _, t = decode_rows(video)
        chunk = torch.from_numpy(np.where(t >= 0, t // 5, 6))
        return torch.nn.functional.one_hot(chunk, 7)[..., :6].float()


def best_single_chunk(times) -> int:
    votes = Counter(s for s, e in times if s == e)
    return votes.most_common(1)[0][0] if votes else times[0][0]


@realdata
@pytest.mark.slow
def test_didemo_oracle_protocols_and_skips(real_data_dir):
    queries = load_didemo(real_data_dir)
    seconds: dict[str, int] = {}
    for q in queries:
        seconds[q.video_id] = max(seconds.get(q.video_id, 0), 5 * q.num_segments)
    stems = sorted(seconds)
    for vid in stems[:4]:
        del seconds[vid]
    seconds[stems[4]] = 3  # only chunk 0 has features
    store = CodedStore(seconds)
    chunk_of_text: dict[str, int] = {}
    for q in queries:
        chunk_of_text.setdefault(q.description, best_single_chunk(q.times))
    oracle = MomentOracle(chunk_of_text)
    results, pred = evaluate_didemo(oracle, real_data_dir, features=store, progress=False)
    kept = [q for q in queries if q.video_id in seconds]
    assert results["skipped"] == {"no_features": len(queries) - len(kept)}
    assert oracle.mask_cls == {False} and "moment localisation" in results["task"]

    # rankings follow the exact scores: mean over each moment's slots of [slot's chunk == c]
    for q, ranked in zip(kept[:500], pred["ranked_moments"][:500]):
        c, num_seconds = chunk_of_text[q.description], seconds[q.video_id]
        valid_in_c = min(max(num_seconds - 5 * c, 0), 5)
        exact = {(a, b): (valid_in_c if a <= c <= b else 0) / (5 * (b - a + 1))
                 for a, b in DIDEMO_MOMENTS}
        assert len(ranked) == 21
        values = [exact[tuple(m)] for m in ranked]
        assert all(x >= y - 1e-6 for x, y in itertools.pairwise(values))
    # rank@1 needs 3 annotators on the top moment; mean pooling can only put one chunk on top
    hits = [sum(t == (chunk_of_text[q.description],) * 2 for t in q.times) >= 3
            and 5 * chunk_of_text[q.description] < seconds[q.video_id] for q in kept]
    assert results["rank@1"] == pytest.approx(100 * np.mean(hits))
    assert results["rank@1"] > 40

    original, pred_orig = evaluate_didemo(oracle, real_data_dir, features=store,
                                          protocol="original", progress=False)
    short = [i for i, q in enumerate(kept) if q.video_id == stems[4]]
    assert short and all(len(pred_orig["ranked_moments"][i]) == 6 for i in short)  # (0, x) only
    assert "original" in original["protocol"] and "official" in results["protocol"]

    # chance: an uninformative scorer does no better than the best fixed (text-blind) top chunk
    prior = max(np.mean([sum(t == (c, c) for t in q.times) >= 3 for q in kept]) for c in range(6))
    random, _ = evaluate_didemo(RandomModel(), real_data_dir, features=store, progress=False)
    assert random["rank@1"] < 100 * prior + 2 < results["rank@1"] - 20
    assert random["rank@5"] < results["rank@5"] - 20


class PaddingProbe(OneHotTexts):
    """Token state = e0 on padded slots, 0 on valid ones; every text = e0."""

    def __init__(self, texts: list[str]) -> None:
        self.width = 1
        self.columns = {text: [0] for text in texts}

    def video_token_states(self, video, vmask, *, mask_cls):
        return (~vmask).float()[..., None]


def test_didemo_moments_average_the_padded_slots_too(tmp_path):
    # The original's moment vector is the unmasked mean of the video tower's states over the
    # moment's 5-s slots, padded slots of a short video included (design §7): in a 12-s video,
    # slots 12-31 are padded, so a moment scores its share of slots past second 12.
    (tmp_path / "didemo").mkdir()
    query = {"annotation_id": 0, "description": "a moment", "video": "short.mp4",
             "times": [[0, 0], [0, 0], [0, 0]], "num_segments": 6}
    (tmp_path / "didemo/test_data.json").write_text(json.dumps([query]))
    store = CodedStore({"short": 12})
    _, pred = evaluate_didemo(PaddingProbe(["a moment"]), tmp_path, features=store, progress=False)
    assert pred.top_moment[0] == (3, 3)  # the first all-padded moment in the 21-moment order
    scores = dict(zip(DIDEMO_MOMENTS, pred.scores[0]))
    assert scores[(0, 0)] == 0 and scores[(2, 2)] == pytest.approx(3 / 5)
    assert scores[(0, 5)] == pytest.approx(18 / 30) and scores[(3, 3)] == scores[(5, 5)] == 1


def test_didemo_refuses_nan_scores(tmp_path):
    # a NaN model must not get a rank@1 (reliability review 3.55): argsort ranks NaN silently
    class NanProbe(PaddingProbe):
        def video_token_states(self, video, vmask, *, mask_cls):
            return torch.full((*vmask.shape, 1), float("nan"))

    (tmp_path / "didemo").mkdir()
    query = {"annotation_id": 0, "description": "a moment", "video": "short.mp4",
             "times": [[0, 0]], "num_segments": 6}
    (tmp_path / "didemo/test_data.json").write_text(json.dumps([query]))
    with pytest.raises(ValueError, match="short: moment scores hold NaN or inf"):
        evaluate_didemo(NanProbe(["a moment"]), tmp_path, features=CodedStore({"short": 12}),
                        progress=False)


# ----------------------------------------------------------------------------- COIN


class SegmentOracle(OneHotTexts):
    """Token state = one-hot of the second's true label (zero for background)."""

    def __init__(self, store: CodedStore, targets: dict[str, np.ndarray], labels: dict[int, str],
                 *, blind: bool = False) -> None:
        self.store, self.targets, self.blind = store, targets, blind
        self.col = {label_id: i for i, label_id in enumerate(labels)}
        self.width = len(labels)
        self.columns = {text: [self.col[label_id]] for label_id, text in labels.items()}
        self.mask_cls: set[bool] = set()

    def video_token_states(self, video, vmask, *, mask_cls):
        self.mask_cls.add(mask_cls)
        v, t = decode_rows(video)
        out = torch.zeros(*v.shape, self.width)
        if self.blind:
            return out
        for b, s in zip(*np.nonzero(t >= 0)):
            label = self.targets[self.store.vid_of[int(v[b, s])]][t[b, s]]
            if label:
                out[b, s, self.col[int(label)]] = 1.0
        return out


@realdata
def test_coin_oracle_background_baseline_and_skips(real_data_dir):
    coin_path = real_data_dir / "coin/COIN_excerpt_first12.json"
    coin = load_coin(coin_path)
    seconds = {v.video_id: math.ceil(v.duration) for v in coin.videos[1:]}
    seconds[coin.videos[1].video_id] = 20  # all its segments start later
    store = CodedStore(seconds)
    targets = {}
    for v in coin.videos[1:]:
        y = np.zeros(seconds[v.video_id], dtype=int)
        for seg in v.segments:
            y[math.floor(seg.start):math.ceil(seg.end)] = seg.label_id
        targets[v.video_id] = y
    oracle = SegmentOracle(store, targets, coin.labels)
    results, pred = evaluate_segmentation(oracle, real_data_dir, coin_path=coin_path,
                                          features=store, progress=False)
    every = np.concatenate([targets[v.video_id] for v in coin.videos[1:]])
    assert oracle.mask_cls == {True} and results["gamma"] == 0
    assert results["frame_accuracy"] == 100 and results["num_seconds"] == len(every) == len(pred)
    assert results["background_baseline"] == pytest.approx(100 * np.mean(every == 0))
    assert set(results["per_class_accuracy"].values()) == {100.0}
    assert results["skipped"] == {"no_features": 1}
    assert results["segments_past_end"] == len(coin.videos[1].segments) == 2

    blind = SegmentOracle(store, targets, coin.labels, blind=True)  # predicts Outside everywhere
    background, _ = evaluate_segmentation(blind, real_data_dir, coin_path=coin_path,
                                          features=store, progress=False)
    assert background["frame_accuracy"] == background["background_baseline"] < 100
    assert background["per_class_accuracy"]["0"] == 100 and background["predicted_outside_share"] == 100


# ----------------------------------------------------------------------------- CrossTask


class StepOracle(OneHotTexts):
    """Token state = multi-hot of the steps annotated at that second (columns by step text)."""

    def __init__(self, store: CodedStore, truths: dict[str, np.ndarray], steps_of: dict[str, tuple]
                 ) -> None:
        texts = sorted({s for steps in steps_of.values() for s in steps})
        self.columns = {text: [i] for i, text in enumerate(texts)}
        self.width = len(texts)
        self.store, self.truths, self.steps_of = store, truths, steps_of
        self.mask_cls: set[bool] = set()

    def video_token_states(self, video, vmask, *, mask_cls):
        self.mask_cls.add(mask_cls)
        v, t = decode_rows(video)
        out = torch.zeros(*v.shape, self.width)
        for b, s in zip(*np.nonzero(t >= 0)):
            vid = self.store.vid_of[int(v[b, s])]
            for k in np.nonzero(self.truths[vid][t[b, s]])[0]:
                out[b, s, self.columns[self.steps_of[vid][k]][0]] = 1.0
        return out


def read_truth(path: Path, num_seconds: int, num_steps: int) -> np.ndarray:
    y = np.zeros((num_seconds, num_steps), dtype=np.uint8)
    for line in path.read_text().splitlines():
        step, start, end = line.split(",")
        y[math.floor(float(start)):math.ceil(float(end)), int(step) - 1] = 1
    return y


@realdata
def test_crosstask_oracle_random_and_skips(real_data_dir):
    data = load_crosstask(real_data_dir)
    _, test = crosstask_split(data.videos, data.val_videos)
    seconds, steps_of, truths = {}, {}, {}
    chosen = [(task, vid) for task, vids in test.items() for vid in vids[:3]]
    for task, vid in chosen:
        path = data.annotation_path(task, vid)
        ends = [float(line.split(",")[2]) for line in path.read_text().splitlines()]
        seconds[vid] = math.ceil(max(ends)) + 3
        steps_of[vid] = data.tasks[task].steps
    (short_task, short_vid), (cut_task, cut_vid) = chosen[0], chosen[4]
    seconds[short_vid] = len(data.tasks[short_task].steps) - 1  # fewer seconds than steps
    starts = sorted(float(line.split(",")[1]) for line in
                    data.annotation_path(cut_task, cut_vid).read_text().splitlines())
    seconds[cut_vid] = math.floor(starts[-1])  # the last annotated step starts past the end
    for task, vid in chosen:
        truths[vid] = read_truth(data.annotation_path(task, vid), seconds[vid], len(steps_of[vid]))
    store = CodedStore(seconds)
    oracle = StepOracle(store, truths, steps_of)
    results, pred = evaluate_step_localization(oracle, real_data_dir, features=store,
                                               batch_size=16, progress=False)
    assert oracle.mask_cls == {True}
    assert results["num_test_videos"] == 1850
    assert results["skipped"] == {"no_features": 1850 - len(chosen), "fewer_seconds_than_steps": 1}
    assert results["num_scored"] == len(chosen) - 1 == len(pred) and results["num_tasks"] == 18
    assert results["annotated_steps_past_end"] >= 1

    # the same pipeline by hand: log-softmax of the 0/1 logits, official alignment, recall
    y_true, y_pred = defaultdict(dict), defaultdict(dict)
    for task, vid in chosen[1:]:
        logits = torch.from_numpy(truths[vid].astype(np.float32))
        y_pred[task][vid] = align_steps(-torch.log_softmax(logits, dim=1).numpy())
        y_true[task][vid] = truths[vid]
    want = recall(y_true, y_pred)
    assert results["recall_per_task"] == pytest.approx(want)
    assert results["recall"] == pytest.approx(np.mean(list(want.values())))
    assert results["recall"] > 75

    random, _ = evaluate_step_localization(RandomModel(), real_data_dir, features=store,
                                           batch_size=16, progress=False)
    assert random["recall"] < 25 < results["recall"] - 40

    # the original code's split draws among videos with features only: here none is left
    with pytest.raises(ValueError, match="no CrossTask test video"):
        evaluate_step_localization(oracle, real_data_dir, features=store, split="original",
                                   progress=False)


@realdata
@pytest.mark.slow
def test_crosstask_original_split_equals_official_with_all_features(real_data_dir):
    data = load_crosstask(real_data_dir)
    tasks = list(data.videos)[:2]
    seconds = {vid: 60 for task in tasks for vid in data.videos[task]}
    store = CodedStore(seconds)
    model = RandomModel()
    official, pred_off = evaluate_step_localization(model, real_data_dir, features=store,
                                                    progress=False)
    original, pred_orig = evaluate_step_localization(model, real_data_dir, features=store,
                                                     split="original", progress=False)
    # official: the same draw as without features, the other tasks' videos counted as missing
    assert official["num_test_videos"] == 1850
    # original: the draw only sees the two tasks, whose videos all have features -> same test set
    assert set(zip(pred_off.task, pred_off.video_id)) == set(zip(pred_orig.task, pred_orig.video_id))
    assert original["skipped"]["no_features_before_split"] == 2750 - sum(len(data.videos[t]) for t in tasks)
    assert official["recall_per_task"] == pytest.approx(original["recall_per_task"])


def test_evaluators_reject_unknown_variants(tmp_path):
    with pytest.raises(ValueError, match="benchmark"):
        evaluate_retrieval(RandomModel(), tmp_path, benchmark="vatex", features=CodedStore({"a": 1}))
    with pytest.raises(ValueError, match="protocol"):
        evaluate_didemo(RandomModel(), tmp_path, protocol="paragraph")
    with pytest.raises(ValueError, match="split"):
        evaluate_step_localization(RandomModel(), tmp_path, split="random")

