"""The retrieval stage of every epoch (paper §3.4, Algorithm 1; design §5): the video vectors
(embedded, or reused from the previous epoch's training passes), the index, the epoch's groups."""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from videoclip.model import VideoCLIP
from videoclip.retrieval import cluster_groups, embed_videos, group_stats, random_groups
from videoclip.train.config import PretrainConfig
from videoclip.train.data import TrainData
from videoclip.train.distributed import Dist

# Stream tags of the derived random generators: (seed, epoch, tag, ...) never collide.
RETRIEVAL_STREAM, STEP_STREAM = 1, 2


def derived_rng(seed: int, *tags: int) -> np.random.Generator:
    return np.random.default_rng([seed, *tags])


class ReusedVectors:
    """``retrieval_source="reuse"``: per video, the sum and count of its training pairs'
    ``(video_emb + text_emb) / 2`` over the epoch, the next epoch's retrieval vectors (bench/RESULTS.md).

    They differ from ``embed_videos``'s (design §5): the overlap sampler's pairs instead of
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

    def take(self, shard: np.ndarray, ddp: Dist) -> tuple[np.ndarray, np.ndarray]:
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


def retrieval_stage(
    model: VideoCLIP,
    data: TrainData,
    cfg: PretrainConfig,
    epoch: int,
    ddp: Dist,
    reuse: ReusedVectors,
    use_bf16: bool,
) -> tuple[list[list[str]], dict[str, Any]]:
    """The epoch's groups of video ids, shuffled, identical on every rank. design §5; Algorithm 1.

    With ``retrieval_source="reuse"`` the vectors of the videos trained on in the previous
    epoch come from ``reuse``; only the others (all of them in the first epoch) are embedded.
    """
    rc, seed, group_size = cfg.retrieval, cfg.run.seed, cfg.data.num_video_per_batch
    num_videos = len(data.video_ids)
    # Separate streams, so that rank 0 drawing the clusters leaves the shared order in step.
    rng = derived_rng(seed, epoch, RETRIEVAL_STREAM, 0, 1)
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
                rng=derived_rng(seed, epoch, RETRIEVAL_STREAM, ddp.rank + 1, 0),
                batch_size=rc.embed_batch_size,
                progress=cfg.run.progress and ddp.is_main,
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
            if ddp.is_main:
                all_vectors = np.empty((num_videos, vectors.shape[1]), dtype=np.float32)
                for rank, part in enumerate(gathered):
                    all_vectors[rank :: ddp.world_size] = part
                groups = cluster(all_vectors, rng=rng)
            groups = ddp.broadcast_object(groups)
        else:  # the original: each rank clusters its own shard, then all ranks share the groups
            local = cluster(
                vectors, rng=derived_rng(seed, epoch, RETRIEVAL_STREAM, ddp.rank + 1, 1)
            )
            groups = [
                shard_indices
                for part in ddp.gather_objects([shard[g] for g in local])
                for shard_indices in part
            ]
    order = derived_rng(seed, epoch, RETRIEVAL_STREAM, 0, 2).permutation(len(groups))
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
            num_videos, group_size=group_size, rng=derived_rng(seed, epoch, RETRIEVAL_STREAM, 0, 3)
        )
        baseline = group_stats(baseline_groups, data.labels)
        stats["random_groups_same_task_share"] = baseline["same_task_share"]
    return id_groups, stats
