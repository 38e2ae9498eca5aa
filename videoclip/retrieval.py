"""Retrieval-augmented batching: video vectors, a FAISS index, and the epoch's video groups.

Paper: §3.4 (Algorithm 1); design §5. At the start of every epoch each training video is embedded
(``embed_videos``), the vectors go into a dense index (``VectorRetriever``), and
``cluster_groups`` draws N/32 query videos, takes each one's 64 nearest neighbours plus itself
and keeps a random 32: these clusters are the epoch's groups of videos, so a batch holds videos
that look alike and its negatives are hard. ``random_groups`` is the "w/o retrieval" ablation
and ``group_stats`` measures how much harder the clustered groups are (same-task pairs).

Where this differs from the original code (fairseq ``examples/MMPT``, ``mmpt/modules/retri.py``,
``mmpt/tasks/retritask.py``, ``mmpt/modules/vectorpool.py``):

* The original searched ``num_cands=64`` results, which include the query itself, so a cluster
  was the query plus (usually) 63 neighbours. We follow design §5: the query plus its 64 nearest
  *other* videos (65 candidates), then keep 32.
* The original always used an IVF index (512 centroids, L2, nprobe 1, trained on the first
  48 x 512 vectors). ``index="auto"`` here uses exact search up to ``FLAT_MAX_VIDEOS`` videos
  (the same neighbours IVF approximates) and IVF above it.
* The original built one index per GPU from that GPU's shard of the videos; ``videoclip.train``
  builds one global index from the all-gathered vectors by default (design §5, §11).
* ``gpu=None`` (the default of ``build_retriever`` and ``cluster_groups``) puts the index on
  GPU 0 when FAISS was built with GPU support (conda's ``faiss-gpu``) and sees a GPU, else it
  stays on the CPU (pip's ``faiss-cpu``); ``gpu=True`` without them is an error. Both find the
  same neighbours up to FAISS's float rounding (design §11.12).
* As in the original, the queries are distinct videos drawn without replacement, a video may
  land in several clusters or in none (it then sits the epoch out), and a cluster that IVF
  returns short (fewer candidates than ``group_size``) is kept short; ``group_stats`` counts
  the videos left out and the short groups.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import faiss
import numpy as np
import torch
from tqdm.auto import tqdm

from videoclip.data.captions import TokenCache
from videoclip.data.samplers import Batch, ClipSampler, make_batch, text_ids

if TYPE_CHECKING:
    from videoclip.data.features import FeatureStore
    from videoclip.model import VideoCLIP

IndexKind = Literal["flat", "ivf"]
Metric = Literal["l2", "ip"]

# Exact search costs O(N^2 / 32 * D) per epoch; up to ~100k videos that is seconds on a CPU,
# above it IVF (what the original always used) keeps the retrieval stage cheap.
FLAT_MAX_VIDEOS = 100_000
# "first 32 s" (Table 7): the video is embedded from one clip of its first seconds.
FIRST_SECONDS = 32
# FAISS wants >= 39 training points per centroid; fewer gives poor centroids.
_MIN_POINTS_PER_CENTROID = 39


def faiss_gpu_available() -> bool:
    """Whether this FAISS build has GPU support and sees at least one GPU."""
    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


def use_gpu_index(gpu: bool | None) -> bool:
    """Resolve a ``gpu`` option: ``None`` = when :func:`faiss_gpu_available`; ``True`` requires it."""
    if gpu is None:
        return faiss_gpu_available()
    if gpu and not faiss_gpu_available():
        raise RuntimeError(
            "gpu=True but FAISS has no GPU here (pip's faiss-cpu, or no CUDA device): install "
            "conda's faiss-gpu (environment.yml) or pass gpu=False"
        )
    return bool(gpu)


_GPU_RESOURCES: list = []  # one StandardGpuResources per process (it holds GPU scratch memory)


def index_to_gpu(index: faiss.Index) -> faiss.Index:
    """A copy of a CPU ``index`` on GPU 0 (trained or not); search it like the CPU one."""
    if not _GPU_RESOURCES:
        _GPU_RESOURCES.append(faiss.StandardGpuResources())
    return faiss.index_cpu_to_gpu(_GPU_RESOURCES[0], 0, index)


class VectorRetriever:
    """A FAISS index over named vectors, with id maps and save/load.

    Like ``mmpt/modules/retri.py::VectorRetriever``: rows are added with their video ids,
    searched by vector or by id, and written to a directory.

    Args:
        dim: vector dimension D.
        kind: ``"flat"`` exact search (``IndexFlatL2``/``IndexFlatIP``) or ``"ivf"``
            (``IndexIVFFlat``, trained on the first ``add``; the original's choice).
        metric: ``"l2"`` (the original) or ``"ip"`` (inner product).
        nlist: IVF centroids (the original: 512).
        nprobe: IVF lists visited per query (the original: 1).
        gpu: keep the index on GPU 0 (``None``: when :func:`faiss_gpu_available`); training,
            adding and searching then run there, ``save`` writes a CPU copy.
    """

    def __init__(
        self,
        dim: int,
        *,
        kind: IndexKind = "flat",
        metric: Metric = "l2",
        nlist: int = 512,
        nprobe: int = 1,
        gpu: bool | None = False,
    ) -> None:
        if kind not in ("flat", "ivf"):
            raise ValueError(f"VectorRetriever kind={kind!r}: use 'flat' or 'ivf'")
        if metric not in ("l2", "ip"):
            raise ValueError(f"VectorRetriever metric={metric!r}: use 'l2' or 'ip'")
        if dim < 1 or nlist < 1 or nprobe < 1:
            raise ValueError(
                f"VectorRetriever needs dim, nlist, nprobe >= 1, got {dim}, {nlist}, {nprobe}"
            )
        self.dim = dim
        self.kind: IndexKind = kind
        self.metric: Metric = metric
        self.nlist = nlist
        self.nprobe = nprobe
        faiss_metric = faiss.METRIC_L2 if metric == "l2" else faiss.METRIC_INNER_PRODUCT
        flat = faiss.IndexFlatL2(dim) if metric == "l2" else faiss.IndexFlatIP(dim)
        if kind == "flat":
            self.index: faiss.Index = flat
        else:
            self._quantizer = flat  # IndexIVFFlat keeps a pointer, not ownership
            self.index = faiss.IndexIVFFlat(flat, dim, nlist, faiss_metric)
            self.index.nprobe = nprobe
        self.on_gpu = use_gpu_index(gpu)
        if self.on_gpu:
            self.index = index_to_gpu(self.index)
        self.ids: list[str] = []
        self._position: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self.ids)

    def position(self, video_id: str) -> int:
        """The row of ``video_id`` in the index (its order of addition)."""
        if video_id not in self._position:
            raise KeyError(f"video {video_id!r} is not in the index ({len(self)} videos)")
        return self._position[video_id]

    def add(self, ids: Sequence[str], vectors: np.ndarray) -> None:
        """Add ``vectors`` (N, D) float32 under ``ids`` (N distinct, not yet in the index).

        An untrained IVF index is trained on this first batch, which then needs at least
        ``39 * nlist`` vectors.
        """
        vectors = self._check_vectors(vectors, "add")
        if len(ids) != len(vectors):
            raise ValueError(f"VectorRetriever.add: {len(ids)} ids for {len(vectors)} vectors")
        dupes = [v for v, n in Counter(ids).items() if n > 1] + [
            v for v in ids if v in self._position
        ]
        if dupes:
            raise ValueError(
                f"VectorRetriever.add: ids already present or repeated: {sorted(set(dupes))[:5]}"
            )
        if not self.index.is_trained:
            needed = _MIN_POINTS_PER_CENTROID * self.nlist
            if len(vectors) < needed:
                raise ValueError(
                    f"IVF index with nlist={self.nlist} needs >= {needed} vectors to train, got "
                    f"{len(vectors)}: use kind='flat' or a smaller nlist"
                )
            self.index.train(vectors)
        self.index.add(vectors)
        for video_id in ids:
            self._position[video_id] = len(self.ids)
            self.ids.append(video_id)

    def search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest rows of each query.

        Args:
            vectors: (Q, D) float32 queries.
            k: neighbours per query (1 <= k <= len(self)).

        Returns:
            distances (Q, k) float32 (squared L2, or inner products for ``metric="ip"``), best
            first, and positions (Q, k) int64 into ``self.ids``; -1 where IVF found fewer than k.
        """
        vectors = self._check_vectors(vectors, "search")
        if not 1 <= k <= len(self):
            raise ValueError(
                f"VectorRetriever.search: k={k} must be in [1, {len(self)}] (index size)"
            )
        distances, positions = self.index.search(vectors, k)
        return distances, positions

    def search_by_ids(self, ids: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        """Like ``search``, with the stored vectors of ``ids`` as the queries."""
        rows = np.array([self.position(v) for v in ids], dtype=np.int64)
        return self.search(self.reconstruct(rows), k)

    def reconstruct(self, rows: np.ndarray) -> np.ndarray:
        """The stored vectors (len(rows), D) of the given positions."""
        index = self._cpu_index()
        if self.kind == "ivf":
            index.make_direct_map()
        return (
            np.stack([index.reconstruct(int(r)) for r in rows])
            if len(rows)
            else np.zeros((0, self.dim), np.float32)
        )

    def save(self, path: str | Path) -> None:
        """Write ``path/index.faiss`` and ``path/meta.json`` (kind, metric, ids in row order)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        faiss.write_index(self._cpu_index(), str(path / "index.faiss"))
        meta = {
            "dim": self.dim,
            "kind": self.kind,
            "metric": self.metric,
            "nlist": self.nlist,
            "nprobe": self.nprobe,
            "ids": self.ids,
        }
        (path / "meta.json").write_text(json.dumps(meta))

    @classmethod
    def load(cls, path: str | Path) -> VectorRetriever:
        """Read a directory written by ``save``."""
        path = Path(path)
        for name in ("index.faiss", "meta.json"):
            if not (path / name).is_file():
                raise FileNotFoundError(
                    f"{path / name} is missing: not a VectorRetriever.save directory"
                )
        meta = json.loads((path / "meta.json").read_text())
        retriever = cls(
            meta["dim"],
            kind=meta["kind"],
            metric=meta["metric"],
            nlist=meta["nlist"],
            nprobe=meta["nprobe"],
        )
        retriever.index = faiss.read_index(str(path / "index.faiss"))
        if retriever.kind == "ivf":
            faiss.extract_index_ivf(retriever.index).nprobe = retriever.nprobe
        if retriever.index.ntotal != len(meta["ids"]):
            raise ValueError(
                f"{path}: index holds {retriever.index.ntotal} vectors but meta.json names "
                f"{len(meta['ids'])} ids; the directory is corrupt, rebuild it"
            )
        retriever.ids = list(meta["ids"])
        retriever._position = {v: i for i, v in enumerate(retriever.ids)}
        return retriever

    def _cpu_index(self) -> faiss.Index:
        return faiss.index_gpu_to_cpu(self.index) if self.on_gpu else self.index

    def _check_vectors(self, vectors: np.ndarray, what: str) -> np.ndarray:
        vectors = np.asarray(vectors)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise ValueError(
                f"VectorRetriever.{what}: expected (N, {self.dim}) vectors, got {vectors.shape}"
            )
        if not np.isfinite(vectors).all():
            raise ValueError(
                f"VectorRetriever.{what}: vectors hold NaN or inf (rows {np.where(~np.isfinite(vectors).all(1))[0][:5].tolist()})"
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)


def build_retriever(
    vectors: np.ndarray,
    ids: Sequence[str] | None = None,
    *,
    index: Literal["auto", "flat", "ivf"] = "auto",
    metric: Metric = "l2",
    nlist: int = 512,
    nprobe: int = 1,
    gpu: bool | None = None,
) -> VectorRetriever:
    """A ``VectorRetriever`` over ``vectors`` (N, D); ``index="auto"`` is exact up to
    ``FLAT_MAX_VIDEOS`` rows and IVF above. ``ids`` default to the row numbers as strings;
    ``gpu=None`` puts the index on the GPU when FAISS can (:func:`faiss_gpu_available`)."""
    kind: IndexKind
    if index == "auto":
        kind = "flat" if len(vectors) <= FLAT_MAX_VIDEOS else "ivf"
    elif index in ("flat", "ivf"):
        kind = index
    else:
        raise ValueError(f"index={index!r}: use 'auto', 'flat' or 'ivf'")
    retriever = VectorRetriever(
        vectors.shape[1], kind=kind, metric=metric, nlist=nlist, nprobe=nprobe, gpu=gpu
    )
    retriever.add([str(i) for i in range(len(vectors))] if ids is None else ids, vectors)
    return retriever


def _check_group_size(num_videos: int, group_size: int) -> None:
    if group_size < 1:
        raise ValueError(f"group_size={group_size} must be >= 1")
    if num_videos < group_size:
        raise ValueError(
            f"{num_videos} training videos are too few for one group of {group_size} "
            f"(num_video_per_batch): add videos or lower num_video_per_batch"
        )


def cluster_groups(
    vectors: np.ndarray,
    *,
    group_size: int = 32,
    num_neighbours: int = 64,
    mode: Literal["sample", "nearest"] = "sample",
    rng: np.random.Generator,
    index: Literal["auto", "flat", "ivf"] = "auto",
    metric: Metric = "l2",
    nlist: int = 512,
    nprobe: int = 1,
    gpu: bool | None = None,
) -> list[np.ndarray]:
    """The epoch's groups of videos by retrieval. Paper: §3.4, Algorithm 1; design §5.

    Draws ``N // group_size`` distinct query videos; for each, its ``num_neighbours`` nearest
    other videos plus itself are the candidates, of which ``mode="sample"`` keeps a random
    ``group_size`` (the query may drop out) and ``mode="nearest"`` keeps the query and its
    ``group_size - 1`` nearest ("retrieve k" ablation, Table 7).

    Args:
        vectors: (N, D) float32 video vectors (``embed_videos``).
        rng: the only source of randomness (queries and the sample of each cluster).
        gpu: the index on the GPU (``None``: when FAISS can, :func:`faiss_gpu_available`).

    Returns:
        N // group_size int64 arrays of row indices into ``vectors``, each of ``group_size``
        distinct videos (fewer only where IVF returned fewer candidates).
    """
    if mode not in ("sample", "nearest"):
        raise ValueError(f"mode={mode!r}: use 'sample' (the paper) or 'nearest' (retrieve k)")
    num_videos = len(vectors)
    _check_group_size(num_videos, group_size)
    if num_neighbours < group_size - 1:
        raise ValueError(
            f"num_neighbours={num_neighbours} must be >= group_size - 1 = {group_size - 1}"
        )
    retriever = build_retriever(
        vectors, index=index, metric=metric, nlist=nlist, nprobe=nprobe, gpu=gpu
    )
    queries = rng.choice(num_videos, size=num_videos // group_size, replace=False)
    k = min(num_neighbours + 1, num_videos)  # + 1: the query usually finds itself first
    # the stored rows are exactly these float32 vectors: no reconstruct (a GPU IVF lacks it)
    _, positions = retriever.search(vectors[queries], k)
    groups = []
    for query, found in zip(queries, positions):
        # Like the original: the query first, then the hits that are not the query itself.
        others = found[(found >= 0) & (found != query)][:num_neighbours]
        candidates = np.concatenate([[query], others]).astype(np.int64)
        if len(candidates) <= group_size:
            groups.append(candidates)
        elif mode == "nearest":
            groups.append(candidates[:group_size])
        else:
            groups.append(rng.choice(candidates, size=group_size, replace=False))
    return groups


def random_groups(
    num_videos: int, *, group_size: int = 32, rng: np.random.Generator
) -> list[np.ndarray]:
    """Random disjoint groups ("w/o retrieval", Table 7): a permutation cut into
    ``num_videos // group_size`` groups; the remainder sits the epoch out."""
    _check_group_size(num_videos, group_size)
    order = rng.permutation(num_videos)
    num_groups = num_videos // group_size
    return [
        order[i * group_size : (i + 1) * group_size].astype(np.int64) for i in range(num_groups)
    ]


def group_stats(groups: Sequence[np.ndarray], labels: Sequence) -> dict[str, float | int]:
    """How homogeneous the groups are: the share of same-label (e.g. same-task) video pairs.

    Args:
        groups: arrays of row indices into ``labels``.
        labels: one label per video (e.g. the HowTo100M task id); no ``None``.

    Returns:
        ``same_task_share``: same-label pairs / all pairs, over the unordered pairs of distinct
        videos inside each group; ``random_share``: its expectation for groups drawn uniformly
        at random, sum_c n_c (n_c - 1) / (N (N - 1)); ``lift`` = same_task_share / random_share;
        ``coverage``: share of videos in at least one group; ``videos_left_out``;
        ``num_groups``, ``mean_group_size``, ``short_groups`` (smaller than the largest).
    """
    labels_arr = np.asarray(labels, dtype=object)
    missing = [i for i, lab in enumerate(labels_arr) if lab is None]
    if missing:
        raise ValueError(
            f"group_stats: {len(missing)} videos have no label (rows {missing[:5]}): give every video a label"
        )
    _, codes = np.unique(labels_arr.astype(str), return_inverse=True)
    num_videos = len(codes)
    same = pairs = 0
    for group in groups:
        members = np.unique(np.asarray(group, dtype=np.int64))
        counts = np.bincount(codes[members])
        same += int((counts * (counts - 1)).sum() // 2)
        pairs += len(members) * (len(members) - 1) // 2
    class_counts = np.bincount(codes).astype(np.float64)
    random_share = float(
        (class_counts * (class_counts - 1)).sum() / max(num_videos * (num_videos - 1), 1)
    )
    share = same / pairs if pairs else float("nan")
    sizes = np.array([len(g) for g in groups]) if groups else np.zeros(0, dtype=int)
    covered = len(np.unique(np.concatenate(groups))) if groups else 0
    return {
        "same_task_share": share,
        "random_share": random_share,
        "lift": share / random_share if random_share > 0 else float("nan"),
        "coverage": covered / num_videos if num_videos else float("nan"),
        "videos_left_out": num_videos - covered,
        "num_groups": len(groups),
        "mean_group_size": float(sizes.mean()) if len(sizes) else 0.0,
        "short_groups": int((sizes < sizes.max()).sum()) if len(sizes) else 0,
    }


@torch.no_grad()
def embed_videos(
    model: VideoCLIP,
    store: FeatureStore,
    token_cache: TokenCache,
    video_ids: Sequence[str],
    *,
    num_clips: int = 16,
    first_32s: bool = False,
    rng: np.random.Generator,
    batch_size: int = 32,
    progress: bool = False,
    bf16: bool | None = None,
) -> np.ndarray:
    """One vector per video for retrieval. Paper: §3.4; design §5 step 1.

    Per video, ``num_clips`` pairs from the *aligned* sampler (``videoclip.data.samplers``,
    MMPT's ``VariedLenAligner``); per pair (pooled video + pooled text) / 2; the video's vector
    is the mean over its pairs (MMPT ``VideoVectorPool``). With ``first_32s`` (the "use first
    32 sec for retrieval" ablation, Table 7) a video is one pair instead: its first 32 seconds of
    features and the captions that start within them (at least its first caption), joined and
    cut to 61 tokens; the original code for this ablation is not released, so this is our reading.

    The model runs in eval mode (no dropout), without gradients, on its own device, and the
    caller's train/eval mode is restored.

    Args:
        model: a ``VideoCLIP`` (anything with ``encode_video``, ``encode_text``, ``device``).
        store, token_cache: the features and the tokenised captions.
        video_ids: the N videos.
        num_clips: pairs per video (16, as ``clip_per_video`` in MMPT).
        rng: draws the aligned pairs.
        batch_size: videos per forward pass.
        bf16: autocast the forward passes to bf16 (default: on CUDA only).

    Returns:
        (N, D) float32 on the CPU, rows in the order of ``video_ids``.
    """
    if num_clips < 1:
        raise ValueError(f"num_clips={num_clips} must be >= 1")
    video_ids = list(video_ids)
    if not video_ids:
        raise ValueError("embed_videos got no video ids")
    sampler = ClipSampler(kind="aligned")
    was_training = model.training
    model.eval()
    device = model.device
    use_bf16 = device.type == "cuda" if bf16 is None else bf16
    chunks = []
    starts = range(0, len(video_ids), batch_size)
    try:
        for first in tqdm(starts, desc="embed videos", leave=False, disable=not progress):
            chunk = video_ids[first : first + batch_size]
            if first_32s:
                batch = _first_seconds_batch(chunk, store, token_cache, sampler.max_text_len)
                clips = 1
            else:
                batch = make_batch(
                    chunk, store, token_cache, clip_per_video=num_clips, sampler=sampler, rng=rng
                )
                clips = num_clips
            batch = batch.to(device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
                video_emb = model.encode_video(batch.video, batch.vmask)
                text_emb = model.encode_text(batch.input_ids, batch.attention_mask)
            pair_emb = (video_emb.float() + text_emb.float()) / 2  # (n * clips, D), video-major
            chunks.append(pair_emb.view(len(chunk), clips, -1).mean(dim=1).cpu())
    finally:
        model.train(was_training)
    return torch.cat(chunks).numpy().astype(np.float32)


def _first_seconds_batch(
    video_ids: list[str], store: FeatureStore, token_cache: TokenCache, max_text_len: int
) -> Batch:
    """One pair per video: its first ``FIRST_SECONDS`` s and the captions starting in them."""
    num_seconds = np.array([min(store.num_seconds(v), FIRST_SECONDS) for v in video_ids])
    video = np.zeros((len(video_ids), FIRST_SECONDS, store.dim), dtype=np.float32)
    caption_start = np.empty(len(video_ids), dtype=np.int64)
    caption_end = np.empty(len(video_ids), dtype=np.int64)
    for i, vid in enumerate(video_ids):
        video[i, : num_seconds[i]] = store.load_span(vid, 0, int(num_seconds[i]))
        c0, c1 = token_cache.caption_range(vid)
        inside = int((token_cache.starts[c0:c1] < FIRST_SECONDS).sum())
        caption_start[i], caption_end[i] = c0, c0 + max(inside, 1)
    input_ids, attention_mask = text_ids(
        token_cache, caption_start, caption_end, max_text_len=max_text_len
    )
    return Batch(
        video=torch.from_numpy(video),
        vmask=torch.from_numpy(np.arange(FIRST_SECONDS) < num_seconds[:, None]),
        input_ids=torch.from_numpy(input_ids),
        attention_mask=torch.from_numpy(attention_mask),
        video_ids=list(video_ids),
    )
