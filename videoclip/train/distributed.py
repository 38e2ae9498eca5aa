"""This process's place in a torchrun job, and the few collectives the trainer uses."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from videoclip.train.config import ConfigError


@dataclass
class Dist:
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
    def is_main(self) -> bool:
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


def setup_distributed(device_name: str) -> Dist:
    """Join the torchrun job named by the environment (RANK, WORLD_SIZE, LOCAL_RANK), if any."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device_name == "auto":
        device = torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    else:
        try:
            device = torch.device(device_name)
        except RuntimeError:
            raise ConfigError(f"device={device_name!r}: use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device={device_name!r}: this PyTorch sees no CUDA device; use "
                              f"device=cpu (or auto)")
        device = device if device.index is not None else torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    owns_group = world_size > 1 and not dist.is_initialized()
    if owns_group:
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Dist(rank, world_size, local_rank, device, owns_group)


@contextmanager
def distributed(device_name: str) -> Iterator[Dist]:
    """:func:`setup_distributed` for the length of a run; a process group it started is ended."""
    ddp = setup_distributed(device_name)
    try:
        yield ddp
    finally:
        if ddp.owns_group:
            dist.destroy_process_group()
