"""VideoCLIP pre-training with retrieval-augmented batches: config, loop, checkpoints, DDP.

Paper: §3 (Algorithm 1); SPEC §4–6. One epoch is:

1. the retrieval stage (every epoch, the first included; ``videoclip.retrieval``): embed every
   training video, index the vectors, cut the corpus into groups of ``num_video_per_batch``
   similar videos (or random groups / the nearest ones for the ablations);
2. one optimisation step per group: ``clip_per_video`` pairs from each video of the group
   (``videoclip.data.samplers``), the summed two-way contrastive loss (``videoclip.loss``),
   Adam, warm-up then polynomial decay, gradient clipping.

Use it from a notebook (``pretrain({...flat parameters...})``) or the command line::

    python -m videoclip pretrain --preset params/pretrain/toy.yaml [--key value ...] [--resume]
    torchrun --nproc_per_node 8 -m videoclip pretrain --preset ... # DDP, one group per rank and step

A run directory holds ``log.jsonl`` (one JSON line per step, per epoch's retrieval stage and per
start/resume), ``checkpoints/step-NNNNNNNN/`` (``model.safetensors``, ``trainer_state.pt``:
optimizer, scheduler, RNG, data position and the epoch's groups) with ``checkpoints/latest``
naming the newest, and ``final/`` (``VideoCLIP.save_pretrained``) once the run completes.

Determinism: every random draw of the data derives from ``(seed, epoch, step, rank)``, the
epoch's groups are stored in each checkpoint, and the torch RNG (dropout) is saved, so on CPU a
run killed mid-epoch and resumed ends with the same weights as one that ran through.

Fast path (issue 9; ``bench/RESULTS.md``): sdpa attention, ``length_buckets`` (each batch
encoded in buckets of similar length, cut to their longest row), fused Adam, a background thread
building the next batch (``prefetch``), bf16 autocast on CUDA (``precision``), optional
``compile``; ``retrieval_source="reuse"`` takes the retrieval vectors from the previous epoch's
training passes. Buckets draw the dropout masks for fewer slots, so a run with and one without
them are different (equally likely) random trajectories; without dropout the embeddings and
gradients agree to float rounding (``tests/test_fastpath.py``).

Deviations from the original (fairseq ``examples/MMPT``): one global retrieval index over the
all-gathered video vectors instead of one per GPU (``retrieval_scope="local"`` restores the
original); bf16 autocast instead of fp16 with loss scaling; the schedule comes from
``transformers.get_polynomial_decay_schedule_with_warmup`` (same shape as fairseq's
``polynomial_decay``). See ``videoclip.retrieval`` for the retrieval stage's own deviations.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import json
import math
import os
import shutil
import time
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

import numpy as np
import safetensors.torch
import torch
import torch.distributed as dist
import yaml
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm
from transformers import get_polynomial_decay_schedule_with_warmup

from videoclip._io import atomic_dir, atomic_torch_save, atomic_write_bytes, atomic_write_text
from videoclip.data.captions import build_token_cache, reconcile
from videoclip.data.features import open_feature_store
from videoclip.data.samplers import ClipSampler, Prefetcher, make_batch
from videoclip.loss import contrastive_loss, mil_nce_loss
from videoclip.model import VideoCLIP
from videoclip.retrieval import cluster_groups, embed_videos, group_stats, random_groups

__all__ = [
    "ConfigError",
    "DataCfg",
    "ModelCfg",
    "OptimCfg",
    "PretrainConfig",
    "RetrievalCfg",
    "RunCfg",
    "pretrain",
    "read_task_labels",
]

CHECKPOINT_FORMAT = "videoclip-pretrain-checkpoint"
CHECKPOINT_VERSION = 1
# Keys that may change between a run and its resumption (they do not change what is computed).
RESUMABLE_KEYS = frozenset(
    {"resume", "stop_after_steps", "progress", "run_dir", "device", "prefetch"}
)
# What a checkpoint written before these keys existed ran with (issue 9's fast path).
_LEGACY_VALUES = {
    "attn_implementation": "sdpa",
    "length_buckets": 0,
    "fused_optimizer": False,
    "retrieval_source": "embed",
    "precision": "auto",
    "compile": False,
}
# Stream tags of the derived random generators: (seed, epoch, tag, ...) never collide.
_RETRIEVAL_STREAM, _STEP_STREAM = 1, 2


class ConfigError(ValueError):
    """A configuration that cannot run: unknown keys, wrong types, or a mismatch on resume."""


# ---------------------------------------------------------------------------------- config


@dataclass
class ModelCfg:
    """The model (SPEC §1). Defaults are the paper's."""

    backbone: str = "bert-base-uncased"  # SPEC §1; "minilm-l6" = the offline toy backbone
    num_video_layers: int = 6  # SPEC §1: the first 6 layers
    num_text_layers: int | None = None  # None = all of the backbone's (12 for BERT-base)
    shared_towers: bool = False  # Table 7 ablation
    pooling: str = "mean"  # SPEC §1; "cls" = Table 7 ablation
    # Fast path (issue 9; bench/RESULTS.md). Neither changes the embeddings beyond float rounding.
    attn_implementation: str = "sdpa"  # "sdpa" (fused attention kernels) | "eager" (plain)
    length_buckets: int = 4  # encode in 4 length buckets, each cut to its longest row; 0 = off


@dataclass
class DataCfg:
    """The HowTo100M-format data root (SPEC §4) and how pairs are drawn."""

    data_dir: str = ""  # root holding the files below (relative paths are under it)
    features: str = "howto100m/features"
    captions: str = "howto100m/caption.json"
    train_list: str = "howto100m/train.lst"
    task_csv: str = (
        "howto100m/HowTo100M_v1.csv"  # task per video, for the group statistics; "" = none
    )
    token_cache_dir: str = ""  # "" = beside the captions
    max_videos: int = 0  # 0 = every usable video of train_list
    sampler: str = "overlap"  # SPEC §4: "overlap" (paper), "exact" (w/o overlap), "milnce"
    clip_per_video: int = 16  # SPEC §4
    num_video_per_batch: int = 32  # SPEC §4: 16 x 32 = 512 pairs per device and step


@dataclass
class OptimCfg:
    """Optimisation (SPEC §6)."""

    num_epochs: int = 25  # SPEC §6
    lr: float = 5e-5  # SPEC §6
    adam_betas: tuple[float, float] = (0.9, 0.98)  # SPEC §6
    adam_eps: float = 1e-8  # SPEC §6
    weight_decay: float = 0.0  # SPEC §6
    warmup_steps: int = 1000  # SPEC §6
    total_steps: int = 1_000_000  # SPEC §6 (the original's; nearly flat); 0 = epochs x steps/epoch
    lr_end: float = 0.0  # fairseq polynomial_decay's end_learning_rate
    grad_clip: float = 2.0  # SPEC §6
    fused_optimizer: bool = True  # issue 9: torch's fused Adam (CPU and CUDA); False = for-loop


@dataclass
class RetrievalCfg:
    """The retrieval stage at the start of every epoch (SPEC §5, Paper §3.4)."""

    grouping: str = (
        "retrieval"  # "retrieval" (paper) | "random" (w/o retrieval) | "nearest" (retrieve k)
    )
    first_32s: bool = False  # Table 7 "use first 32 sec for retrieval"
    num_neighbours: int = 64  # SPEC §5 (MMPT num_cands)
    retrieval_clips: int = 16  # SPEC §5: aligned clips per video embedding
    index: str = "auto"  # "auto" | "flat" | "ivf" (the original: IVF, 512 lists, nprobe 1)
    nlist: int = 512
    nprobe: int = 1
    metric: str = "l2"  # the original: L2
    retrieval_scope: str = (
        "global"  # DDP: "global" index over all ranks' vectors | "local" (original)
    )
    embed_batch_size: int = 64  # videos per forward pass of the embedding
    # "embed": a separate embedding pass each epoch (SPEC §5) | "reuse": the pairs embedded by
    # the previous epoch's training steps (issue 9; videos it did not train on are embedded)
    retrieval_source: str = "embed"


@dataclass
class RunCfg:
    """Where and how the run executes."""

    run_dir: str = "runs/pretrain"
    seed: int = 0
    device: str = "auto"  # "auto" = cuda:LOCAL_RANK when available, else cpu
    resume: bool = False  # continue the run in run_dir from its latest checkpoint
    checkpoint_every: int = (
        1000  # steps; a checkpoint is also written at every epoch end; 0 = epoch ends only
    )
    keep_checkpoints: int = 2
    stop_after_steps: int = 0  # stop (as if killed) once this many steps are done; 0 = never
    progress: bool = True
    # Fast path (issue 9; bench/RESULTS.md).
    precision: str = "auto"  # "auto" = bf16 autocast on CUDA, fp32 on CPU | "bf16" | "fp32"
    compile: bool = False  # torch.compile the towers (dynamic shapes); measured no gain on CPU
    prefetch: bool = True  # build the next batch in a background thread (pinned on CUDA)


_SECTIONS: dict[str, type] = {
    "model": ModelCfg,
    "data": DataCfg,
    "optim": OptimCfg,
    "retrieval": RetrievalCfg,
    "run": RunCfg,
}
_CHOICES = {
    "pooling": ("mean", "cls"),
    "sampler": ("overlap", "exact", "milnce"),
    "grouping": ("retrieval", "random", "nearest"),
    "index": ("auto", "flat", "ivf"),
    "metric": ("l2", "ip"),
    "retrieval_scope": ("global", "local"),
    "attn_implementation": ("sdpa", "eager"),
    "precision": ("auto", "bf16", "fp32"),
    "retrieval_source": ("embed", "reuse"),
}


@dataclass
class PretrainConfig:
    """All settings of a pre-training run, one dataclass per concern.

    Build it from flat notebook parameters or a YAML preset: :meth:`from_dict` takes flat keys
    (``lr``, ``grouping``, ...) and/or sections (``{"optim": {"lr": ...}}``); unknown keys and
    wrong types raise :class:`ConfigError` naming them.
    """

    model: ModelCfg = field(default_factory=ModelCfg)
    data: DataCfg = field(default_factory=DataCfg)
    optim: OptimCfg = field(default_factory=OptimCfg)
    retrieval: RetrievalCfg = field(default_factory=RetrievalCfg)
    run: RunCfg = field(default_factory=RunCfg)

    def __post_init__(self) -> None:
        for section in _SECTIONS:
            for key, value in dataclasses.asdict(getattr(self, section)).items():
                if key in _CHOICES and value not in _CHOICES[key]:
                    raise ConfigError(f"{key}={value!r}: choose one of {_CHOICES[key]}")
        positive = {
            "clip_per_video": self.data.clip_per_video,
            "num_video_per_batch": self.data.num_video_per_batch,
            "num_epochs": self.optim.num_epochs,
            "num_neighbours": self.retrieval.num_neighbours,
            "retrieval_clips": self.retrieval.retrieval_clips,
            "embed_batch_size": self.retrieval.embed_batch_size,
            "keep_checkpoints": self.run.keep_checkpoints,
        }
        for key, value in positive.items():
            if value < 1:
                raise ConfigError(f"{key}={value} must be >= 1")
        for key in (
            "length_buckets",
            "max_videos",
            "warmup_steps",
            "total_steps",
            "checkpoint_every",
            "stop_after_steps",
        ):
            value = self.flat()[key]
            if value < 0:
                raise ConfigError(f"{key}={value} must be >= 0")
        if (
            self.retrieval.grouping != "random"
            and self.retrieval.num_neighbours < self.data.num_video_per_batch - 1
        ):
            raise ConfigError(
                f"num_neighbours={self.retrieval.num_neighbours} must be >= num_video_per_batch - 1 "
                f"= {self.data.num_video_per_batch - 1} (a group is drawn from them)"
            )
        if self.retrieval.retrieval_source == "reuse":
            conflict = {
                "grouping": self.retrieval.grouping == "random",
                "first_32s": self.retrieval.first_32s,
                "sampler": self.data.sampler == "milnce",
            }
            if any(conflict.values()):
                raise ConfigError(
                    f"retrieval_source='reuse' reuses the training pairs' embeddings as retrieval "
                    f"vectors; it does not combine with grouping='random' (no retrieval), "
                    f"first_32s=True (another vector) or sampler='milnce' (several texts per clip): "
                    f"conflicting {[k for k, v in conflict.items() if v]}; use retrieval_source='embed'"
                )
        if not self.optim.lr > self.optim.lr_end >= 0:
            raise ConfigError(
                f"need lr > lr_end >= 0, got lr={self.optim.lr}, lr_end={self.optim.lr_end}"
            )

    @staticmethod
    def keys() -> dict[str, str]:
        """Every flat key and the section that owns it."""
        return {
            f.name: section for section, cls in _SECTIONS.items() for f in dataclasses.fields(cls)
        }

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], *, source: str = "config") -> PretrainConfig:
        """Flat keys and/or ``{section: {key: value}}``; unknown keys raise :class:`ConfigError`."""
        owner = cls.keys()
        sections: dict[str, dict[str, Any]] = {name: {} for name in _SECTIONS}
        unknown = []
        for key, value in values.items():
            if key in _SECTIONS and isinstance(value, Mapping):
                for sub_key, sub_value in value.items():
                    if owner.get(sub_key) != key:
                        unknown.append(f"{key}.{sub_key}")
                    else:
                        sections[key][sub_key] = sub_value
            elif key in owner:
                sections[owner[key]][key] = value
            else:
                unknown.append(key)
        if unknown:
            raise ConfigError(
                f"{source}: unknown pre-training parameter(s) {sorted(unknown)}; known: {sorted(owner)}"
            )
        built = {}
        for name, section_cls in _SECTIONS.items():
            hints = get_type_hints(section_cls)
            built[name] = section_cls(
                **{
                    key: _coerce(value, hints[key], f"{source}: {key}")
                    for key, value in sections[name].items()
                }
            )
        return cls(**built)

    @classmethod
    def from_yaml(
        cls, path: str | Path, overrides: Mapping[str, Any] | None = None
    ) -> PretrainConfig:
        """A YAML preset (flat or sectioned), then ``overrides`` (flat) on top."""
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"preset {path} not found")
        values = yaml.safe_load(path.read_text()) or {}
        if not isinstance(values, dict):
            raise ConfigError(
                f"{path}: a preset must be a mapping of parameters, got {type(values).__name__}"
            )
        flat = cls.from_dict(values, source=str(path)).flat()
        flat.update(overrides or {})
        return cls.from_dict(flat, source=f"{path} + overrides")

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """``{section: {key: value}}`` (JSON-ready: tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def flat(self) -> dict[str, Any]:
        """``{key: value}`` over all sections."""
        return {k: v for section in dataclasses.asdict(self).values() for k, v in section.items()}


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """Check ``value`` against a field's type; ints pass as floats, lists as tuples."""
    if get_origin(hint) in (Union, types.UnionType):  # X | None
        options = [a for a in get_args(hint) if a is not type(None)]
        return None if value is None else _coerce(value, options[0], where)
    if get_origin(hint) is tuple:
        inner = get_args(hint)
        if not isinstance(value, (list, tuple)) or len(value) != len(inner):
            raise ConfigError(f"{where}={value!r}: expected {len(inner)} numbers, e.g. [0.9, 0.98]")
        return tuple(_coerce(v, t, where) for v, t in zip(value, inner))
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if (
        hint is bool
        and not isinstance(value, bool)
        or not isinstance(value, hint)
        or (hint is int and isinstance(value, bool))
    ):
        raise ConfigError(
            f"{where}={value!r}: expected {hint.__name__}, got {type(value).__name__}"
        )
    return value


# ---------------------------------------------------------------------------------- distributed


@dataclass
class _Dist:
    """This process's place in a torchrun job (world_size 1 without torchrun)."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    owns_group: bool = False  # this module started the process group (and ends it)

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def gather_objects(self, obj: Any) -> list[Any]:
        """``obj`` of every rank, in rank order (a list of one without DDP)."""
        if not self.enabled:
            return [obj]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def broadcast_object(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        if not self.enabled:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def any_true(self, flag: bool) -> bool:
        """Whether ``flag`` holds on any rank."""
        if not self.enabled:
            return flag
        tensor = torch.tensor([float(flag)], device=self.device)
        dist.all_reduce(tensor)
        return bool(tensor.item() > 0)


def _setup_distributed(device_name: str) -> _Dist:
    """Join the torchrun job named by the environment (RANK, WORLD_SIZE, LOCAL_RANK), if any."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device_name == "auto":
        device = torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(device_name)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    owns_group = world_size > 1 and not dist.is_initialized()
    if owns_group:
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return _Dist(rank, world_size, local_rank, device, owns_group)


# ---------------------------------------------------------------------------------- data


@dataclass
class _Data:
    store: Any
    token_cache: Any
    video_ids: list[str]
    labels: list[str] | None
    report: dict[str, Any]


def _path(data_dir: str, relative: str) -> Path:
    path = Path(relative).expanduser()
    return path if path.is_absolute() else Path(data_dir).expanduser() / path


def _read_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: the training video list (one id per line); set train_list"
        )
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


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


def _load_data(cfg: DataCfg, tokenizer: Any, ddp: _Dist) -> _Data:
    """The feature store, the token cache and the usable training videos (drops counted)."""
    if not cfg.data_dir:
        raise ConfigError(
            "data_dir is empty: point it at a data root (e.g. one written by `videoclip simulate`)"
        )
    store = open_feature_store(_path(cfg.data_dir, cfg.features))
    cache_dir = _path(cfg.data_dir, cfg.token_cache_dir) if cfg.token_cache_dir else None
    captions = _path(cfg.data_dir, cfg.captions)
    if ddp.main:  # rank 0 builds the cache; the others then read it
        token_cache = build_token_cache(captions, tokenizer, cache_dir=cache_dir)
    ddp.barrier()
    if not ddp.main:
        token_cache = build_token_cache(captions, tokenizer, cache_dir=cache_dir)
    listed = _read_lines(_path(cfg.data_dir, cfg.train_list))
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
    return _Data(store, token_cache, video_ids, labels, report)


# ---------------------------------------------------------------------------------- retrieval stage


def _rng(seed: int, *tags: int) -> np.random.Generator:
    return np.random.default_rng([seed, *tags])


class _ReusedVectors:
    """``retrieval_source="reuse"``: per video, the sum and count of its training pairs'
    ``(video_emb + text_emb) / 2`` over the epoch, the next epoch's retrieval vectors (issue 9).

    They differ from ``embed_videos``'s (SPEC §5): the overlap sampler's pairs instead of
    aligned ones, dropout on, and weights that moved during the epoch. Memory: one float32
    ``(N, D)`` array per process; a checkpoint keeps the rows touched so far.
    """

    def __init__(self, video_ids: Sequence[str], *, enabled: bool) -> None:
        self.enabled = enabled
        self._row = {video_id: row for row, video_id in enumerate(video_ids)}
        self._sums: torch.Tensor | None = None  # (N, D) float32, allocated on first use
        self._counts = torch.zeros(len(video_ids), dtype=torch.long)

    def add(
        self, video_ids: Sequence[str], video_emb: torch.Tensor, text_emb: torch.Tensor
    ) -> None:
        """One training step's pairs (row ``i`` of both embeddings is the clip of ``video_ids[i]``)."""
        if not self.enabled:
            return
        pair_emb = ((video_emb.detach().float() + text_emb.detach().float()) / 2).cpu()
        if self._sums is None:
            self._sums = torch.zeros(len(self._counts), pair_emb.shape[1])
        rows = torch.tensor([self._row[v] for v in video_ids], dtype=torch.long)
        self._sums.index_add_(0, rows, pair_emb)
        self._counts.index_add_(0, rows, torch.ones_like(rows))

    def state(self) -> dict[str, torch.Tensor] | None:
        """The touched rows, their sums and counts (None when off)."""
        if not self.enabled:
            return None
        rows = torch.nonzero(self._counts).flatten()
        sums = self._sums[rows] if self._sums is not None else torch.zeros(0, 0)
        return {"rows": rows, "sums": sums, "counts": self._counts[rows]}

    def load_state(self, parts: list[dict[str, torch.Tensor] | None] | None, rank: int) -> None:
        """This rank's part of a checkpoint's ``reuse`` (a list with one state per rank)."""
        part = parts[rank] if parts else None
        if not self.enabled or part is None or not len(part["rows"]):
            return
        self._sums = torch.zeros(len(self._counts), part["sums"].shape[1])
        self._sums[part["rows"]] = part["sums"]
        self._counts[part["rows"]] = part["counts"]

    def take(self, shard: np.ndarray, ddp: _Dist) -> tuple[np.ndarray, np.ndarray]:
        """Mean vectors of the rows ``shard`` over every rank's pairs, and which rows had any
        (``(len(shard), D)`` float32, ``(len(shard),)`` bool); then starts a new epoch."""
        parts = ddp.gather_objects(self.state())
        position = np.full(len(self._counts), -1)
        position[shard] = np.arange(len(shard))
        width = max((p["sums"].shape[1] for p in parts if len(p["rows"])), default=0)
        sums = np.zeros((len(shard), width), dtype=np.float64)
        counts = np.zeros(len(shard), dtype=np.int64)
        for part in parts:
            rows = part["rows"].numpy()
            mine = position[rows] >= 0  # rows are distinct within a part
            sums[position[rows[mine]]] += part["sums"].numpy()[mine]
            counts[position[rows[mine]]] += part["counts"].numpy()[mine]
        self._sums, self._counts = None, torch.zeros_like(self._counts)
        have = counts > 0
        vectors = np.zeros_like(sums, dtype=np.float32)
        vectors[have] = sums[have] / counts[have, None]
        return vectors, have


def _retrieval_stage(
    model: VideoCLIP,
    data: _Data,
    cfg: PretrainConfig,
    epoch: int,
    ddp: _Dist,
    reuse: _ReusedVectors,
    use_bf16: bool,
) -> tuple[list[list[str]], dict[str, Any]]:
    """The epoch's groups of video ids, shuffled, identical on every rank. SPEC §5; Algorithm 1.

    With ``retrieval_source="reuse"`` the vectors of the videos trained on in the previous
    epoch come from ``reuse``; only the others (all of them in the first epoch) are embedded.
    """
    rc, seed, group_size = cfg.retrieval, cfg.run.seed, cfg.data.num_video_per_batch
    num_videos = len(data.video_ids)
    # Separate streams, so that rank 0 drawing the clusters leaves the shared order in step.
    rng = _rng(seed, epoch, _RETRIEVAL_STREAM, 0, 1)
    started = time.perf_counter()
    num_embedded = num_videos
    if rc.grouping == "random":
        groups = random_groups(num_videos, group_size=group_size, rng=rng)
    else:
        mode = "sample" if rc.grouping == "retrieval" else "nearest"
        shard = np.arange(ddp.rank, num_videos, ddp.world_size)

        def embed(rows: np.ndarray) -> np.ndarray:
            return embed_videos(
                model,
                data.store,
                data.token_cache,
                [data.video_ids[i] for i in rows],
                num_clips=rc.retrieval_clips,
                first_32s=rc.first_32s,
                rng=_rng(seed, epoch, _RETRIEVAL_STREAM, ddp.rank + 1, 0),
                batch_size=rc.embed_batch_size,
                progress=cfg.run.progress and ddp.main,
                bf16=use_bf16,
            )

        if reuse.enabled:
            vectors, have = reuse.take(shard, ddp)
            if not have.all():
                fresh = embed(shard[~have])
                if not have.any():
                    vectors = fresh
                else:
                    vectors[~have] = fresh
            num_embedded = sum(ddp.gather_objects(int((~have).sum())))
        else:
            vectors = embed(shard)
        cluster = functools.partial(
            cluster_groups,
            group_size=group_size,
            num_neighbours=rc.num_neighbours,
            mode=mode,
            index=rc.index,
            metric=rc.metric,
            nlist=rc.nlist,
            nprobe=rc.nprobe,
        )
        if rc.retrieval_scope == "global":
            gathered = ddp.gather_objects(vectors)
            groups = None
            if ddp.main:
                all_vectors = np.empty((num_videos, vectors.shape[1]), dtype=np.float32)
                for rank, part in enumerate(gathered):
                    all_vectors[rank :: ddp.world_size] = part
                groups = cluster(all_vectors, rng=rng)
            groups = ddp.broadcast_object(groups)
        else:  # the original: each rank clusters its own shard, then all ranks share the groups
            local = cluster(vectors, rng=_rng(seed, epoch, _RETRIEVAL_STREAM, ddp.rank + 1, 1))
            groups = [
                shard_indices
                for part in ddp.gather_objects([shard[g] for g in local])
                for shard_indices in part
            ]
    order = _rng(seed, epoch, _RETRIEVAL_STREAM, 0, 2).permutation(len(groups))
    id_groups = [[data.video_ids[i] for i in groups[j]] for j in order]
    stats: dict[str, Any] = {
        "grouping": rc.grouping,
        "first_32s": rc.first_32s,
        "seconds": time.perf_counter() - started,
        "retrieval_source": rc.retrieval_source,
        "videos_embedded": num_embedded if rc.grouping != "random" else 0,
    }
    if data.labels is not None:
        stats.update(group_stats([groups[j] for j in order], data.labels))
        baseline_groups = random_groups(
            num_videos, group_size=group_size, rng=_rng(seed, epoch, _RETRIEVAL_STREAM, 0, 3)
        )
        baseline = group_stats(baseline_groups, data.labels)
        stats["random_groups_same_task_share"] = baseline["same_task_share"]
    return id_groups, stats


# ---------------------------------------------------------------------------------- checkpoints


def _checkpoint_dir(run_dir: Path) -> Path:
    return run_dir / "checkpoints"


def _latest_checkpoint(run_dir: Path) -> Path | None:
    pointer = _checkpoint_dir(run_dir) / "latest"
    if not pointer.is_file():
        return None
    path = _checkpoint_dir(run_dir) / pointer.read_text().strip()
    if not (path / "trainer_state.pt").is_file():
        raise FileNotFoundError(
            f"{pointer} names {path}, which has no trainer_state.pt; "
            f"point {pointer} at an intact checkpoint directory"
        )
    return path


def _save_checkpoint(
    run_dir: Path,
    model: VideoCLIP,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    position: dict[str, Any],
    cfg: PretrainConfig,
    ddp: _Dist,
    log_lines: int,
    reuse: _ReusedVectors,
) -> None:
    """Write ``checkpoints/step-N`` (a temporary directory renamed into place), then ``latest``."""
    rng_states = ddp.gather_objects(
        {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state(ddp.device) if ddp.device.type == "cuda" else None,
        }
    )
    reuse_states = ddp.gather_objects(reuse.state()) if reuse.enabled else None
    if ddp.main:
        ckpt_dir = _checkpoint_dir(run_dir)
        name = f"step-{position['global_step']:08d}"
        # a resumed run redoing a step a killed run had saved replaces it
        with atomic_dir(ckpt_dir / name, replace=True) as tmp:
            state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
            atomic_write_bytes(
                tmp / "model.safetensors", safetensors.torch.save(state, {"format": "pt"})
            )
            atomic_torch_save(
                {
                    "format": CHECKPOINT_FORMAT,
                    "version": CHECKPOINT_VERSION,
                    "config": cfg.to_dict(),
                    "world_size": ddp.world_size,
                    "position": position,
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "rng": rng_states,
                    "reuse": reuse_states,
                    "log_lines": log_lines,
                },
                tmp / "trainer_state.pt",
            )
        atomic_write_text(ckpt_dir / "latest", name)
        kept = sorted(p for p in ckpt_dir.glob("step-*") if p.is_dir())
        for old in kept[: -cfg.run.keep_checkpoints]:
            shutil.rmtree(old)
    ddp.barrier()


def _config_differences(saved: Mapping[str, Any], current: PretrainConfig) -> list[str]:
    saved_flat = {k: v for section in saved.values() for k, v in section.items()}
    saved_flat = {**_LEGACY_VALUES, **saved_flat}
    now = current.to_dict()
    now_flat = {k: v for section in now.values() for k, v in section.items()}
    return [
        f"{key}: checkpoint {saved_flat.get(key)!r} vs now {now_flat.get(key)!r}"
        for key in sorted(set(saved_flat) | set(now_flat))
        if key not in RESUMABLE_KEYS and saved_flat.get(key) != now_flat.get(key)
    ]


def _load_checkpoint(path: Path, cfg: PretrainConfig, ddp: _Dist) -> dict[str, Any]:
    state = torch.load(path / "trainer_state.pt", map_location="cpu", weights_only=True)
    if state.get("format") != CHECKPOINT_FORMAT or state.get("version") != CHECKPOINT_VERSION:
        raise ValueError(f"{path}: not a v{CHECKPOINT_VERSION} {CHECKPOINT_FORMAT}")
    differences = _config_differences(state["config"], cfg)
    if differences:
        raise ConfigError(
            f"cannot resume {path} with another configuration: {'; '.join(differences)}. "
            f"Use the run's own settings, or start a new run_dir"
        )
    if state["world_size"] != ddp.world_size:
        raise ConfigError(
            f"{path} was written by {state['world_size']} processes, this job has "
            f"{ddp.world_size}; resume with the same number of processes"
        )
    return state


def _remove_orphans(ckpt_dir: Path, latest: Path | None) -> None:
    """Delete what a killed save left behind: temporary directories, and checkpoints newer than
    the one ``latest`` names (written, but the pointer never moved to them)."""
    if not ckpt_dir.is_dir():
        return
    for path in ckpt_dir.iterdir():
        unfinished = path.name.startswith(".step-") and path.name.endswith(".tmp")
        newer = path.name.startswith("step-") and (latest is None or path.name > latest.name)
        if path.is_dir() and (unfinished or newer):
            shutil.rmtree(path)


def _prepare_run_dir(
    cfg: PretrainConfig, ddp: _Dist
) -> tuple[Path, Path | None, dict[str, Any] | None]:
    """The run directory, and the checkpoint to resume from and its state (None = start fresh)."""
    run_dir = Path(cfg.run.run_dir).expanduser()
    log_path = run_dir / "log.jsonl"
    latest = _latest_checkpoint(run_dir)
    if not cfg.run.resume and (latest is not None or log_path.exists()):
        raise FileExistsError(
            f"{run_dir} already holds a run ({'checkpoints' if latest else 'log.jsonl'}); pass "
            f"resume=True (--resume) to continue it, or choose another run_dir. Nothing was changed."
        )
    state = _load_checkpoint(latest, cfg, ddp) if latest is not None else None
    ddp.barrier()
    if ddp.main:
        run_dir.mkdir(parents=True, exist_ok=True)
        _remove_orphans(_checkpoint_dir(run_dir), latest)
        # Drop the log lines written after the checkpoint: those steps will run again.
        keep = state["log_lines"] if state is not None else 0
        lines = log_path.read_text().splitlines(keepends=True)[:keep] if log_path.exists() else []
        atomic_write_text(log_path, "".join(lines))
    ddp.barrier()
    return run_dir, latest, state


# ---------------------------------------------------------------------------------- the loop


class _Log:
    """JSON lines on rank 0; counts its lines so a checkpoint can record the position."""

    def __init__(self, path: Path, enabled: bool) -> None:
        self.path = path
        self.enabled = enabled
        self.lines = len(path.read_text().splitlines()) if enabled and path.exists() else 0

    def write(self, record: Mapping[str, Any]) -> None:
        if not self.enabled:
            return
        clean = {
            k: None if isinstance(v, float) and not math.isfinite(v) else v
            for k, v in record.items()
        }
        with open(self.path, "a") as handle:
            handle.write(json.dumps(clean) + "\n")
        self.lines += 1


def read_log(run_dir: str | Path) -> list[dict[str, Any]]:
    """The records of a run's ``log.jsonl`` in order (``type``: start, step, retrieval, done)."""
    path = Path(run_dir) / "log.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: not a pre-training run directory")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def build_model(cfg: ModelCfg) -> VideoCLIP:
    """The untrained model of a model config (both towers from its backbone, SPEC §1)."""
    model = VideoCLIP.from_backbone(
        cfg.backbone,
        num_video_layers=cfg.num_video_layers,
        shared_towers=cfg.shared_towers,
        pooling=cfg.pooling,
        num_text_layers=cfg.num_text_layers,
        attn_implementation=cfg.attn_implementation,
    )
    model.length_buckets = cfg.length_buckets
    return model


def _use_bf16(precision: str, device: torch.device) -> bool:
    """Whether to autocast to bf16: ``"auto"`` does on CUDA only (on a CPU without AMX bf16
    matrix products measured slower than fp32, bench/RESULTS.md)."""
    return precision == "bf16" or (precision == "auto" and device.type == "cuda")


def _loss(
    video_emb: torch.Tensor, text_emb: torch.Tensor, batch: Any, sampler: str
) -> torch.Tensor:
    if sampler == "milnce":
        return mil_nce_loss(video_emb.float(), text_emb.float(), batch.bag)
    return contrastive_loss(video_emb.float(), text_emb.float())


def pretrain(config: PretrainConfig | Mapping[str, Any]) -> Path:
    """Run (or resume) VideoCLIP pre-training. Paper: §3, Algorithm 1; SPEC §4–6.

    Args:
        config: a :class:`PretrainConfig` or flat notebook parameters (see
            :meth:`PretrainConfig.from_dict`). Under ``torchrun`` every process calls this.

    Returns:
        The run directory: ``log.jsonl``, ``checkpoints/``, and ``final/`` (the trained model,
        ``VideoCLIP.from_pretrained`` reads it) once all epochs are done.

    Raises:
        ConfigError: unknown keys, or a resume with another configuration.
        FileExistsError: ``run_dir`` holds a run and ``resume`` is off.
        ValueError: too few training videos for one group per process.
        FloatingPointError: a NaN/inf loss (the last checkpoint is left as it was).
    """
    cfg = config if isinstance(config, PretrainConfig) else PretrainConfig.from_dict(config)
    ddp = _setup_distributed(cfg.run.device)
    try:
        return _run(cfg, ddp)
    finally:
        if ddp.owns_group:
            dist.destroy_process_group()


def _run(cfg: PretrainConfig, ddp: _Dist) -> Path:
    run_dir, ckpt, state = _prepare_run_dir(cfg, ddp)
    log = _Log(run_dir / "log.jsonl", ddp.main)

    torch.manual_seed(cfg.run.seed)  # the video MLP's initial weights: the same on every rank
    model = build_model(cfg.model)
    data = _load_data(cfg.data, model.tokenizer, ddp)
    group_size = cfg.data.num_video_per_batch
    num_groups = len(data.video_ids) // group_size
    steps_per_epoch = num_groups // ddp.world_size
    if steps_per_epoch < 1:
        raise ValueError(
            f"{len(data.video_ids)} usable training videos are too few for one group of "
            f"{group_size} (num_video_per_batch) per process ({ddp.world_size} processes); add "
            f"videos or lower num_video_per_batch (data report: {data.report})"
        )
    total_steps = cfg.optim.total_steps or cfg.optim.num_epochs * steps_per_epoch
    model.to(ddp.device)
    if cfg.run.compile:  # in place: the state dict keeps its names
        for tower in {model.text_encoder, model.video_tower}:  # one module when shared
            tower.compile(dynamic=True)
    optimizer = torch.optim.Adam(
        model.parameters(),
        lr=cfg.optim.lr,
        betas=cfg.optim.adam_betas,
        eps=cfg.optim.adam_eps,
        weight_decay=cfg.optim.weight_decay,
        fused=cfg.optim.fused_optimizer,
    )
    if total_steps <= cfg.optim.warmup_steps:
        raise ConfigError(
            f"warmup_steps={cfg.optim.warmup_steps} must be below the run's {total_steps} total "
            f"steps; lower warmup_steps or train longer (num_epochs, total_steps)"
        )
    scheduler = get_polynomial_decay_schedule_with_warmup(
        optimizer,
        num_warmup_steps=cfg.optim.warmup_steps,
        num_training_steps=total_steps,
        lr_end=cfg.optim.lr_end,
        power=1.0,
    )
    torch.manual_seed(cfg.run.seed * 7919 + ddp.rank + 1)  # dropout: a stream per rank

    epoch, step_in_epoch, global_step, groups = 0, 0, 0, None
    use_bf16 = _use_bf16(cfg.run.precision, ddp.device)
    reuse = _ReusedVectors(data.video_ids, enabled=cfg.retrieval.retrieval_source == "reuse")
    if ckpt is not None and state is not None:
        model.load_state_dict(
            safetensors.torch.load_file(ckpt / "model.safetensors", device=str(ddp.device))
        )
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        rng = state["rng"][ddp.rank]
        torch.set_rng_state(rng["torch"])
        if rng["cuda"] is not None:
            torch.cuda.set_rng_state(rng["cuda"], ddp.device)
        position = state["position"]
        epoch, step_in_epoch, global_step = (
            position["epoch"],
            position["step_in_epoch"],
            position["global_step"],
        )
        groups = position["groups"]
        reuse.load_state(state.get("reuse"), ddp.rank)
        log.write(
            {
                "type": "resume",
                "from": ckpt.name,
                "epoch": epoch,
                "step": step_in_epoch,
                "global_step": global_step,
            }
        )
    else:
        log.write(
            {
                "type": "start",
                "config": cfg.to_dict(),
                "world_size": ddp.world_size,
                "device": str(ddp.device),
                "num_videos": len(data.video_ids),
                "steps_per_epoch": steps_per_epoch,
                "total_steps": total_steps,
                "data": data.report,
            }
        )

    train_model: torch.nn.Module = DistributedDataParallel(model) if ddp.enabled else model
    sampler = ClipSampler(kind=cfg.data.sampler)
    pairs_per_step = group_size * cfg.data.clip_per_video * ddp.world_size
    bar = tqdm(
        total=cfg.optim.num_epochs * steps_per_epoch,
        initial=global_step,
        desc="pretrain",
        disable=not (cfg.run.progress and ddp.main),
        dynamic_ncols=True,
    )

    def save(position: dict[str, Any]) -> None:
        _save_checkpoint(run_dir, model, optimizer, scheduler, position, cfg, ddp, log.lines, reuse)

    try:
        while epoch < cfg.optim.num_epochs:
            if groups is None:
                groups, stats = _retrieval_stage(model, data, cfg, epoch, ddp, reuse, use_bf16)
                log.write(
                    {"type": "retrieval", "epoch": epoch, "global_step": global_step, **stats}
                )
            my_groups = groups[ddp.rank :: ddp.world_size][:steps_per_epoch]
            model.train()

            def build(step: int, epoch: int = epoch, my_groups: list = my_groups) -> Any:
                return make_batch(
                    my_groups[step],
                    data.store,
                    data.token_cache,
                    clip_per_video=cfg.data.clip_per_video,
                    sampler=sampler,
                    rng=_rng(cfg.run.seed, epoch, _STEP_STREAM, step, ddp.rank),
                )

            steps = range(step_in_epoch, steps_per_epoch)
            loader = (
                Prefetcher(build, steps, pin_memory=ddp.device.type == "cuda")
                if cfg.run.prefetch
                else None
            )
            try:
                started = time.perf_counter()
                for batch in loader if loader is not None else map(build, steps):
                    batch = batch.to(ddp.device, non_blocking=loader is not None)
                    with torch.autocast(ddp.device.type, dtype=torch.bfloat16, enabled=use_bf16):
                        video_emb, text_emb = train_model(batch)
                    loss = _loss(video_emb, text_emb, batch, cfg.data.sampler)
                    loss_value = float(loss.item())
                    # The loss if every clip and text embedded to one vector: a collapsed run sits here.
                    chance_loss = float(_loss(video_emb.new_zeros(len(video_emb), 1),
                                              text_emb.new_zeros(len(text_emb), 1), batch, cfg.data.sampler))
                    if ddp.any_true(not math.isfinite(loss_value)):
                        raise FloatingPointError(
                            f"the loss is {loss_value} at epoch {epoch}, step {step_in_epoch} "
                            f"(global step {global_step + 1}) on rank {ddp.rank}; nothing was saved "
                            f"after the last checkpoint in {_checkpoint_dir(run_dir)}. Lower lr, "
                            f"check the features for bad values, or resume from that checkpoint"
                        )
                    reuse.add(batch.video_ids, video_emb, text_emb)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    grad_norm = torch.nn.utils.clip_grad_norm_(
                        model.parameters(), cfg.optim.grad_clip
                    )
                    lr = scheduler.get_last_lr()[0]
                    optimizer.step()
                    scheduler.step()
                    step_in_epoch += 1
                    global_step += 1
                    now = time.perf_counter()
                    pairs_per_s = pairs_per_step / (now - started)
                    started = now
                    log.write(
                        {
                            "type": "step",
                            "epoch": epoch,
                            "step": step_in_epoch,
                            "global_step": global_step,
                            "loss": loss_value,
                            "chance_loss": chance_loss,
                            "lr": lr,
                            "grad_norm": float(grad_norm),
                            "pairs_per_s": pairs_per_s,
                        }
                    )
                    bar.update(1)
                    bar.set_postfix(
                        loss=f"{loss_value:.3f}", lr=f"{lr:.2e}", pairs_s=f"{pairs_per_s:.0f}"
                    )
                    if step_in_epoch == steps_per_epoch:
                        epoch, step_in_epoch, groups = epoch + 1, 0, None
                        save(
                            {
                                "epoch": epoch,
                                "step_in_epoch": 0,
                                "global_step": global_step,
                                "groups": None,
                            }
                        )
                    elif cfg.run.checkpoint_every and global_step % cfg.run.checkpoint_every == 0:
                        save(
                            {
                                "epoch": epoch,
                                "step_in_epoch": step_in_epoch,
                                "global_step": global_step,
                                "groups": groups,
                            }
                        )
                    if cfg.run.stop_after_steps and global_step >= cfg.run.stop_after_steps:
                        return run_dir  # as if killed here: nothing more is written
            finally:
                if loader is not None:
                    loader.close()
    finally:
        bar.close()
    if ddp.main:
        model.save_pretrained(run_dir / "final")
        log.write({"type": "done", "global_step": global_step})
    ddp.barrier()
    return run_dir
