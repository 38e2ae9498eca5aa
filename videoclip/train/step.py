"""One optimisation step, shared by pre-training (:mod:`videoclip.train.loop`) and fine-tuning
(:mod:`videoclip.finetune.loop`): :class:`TrainState` (what a run carries from step to step and
saves) and :func:`train_step` (forward, loss, NaN check, backward, clipping, Adam, schedule)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import safetensors.torch
import torch

from videoclip.train.checkpointing import checkpoint_dir
from videoclip.train.distributed import Dist


@dataclass
class TrainState:
    """The model, its optimiser and schedule, and where the run is."""

    model: torch.nn.Module  # not the DDP wrapper: its parameters are clipped and saved
    optimizer: torch.optim.Optimizer
    scheduler: Any
    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0

    def position(self) -> dict[str, Any]:
        """Where the run is, as a checkpoint stores it."""
        return {"epoch": self.epoch, "step_in_epoch": self.step_in_epoch,
                "global_step": self.global_step}

    def restore(self, ckpt: Path, state: Mapping[str, Any], ddp: Dist) -> dict[str, Any]:
        """Continue from checkpoint ``ckpt`` (its ``trainer_state`` is ``state``): weights,
        optimiser, schedule, this rank's torch RNG and the position; returns the stored position."""
        weights = safetensors.torch.load_file(ckpt / "model.safetensors", device=str(ddp.device))
        self.model.load_state_dict(weights)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        rng = state["rng"][ddp.rank]
        torch.set_rng_state(rng["torch"])
        if rng["cuda"] is not None:
            torch.cuda.set_rng_state(rng["cuda"], ddp.device)
        position = state["position"]
        self.epoch, self.step_in_epoch, self.global_step = (
            position["epoch"], position["step_in_epoch"], position["global_step"])
        return position


def train_step(state: TrainState, train_model: torch.nn.Module, batch: Any,
               loss_of: Callable[[Any, Any], tuple[torch.Tensor, dict[str, float]]], *,
               grad_clip: float, use_bf16: bool, ddp: Dist, run_dir: Path) -> dict[str, Any]:
    """One update on ``batch`` (on the device), then the step counters advance.

    ``train_model`` (the model, DDP-wrapped when distributed) runs under bf16 autocast when
    ``use_bf16``; ``loss_of(output, batch)`` gives the loss and extra fields for the log record.

    Returns:
        The step's log record (``type``, position, ``loss``, the extras, ``lr``, ``grad_norm``).

    Raises:
        FloatingPointError: the loss is NaN/inf on any rank (every rank raises).
    """
    with torch.autocast(ddp.device.type, dtype=torch.bfloat16, enabled=use_bf16):
        output = train_model(batch)
    loss, extras = loss_of(output, batch)
    loss_value = float(loss.item())
    if ddp.any_true(not math.isfinite(loss_value)):
        raise FloatingPointError(
            f"the loss is {loss_value} at epoch {state.epoch}, step {state.step_in_epoch} "
            f"(global step {state.global_step + 1}) on rank {ddp.rank}; nothing was saved after "
            f"the last checkpoint in {checkpoint_dir(run_dir)}. Lower lr, check the features for "
            f"bad values, or resume from that checkpoint")
    state.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(state.model.parameters(), grad_clip)
    lr = state.scheduler.get_last_lr()[0]
    state.optimizer.step()
    state.scheduler.step()
    state.step_in_epoch += 1
    state.global_step += 1
    return {"type": "step", "epoch": state.epoch, "step": state.step_in_epoch,
            "global_step": state.global_step, "loss": loss_value, **extras, "lr": lr,
            "grad_norm": float(grad_norm)}
