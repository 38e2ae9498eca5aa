"""Fine-tuning examples per task: what one training step sees (design §10.1–10.5).

=============  ==========================================  ====================================
task           one item                                    one step (per process)
=============  ==========================================  ====================================
youcook2       a training segment: first ≤32 s, its         ``batch_size`` items, a fixed
               annotation sentence                          contiguous chunk (design §10.0)
msrvtt         a 9k video (x ``dup`` 20): first ≤32 s, one  as above
               of its 20 captions drawn at each use
msrvtt-qa      as msrvtt over the 7k list                   as above
coin           a training video: 32-s windows, stride 8,    one video, all its windows
               per-slot class targets
crosstask      a training video of the CrossTask split:     one video, all its windows and its
               32-s windows, stride 16, multi-hot targets   task's step texts
=============  ==========================================  ====================================

Batches are fixed contiguous chunks of the item order, built once; each epoch shuffles only
their order (seed, epoch) and deals them to the processes (fairseq's default
``ordered_indices``, design §10.0). Everything here reads the official files through
:mod:`videoclip.data.benchmarks` and a feature store; nothing touches a model.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from videoclip.data.benchmarks import (
    CoinVideo,
    crosstask_split,
    load_coin,
    load_crosstask,
    load_msrvtt_captions,
    load_msrvtt_train,
    load_youcook2_train,
    read_step_annotation,
)
from videoclip.data.features import FeatureStore
from videoclip.evaluation.common import MAX_VIDEO_LEN, WINDOW, count, pad_clips, sliding_windows
from videoclip.evaluation.crosstask import usable_before_split
from videoclip.evaluation.segmentation import coin_targets

__all__ = [
    "COIN_TRAIN_STRIDE",
    "CROSSTASK_STRIDE",
    "IGNORE",
    "TASKS",
    "TEST_BENCHMARK",
    "CoinItem",
    "CrossTaskItem",
    "RetrievalExample",
    "TrainingSet",
    "WindowBatch",
    "coin_window_targets",
    "crosstask_videos",
    "epoch_batches",
    "fixed_batches",
    "load_training_set",
    "msrvtt_examples",
    "window_batch",
    "youcook2_examples",
]

TASKS = ("youcook2", "msrvtt", "msrvtt-qa", "coin", "crosstask")
#: Each task's test benchmark: a row of :data:`videoclip.evaluation.registry.BENCHMARKS`.
TEST_BENCHMARK = {"youcook2": "youcook2", "msrvtt": "msrvtt", "msrvtt-qa": "msrvtt_mc",
                  "coin": "coin", "crosstask": "crosstask"}
#: COIN trains on windows with an 8-s stride (``coin_videoclip.yaml``), tests with 16 s (design §10.4).
COIN_TRAIN_STRIDE = 8
#: CrossTask trains and tests on 16-s strides (design §10.5).
CROSSTASK_STRIDE = 16
#: The target of a padded slot (``nn.CrossEntropyLoss``'s ``ignore_index``).
IGNORE = -100


# ----------------------------------------------------------------------------- retrieval


@dataclass(frozen=True)
class RetrievalExample:
    """One video-text training pair. ``captions`` holds one text (YouCook2) or all of the
    video's captions (MSR-VTT: one is drawn uniformly at each use, design §10.2)."""

    video_id: str
    start: int | None
    end: int | None
    captions: tuple[str, ...]

    def clip(self, features: np.ndarray) -> np.ndarray:
        """The first ≤32 s of the example's span of ``features`` ``(T, 512)``."""
        start = self.start or 0
        end = len(features) if self.end is None else min(self.end, len(features))
        return features[start:end][:MAX_VIDEO_LEN]


def youcook2_examples(data_dir: str | Path, store: FeatureStore
                      ) -> tuple[list[RetrievalExample], dict[str, int]]:
    """YouCook2 training segments with features (design §10.1), in file order; drops counted."""
    examples, skipped = [], {}
    for pair in load_youcook2_train(data_dir):
        if pair.video_id not in store:
            count(skipped, "no_features")
        elif pair.start >= store.num_seconds(pair.video_id):
            count(skipped, "segment_past_end")
        else:
            examples.append(RetrievalExample(pair.video_id, pair.start, pair.end, (pair.text,)))
    return examples, skipped


def msrvtt_examples(data_dir: str | Path, store: FeatureStore, *, split: str
                    ) -> tuple[list[RetrievalExample], dict[str, int]]:
    """MSR-VTT training videos (``"9k"`` retrieval, ``"7k"`` QA) with features and captions, in
    list order (design §10.2–10.3; the original repeats the list ``dup`` = 20 times); drops counted."""
    captions = load_msrvtt_captions(data_dir)
    videos, skipped = [], {}
    for vid in load_msrvtt_train(data_dir, split=split):
        if vid not in store:
            count(skipped, "no_features")
        elif not captions.get(vid):
            count(skipped, "no_captions")
        else:
            videos.append(RetrievalExample(vid, None, None, tuple(captions[vid])))
    return videos, skipped


# ----------------------------------------------------------------------------- batches


def fixed_batches(num_items: int, batch_size: int) -> list[np.ndarray]:
    """Contiguous chunks ``[0, bs), [bs, 2 bs), …`` of the item order, the last one possibly
    short: the original's batches, built once (fairseq ``ordered_indices`` = arange)."""
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size}; use a positive number")
    return [np.arange(s, min(s + batch_size, num_items)) for s in range(0, num_items, batch_size)]


def epoch_batches(batches: Sequence[np.ndarray], *, seed: int, epoch: int, rank: int,
                  world_size: int) -> list[np.ndarray]:
    """This process's batches of one epoch: the batch order shuffled by ``(seed, epoch)``, then
    dealt round-robin. Every process gets ``len(batches) // world_size`` (the remainder of the
    shuffled order waits for another epoch; none with one process)."""
    order = np.random.default_rng([seed, epoch, 3]).permutation(len(batches))
    steps = len(batches) // world_size
    return [batches[i] for i in order[rank::world_size][:steps]]


# ----------------------------------------------------------------------------- windows


@dataclass
class WindowBatch:
    """One video cut into windows (COIN, CrossTask training).

    Attributes:
        video: float32 ``(W, 32, 512)``; vmask: bool ``(W, 32)``.
        targets: COIN: long ``(W, 32)`` class ids, ``IGNORE`` on padded slots; CrossTask:
            float ``(N, K)`` multi-hot rows of the valid slots of all windows, window by window.
        step_ids, step_mask: CrossTask: the task's ``K`` step texts, ``[CLS] step [SEP]``.
    """

    video: torch.Tensor
    vmask: torch.Tensor
    targets: torch.Tensor
    step_ids: torch.Tensor | None = None
    step_mask: torch.Tensor | None = None

    def to(self, device: torch.device | str, non_blocking: bool = False) -> WindowBatch:
        def move(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.to(device, non_blocking=non_blocking)
        return WindowBatch(move(self.video), move(self.vmask), move(self.targets),
                           move(self.step_ids), move(self.step_mask))


def window_batch(features: np.ndarray, windows: Sequence[tuple[int, int]]
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(T, 512)`` features cut at ``[start, end)`` windows → ``video (W, 32, 512)``, ``vmask (W, 32)``."""
    return pad_clips([features[s:e] for s, e in windows], WINDOW)


def coin_window_targets(labels: np.ndarray, windows: Sequence[tuple[int, int]]) -> torch.Tensor:
    """Per-slot targets ``(W, 32)`` of COIN windows from the video's per-second labels ``(T,)``.

    The original builds each window's target alone: ``IGNORE`` on padded slots, 0
    (background) on valid ones, then ``target[max(0, ⌊start⌋ − ws) : min(len, ⌈end⌉ − ws)] =
    id`` for each segment over the window, later segments overwriting earlier ones (SPEC
    §10.4). That equals slicing the whole video's labels (:func:`coin_targets`, same rounding,
    same overwrite order) at each window, which is what this does.
    """
    targets = torch.full((len(windows), WINDOW), IGNORE, dtype=torch.long)
    for row, (start, end) in enumerate(windows):
        targets[row, :end - start] = torch.from_numpy(labels[start:end])
    return targets


# ----------------------------------------------------------------------------- items


@dataclass(frozen=True)
class CoinItem:
    video: CoinVideo
    num_seconds: int


@dataclass(frozen=True)
class CrossTaskItem:
    task: str
    video_id: str
    annotation: Path
    steps: tuple[str, ...]


def crosstask_videos(data_dir: str | Path, store: FeatureStore, *, split: str = "train",
                     num_train: int = 30, seed: int = 0) -> tuple[list[CrossTaskItem], dict[str, int]]:
    """The CrossTask training (or test) videos as the original splits them (design §10.5): videos
    without a feature file or an annotation file are removed first, the validation videos are
    removed, then ``num_train`` per primary task are drawn with ``np.random.seed(0)``; the rest
    is the test set of ``evaluate_step_localization(split="original")``."""
    if split not in ("train", "test"):
        raise ValueError(f"split={split!r}; use 'train' or 'test'")
    data = load_crosstask(data_dir)
    skipped: dict[str, int] = {}
    usable = usable_before_split(data, store, skipped)
    train, test = crosstask_split(usable, data.val_videos, num_train=num_train, seed=seed)
    chosen = train if split == "train" else test
    # Tasks interleaved (1st video of each task, 2nd of each, ...), so that a prefix of the
    # list (``max_items``) spans the tasks; the epoch order is shuffled anyway.
    per_task = [[CrossTaskItem(task, vid, data.annotation_path(task, vid), data.tasks[task].steps)
                 for vid in vids] for task, vids in chosen.items()]
    items = [item for rank in itertools.zip_longest(*per_task) for item in rank if item is not None]
    return items, skipped


# ----------------------------------------------------------------------------- one loader


@dataclass
class TrainingSet:
    """A task's training items and how one step's batch is made of them.

    ``batches`` are the fixed item-index batches (design §10.0); :meth:`collate` turns one into
    model inputs. ``skipped`` counts the items the data dropped, by reason.
    """

    task: str
    items: list[Any]
    batches: list[np.ndarray]
    store: FeatureStore
    tokenize: Any  # texts -> (input_ids, attention_mask), e.g. VideoCLIP.tokenize
    skipped: dict[str, int] = field(default_factory=dict)

    def collate(self, indices: np.ndarray, rng: np.random.Generator) -> Any:
        """Model inputs for the items ``indices`` (retrieval: a ``dict``; windows: :class:`WindowBatch`)."""
        if self.task == "coin":
            (index,) = indices
            item = self.items[int(index)]
            windows = sliding_windows(item.num_seconds, WINDOW, COIN_TRAIN_STRIDE)
            labels, _ = coin_targets(item.video, item.num_seconds)
            video, vmask = window_batch(self.store.load(item.video.video_id), windows)
            return WindowBatch(video, vmask, coin_window_targets(labels, windows))
        if self.task == "crosstask":
            (index,) = indices
            item = self.items[int(index)]
            features = self.store.load(item.video_id)
            windows = sliding_windows(len(features), WINDOW, CROSSTASK_STRIDE)
            y = read_step_annotation(item.annotation, len(features), len(item.steps))  # (T, K)
            video, vmask = window_batch(features, windows)
            targets = torch.from_numpy(np.concatenate([y[s:e] for s, e in windows])).float()
            step_ids, step_mask = self.tokenize(list(item.steps))
            return WindowBatch(video, vmask, targets, step_ids, step_mask)
        examples = [self.items[int(i)] for i in indices]
        clips = [ex.clip(self.store.load(ex.video_id)) for ex in examples]
        texts = [ex.captions[int(rng.integers(len(ex.captions)))] for ex in examples]
        video, vmask = pad_clips(clips)
        input_ids, attention_mask = self.tokenize(texts)
        return {"video": video, "vmask": vmask, "input_ids": input_ids,
                "attention_mask": attention_mask}


def load_training_set(task: str, data_dir: str | Path, store: FeatureStore, tokenize: Any, *,
                      batch_size: int, dup: int = 20, max_items: int = 0,
                      crosstask_num_train: int = 30, split: str = "train") -> TrainingSet:
    """The training items of ``task`` (one of :data:`TASKS`) from the official files under
    ``data_dir``, and their fixed batches (``batch_size`` pairs for retrieval; one video per
    batch for COIN and CrossTask). ``max_items`` > 0 keeps the first that many (before ``dup``).

    ``split="test"`` (COIN and CrossTask only) gives the test videos as training examples: the
    original's "validation loss", computed on the test videos (design §10.0), from which it
    selects the checkpoint of these two tasks.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split={split!r}; use 'train' or 'test'")
    if split == "test" and task not in ("coin", "crosstask"):
        raise ValueError(f"{task} selects on its test metric; a test loss exists for coin and crosstask")
    if dup < 1:
        raise ValueError(f"dup={dup}; use a positive number (the original: 20)")
    if task in ("youcook2", "msrvtt", "msrvtt-qa"):
        if task == "youcook2":
            items, skipped = youcook2_examples(data_dir, store)
        else:
            items, skipped = msrvtt_examples(data_dir, store, split="9k" if task == "msrvtt" else "7k")
        items = (items[:max_items] if max_items else items) * (1 if task == "youcook2" else dup)
        batches = fixed_batches(len(items), batch_size)
    elif task == "coin":
        coin = load_coin(Path(data_dir) / "coin" / "COIN.json",
                         subset="training" if split == "train" else "testing")
        items, skipped = [], {}
        for video in coin.videos:
            if video.video_id not in store:
                count(skipped, "no_features")
            elif store.num_seconds(video.video_id) == 0:
                count(skipped, "empty_video")
            else:
                items.append(CoinItem(video, store.num_seconds(video.video_id)))
        items = items[:max_items] if max_items else items
        batches = fixed_batches(len(items), 1)
    elif task == "crosstask":
        items, skipped = crosstask_videos(data_dir, store, split=split, num_train=crosstask_num_train)
        items = items[:max_items] if max_items else items
        batches = fixed_batches(len(items), 1)
    else:
        raise ValueError(f"task={task!r}; choose one of {TASKS}")
    if not items:
        raise ValueError(f"no {task} training item has features in {store}; check the data root "
                         f"(dropped: {skipped})")
    return TrainingSet(task, items, batches, store, tokenize, skipped)
