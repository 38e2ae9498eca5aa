"""Pre-training configuration: one dataclass per concern, strict parsing of presets (design §4–6)."""

from __future__ import annotations

import dataclasses
import json
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

from videoclip._yaml import load_yaml


class ConfigError(ValueError):
    """A configuration that cannot run: unknown keys, wrong types, or a mismatch on resume."""


@dataclass
class ModelCfg:
    """The model (design §1). Defaults are the paper's."""

    backbone: str = "bert-base-uncased"  # design §1; "minilm-l6" = the offline toy backbone
    num_video_layers: int = 6  # design §1: the first 6 layers
    num_text_layers: int | None = None  # None = all of the backbone's (12 for BERT-base)
    shared_towers: bool = False  # Table 7 ablation
    pooling: str = "mean"  # design §1; "cls" = Table 7 ablation
    # Fast path (design §11; bench/RESULTS.md). Neither changes the embeddings beyond float rounding.
    attn_implementation: str = "sdpa"  # "sdpa" (fused attention kernels) | "eager" (plain)
    length_buckets: int = 4  # encode in 4 length buckets, each cut to its longest row; 0 = off


@dataclass
class DataCfg:
    """The HowTo100M-format data root (design §4) and how pairs are drawn."""

    data_dir: str = ""  # root holding the files below (relative paths are under it)
    features: str = "howto100m/features"
    captions: str = "howto100m/caption.json"
    train_list: str = "howto100m/train.lst"
    task_csv: str = (
        "howto100m/HowTo100M_v1.csv"  # task per video, for the group statistics; "" = none
    )
    token_cache_dir: str = ""  # "" = beside the captions
    max_videos: int = 0  # 0 = every usable video of train_list
    sampler: str = "overlap"  # design §4: "overlap" (paper), "exact" (w/o overlap), "milnce"
    clip_per_video: int = 16  # design §4
    num_video_per_batch: int = 32  # design §4: 16 x 32 = 512 pairs per device and step


@dataclass
class OptimCfg:
    """Optimisation (design §6)."""

    num_epochs: int = 25  # design §6
    lr: float = 5e-5  # design §6
    adam_betas: tuple[float, float] = (0.9, 0.98)  # design §6
    adam_eps: float = 1e-8  # design §6
    weight_decay: float = 0.0  # design §6
    warmup_steps: int = 1000  # design §6
    total_steps: int = (
        1_000_000  # design §6 (the original's; nearly flat); 0 = epochs x steps/epoch
    )
    lr_end: float = 0.0  # fairseq polynomial_decay's end_learning_rate
    grad_clip: float = 2.0  # design §6
    fused_optimizer: bool = True  # torch's fused Adam (CPU and CUDA); False = for-loop
    loss: str = "contrastive"  # paper §3.2; "mil_nce" = Table 7 ablation (needs sampler "milnce")


@dataclass
class RetrievalCfg:
    """The retrieval stage at the start of every epoch (design §5, Paper §3.4)."""

    grouping: str = (
        "retrieval"  # "retrieval" (paper) | "random" (w/o retrieval) | "nearest" (retrieve k)
    )
    first_32s: bool = False  # Table 7 "use first 32 sec for retrieval"
    num_neighbours: int = 64  # design §5 (MMPT num_cands)
    retrieval_clips: int = 16  # design §5: aligned clips per video embedding
    index: str = "auto"  # "auto" | "flat" | "ivf" (the original: IVF, 512 lists, nprobe 1)
    nlist: int = 512
    nprobe: int = 1
    metric: str = "l2"  # the original: L2
    retrieval_scope: str = (
        "global"  # DDP: "global" index over all ranks' vectors | "local" (original)
    )
    embed_batch_size: int = 64  # videos per forward pass of the embedding
    # "embed": a separate embedding pass each epoch (design §5) | "reuse": the pairs embedded by
    # the previous epoch's training steps (design §11; videos it did not train on are embedded)
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
    # Fast path (design §11; bench/RESULTS.md).
    precision: str = "auto"  # "auto" = bf16 autocast on CUDA, fp32 on CPU | "bf16" | "fp32"
    compile: bool = False  # torch.compile the towers (dynamic shapes); measured no gain on CPU
    prefetch: bool = True  # build the next batch in a background thread (pinned on CUDA)


SECTIONS: dict[str, type] = {
    "model": ModelCfg,
    "data": DataCfg,
    "optim": OptimCfg,
    "retrieval": RetrievalCfg,
    "run": RunCfg,
}
_CHOICES = {
    "pooling": ("mean", "cls"),
    "sampler": ("overlap", "exact", "milnce"),
    "loss": ("contrastive", "mil_nce"),
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
        for section in SECTIONS:
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
            "seed",
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
        if (self.optim.loss == "mil_nce") != (self.data.sampler == "milnce"):
            raise ConfigError(
                f"loss={self.optim.loss!r} with sampler={self.data.sampler!r}: the MIL-NCE loss "
                "scores the bags of texts the 'milnce' sampler draws, and only it; set both "
                "(loss='mil_nce', sampler='milnce') or neither"
            )
        if not self.optim.lr > self.optim.lr_end >= 0:
            raise ConfigError(
                f"need lr > lr_end >= 0, got lr={self.optim.lr}, lr_end={self.optim.lr_end}"
            )

    @staticmethod
    def keys() -> dict[str, str]:
        """Every flat key and the section that owns it."""
        return {
            f.name: section for section, cls in SECTIONS.items() for f in dataclasses.fields(cls)
        }

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], *, source: str = "config") -> PretrainConfig:
        """Flat keys and/or ``{section: {key: value}}``; unknown keys raise :class:`ConfigError`."""
        owner = cls.keys()
        sections: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
        unknown = []
        for key, value in values.items():
            if key in SECTIONS and isinstance(value, Mapping):
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
        for name, section_cls in SECTIONS.items():
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
        values = load_yaml(path.read_text(encoding="utf-8")) or {}
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
