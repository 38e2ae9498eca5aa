"""Checkpoints of a run: ``checkpoints/step-N/`` (weights + trainer state) and ``latest``;
saving, loading, checking a resumed configuration, and preparing a run directory."""

from __future__ import annotations

import errno
import pickle
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
# Keys that may change between a run and its resumption (they do not change what is computed;
# where checkpoints fall and how many are kept changes no step's arithmetic).
RESUMABLE_KEYS = frozenset(
    {"resume", "stop_after_steps", "progress", "run_dir", "device", "prefetch",
     "checkpoint_every", "keep_checkpoints"}
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
    """The checkpoint ``latest`` names; without the pointer (a save killed before it moved, or
    a copy that lost it), the newest complete ``step-*``: a step directory only appears, by
    rename, once both of its files are written (design §14)."""
    pointer = checkpoint_dir(run_dir) / "latest"
    if not pointer.is_file():
        complete = sorted(p for p in checkpoint_dir(run_dir).glob("step-*")
                          if (p / "trainer_state.pt").is_file())
        return complete[-1] if complete else None
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
        try:
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
        except (OSError, RuntimeError) as exc:  # torch reports a full disk as "unexpected pos"
            free_mb = shutil.disk_usage(ckpt_dir).free / 2**20
            reason = (str(exc).strip().splitlines() or [""])[0][:100]
            raise OSError(
                getattr(exc, "errno", None) or errno.EIO,
                f"cannot write checkpoint {ckpt_dir / name} ({type(exc).__name__}: {reason}; "
                f"{free_mb:.0f} MiB free): is the disk full or read-only? The earlier "
                f"checkpoints are intact: make room, then rerun with --resume",
            ) from exc
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
    try:
        state = torch.load(path / "trainer_state.pt", map_location="cpu", weights_only=True)
    except (RuntimeError, OSError, EOFError, KeyError, ValueError, pickle.UnpicklingError) as exc:
        raise ValueError(
            f"{path / 'trainer_state.pt'}: cannot read it ({type(exc).__name__}); the checkpoint "
            f"is truncated or corrupt: point {path.parent / 'latest'} at an earlier step-* "
            f"directory, or start a new run_dir"
        ) from exc
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


def remove_unfinished_writes(run_dir: Path) -> None:
    """Delete the temporaries a killed save left behind (``.step-*.tmp`` directories, dot-named
    ``*.tmp`` files in ``final/``); never a finished checkpoint: resume deletes nothing else."""
    for path in checkpoint_dir(run_dir).glob(".step-*.tmp"):
        shutil.rmtree(path)
    for path in (run_dir / "final").glob(".*.tmp"):
        path.unlink()


def _is_failed_start(path: Path) -> bool:
    """What a start that failed before its first log record leaves: an empty log or folder."""
    if path.name == "log.jsonl" and path.is_file():
        return not path.read_text().strip()
    return path.name == "checkpoints" and path.is_dir() and not any(path.iterdir())


def prepare_run_dir(
    cfg: PretrainConfig, ddp: Dist
) -> tuple[Path, Path | None, dict[str, Any] | None]:
    """The run directory, and the checkpoint to resume from and its state (None = start fresh).

    A fresh start needs a missing or empty ``run_dir`` (or one a failed start left); a resume
    needs something to resume: a finished run without checkpoints is refused, not retrained.
    """
    run_dir = Path(cfg.run.run_dir).expanduser()
    if run_dir.exists() and not run_dir.is_dir():
        raise FileExistsError(f"run_dir {run_dir} is a file; choose a directory for the run")
    log_path = run_dir / "log.jsonl"
    latest = latest_checkpoint(run_dir)
    held = sorted(p.name for p in run_dir.iterdir() if not _is_failed_start(p)) if (
        run_dir.is_dir()) else []
    if not cfg.run.resume and held:
        raise FileExistsError(
            f"{run_dir} already holds {', '.join(held[:4])}; pass resume=True (--resume) to "
            f"continue the run in it, or choose another run_dir. Nothing was changed."
        )
    if cfg.run.resume and latest is None and (run_dir / "final" / "config.json").is_file():
        raise FileExistsError(
            f"{run_dir} holds a finished run (final/) and no checkpoint to resume from; to "
            f"train again choose another run_dir. Nothing was changed."
        )
    state = load_checkpoint(latest, cfg, ddp) if latest is not None else None
    ddp.barrier()
    if ddp.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        remove_unfinished_writes(run_dir)
        if latest is not None:
            atomic_write_text(checkpoint_dir(run_dir) / "latest", latest.name)
        # Drop the log lines written after the checkpoint: those steps will run again.
        keep = state["log_lines"] if state is not None else 0
        if log_path.exists():
            atomic_write_text(log_path, "".join(log_path.read_text().splitlines(True)[:keep]))
    ddp.barrier()
    return run_dir, latest, state
