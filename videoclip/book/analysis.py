"""Analyses behind the book's data chapters: what a data root holds, and how well sampled
video-text pairs line up with what is on screen.

* :func:`data_inventory`, :func:`benchmark_counts`, :func:`corpus_summary` — read any data root
  (simulated or real) through the package's loaders.
* :func:`pair_table` / :func:`pair_truth` — per sampled pair (Paper §3.3, design §4): which step instances its text
  narrates, whether its video span shows one of them ("the paired text describes what is on
  screen"), and the share of its seconds that do. :func:`screen_match_summary` aggregates with
  a cluster bootstrap over videos; :func:`shuffled_spans` is the naive reference (same clip
  lengths, placed at random in the same video).

Everything returns pandas frames or plain dicts; nothing here plots.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from videoclip.data.benchmarks import (
    crosstask_split,
)
from videoclip.data.captions import TokenCache, build_token_cache, reconcile
from videoclip.data.features import open_feature_store
from videoclip.data.samplers import ClipSampler, Pairs
from videoclip.evaluation.registry import BENCHMARKS
from videoclip.sim.config import SimConfig
from videoclip.sim.truth import TRUTH_FILE, WorldTruth

__all__ = [
    "CORPUS_FILES",
    "SCREEN_MEASURES",
    "benchmark_counts",
    "corpus_summary",
    "data_inventory",
    "lag_summary",
    "levels_table",
    "narrated_by",
    "pair_table",
    "pair_truth",
    "paired_difference",
    "pretraining_corpus",
    "sample_pair_table",
    "screen_match_summary",
    "shuffled_spans",
    "simconfig_table",
]

CORPUS_FILES = ("howto100m/caption.json", "howto100m/HowTo100M_v1.csv", "howto100m/task_ids.csv",
                "howto100m/train.lst", "howto100m/val.lst", "howto100m/features")

# --------------------------------------------------------------------------- data roots


def data_inventory(data_root: str | Path) -> pd.DataFrame:
    """Which files of the data-root layout exist: one row per path with ``exists`` and ``size``
    (bytes for a file, entries for a folder)."""
    root = Path(data_root)
    rows = []
    paths = [*CORPUS_FILES, *(p for b in BENCHMARKS.values() for p in b.files),
             *(f"{sub}/features" for sub in sorted({b.features for b in BENCHMARKS.values()})),
             "world.json", TRUTH_FILE]
    for rel in dict.fromkeys(paths):
        path = root / rel
        size = (sum(1 for _ in path.iterdir()) if path.is_dir()
                else path.stat().st_size if path.is_file() else 0)
        rows.append({"path": rel, "exists": path.exists(), "kind": "folder" if path.is_dir() else "file",
                     "size": size})
    return pd.DataFrame(rows)


def _videos_with_features(root: Path, sub: str, video_ids: set[str]) -> int:
    folder = root / sub / "features"
    if not folder.is_dir():
        return 0
    store = open_feature_store(folder)
    return sum(v in store for v in video_ids)


def benchmark_counts(data_root: str | Path) -> pd.DataFrame:
    """Per benchmark, what its official loader reads back: videos, evaluation items and how many
    of the videos have features. design §7.

    A benchmark whose files are absent gets a row with ``status = "missing: <paths>"`` and zero
    counts (the data chapter describes partial real data roots too); a file that is present but
    malformed raises the loader's error.

    Returns:
        Columns ``benchmark, task, videos, items, item, with_features, status``.
    """
    root = Path(data_root)
    rows = []
    for name, bench in BENCHMARKS.items():
        missing = [f for f in bench.files if not (root / f).exists()]
        row: dict[str, Any] = {"benchmark": name, "task": bench.task, "videos": 0, "items": 0,
                               "item": bench.items, "with_features": 0}
        if missing:
            rows.append({**row, "status": "missing: " + ", ".join(missing)})
            continue
        videos, items = _read_benchmark(root, name)
        rows.append({**row, "videos": len(videos), "items": items,
                     "with_features": _videos_with_features(root, bench.features, videos),
                     "status": "ok"})
    return pd.DataFrame(rows)


def _read_benchmark(root: Path, name: str) -> tuple[set[str], int]:
    """(video ids, number of items) of one benchmark's test set, through its loader."""
    loaded = BENCHMARKS[name].load(root)
    if name == "coin":
        return {v.video_id for v in loaded.videos}, sum(len(v.segments) for v in loaded.videos)
    if name != "crosstask":  # a list of items, each of one video
        return {item.video_id for item in loaded}, len(loaded)
    data = loaded
    _, test = crosstask_split(data.videos, data.val_videos)
    videos = {v for vids in test.values() for v in vids}
    steps = sum(len(data.annotation_path(t, v).read_text().split()) for t, vids in test.items()
                for v in vids)
    return videos, steps


def corpus_summary(data_root: str | Path, *, max_videos: int = 2000, seed: int = 0
                   ) -> tuple[dict[str, Any], pd.DataFrame]:
    """The pre-training corpus (``howto100m/``) as the loaders see it, on raw (not de-duplicated)
    captions. design §4.

    Args:
        max_videos: per-video statistics use a seeded random sample of this many captioned
            videos (the real corpus has 1.2 M).

    Returns:
        ``(summary, per_video)``: counts (videos with captions, with features, in train/val
        lists, tasks) and a frame with ``video_id, captions, words_per_caption,
        seconds_per_caption, caption_span_s, feature_seconds`` (NaN without features).

    Raises:
        FileNotFoundError: ``howto100m/caption.json`` is missing (names the path and the fix).
    """
    root = Path(data_root) / "howto100m"
    caption_path = root / "caption.json"
    if not caption_path.is_file():
        raise FileNotFoundError(f"{caption_path} is missing: the pre-training corpus needs HowTo100M's "
                                "raw captions there (see book/paper_profile.md)")
    captions = json.loads(caption_path.read_text())
    ids = sorted(captions)
    rng = np.random.default_rng(seed)
    sample = [ids[i] for i in sorted(rng.choice(len(ids), size=min(max_videos, len(ids)), replace=False))]
    store = open_feature_store(root / "features") if (root / "features").is_dir() else None
    rows = []
    for vid in sample:
        entry = captions[vid]
        start, end = np.asarray(entry["start"], float), np.asarray(entry["end"], float)
        words = [len(str(t).split()) for t in entry["text"]]
        rows.append({
            "video_id": vid, "captions": len(words),
            "words_per_caption": float(np.mean(words)) if words else np.nan,
            "seconds_per_caption": float(np.mean(end - start)) if words else np.nan,
            "caption_span_s": float(end.max() - start.min()) if words else np.nan,
            "feature_seconds": store.num_seconds(vid) if store is not None and vid in store else np.nan,
        })
    lists = {name: root / f"{name}.lst" for name in ("train", "val")}
    summary: dict[str, Any] = {
        "videos_with_captions": len(ids),
        "captions": sum(len(c["text"]) for c in captions.values()),
        "videos_with_features": len(store) if store is not None else 0,
        "captioned_videos_with_features": (sum(v in store for v in ids) if store is not None else 0),
        **{f"{name}_list": (len(p.read_text().split()) if p.is_file() else 0) for name, p in lists.items()},
        "sampled_videos": len(sample),
    }
    meta = root / "HowTo100M_v1.csv"
    if meta.is_file():
        summary["tasks"] = int(pd.read_csv(meta, usecols=["task_id"])["task_id"].nunique())
    return summary, pd.DataFrame(rows)


def pretraining_corpus(data_root: str | Path, tokenizer: Any, *, cache_dir: str | Path
                       ) -> tuple[Any, TokenCache, list[str], dict[str, Any]]:
    """The pre-training corpus ready for the samplers: ``(store, token_cache, usable video ids,
    reconcile report)``. The token cache (design §4: de-duplicated, 96 chars, 32 tokens) is kept
    in ``cache_dir`` (the data root may be read-only); videos without features, without
    captions or shorter than the 3-s minimum clip are counted in the report, not used."""
    root = Path(data_root) / "howto100m"
    store = open_feature_store(root / "features")
    token_cache = build_token_cache(root / "caption.json", tokenizer, cache_dir=cache_dir)
    report = reconcile(token_cache, store, min_seconds=ClipSampler().min_video_len)
    if not report["usable_ids"]:
        raise ValueError(f"{root}: no video has both captions and at least "
                         f"{report['min_seconds']} s of features ({report})")
    return store, token_cache, report.pop("usable_ids"), report


# --------------------------------------------------------------------------- ground truth


def lag_summary(steps: pd.DataFrame) -> dict[str, float]:
    """How loose the narration is: shares of step instances spoken before their step starts,
    during it, after it ends, or never, and the median |lag| of spoken ones (seconds)."""
    spoken = steps.dropna(subset=["onset"])
    n = max(len(steps), 1)
    return {
        "step_instances": len(steps),
        "unspoken": len(steps.onset[steps.onset.isna()]) / n,
        "before_start": float((spoken.onset < spoken.start).sum()) / n,
        "during": float(((spoken.onset >= spoken.start) & (spoken.onset < spoken.end)).sum()) / n,
        "after_end": float((spoken.onset >= spoken.end).sum()) / n,
        "median_abs_lag_s": float(spoken.lag.abs().median()) if len(spoken) else float("nan"),
    }


# --------------------------------------------------------------------------- sampled pairs


def _overlap(a0: np.ndarray, a1: np.ndarray, b0: np.ndarray, b1: np.ndarray) -> np.ndarray:
    """Length of ``[a0, a1) ∩ [b0, b1)``, broadcast."""
    return np.clip(np.minimum(a1, b1) - np.maximum(a0, b0), 0, None)


def narrated_by(start: np.ndarray, end: np.ndarray, steps: pd.DataFrame, *,
                min_speech_overlap_s: float = 0.1) -> np.ndarray:
    """``(N, K)`` bool: text spans ``[start, end]`` ``(N,)`` narrate step instance k (rows of
    ``steps``, one video's) when they overlap its speech ``[onset, speech_end]`` by more than
    ``min_speech_overlap_s`` seconds (unspoken instances are never narrated)."""
    onset, speech_end = steps.onset.to_numpy(), steps.speech_end.to_numpy()
    shared = _overlap(np.asarray(start, float)[:, None], np.asarray(end, float)[:, None], onset, speech_end)
    return np.nan_to_num(shared, nan=0.0) > min_speech_overlap_s


def pair_table(pairs: Pairs, token_cache: TokenCache, *, max_text_len: int = 61) -> pd.DataFrame:
    """Sampled pairs as a frame (one text per pair; not MIL-NCE bags). design §4.

    Returns:
        One row per pair: ``video_id, kind, text_start, text_end`` (seconds spanned by its
        captions), ``video_start, video_end, video_seconds, text_tokens`` (after truncation to
        ``max_text_len``), ``text_tokens_raw, num_captions``.
    """
    if len(pairs.caption_start) != len(pairs.video_row):
        raise ValueError(f"pair_table takes one text per pair; a {pairs.kind!r} sample has "
                         f"{len(pairs.caption_start)} texts for {len(pairs.video_row)} pairs")
    c0, c1 = pairs.caption_start, pairs.caption_end
    raw = token_cache.token_offsets[c1] - token_cache.token_offsets[c0]
    return pd.DataFrame({
        "video_id": [pairs.video_ids[r] for r in pairs.video_row.tolist()],
        "kind": pairs.kind,
        "text_start": token_cache.starts[c0], "text_end": token_cache.ends[c1 - 1],
        "video_start": pairs.video_start, "video_end": pairs.video_end,
        "video_seconds": pairs.video_end - pairs.video_start,
        "text_tokens": np.minimum(raw, max_text_len), "text_tokens_raw": raw,
        "num_captions": c1 - c0,
    })


def pair_truth(pairs: Pairs, token_cache: TokenCache, truth: WorldTruth, *,
               min_speech_overlap_s: float = 0.1, max_text_len: int = 61) -> pd.DataFrame:
    """Score sampled pairs against the world's ground truth. Paper: §3.3.

    A text clip *narrates* a step instance when its time span overlaps the instance's speech
    (:func:`narrated_by`). It *describes the screen* when the pair's video span
    ``[video_start, video_end)`` overlaps the true interval of a narrated instance, or of
    another instance of the same step text in that video (a repeated step shows the same
    thing). ``screen_share`` is the share of the video span's seconds inside those intervals.

    Returns:
        :func:`pair_table`'s columns plus ``narrated`` (instances), ``describes_screen`` (bool)
        and ``screen_share``.
    """
    table = pair_table(pairs, token_cache, max_text_len=max_text_len)
    narrated = np.zeros(len(table), np.int64)
    describes = np.zeros(len(table), bool)
    share = np.zeros(len(table), np.float64)
    by_video = {vid: g for vid, g in truth.steps.groupby("video_id", sort=False)}
    for vid, rows in table.groupby("video_id", sort=False).indices.items():
        steps = by_video.get(vid)
        if steps is None:
            if vid not in truth.video_task:
                raise KeyError(f"video {vid!r} of the sampled pairs is not in {TRUTH_FILE}; score "
                               "pairs drawn from this world's own howto100m corpus")
            continue  # a video without steps: nothing is ever on screen
        t0, t1 = table.text_start.to_numpy()[rows], table.text_end.to_numpy()[rows]
        spoken = narrated_by(t0, t1, steps, min_speech_overlap_s=min_speech_overlap_s)  # (P_v, K)
        texts = steps.text.to_numpy()
        same_text = texts[:, None] == texts[None, :]  # (K, K)
        shown = (spoken.astype(np.int64) @ same_text.astype(np.int64)) > 0  # (P_v, K)
        v0 = table.video_start.to_numpy()[rows]
        v1 = table.video_end.to_numpy()[rows]
        start, end = steps.start.to_numpy(), steps.end.to_numpy()
        describes[rows] = (shown & (_overlap(v0[:, None], v1[:, None], start, end) > 0)).any(axis=1)
        narrated[rows] = spoken.sum(axis=1)
        seconds = np.arange(int(v1.max()) if len(v1) else 0)
        cover = _overlap(seconds[:, None], seconds[:, None] + 1, start, end)  # (S, K) in [0, 1]
        on_screen = (shown[:, None, :] * cover[None]).max(axis=2, initial=0.0)  # (P_v, S)
        inside = (seconds >= v0[:, None]) & (seconds < v1[:, None])
        share[rows] = (on_screen * inside).sum(axis=1) / np.maximum(v1 - v0, 1)
    return table.assign(narrated=narrated, describes_screen=describes, screen_share=share)


def shuffled_spans(pairs: Pairs, num_seconds: np.ndarray, rng: np.random.Generator) -> Pairs:
    """The naive reference: each video span moved to a uniformly random place in its own video,
    keeping its length and its text (``num_seconds``: ``(V,)`` lengths of ``pairs.video_ids``)."""
    total = np.asarray(num_seconds)[pairs.video_row]
    length = np.minimum(pairs.video_end - pairs.video_start, total)
    start = rng.integers(0, total - length + 1)
    return dataclasses.replace(pairs, video_start=start, video_end=start + length,
                               kind=f"{pairs.kind} (shuffled)")


def sample_pair_table(video_ids: Sequence[str], store: Any, token_cache: TokenCache, *,
                      truth: WorldTruth | None = None, kinds: Sequence[str] = ("overlap", "exact"),
                      clip_per_video: int = 16, rounds: int = 1, shuffled: bool = False,
                      rng: np.random.Generator) -> pd.DataFrame:
    """``rounds`` × ``clip_per_video`` pairs per video for each sampler kind, as
    :func:`pair_table` rows, or :func:`pair_truth` rows when ``truth`` is given. With
    ``shuffled`` each kind's pairs are scored again with their video spans moved at random
    (:func:`shuffled_spans`; needs ``truth``). Column ``round`` numbers the draws."""
    if shuffled and truth is None:
        raise ValueError("shuffled spans are a reference for pair_truth; pass truth= as well")
    video_ids = list(video_ids)
    seconds = np.array([store.num_seconds(v) for v in video_ids])
    tables = []
    for kind in kinds:
        sampler = ClipSampler(kind=kind)
        for r in range(rounds):
            pairs = sampler.sample(video_ids, store, token_cache, clip_per_video=clip_per_video, rng=rng)
            draws = [pairs, shuffled_spans(pairs, seconds, rng)] if shuffled else [pairs]
            for p in draws:
                table = (pair_table(p, token_cache, max_text_len=sampler.max_text_len) if truth is None
                         else pair_truth(p, token_cache, truth, max_text_len=sampler.max_text_len))
                tables.append(table.assign(round=r))
    return pd.concat(tables, ignore_index=True)


# measure name -> (numerator column, denominator column) of the per-video sums
SCREEN_MEASURES: dict[str, tuple[str, str]] = {
    "text narrates a step": ("narrates", "pairs"),
    "describes screen": ("describes_screen", "pairs"),
    "describes screen | narrates": ("hit_narrated", "narrates"),
    "on-screen share of seconds": ("screen_share", "pairs"),
}


def screen_match_summary(table: pd.DataFrame, *, by: Sequence[str] = ("kind",), num_boot: int = 200,
                         seed: int = 0) -> pd.DataFrame:
    """Per group of :func:`pair_truth` rows, each measure of :data:`SCREEN_MEASURES` in percent:
    the share of pairs whose text narrates a step, whose video shows what the text says (of
    all pairs, and of those narrating a step), and the mean ``screen_share``. Each has a 95 %
    cluster-bootstrap interval over videos (pairs of one video are not independent): videos
    are resampled with replacement and the ratio of sums recomputed.

    Returns:
        Columns ``*by, measure, percent, ci_low, ci_high, pairs, videos``.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for key, group in table.groupby(list(by), sort=False):
        key = key if isinstance(key, tuple) else (key,)
        narrates = group.narrated > 0
        per_video = pd.DataFrame({
            "video_id": group.video_id, "pairs": 1.0, "narrates": narrates.astype(float),
            "describes_screen": group.describes_screen.astype(float),
            "hit_narrated": (group.describes_screen & narrates).astype(float),
            "screen_share": group.screen_share.astype(float),
        }).groupby("video_id").sum()
        sums = per_video.to_numpy()  # (V, 5)
        col = {c: i for i, c in enumerate(per_video.columns)}
        boots = sums[rng.integers(0, len(sums), (num_boot, len(sums)))].sum(axis=1)  # (num_boot, 5)
        total = sums.sum(axis=0)
        for name, (num, den) in SCREEN_MEASURES.items():
            draws = boots[:, col[num]] / np.maximum(boots[:, col[den]], 1)
            lo, hi = np.percentile(draws, [2.5, 97.5])
            rows.append({**dict(zip(by, key)), "measure": name,
                         "percent": 100 * total[col[num]] / max(total[col[den]], 1),
                         "ci_low": 100 * lo, "ci_high": 100 * hi, "pairs": len(group),
                         "videos": len(sums)})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- world description


def simconfig_table(config: dict[str, Any] | None = None) -> pd.DataFrame:
    """The simulator's knobs as a table, from the fields of :class:`videoclip.sim.config.SimConfig`:
    group, name, the value used (``config``, e.g. ``world.json["config"]``; else the default), the
    default, and the one-line plausibility argument (each field's ``metadata["why"]``)."""
    rows: list[dict[str, Any]] = []
    for f in dataclasses.fields(SimConfig):
        used = f.default if config is None else config.get(f.name, f.default)
        rows.append({"group": f.metadata["group"], "knob": f.name,
                     "value": tuple(used) if isinstance(used, list) else used,
                     "default": f.default, "why": f.metadata["why"]})
    return pd.DataFrame(rows)


def levels_table(chance: dict[str, dict], oracle: dict[str, dict] | None = None) -> pd.DataFrame:
    """Chance and oracle levels (:mod:`videoclip.sim.levels`) of each benchmark's
    headline metric (:data:`videoclip.evaluation.registry.BENCHMARKS`), in percent; ``oracle`` NaN when not given.
    COIN's chance is its strongest trivial baseline, labelling every second background."""
    rows = []
    for name, bench in BENCHMARKS.items():
        rows.append({"benchmark": name,
                     "metric": "frame accuracy" if name == "coin" else bench.headline,
                     "chance": chance[name][bench.chance_key],
                     "oracle": oracle[name][bench.headline] if oracle is not None else np.nan})
    return pd.DataFrame(rows)


def paired_difference(table: pd.DataFrame, kind_a: str, kind_b: str, *, column: str = "describes_screen",
                      num_boot: int = 1000, seed: int = 0) -> dict[str, float]:
    """Mean of ``column`` for pairs of ``kind_a`` minus that for ``kind_b``, in percentage points,
    with a 95 % cluster-bootstrap interval that resamples *videos* once for both kinds (both
    samplers drew from the same videos, so the comparison is paired).

    Returns:
        ``{"difference", "ci_low", "ci_high", "videos"}``.
    """
    sums = table[table.kind.isin([kind_a, kind_b])].assign(value=lambda t: t[column].astype(float)).pivot_table(
        index="video_id", columns="kind", values="value", aggfunc=["sum", "count"], fill_value=0)
    missing = {kind_a, kind_b} - set(table.kind)
    if missing:
        raise ValueError(f"no pairs of kind(s) {sorted(missing)} in the table (kinds: {sorted(set(table.kind))})")
    s_a, s_b = sums[("sum", kind_a)].to_numpy(), sums[("sum", kind_b)].to_numpy()
    n_a, n_b = sums[("count", kind_a)].to_numpy(), sums[("count", kind_b)].to_numpy()
    idx = np.random.default_rng(seed).integers(0, len(sums), (num_boot, len(sums)))
    draws = 100 * (s_a[idx].sum(1) / np.maximum(n_a[idx].sum(1), 1) - s_b[idx].sum(1) / np.maximum(n_b[idx].sum(1), 1))
    lo, hi = np.percentile(draws, [2.5, 97.5])
    return {"difference": 100 * (s_a.sum() / n_a.sum() - s_b.sum() / n_b.sum()),
            "ci_low": float(lo), "ci_high": float(hi), "videos": len(sums)}
