"""Tests of videoclip.retrieval: the FAISS wrapper, cluster groups (design §5) and group statistics."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch
from transformers import BertTokenizerFast

from videoclip.data.captions import TokenCache, load_captions, reconcile
from videoclip.data.features import open_feature_store
from videoclip.data.samplers import make_batch
from videoclip.retrieval import (
    VectorRetriever,
    build_retriever,
    cluster_groups,
    embed_videos,
    group_stats,
    random_groups,
)


def _blobs(num_classes: int, per_class: int, dim: int = 16, spread: float = 0.3, seed: int = 0):
    """Vectors around ``num_classes`` random centres, and their class labels."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(num_classes, dim))
    labels = np.repeat(np.arange(num_classes), per_class)
    vectors = centres[labels] + spread * rng.normal(size=(len(labels), dim))
    order = rng.permutation(len(labels))
    return vectors[order].astype(np.float32), labels[order]


def _brute_force(vectors: np.ndarray, queries: np.ndarray, metric: str) -> np.ndarray:
    """Rows of ``vectors`` sorted best-first for each query (naive numpy reference)."""
    if metric == "l2":
        scores = -((queries[:, None, :] - vectors[None, :, :]) ** 2).sum(-1)
    else:
        scores = queries @ vectors.T
    return np.argsort(-scores, axis=1, kind="stable")


@pytest.mark.parametrize("metric", ["l2", "ip"])
def test_flat_search_equals_brute_force(metric):
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(200, 8)).astype(np.float32)
    queries = rng.normal(size=(10, 8)).astype(np.float32)
    retriever = VectorRetriever(8, metric=metric)
    retriever.add([f"v{i}" for i in range(200)], vectors)
    distances, positions = retriever.search(queries, 7)
    np.testing.assert_array_equal(positions, _brute_force(vectors, queries, metric)[:, :7])
    expected = (
        ((queries[:, None] - vectors[positions]) ** 2).sum(-1)
        if metric == "l2"
        else np.einsum("qd,qkd->qk", queries, vectors[positions])
    )
    np.testing.assert_allclose(distances, expected, rtol=1e-4, atol=1e-4)
    assert retriever.ids[positions[0, 0]] == f"v{positions[0, 0]}"


def test_ivf_full_probe_is_exact_and_save_load_round_trips(tmp_path):
    vectors, _ = _blobs(4, 60, dim=8)
    ids = [f"vid{i}" for i in range(len(vectors))]
    retriever = VectorRetriever(8, kind="ivf", nlist=4, nprobe=4)
    retriever.add(ids, vectors)
    _, positions = retriever.search_by_ids(ids[:5], 10)
    np.testing.assert_array_equal(positions, _brute_force(vectors, vectors[:5], "l2")[:, :10])
    retriever.save(tmp_path / "idx")
    loaded = VectorRetriever.load(tmp_path / "idx")
    assert loaded.ids == ids and loaded.kind == "ivf" and loaded.nprobe == 4
    np.testing.assert_array_equal(loaded.search_by_ids(ids[:5], 10)[1], positions)
    assert loaded.position("vid7") == 7


def test_retriever_errors():
    with pytest.raises(ValueError, match="needs >= 156 vectors"):
        VectorRetriever(4, kind="ivf", nlist=4).add(
            [str(i) for i in range(10)], np.zeros((10, 4), np.float32)
        )
    retriever = VectorRetriever(4)
    retriever.add(["a", "b"], np.eye(2, 4, dtype=np.float32))
    with pytest.raises(ValueError, match="already present"):
        retriever.add(["a"], np.ones((1, 4), np.float32))
    with pytest.raises(ValueError, match=r"expected \(N, 4\)"):
        retriever.search(np.ones((1, 5), np.float32), 1)
    with pytest.raises(ValueError, match="NaN"):
        retriever.add(["c"], np.full((1, 4), np.nan, np.float32))
    with pytest.raises(ValueError, match="k=3"):
        retriever.search(np.ones((1, 4), np.float32), 3)
    with pytest.raises(KeyError, match="'zz'"):
        retriever.position("zz")


@pytest.mark.parametrize("mode", ["sample", "nearest"])
def test_cluster_groups_follow_algorithm_1(mode):
    vectors, _ = _blobs(10, 40, dim=12)  # N = 400 -> 12 groups of 32
    groups = cluster_groups(
        vectors, group_size=32, num_neighbours=64, mode=mode, rng=np.random.default_rng(3)
    )
    assert len(groups) == 400 // 32
    ranking = _brute_force(vectors, vectors, "l2")
    queries = set()
    for group in groups:
        assert len(group) == 32 and len(set(group.tolist())) == 32
        if mode == "nearest":  # the query and its 31 nearest, query first
            query = int(group[0])
            np.testing.assert_array_equal(np.sort(group), np.sort(ranking[query, :32]))
            queries.add(query)
    if mode == "nearest":
        assert len(queries) == len(groups)  # distinct queries, drawn without replacement


def test_cluster_groups_sample_draws_from_the_query_candidates():
    vectors, _ = _blobs(10, 40, dim=12)
    rng = np.random.default_rng(5)
    # Replay the queries the function will draw from an identical generator.
    queries = np.random.default_rng(5).choice(len(vectors), size=len(vectors) // 32, replace=False)
    groups = cluster_groups(vectors, mode="sample", rng=rng)
    ranking = _brute_force(vectors, vectors, "l2")
    for query, group in zip(queries, groups):
        assert set(group.tolist()) <= set(ranking[query, :65].tolist())
    again = cluster_groups(vectors, mode="sample", rng=np.random.default_rng(5))
    assert all(np.array_equal(a, b) for a, b in zip(groups, again))


def test_cluster_groups_ivf_index_runs():
    vectors, _ = _blobs(8, 40, dim=8)
    groups = cluster_groups(vectors, rng=np.random.default_rng(0), index="ivf", nlist=4, nprobe=2)
    assert len(groups) == 10 and all(1 <= len(g) <= 32 for g in groups)


def test_too_few_videos_for_a_group_is_a_clear_error():
    with pytest.raises(ValueError, match="too few for one group of 32"):
        cluster_groups(np.zeros((20, 4), np.float32), rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="too few for one group of 32"):
        random_groups(31, group_size=32, rng=np.random.default_rng(0))


def test_random_groups_are_disjoint():
    groups = random_groups(100, group_size=32, rng=np.random.default_rng(0))
    flat = np.concatenate(groups)
    assert len(groups) == 3 and len(flat) == 96 and len(set(flat.tolist())) == 96


def test_group_stats_equals_a_naive_pair_count_and_clusters_are_harder():
    vectors, labels = _blobs(16, 40, dim=16, spread=0.8)
    clustered = cluster_groups(vectors, rng=np.random.default_rng(0))
    rand = random_groups(len(vectors), rng=np.random.default_rng(0))
    stats = group_stats(clustered, labels)
    same = pairs = 0
    for group in clustered:
        for a, b in itertools.combinations(sorted(set(group.tolist())), 2):
            pairs += 1
            same += labels[a] == labels[b]
    assert stats["same_task_share"] == pytest.approx(same / pairs)
    assert stats["random_share"] == pytest.approx(39 / 639)  # 16 classes of 40
    assert stats["num_groups"] == 20 and stats["mean_group_size"] == 32
    assert 0 < stats["coverage"] <= 1 and stats["videos_left_out"] == 640 - round(
        stats["coverage"] * 640
    )
    random_stats = group_stats(rand, labels)
    assert random_stats["coverage"] == 1.0
    assert stats["same_task_share"] > 3 * random_stats["same_task_share"]
    assert abs(random_stats["same_task_share"] - random_stats["random_share"]) < 0.05


def test_group_stats_rejects_missing_labels():
    with pytest.raises(ValueError, match="no label"):
        group_stats([np.array([0, 1])], ["a", None])


def test_build_retriever_auto_is_flat_for_small_corpora():
    assert build_retriever(np.zeros((10, 4), np.float32)).kind == "flat"


# ---------------------------------------------------------------------------------- embed_videos


class StubModel(torch.nn.Module):
    """Masked-mean video features and token embeddings, projected: cheap and easy to recompute."""

    def __init__(self, vocab_size: int) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.video_proj = torch.nn.Linear(512, 8, bias=False)
        self.token_emb = torch.nn.Embedding(vocab_size, 8)
        self.dropout = torch.nn.Dropout(0.5)  # must be off while embedding

    @property
    def device(self) -> torch.device:
        return self.video_proj.weight.device

    def encode_video(self, video, vmask):
        pooled = (video * vmask[..., None]).sum(1) / vmask.sum(1, keepdim=True)
        return self.dropout(self.video_proj(pooled))

    def encode_text(self, input_ids, attention_mask):
        mask = attention_mask[..., None].float()
        return (self.token_emb(input_ids) * mask).sum(1) / mask.sum(1)


@pytest.fixture(scope="module")
def smoke_data(smoke_world, tmp_path_factory):
    root = smoke_world
    vocab = tmp_path_factory.mktemp("tok") / "vocab.txt"
    words = sorted(
        {
            w
            for v in json.loads((root / "howto100m" / "caption.json").read_text()).values()
            for t in v["text"]
            for w in t.lower().split()
        }
    )
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    tokenizer = BertTokenizerFast(vocab_file=str(vocab), do_lower_case=True)
    cache = TokenCache.from_captions(load_captions(root / "howto100m" / "caption.json"), tokenizer)
    store = open_feature_store(root / "howto100m" / "features")
    ids = reconcile(cache, store)["usable_ids"][:12]
    return store, cache, ids, StubModel(len(tokenizer))


def test_embed_videos_is_the_mean_of_video_plus_text_over_aligned_clips(smoke_data):
    store, cache, ids, model = smoke_data
    model.train()
    vectors = embed_videos(
        model, store, cache, ids, num_clips=3, rng=np.random.default_rng(0), batch_size=len(ids)
    )
    assert model.training  # the caller's mode is restored
    batch = make_batch(
        ids, store, cache, clip_per_video=3, sampler="aligned", rng=np.random.default_rng(0)
    )
    model.eval()
    with torch.no_grad():
        pair = (
            model.encode_video(batch.video, batch.vmask)
            + model.encode_text(batch.input_ids, batch.attention_mask)
        ) / 2
    for i, vid in enumerate(ids):
        rows = [j for j, v in enumerate(batch.video_ids) if v == vid]
        assert len(rows) == 3
        np.testing.assert_allclose(vectors[i], pair[rows].mean(0).numpy(), rtol=1e-5, atol=1e-6)


def test_embed_videos_first_32s_uses_the_opening_seconds_and_captions(smoke_data):
    store, cache, ids, model = smoke_data
    vectors = embed_videos(
        model, store, cache, ids, first_32s=True, rng=np.random.default_rng(0), batch_size=5
    )
    for i, vid in enumerate(ids[:4]):
        features = store.load(vid)[:32]
        video_emb = model.video_proj(torch.from_numpy(features).mean(0, keepdim=True))
        c0, c1 = cache.caption_range(vid)
        inside = [c for c in range(c0, c1) if cache.starts[c] < 32] or [c0]
        tokens = np.concatenate(
            [cache.tokens[cache.token_offsets[c] : cache.token_offsets[c + 1]] for c in inside]
        )[:61]
        ids_row = torch.tensor([[cache.cls_token_id, *tokens.tolist(), cache.sep_token_id]])
        text_emb = model.encode_text(ids_row, torch.ones_like(ids_row))
        np.testing.assert_allclose(
            vectors[i], ((video_emb + text_emb) / 2)[0].detach().numpy(), rtol=1e-5, atol=1e-6
        )


def test_gpu_option_resolves_and_fails_loudly(monkeypatch):
    from videoclip import retrieval

    monkeypatch.setattr(retrieval, "faiss_gpu_available", lambda: False)
    assert retrieval.use_gpu_index(None) is False and retrieval.use_gpu_index(False) is False
    with pytest.raises(RuntimeError, match="faiss-gpu"):
        retrieval.use_gpu_index(True)
    monkeypatch.setattr(retrieval, "faiss_gpu_available", lambda: True)
    assert retrieval.use_gpu_index(None) is True and retrieval.use_gpu_index(False) is False


def test_gpu_index_path_finds_what_the_cpu_index_finds(monkeypatch, tmp_path):
    """The GPU path, with the GPU copy stood in by a CPU clone (no GPU here): the same groups,
    a CPU index written by save(), and the CPU default when FAISS has no GPU."""
    import faiss

    from videoclip import retrieval

    moved = []
    monkeypatch.setattr(retrieval, "faiss_gpu_available", lambda: True)
    monkeypatch.setattr(retrieval, "index_to_gpu", lambda index: moved.append(index) or faiss.clone_index(index))
    monkeypatch.setattr(retrieval.faiss, "index_gpu_to_cpu", faiss.clone_index, raising=False)
    vectors, _ = _blobs(6, 40)
    for index in ("flat", "ivf"):
        kwargs = {"index": index, "nlist": 4, "nprobe": 4}
        on_gpu = cluster_groups(vectors, rng=np.random.default_rng(3), gpu=None, **kwargs)
        on_cpu = cluster_groups(vectors, rng=np.random.default_rng(3), gpu=False, **kwargs)
        assert all(np.array_equal(a, b) for a, b in zip(on_gpu, on_cpu))
    assert len(moved) == 2
    retriever = build_retriever(vectors[:50], gpu=True)
    assert retriever.on_gpu
    retriever.save(tmp_path / "idx")
    loaded = VectorRetriever.load(tmp_path / "idx")
    assert not loaded.on_gpu and loaded.index.ntotal == 50
    np.testing.assert_array_equal(loaded.reconstruct(np.arange(3)), vectors[:3])
    monkeypatch.setattr(retrieval, "faiss_gpu_available", lambda: False)
    assert not build_retriever(vectors[:50]).on_gpu
