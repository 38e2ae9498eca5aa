"""Checkpoints of a run: ``checkpoints/step-N/`` (weights + trainer state) and ``latest``;
saving, loading, checking a resumed configuration, and preparing a run directory."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import safetensors.torch
import torch

from videoclip._io import atomic_dir, atomic_torch_save, atomic_write_bytes, atomic_write_text
from videoclip.model import VideoCLIP
from videoclip.train.config import ConfigError, PretrainConfig
from videoclip.train.distributed import Dist
from videoclip.train.retrieval_stage import ReusedVectors

CHECKPOINT_FORMAT = "videoclip-pretrain-checkpoint"
CHECKPOINT_VERSION = 1
# Keys that may change between a run and its resumption (they do not change what is computed).
RESUMABLE_KEYS = frozenset(
    {"resume", "stop_after_steps", "progress", "run_dir", "device", "prefetch"}
)
# What a checkpoint written before these keys existed ran with (the fast path, design §11).
_LEGACY_VALUES = {
    "attn_implementation": "sdpa",
    "length_buckets": 0,
    "fused_optimizer": False,
    "retrieval_source": "embed",
    "precision": "auto",
    "compile": False,
    "loss": "contrastive",
}


def checkpoint_dir(run_dir: Path) -> Path:
    return run_dir / "checkpoints"


def latest_checkpoint(run_dir: Path) -> Path | None:
    pointer = checkpoint_dir(run_dir) / "latest"
    if not pointer.is_file():
        return None
    path = checkpoint_dir(run_dir) / pointer.read_text().strip()
    if not (path / "trainer_state.pt").is_file():
        raise FileNotFoundError(
            f"{pointer} names {path}, which has no trainer_state.pt; "
            f"point {pointer} at an intact checkpoint directory"
        )
    return path


def save_checkpoint(
    run_dir: Path,
    model: VideoCLIP,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    position: dict[str, Any],
    cfg: PretrainConfig,
    ddp: Dist,
    log_lines: int,
    reuse: ReusedVectors,
) -> None:
    """Write ``checkpoints/step-N`` (a temporary directory renamed into place), then ``latest``."""
    rng_states = ddp.gather_objects(
        {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state(ddp.device) if ddp.device.type == "cuda" else None,
        }
    )
    reuse_states = ddp.gather_objects(reuse.state()) if reuse.enabled else None
    if ddp.is_main:
        ckpt_dir = checkpoint_dir(run_dir)
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


def config_differences(saved: Mapping[str, Any], current: PretrainConfig) -> list[str]:
    saved_flat = {k: v for section in saved.values() for k, v in section.items()}
    saved_flat = {**_LEGACY_VALUES, **saved_flat}
    now = current.to_dict()
    now_flat = {k: v for section in now.values() for k, v in section.items()}
    return [
        f"{key}: checkpoint {saved_flat.get(key)!r} vs now {now_flat.get(key)!r}"
        for key in sorted(set(saved_flat) | set(now_flat))
        if key not in RESUMABLE_KEYS and saved_flat.get(key) != now_flat.get(key)
    ]


def load_checkpoint(path: Path, cfg: PretrainConfig, ddp: Dist) -> dict[str, Any]:
    state = torch.load(path / "trainer_state.pt", map_location="cpu", weights_only=True)
    if state.get("format") != CHECKPOINT_FORMAT or state.get("version") != CHECKPOINT_VERSION:
        raise ValueError(f"{path}: not a v{CHECKPOINT_VERSION} {CHECKPOINT_FORMAT}")
    differences = config_differences(state["config"], cfg)
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


def remove_orphans(ckpt_dir: Path, latest: Path | None) -> None:
    """Delete what a killed save left behind: temporary directories, and checkpoints newer than
    the one ``latest`` names (written, but the pointer never moved to them)."""
    if not ckpt_dir.is_dir():
        return
    for path in ckpt_dir.iterdir():
        unfinished = path.name.startswith(".step-") and path.name.endswith(".tmp")
        newer = path.name.startswith("step-") and (latest is None or path.name > latest.name)
        if path.is_dir() and (unfinished or newer):
            shutil.rmtree(path)


def prepare_run_dir(
    cfg: PretrainConfig, ddp: Dist
) -> tuple[Path, Path | None, dict[str, Any] | None]:
    """The run directory, and the checkpoint to resume from and its state (None = start fresh)."""
    run_dir = Path(cfg.run.run_dir).expanduser()
    log_path = run_dir / "log.jsonl"
    latest = latest_checkpoint(run_dir)
    if not cfg.run.resume and (latest is not None or log_path.exists()):
        raise FileExistsError(
            f"{run_dir} already holds a run ({'checkpoints' if latest else 'log.jsonl'}); pass "
            f"resume=True (--resume) to continue it, or choose another run_dir. Nothing was changed."
        )
    state = load_checkpoint(latest, cfg, ddp) if latest is not None else None
    ddp.barrier()
    if ddp.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        remove_orphans(checkpoint_dir(run_dir), latest)
        # Drop the log lines written after the checkpoint: those steps will run again.
        keep = state["log_lines"] if state is not None else 0
        lines = log_path.read_text().splitlines(keepends=True)[:keep] if log_path.exists() else []
        atomic_write_text(log_path, "".join(lines))
    ddp.barrier()
    return run_dir, latest, state
