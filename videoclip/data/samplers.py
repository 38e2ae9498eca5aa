"""Clip samplers, groups and collate: video-text pairs for pre-training (Paper §3.3, design §4).

A :class:`ClipSampler` draws ``clip_per_video`` pairs from each video of a group; :func:`collate`
turns the pairs into a padded :class:`Batch`. Kinds (the strings used in configs):

``"overlap"``  the paper's method: a text clip grown by whole captions to a token budget, and a
               video clip of 3..32 s grown from a centre second inside the text span.
``"exact"``    the "w/o overlap" ablation: the video span is the text span (first 32 s of it).
``"aligned"``  the sampler that embeds videos for retrieval (design §5). MMPT's
               ``RetriTask.build_dataloader`` uses ``VariedLenAligner``, whose rule is the
               exact one above, so ``"aligned"`` draws the same way as ``"exact"``.
``"milnce"``   the MIL-NCE ablation (MMPT ``How2MILNCEAligner``): a 3 s video clip and the
               4 temporally nearest captions as a bag of positives (``Batch.bag``).

Everything runs on whole groups at once with numpy (one loop step per caption added, not per
pair), so sampling + collate stays far above the GPU's consumption (``bench/bench_sampler.py``).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Self

import numpy as np
import torch

from videoclip.data.captions import TokenCache
from videoclip.data.features import PackedFeatureStore

__all__ = ["KINDS", "Batch", "ClipSampler", "GroupSampler", "Pairs", "Prefetcher", "collate",
           "make_batch"]

KINDS = ("overlap", "exact", "aligned", "milnce")


@dataclass
class Batch:
    """A padded batch of video-text pairs.

    Attributes:
        video: float32 ``(B, T, 512)`` features, zero-padded to ``T = num_video_slots`` (32).
        vmask: bool ``(B, T)``, True on real seconds.
        input_ids: long ``(Bt, L)``: ``[CLS] tokens[:61] [SEP]`` then padding id, ``L = 63``.
        attention_mask: long ``(Bt, L)``.
        video_ids: the ``B`` video ids.
        bag: long ``(Bt,)`` row of ``video`` each text belongs to (MIL-NCE; None otherwise,
            where text row i pairs with video row i and ``Bt == B``).
        video_span: int64 ``(B, 2)`` seconds ``[start, end)`` of each video clip.
        caption_span: int64 ``(Bt, 2)`` global caption indices ``[c0, c1)`` of each text
            (into the token cache's arrays).
    """

    video: torch.Tensor
    vmask: torch.Tensor
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    video_ids: list[str]
    bag: torch.Tensor | None = None
    video_span: np.ndarray | None = None
    caption_span: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.video.shape[0])

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        """The tensors moved to ``device`` (spans and ids stay on the host)."""
        def move(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.to(device, non_blocking=non_blocking)
        return replace(self, video=move(self.video), vmask=move(self.vmask),
                       input_ids=move(self.input_ids), attention_mask=move(self.attention_mask),
                       bag=move(self.bag))

    def pin_memory(self) -> Batch:
        """The tensors in page-locked host memory, so ``to(cuda, non_blocking=True)`` overlaps."""
        def pin(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.pin_memory()
        return replace(self, video=pin(self.video), vmask=pin(self.vmask),
                       input_ids=pin(self.input_ids), attention_mask=pin(self.attention_mask),
                       bag=pin(self.bag))


@dataclass
class Pairs:
    """Sampled pairs before collate, all numpy.

    ``video_row`` ``(P,)`` indexes ``video_ids``; ``video_start``/``video_end`` ``(P,)`` seconds;
    ``centre`` ``(P,)`` the overlap sampler's centre second (-1 for other kinds);
    ``caption_start``/``caption_end`` ``(Pt,)`` global caption ranges of each text;
    ``bag`` ``(Pt,)`` the pair each text belongs to (``arange(P)`` except for MIL-NCE);
    ``extra``: per-pair draws kept for inspection (``centre_caption``, ``budget``) and
    ``num_empty_video``, the exact/aligned clips whose text lies past the end of the features.
    """

    video_ids: list[str]
    video_row: np.ndarray
    video_start: np.ndarray
    video_end: np.ndarray
    centre: np.ndarray
    caption_start: np.ndarray
    caption_end: np.ndarray
    bag: np.ndarray
    kind: str = "overlap"
    extra: dict[str, Any] = field(default_factory=dict)


def _video_rows(store: Any, vid: str) -> np.ndarray:
    """All rows of one video without a float32 copy where the store allows it."""
    if isinstance(store, PackedFeatureStore):  # a view into the memory-mapped shard
        shard, first, length = store.locate(vid)
        return store.shards[shard][first:first + length]
    return store.load(vid)


@dataclass(frozen=True)
class ClipSampler:
    """How pairs are drawn (design §4). Defaults are the paper's sizes (MMPT ``how2.yaml``).

    Args:
        kind: one of :data:`KINDS`.
        min_text_tokens, max_text_tokens: the text budget, uniform in ``[min, max]`` (8..64).
        max_text_len: joined tokens kept per text (61 = 96 - 32 - 3 in MMPT).
        max_text_span: a text clip stops growing once it spans this many seconds (256).
        min_video_len, max_video_len: the overlap clip length, uniform in ``[min, max]`` s
            (3..32); ``max_video_len`` also caps the exact/aligned clip. Videos shorter than
            ``min_video_len`` are an error (drop them with ``captions.reconcile``).
        num_video_slots: padded video length ``T`` (32).
        milnce_candidates, milnce_min_time, milnce_seconds: MIL-NCE's bag size (4), the minimum
            caption window (5 s) and the clip duration (3.2 s, i.e. 3 one-second features).
    """

    kind: str = "overlap"
    min_text_tokens: int = 8
    max_text_tokens: int = 64
    max_text_len: int = 61
    max_text_span: float = 256.0
    min_video_len: int = 3
    max_video_len: int = 32
    num_video_slots: int = 32
    milnce_candidates: int = 4
    milnce_min_time: float = 5.0
    milnce_seconds: float = 3.2

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"sampler kind {self.kind!r}; use one of {KINDS}")
        if not 1 <= self.min_text_tokens <= self.max_text_tokens:
            raise ValueError(f"text budget {self.min_text_tokens}..{self.max_text_tokens}; need 1 <= min <= max")
        if not 1 <= self.min_video_len <= self.max_video_len <= self.num_video_slots:
            raise ValueError(f"video length {self.min_video_len}..{self.max_video_len} with "
                             f"{self.num_video_slots} slots; need 1 <= min <= max <= slots")
        if self.max_text_len < 1 or self.milnce_candidates < 1:
            raise ValueError("max_text_len and milnce_candidates must be positive")
        if not 1 <= int(self.milnce_seconds) <= self.num_video_slots:
            raise ValueError(f"milnce_seconds={self.milnce_seconds}; need 1..{self.num_video_slots}")

    @property
    def text_len(self) -> int:
        """Padded text length ``L``: ``[CLS]`` + ``max_text_len`` tokens + ``[SEP]``."""
        return self.max_text_len + 2

    # ------------------------------------------------------------------ sampling
    def sample(self, video_ids: Sequence[str], store: Any, token_cache: TokenCache, *,
               clip_per_video: int, rng: np.random.Generator) -> Pairs:
        """Draw ``clip_per_video`` pairs from each video (pairs of a video are consecutive)."""
        if clip_per_video < 1:
            raise ValueError(f"clip_per_video={clip_per_video}; use a positive number")
        video_ids = list(video_ids)
        if not video_ids:
            raise ValueError("no videos to sample from")
        rows = np.array([token_cache.index(v) for v in video_ids], dtype=np.int64)
        seconds = np.array([store.num_seconds(v) for v in video_ids], dtype=np.int64)
        short = np.flatnonzero(seconds < self.min_video_len)
        if len(short):
            vid = video_ids[short[0]]
            raise ValueError(
                f"video {vid!r} has {seconds[short[0]]} s of features, fewer than min_video_len="
                f"{self.min_video_len} ({len(short)} such videos in this group); drop them with "
                "videoclip.data.captions.reconcile(..., min_seconds=min_video_len)"
            )
        video_row = np.repeat(np.arange(len(video_ids)), clip_per_video)
        c_first = token_cache.video_offsets[rows][video_row]
        c_last = token_cache.video_offsets[rows + 1][video_row]
        num_seconds = seconds[video_row]
        centre_caption = c_first + rng.integers(0, c_last - c_first)
        if self.kind == "milnce":
            return self._sample_milnce(video_ids, video_row, c_first, c_last, centre_caption,
                                       num_seconds, token_cache, rng)
        budget = rng.integers(self.min_text_tokens, self.max_text_tokens + 1, size=len(video_row))
        lo, hi = self.grow_text(token_cache, centre_caption, c_first, c_last, budget, rng)
        text_start = np.floor(token_cache.starts[lo]).astype(np.int64)
        text_end = np.ceil(token_cache.ends[hi - 1]).astype(np.int64)
        if self.kind == "overlap":
            centre = np.where(text_start < text_end,
                              rng.integers(text_start, np.maximum(text_end, text_start) + 1),
                              (text_start + text_end) // 2)
            centre = np.clip(centre, 0, num_seconds - 1)
            length = rng.integers(self.min_video_len, self.max_video_len + 1, size=len(video_row))
            start, end = grow_video(centre, np.minimum(length, num_seconds), num_seconds, rng)
        else:  # exact / aligned: MMPT FixedLenAligner.sampling
            end = np.minimum(text_end, num_seconds)
            start = np.maximum(np.minimum(text_start, end), 0)
            end = np.minimum(end, start + self.max_video_len)
            centre = np.full(len(video_row), -1, dtype=np.int64)
        # a text past the end of the features leaves an empty exact clip (vmask all False)
        return Pairs(video_ids, video_row, start, end, centre, lo, hi,
                     np.arange(len(video_row)), self.kind,
                     {"budget": budget, "centre_caption": centre_caption,
                      "num_empty_video": int((end <= start).sum())})

    def grow_text(self, token_cache: TokenCache, centre: np.ndarray, c_first: np.ndarray,
                  c_last: np.ndarray, budget: np.ndarray, rng: np.random.Generator
                  ) -> tuple[np.ndarray, np.ndarray]:
        """Grow each text clip by whole captions (MMPT ``TextClipSamplingProcessor``).

        From caption ``centre``, add the next caption (p = 0.5, or when no previous exists) or
        the previous one until the clip holds ``budget`` tokens, spans ``max_text_span``
        seconds, or covers the video's captions.

        Returns:
            ``(lo, hi)`` ``(P,)`` global caption ranges ``[lo, hi)``.
        """
        lengths = np.diff(token_cache.token_offsets)
        starts, ends = token_cache.starts, token_cache.ends
        lo, hi = centre.astype(np.int64).copy(), centre.astype(np.int64) + 1
        num_tokens = lengths[lo].copy()
        span = np.maximum(0.0, ends[lo] - starts[lo])

        def can_grow(i: np.ndarray) -> np.ndarray:
            return (((lo[i] > c_first[i]) | (hi[i] < c_last[i]))
                    & (num_tokens[i] < budget[i]) & (span[i] < self.max_text_span))

        active = np.arange(len(lo))
        active = active[can_grow(active)]
        while len(active):
            has_next = hi[active] < c_last[active]
            has_prev = lo[active] > c_first[active]
            go_next = has_next & ((rng.random(len(active)) > 0.5) | ~has_prev)
            nxt, prv = active[go_next], active[~go_next]
            num_tokens[nxt] += lengths[hi[nxt]]
            hi[nxt] += 1
            lo[prv] -= 1
            num_tokens[prv] += lengths[lo[prv]]
            span[active] = np.maximum(0.0, ends[hi[active] - 1] - starts[lo[active]])
            active = active[can_grow(active)]
        return lo, hi

    def _sample_milnce(self, video_ids: list[str], video_row: np.ndarray, c_first: np.ndarray,
                       c_last: np.ndarray, caption: np.ndarray, num_seconds: np.ndarray,
                       token_cache: TokenCache, rng: np.random.Generator) -> Pairs:
        """MMPT ``How2MILNCEAligner``: the nearest ``k`` captions, a 3 s clip in the caption's window."""
        k = self.milnce_candidates
        first = _nearest_window(token_cache, caption, c_first, c_last, k)
        texts = np.clip(first[:, None] + np.arange(k), c_first[:, None], c_last[:, None] - 1)
        start = token_cache.starts[caption]
        end = token_cache.ends[caption]
        short = end - start < self.milnce_min_time
        widened = np.maximum(0.0, start - (self.milnce_min_time - (end - start)) / 2)
        start = np.where(short, widened, start)
        end = np.where(short, start + self.milnce_min_time, end)
        start, end = start.astype(np.int64), end.astype(np.int64)
        upper = np.maximum(start, end - self.milnce_seconds).astype(np.int64)
        seek = rng.integers(start, upper + 1)
        clip_len = np.minimum(int(self.milnce_seconds), num_seconds)
        seek = np.clip(seek, 0, num_seconds - clip_len)  # MMPT could run off the end; we stay inside
        num_pairs = len(video_row)
        return Pairs(video_ids, video_row, seek, seek + clip_len, np.full(num_pairs, -1),
                     texts.reshape(-1), texts.reshape(-1) + 1, np.repeat(np.arange(num_pairs), k),
                     "milnce", {"centre_caption": caption})


def _nearest_window(token_cache: TokenCache, caption: np.ndarray, c_first: np.ndarray,
                    c_last: np.ndarray, k: int) -> np.ndarray:
    """First caption of the ``k`` adjacent captions around each caption, growing toward the
    nearer neighbour in time (MMPT ``How2MILNCEAligner._find_nearest_candidates``).

    May return an index before the video's first caption; callers clamp each candidate.
    """
    starts, ends = token_cache.starts, token_cache.ends
    lo, hi = caption.copy(), caption.copy()
    result = np.full(len(caption), -1, dtype=np.int64)
    done = np.zeros(len(caption), dtype=bool)
    for n in range(1, k):
        at_first = ~done & (lo == c_first)
        result[at_first] = c_first[at_first]
        done |= at_first
        at_last = ~done & (hi == c_last - 1)
        result[at_last] = lo[at_last] - (k - n)
        done |= at_last
        live = np.flatnonzero(~done)
        grow_left = (ends[hi[live]] - starts[lo[live] - 1]) < (ends[hi[live] + 1] - starts[lo[live]])
        lo[live[grow_left]] -= 1
        hi[live[~grow_left]] += 1
    result[~done] = lo[~done]
    return result


def grow_video(centre: np.ndarray, length: np.ndarray, num_seconds: np.ndarray,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Grow clips one second at a time from ``centre``, left or right by a fair coin; a side
    that reaches the video edge stops and the other takes the remaining steps
    (MMPT ``VideoClipSamplingProcessor``). Paper §3.3.

    Drawn in closed form: with ``R ~ Binomial(length, 0.5)`` right-steps of the free walk, the
    clip takes ``min(room_right, max(R, length - room_left))`` steps right, which has exactly
    the walk's distribution.

    Args:
        centre: ``(P,)`` start point in ``[0, num_seconds)``.
        length: ``(P,)`` clip length, ``<= num_seconds``.
        num_seconds: ``(P,)`` video lengths.

    Returns:
        ``(start, end)`` ``(P,)`` with ``start <= centre <= end`` and ``end - start == length``.
    """
    right = rng.binomial(length, 0.5)
    right = np.minimum(num_seconds - centre, np.maximum(right, length - centre))
    return centre - (length - right), centre + right


def collate(pairs: Pairs, store: Any, token_cache: TokenCache, sampler: ClipSampler) -> Batch:
    """Gather the features and tokens of sampled pairs into a padded :class:`Batch`."""
    num_pairs = len(pairs.video_row)
    slots = sampler.num_video_slots
    video = np.zeros((num_pairs, slots, store.dim), dtype=np.float32)
    lengths = np.minimum(pairs.video_end - pairs.video_start, slots)
    order = np.argsort(pairs.video_row, kind="stable")
    bounds = np.searchsorted(pairs.video_row[order], np.arange(len(pairs.video_ids) + 1))
    for v, vid in enumerate(pairs.video_ids):
        members = order[bounds[v]:bounds[v + 1]]
        if not len(members):
            continue
        rows = _video_rows(store, vid)
        for i, s, n in zip(members.tolist(), pairs.video_start[members].tolist(),
                           lengths[members].tolist()):
            video[i, :n] = rows[s:s + n]
    vmask = np.arange(slots) < lengths[:, None]
    input_ids, attention_mask = text_ids(token_cache, pairs.caption_start, pairs.caption_end,
                                         max_text_len=sampler.max_text_len)
    return Batch(
        video=torch.from_numpy(video),
        vmask=torch.from_numpy(vmask),
        input_ids=torch.from_numpy(input_ids),
        attention_mask=torch.from_numpy(attention_mask),
        video_ids=[pairs.video_ids[r] for r in pairs.video_row.tolist()],
        bag=torch.from_numpy(pairs.bag.astype(np.int64)) if pairs.kind == "milnce" else None,
        video_span=np.stack([pairs.video_start, pairs.video_end], axis=1).astype(np.int64),
        caption_span=np.stack([pairs.caption_start, pairs.caption_end], axis=1).astype(np.int64),
    )


def text_ids(token_cache: TokenCache, caption_start: np.ndarray, caption_end: np.ndarray, *,
             max_text_len: int = 61) -> tuple[np.ndarray, np.ndarray]:
    """``[CLS] tokens[:max_text_len] [SEP]`` of the joined captions ``[c0, c1)``, padded.

    Returns:
        ``input_ids`` int64 ``(N, max_text_len + 2)`` (padding = the tokenizer's pad id) and
        ``attention_mask`` int64 of the same shape.
    """
    first = token_cache.token_offsets[caption_start]
    count = np.minimum(token_cache.token_offsets[caption_end] - first, max_text_len)
    pos = np.arange(max_text_len)
    valid = pos < count[:, None]
    gather = np.where(valid, first[:, None] + pos, 0)
    tokens = token_cache.tokens[gather] if len(token_cache.tokens) else np.zeros(gather.shape, np.int32)
    n = len(caption_start)
    input_ids = np.full((n, max_text_len + 2), token_cache.pad_token_id, dtype=np.int64)
    input_ids[:, 0] = token_cache.cls_token_id
    input_ids[:, 1:-1] = np.where(valid, tokens, token_cache.pad_token_id)
    input_ids[np.arange(n), count + 1] = token_cache.sep_token_id
    attention_mask = (np.arange(max_text_len + 2) < (count + 2)[:, None]).astype(np.int64)
    return input_ids, attention_mask


def _as_sampler(sampler: str | ClipSampler) -> ClipSampler:
    return sampler if isinstance(sampler, ClipSampler) else ClipSampler(kind=sampler)


def make_batch(video_ids: Sequence[str], store: Any, token_cache: TokenCache, *,
               clip_per_video: int, sampler: str | ClipSampler, rng: np.random.Generator) -> Batch:
    """``clip_per_video`` pairs from each video of a group, collated (design §4: 16 × 32 = 512).

    Clips of the same video sit in consecutive rows and act as each other's negatives.
    """
    sampler = _as_sampler(sampler)
    pairs = sampler.sample(video_ids, store, token_cache, clip_per_video=clip_per_video, rng=rng)
    return collate(pairs, store, token_cache, sampler)


class GroupSampler:
    """Iterates the batches of an epoch: one :func:`make_batch` per group of videos.

    Args:
        groups: groups of video ids (e.g. ``num_video_per_batch`` = 32 videos each, from the
            retrieval clusters or random groups).
        store, token_cache: the data.
        clip_per_video: pairs per video (16).
        sampler: a kind string or a :class:`ClipSampler`.
        rng: the generator; the same seed gives the same batches.
    """

    def __init__(self, groups: Iterable[Sequence[str]], store: Any, token_cache: TokenCache, *,
                 clip_per_video: int, sampler: str | ClipSampler, rng: np.random.Generator) -> None:
        self.groups = [list(g) for g in groups]
        self.store = store
        self.token_cache = token_cache
        self.clip_per_video = clip_per_video
        self.sampler = _as_sampler(sampler)
        self.rng = rng

    def __len__(self) -> int:
        return len(self.groups)

    def __iter__(self) -> Iterator[Batch]:
        for group in self.groups:
            yield make_batch(group, self.store, self.token_cache, clip_per_video=self.clip_per_video,
                             sampler=self.sampler, rng=self.rng)



class Prefetcher:
    """Builds the batches of ``steps`` in a background thread, ``depth`` ahead of the consumer.

    ``make(step)`` must depend on ``step`` alone (the trainer derives each step's generator
    from ``(seed, epoch, step, rank)``), so the batches, and the run, are the same as building
    them in the loop; only the waiting goes. numpy and the feature store's reads release the
    GIL, so the thread overlaps the model's forward and backward passes (bench/RESULTS.md).

    Use it as a context manager, or call :meth:`close`: leaving early (a stop, an error) must
    end the thread. An exception in ``make`` is raised in the consumer, at that step.

    Args:
        make: ``step -> Batch``.
        steps: the steps, in order.
        depth: batches built ahead (2: one in use, one ready).
        pin_memory: pin each batch (for a CUDA consumer).
    """

    def __init__(self, make: Callable[[int], Batch], steps: Iterable[int], *, depth: int = 2,
                 pin_memory: bool = False) -> None:
        if depth < 1:
            raise ValueError(f"Prefetcher depth={depth}; use a positive number")
        self._make = make
        self._steps = list(steps)
        self._pin = pin_memory
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, name="videoclip-prefetch", daemon=True)
        self._thread.start()

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _work(self) -> None:
        for step in self._steps:
            try:
                batch = self._make(step)
                item: Any = batch.pin_memory() if self._pin else batch
            except Exception as exc:  # noqa: BLE001 - raised in the consumer, at this step
                self._put(exc)
                return
            if not self._put(item):
                return

    def __iter__(self) -> Iterator[Batch]:
        for _ in self._steps:
            item = self._queue.get()
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        """Stop the thread (it finishes the batch in hand) and wait for it."""
        self._stop.set()
        self._thread.join()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
