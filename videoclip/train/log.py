"""A run's ``log.jsonl``: the writer the trainer appends to, the reader, and :class:`RunLog`."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class LogWriter:
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


@dataclass(frozen=True)
class RunLog:
    """A run's log, read once: its records in order and the ones of each type.

    ``start``: the (first) start record (``config`` by section, ``num_videos``, ``world_size``, …);
    ``steps``: one record per optimisation step; ``retrieval``: one per epoch's retrieval stage.
    """

    path: Path
    records: tuple[dict[str, Any], ...]

    @classmethod
    def read(cls, run_dir: str | Path) -> RunLog:
        return cls(Path(run_dir) / "log.jsonl", tuple(read_log(run_dir)))

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r.get("type") == kind]

    @property
    def start(self) -> dict[str, Any]:
        starts = self.of_type("start")
        if not starts:
            raise ValueError(f"{self.path} has no start record: not a pre-training log")
        return starts[0]

    @property
    def steps(self) -> list[dict[str, Any]]:
        return self.of_type("step")

    @property
    def retrieval(self) -> list[dict[str, Any]]:
        return self.of_type("retrieval")

    @property
    def pairs_per_step(self) -> int:
        """Video-text pairs of one optimisation step over all processes."""
        data = self.start["config"]["data"]
        return data["num_video_per_batch"] * data["clip_per_video"] * self.start["world_size"]
