"""Plumbing shared by the zero-shot evaluators: device, feature store, padding, batching, windows.

The model is duck-typed (the :class:`ZeroShotModel` protocol below): ``encode_video(video (B, T, 512), vmask (B, T)) -> (B, D)``,
``encode_texts(list[str]) -> (N, D)`` and ``video_token_states(video, vmask, *, mask_cls) ->
(B, T, D)``, so tests can pass stub scorers.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from tqdm.auto import tqdm

from videoclip.data.features import FeatureStore, open_feature_store
from videoclip.provenance import write_results

#: Downstream evaluation feeds the first 32 s of a clip (design §3, §7).
MAX_VIDEO_LEN = 32
#: Sliding windows for COIN and CrossTask (design §7, paper §5.1).
WINDOW = 32
STRIDE = 16

class ZeroShotModel(Protocol):
    def encode_video(self, video: torch.Tensor, vmask: torch.Tensor) -> torch.Tensor: ...
    def encode_texts(self, texts: list[str]) -> torch.Tensor: ...
    def video_token_states(self, video: torch.Tensor, vmask: torch.Tensor, *,
                           mask_cls: bool) -> torch.Tensor: ...


def resolve_device(model: Any, device: str | torch.device | None) -> torch.device:
    """``device``, else the device of the model's parameters, else CPU; puts the model in eval mode."""
    if hasattr(model, "eval"):
        model.eval()
    if device is not None:
        device = torch.device(device)
        if hasattr(model, "to"):
            model.to(device)
        return device
    params = model.parameters() if hasattr(model, "parameters") else iter(())
    first = next(iter(params), None)
    return first.device if first is not None else torch.device("cpu")


def open_store(data_dir: str | Path, benchmark: str, features: FeatureStore | str | Path | None
               ) -> FeatureStore:
    """``features`` (a store or a path), else ``<data_dir>/<benchmark>/features``."""
    if features is None:
        return open_feature_store(Path(data_dir) / benchmark / "features")
    if isinstance(features, (str, Path)):
        return open_feature_store(features)
    return features


def pad_clips(clips: Sequence[np.ndarray], length: int = MAX_VIDEO_LEN
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero-pad ``(n_i, 512)`` clips (``n_i <= length``) to ``video (B, length, 512)``, ``vmask (B, length)``."""
    dim = clips[0].shape[1]
    video = np.zeros((len(clips), length, dim), dtype=np.float32)
    vmask = np.zeros((len(clips), length), dtype=bool)
    for i, clip in enumerate(clips):
        if len(clip) > length:
            raise ValueError(f"clip of {len(clip)} s is longer than {length} slots")
        video[i, :len(clip)] = clip
        vmask[i, :len(clip)] = True
    return torch.from_numpy(video), torch.from_numpy(vmask)


def batched(items: Sequence[Any], batch_size: int) -> Iterator[Sequence[Any]]:
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size}; use a positive number")
    for first in range(0, len(items), batch_size):
        yield items[first:first + batch_size]


def progress_bar(iterable: Iterable[Any], *, total: int | None, desc: str, enabled: bool
                 ) -> Iterable[Any]:
    return tqdm(iterable, total=total, desc=desc, disable=not enabled, leave=False)


@torch.inference_mode()
def encode_texts(model: ZeroShotModel, texts: Sequence[str], *, batch_size: int,
                 device: torch.device, progress: bool = False, desc: str = "texts") -> torch.Tensor:
    """``(N, D)`` float32 text embeddings on ``device``, encoded ``batch_size`` at a time."""
    chunks = [model.encode_texts(list(chunk)).float().to(device)
              for chunk in progress_bar(batched(list(texts), batch_size),
                                        total=-(-len(texts) // batch_size), desc=desc,
                                        enabled=progress)]
    return torch.cat(chunks) if chunks else torch.zeros(0, 0, device=device)


@torch.inference_mode()
def encode_clips(model: ZeroShotModel, clips: Sequence[np.ndarray], *, batch_size: int,
                 device: torch.device, progress: bool = False, desc: str = "videos") -> torch.Tensor:
    """``(N, D)`` pooled video embeddings of clips of at most 32 s (padded, masked)."""
    out = []
    for chunk in progress_bar(batched(clips, batch_size), total=-(-len(clips) // batch_size),
                              desc=desc, enabled=progress):
        video, vmask = pad_clips(chunk)
        out.append(model.encode_video(video.to(device), vmask.to(device)).float())
    return torch.cat(out)


def sliding_windows(num_seconds: int, window: int = WINDOW, stride: int = STRIDE
                    ) -> list[tuple[int, int]]:
    """``[start, end)`` windows over a video, as the original code lays them out.

    Windows start every ``stride`` seconds and hold up to ``window`` seconds; the last one
    reaches the end of the video (a video of at most ``window`` seconds is one window).
    """
    windows = []
    for start in range(0, num_seconds, stride):
        windows.append((start, start + min(num_seconds - start, window)))
        if num_seconds - start <= window:
            break
    return windows


@torch.inference_mode()
def windowed_logits(
    model: ZeroShotModel,
    videos: Iterable[tuple[Any, np.ndarray, torch.Tensor]],
    *,
    batch_size: int,
    device: torch.device,
    mask_cls: bool = True,
    window: int = WINDOW,
    stride: int = STRIDE,
) -> Iterator[tuple[Any, torch.Tensor]]:
    """Per-second logits of whole videos, averaged over overlapping windows (design §7).

    For each ``(key, features (T, 512), text_emb (K, D))`` yields ``(key, logits (T, K))`` on
    the CPU, in input order: each window's token states (``[CLS]`` masked by default) are dotted
    with the texts, and every second averages the windows that cover it. Windows of several
    videos share a batch of ``batch_size`` windows.
    """
    pending: list[dict[str, Any]] = []  # videos whose windows are not all scored yet
    queue: list[tuple[dict[str, Any], int, int]] = []  # (video, start, end)

    def run(batch: list[tuple[dict[str, Any], int, int]]) -> None:
        video, vmask = pad_clips([item["features"][s:e] for item, s, e in batch], window)
        states = model.video_token_states(video.to(device), vmask.to(device), mask_cls=mask_cls)
        logits = [states[row, :e - s].float() @ item["text_emb"].T
                  for row, (item, s, e) in enumerate(batch)]  # (e - s, K) per window
        flat = torch.cat([x.flatten() for x in logits]).cpu()  # one transfer; K varies
        for (item, s, e), window_logits in zip(batch, flat.split([x.numel() for x in logits])):
            item["sum"][s:e] += window_logits.view(e - s, -1)
            item["count"][s:e] += 1
            item["left"] -= 1

    def finished() -> Iterator[tuple[Any, torch.Tensor]]:
        while pending and pending[0]["left"] == 0:
            item = pending.pop(0)
            yield item["key"], item["sum"] / item["count"].clamp(min=1)[:, None]

    for key, features, text_emb in videos:
        windows = sliding_windows(len(features), window, stride)
        item = {"key": key, "features": features, "text_emb": text_emb.float().to(device),
                "sum": torch.zeros(len(features), len(text_emb)),
                "count": torch.zeros(len(features)), "left": len(windows)}
        pending.append(item)
        queue.extend((item, s, e) for s, e in windows)
        while len(queue) >= batch_size:
            run(queue[:batch_size])
            del queue[:batch_size]
            yield from finished()
    if queue:
        run(queue)
    yield from finished()


def finish(results: dict[str, Any], out_path: str | Path | None, config: dict[str, Any]) -> None:
    """Write ``results`` with provenance (``videoclip.provenance.write_results``) when asked."""
    if out_path is not None:
        write_results(out_path, results, config=config)


def count(skipped: dict[str, int], reason: str) -> None:
    skipped[reason] = skipped.get(reason, 0) + 1



def with_features(items: Sequence[Any], store: FeatureStore, *, what: str) -> tuple[list[Any], dict[str, int]]:
    """The items (each with a ``video_id``) whose video has features, and the dropped ones counted by
    reason (``no_features``, ``empty_video``); raises when none is left, naming the store."""
    skipped: dict[str, int] = {}
    kept = []
    for item in items:
        if item.video_id not in store:
            count(skipped, "no_features")
        elif store.num_seconds(item.video_id) == 0:
            count(skipped, "empty_video")
        else:
            kept.append(item)
    if not kept:
        raise ValueError(f"no {what} video has features in {store}")
    return kept, skipped
