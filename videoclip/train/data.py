"""The pre-training corpus as the trainer loads it: feature store, token cache, usable videos."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from videoclip.data.captions import build_token_cache, reconcile
from videoclip.data.features import open_feature_store
from videoclip.data.idlist import read_id_list
from videoclip.data.samplers import ClipSampler
from videoclip.train.config import ConfigError, DataCfg
from videoclip.train.distributed import Dist


@dataclass
class TrainData:
    store: Any
    token_cache: Any
    video_ids: list[str]
    labels: list[str] | None
    report: dict[str, Any]


def _path(data_dir: str, relative: str) -> Path:
    path = Path(relative).expanduser()
    return path if path.is_absolute() else Path(data_dir).expanduser() / path


def read_task_labels(path: str | Path) -> dict[str, str]:
    """``video_id -> task_id`` from a ``HowTo100M_v1.csv`` (``video_id,...,task_id`` header)."""
    path = Path(path)
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"video_id", "task_id"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(
                f"{path}: header lacks columns {sorted(missing)}; expected video_id,...,task_id"
            )
        labels = {}
        for row_number, row in enumerate(reader, start=2):
            if not row["video_id"] or not row["task_id"]:
                raise ValueError(
                    f"{path}, row {row_number}: empty video_id or task_id; fix the row"
                )
            labels[row["video_id"]] = row["task_id"]
    return labels


def load_data(cfg: DataCfg, tokenizer: Any, ddp: Dist) -> TrainData:
    """The feature store, the token cache and the usable training videos (drops counted)."""
    if not cfg.data_dir:
        raise ConfigError(
            "data_dir is empty: point it at a data root (e.g. one written by `videoclip simulate`)"
        )
    store = open_feature_store(_path(cfg.data_dir, cfg.features))
    cache_dir = _path(cfg.data_dir, cfg.token_cache_dir) if cfg.token_cache_dir else None
    captions = _path(cfg.data_dir, cfg.captions)
    if ddp.is_main:  # rank 0 builds the cache; the others then read it
        token_cache = build_token_cache(captions, tokenizer, cache_dir=cache_dir)
    ddp.barrier()
    if not ddp.is_main:
        token_cache = build_token_cache(captions, tokenizer, cache_dir=cache_dir)
    listed = read_id_list(_path(cfg.data_dir, cfg.train_list), what="the training video list",
                          key="train_list")
    matched = reconcile(token_cache, store, min_seconds=ClipSampler().min_video_len)
    usable = set(matched["usable_ids"])
    video_ids = [v for v in listed if v in usable]
    if cfg.max_videos:
        video_ids = video_ids[: cfg.max_videos]
    report = {
        "num_listed": len(listed),
        "num_used": len(video_ids),
        "listed_without_captions": sum(v not in token_cache for v in listed),
        "listed_without_features": sum(v not in store for v in listed),
        "listed_too_short": sum(
            v in token_cache and v in store and v not in usable for v in listed
        ),
        "caption_report": token_cache.report,
    }
    labels = None
    if cfg.task_csv:
        task_path = _path(cfg.data_dir, cfg.task_csv)
        by_video = read_task_labels(task_path)
        unlabelled = [v for v in video_ids if v not in by_video]
        if unlabelled:
            raise ValueError(
                f"{task_path}: {len(unlabelled)} training videos have no task_id row (e.g. "
                f"{unlabelled[:3]}); add them or set task_csv='' to skip the group statistics"
            )
        labels = [by_video[v] for v in video_ids]
    return TrainData(store, token_cache, video_ids, labels, report)
