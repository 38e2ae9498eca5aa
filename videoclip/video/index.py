"""Text search over a user's videos: 32-s windows embedded by a video tower, in one FAISS index.

Each video's feature array is cut into SPEC §7's sliding windows (32 s, stride 16 s; a video
of at most 32 s is one window), each window embedded with VideoCLIP's video tower (or, for
MIL-NCE, the mean of its per-second S3D vectors), and the vectors kept in an exact
inner-product index: the score is the model's own dot product.

Layout of an index folder::

    index.json      {"kind", "version", "model", "dim", "num_moments", "window", "stride"}
    index.faiss     faiss.IndexFlatIP, one row per moment
    moments.tsv     video <tab> start_s <tab> end_s, one line per row of the index
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import faiss
import numpy as np
from tqdm.auto import tqdm

from videoclip._io import atomic_dir, check_output_dir
from videoclip.data.features import FeatureStore
from videoclip.evaluation.common import (
    STRIDE,
    WINDOW,
    ZeroShotModel,
    encode_clips,
    resolve_device,
    sliding_windows,
)

__all__ = ["Moment", "MomentIndex", "MomentIndexError", "format_moments",
           "mean_embedding", "tower_embedding"]

KIND = "videoclip-moment-index"
VERSION = 1


class MomentIndexError(ValueError):
    """An index folder that cannot be read or written; the message names the folder and the fix."""


class Moment(NamedTuple):
    video: str
    start: int  # seconds
    end: int
    score: float = 0.0


class MomentIndex:
    """FAISS inner-product index over video windows with ``(video, start, end)`` metadata."""

    def __init__(self, index: faiss.Index, moments: list[Moment], *, model: str) -> None:
        if index.ntotal != len(moments):
            raise MomentIndexError(f"{index.ntotal} vectors but {len(moments)} moments")
        self.index, self.moments, self.model = index, moments, model

    def __len__(self) -> int:
        return len(self.moments)

    @property
    def dim(self) -> int:
        return self.index.d

    @classmethod
    def build(cls, store: FeatureStore, embed: Callable[[list[np.ndarray]], np.ndarray], *,
              model: str, batch_size: int = 64, progress: bool = False) -> MomentIndex:
        """Embed every window of every video in ``store``.

        Args:
            store: per-second features (``videoclip.data.features``).
            embed: clips ``[(seconds ≤ 32, 512)]`` → ``(len(clips), D)`` float32 embeddings.
            model: what embedded them (``"milnce"`` or a model folder), recorded for search.
        """
        moments = [Moment(vid, start, end) for vid in store.ids()
                   for start, end in sliding_windows(store.num_seconds(vid), WINDOW, STRIDE)]
        if not moments:
            raise MomentIndexError(f"{store.path}: no video has a second of features; nothing to index")
        vectors = []
        cache: dict[str, np.ndarray] = {}
        for first in tqdm(range(0, len(moments), batch_size), desc="index", unit="batch",
                          disable=not progress):
            batch = moments[first:first + batch_size]
            clips = []
            for m in batch:
                if m.video not in cache:
                    cache = {m.video: store.load(m.video)}  # windows of a video are adjacent
                clips.append(cache[m.video][m.start:m.end])
            vectors.append(np.asarray(embed(clips), dtype=np.float32))
        matrix = np.ascontiguousarray(np.concatenate(vectors))
        index = faiss.IndexFlatIP(matrix.shape[1])
        index.add(matrix)
        return cls(index, moments, model=model)

    def search(self, query: np.ndarray, k: int = 10) -> list[Moment]:
        """The ``k`` best moments for one ``(D,)`` text embedding, best first."""
        query = np.asarray(query, dtype=np.float32).reshape(1, -1)
        if query.shape[1] != self.dim:
            raise MomentIndexError(f"query of dimension {query.shape[1]}, the index holds {self.dim}-d "
                              f"vectors of model {self.model!r}; search with the same model")
        scores, rows = self.index.search(query, min(k, len(self)))
        return [self.moments[r]._replace(score=float(s)) for s, r in zip(scores[0], rows[0])
                if r >= 0]

    def save(self, directory: str | Path, *, overwrite: bool = False) -> Path:
        """Write the folder atomically (built beside it, renamed into place)."""
        directory = Path(directory)
        check_output_dir(directory, overwrite=overwrite)
        with atomic_dir(directory, replace=directory.exists()) as tmp:  # checked just above
            faiss.write_index(self.index, str(tmp / "index.faiss"))
            (tmp / "moments.tsv").write_text(
                "".join(f"{m.video}\t{m.start}\t{m.end}\n" for m in self.moments))
            meta = {"kind": KIND, "version": VERSION, "model": self.model, "dim": self.dim,
                    "num_moments": len(self), "window": WINDOW, "stride": STRIDE}
            (tmp / "index.json").write_text(json.dumps(meta, indent=1) + "\n")
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> MomentIndex:
        directory = Path(directory)
        fix = "rebuild it with `videoclip index`"
        try:
            meta = json.loads((directory / "index.json").read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise MomentIndexError(f"{directory}: not a moment index ({exc}); {fix}") from exc
        if meta.get("kind") != KIND or meta.get("version") != VERSION:
            raise MomentIndexError(f"{directory}/index.json: kind {meta.get('kind')!r} "
                              f"v{meta.get('version')}, expected {KIND!r} v{VERSION}; {fix}")
        index = faiss.read_index(str(directory / "index.faiss"))
        moments = []
        for line_no, line in enumerate((directory / "moments.tsv").read_text().splitlines(), 1):
            parts = line.split("\t")
            if len(parts) != 3:
                raise MomentIndexError(f"{directory}/moments.tsv line {line_no}: {line!r} is not "
                                  f"video<TAB>start<TAB>end; {fix}")
            moments.append(Moment(parts[0], int(parts[1]), int(parts[2])))
        return cls(index, moments, model=meta["model"])


def mean_embedding(clips: list[np.ndarray]) -> np.ndarray:
    """MIL-NCE's clip vector ``(len(clips), 512)``: the mean of the per-second S3D vectors."""
    return np.stack([clip.astype(np.float32).mean(axis=0) for clip in clips])


def tower_embedding(model: ZeroShotModel) -> Callable[[list[np.ndarray]], np.ndarray]:
    """Clips → ``(len(clips), D)`` pooled embeddings of a model's video tower (on its device)."""
    device = resolve_device(model, None)
    return lambda clips: encode_clips(model, clips, batch_size=len(clips),
                                      device=device).cpu().numpy()


def format_moments(moments: Sequence[Moment]) -> str:
    """A plain table: rank, video, start s, end s, score."""
    lines = [f"{'rank':>4}  {'video':<24} {'start':>7} {'end':>7} {'score':>9}"]
    lines += [f"{i:>4}  {m.video:<24} {m.start:>7} {m.end:>7} {m.score:>9.4f}"
              for i, m in enumerate(moments, 1)]
    return "\n".join(lines)
