"""The simulator's ground truth (``world_truth.npz``): every pre-training step instance with its
true interval and the onset and end of its narration, and the concept directions.

Real data roots have none; :func:`has_world_truth` tells them apart. Only the book and
:mod:`videoclip.sim.levels` read it, never a loader, sampler or evaluator.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from videoclip.text import text_concepts

__all__ = ["TRUTH_FILE", "WorldTruth", "has_world_truth", "load_world_truth"]

TRUTH_FILE = "world_truth.npz"


def has_world_truth(data_root: str | Path) -> bool:
    """Whether ``data_root`` is a simulated world with ground truth (``world_truth.npz``)."""
    return (Path(data_root) / TRUTH_FILE).is_file()


@dataclass(frozen=True)
class WorldTruth:
    """The simulator's ground truth for the pre-training corpus.

    Attributes:
        steps: one row per performed step instance: ``video_id, video_row, step_index, start,
            end`` (its true interval, s), ``onset, speech_end`` (its narration, NaN when
            unspoken), ``lag = onset - start`` and ``text`` (its clean description).
        concepts: ``C`` concept names; ``directions`` float32 ``(C, 512)`` unit rows.
        video_task: ``{video_id: task id}``.
    """

    steps: pd.DataFrame
    concepts: list[str]
    directions: np.ndarray
    video_task: dict[str, int]

    def text_directions(self, texts: Sequence[str]) -> np.ndarray:
        """``(N, 512)`` unit sum of the true directions of each text's concepts (a zero row for
        a text naming no known concept): what a perfect word↔concept model would embed."""
        index = {c: i for i, c in enumerate(self.concepts)}
        out = np.zeros((len(texts), self.directions.shape[1]), np.float32)
        for i, text in enumerate(texts):
            rows = [index[c] for c in text_concepts(text) if c in index]
            if rows:
                v = self.directions[rows].sum(axis=0)
                out[i] = v / np.linalg.norm(v)
        return out

    def video_steps(self, video_id: str) -> pd.DataFrame:
        """The step instances of one pre-training video, in performed order."""
        table = self.steps[self.steps.video_id == video_id]
        if table.empty and video_id not in self.video_task:
            raise KeyError(f"video {video_id!r} is not a pre-training video of this world")
        return table


def load_world_truth(data_root: str | Path) -> WorldTruth:
    """Read ``world_truth.npz`` of a simulated data root.

    Raises:
        FileNotFoundError: no ground truth (a real data root); the message says so.
    """
    path = Path(data_root) / TRUTH_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: only simulated worlds (videoclip.sim.world) "
                                "have ground truth; real data has none")
    with np.load(path, allow_pickle=False) as z:
        ids = [str(v) for v in z["pretrain_video_ids"]]
        rows = z["pretrain_step_video"]
        steps = pd.DataFrame({
            "video_id": np.array(ids, dtype=object)[rows] if len(rows) else np.array([], dtype=object),
            "video_row": rows,
            "step_index": z["pretrain_step_index"],
            "start": z["pretrain_step_start"],
            "end": z["pretrain_step_end"],
            "onset": z["pretrain_step_onset"],
            "speech_end": z["pretrain_step_speech_end"],
            "text": z["pretrain_step_text"].astype(str),
        })
        directions = z["directions"].astype(np.float32)
        truth = WorldTruth(steps.assign(lag=steps.onset - steps.start),
                           [str(c) for c in z["concepts"]],
                           directions / np.linalg.norm(directions, axis=1, keepdims=True),
                           dict(zip(ids, z["pretrain_video_task"].tolist())))
    return truth
