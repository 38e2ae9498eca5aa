"""The fast path (design §11; bench/RESULTS.md): length buckets, the prefetching loader, reused retrieval vectors,
and the configuration keys that switch them (each checked against the plain path)."""

from __future__ import annotations

import itertools
import threading
from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
import torch
from helpers import make_model, tiny_config, unit_features

import videoclip.model
from videoclip import train
from videoclip.data.samplers import Batch, Prefetcher
from videoclip.train import ConfigError, PretrainConfig, pretrain, read_log
from videoclip.train.checkpointing import config_differences
from videoclip.train.distributed import Dist
from videoclip.train.retrieval_stage import ReusedVectors

# ---------------------------------------------------------------------------------- buckets


def _texts_and_clips(model):
    texts = ["cut", "cut the onion", "add salt to the pan and stir", "heat oil",
             "chop the garlic into small pieces and fry it in the pan", "stir", "a"]
    input_ids, attention_mask = model.tokenize(texts)
    lengths = [32, 3, 17, 0, 9, 25, 1]  # one clip with no valid second at all
    video = unit_features(len(lengths), 32, seed=7)
    vmask = torch.arange(32)[None, :] < torch.tensor(lengths)[:, None]
    return input_ids, attention_mask, video, vmask


@pytest.fixture
def small_buckets(monkeypatch):
    """Buckets of one row and up, so that a batch of 7 exercises them."""
    monkeypatch.setattr(videoclip.model, "MIN_BUCKET_ROWS", 1)


@pytest.mark.parametrize("buckets", [1, 2, 3, 7, 20])
def test_length_buckets_give_the_same_embeddings_and_gradients(
    tmp_path: Path, buckets: int, small_buckets
):
    model = make_model(tmp_path / "tok")  # eval mode: no dropout, so the paths compare exactly
    input_ids, attention_mask, video, vmask = _texts_and_clips(model)

    def run(num_buckets: int):
        model.length_buckets = num_buckets
        model.zero_grad()
        text_emb = model.encode_text(input_ids, attention_mask)
        video_emb = model.encode_video(video, vmask)
        (text_emb.square().sum() + video_emb.square().sum()).backward()
        grads = {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}
        return text_emb.detach(), video_emb.detach(), grads

    plain_text, plain_video, plain_grads = run(0)
    text, vid, grads = run(buckets)
    torch.testing.assert_close(text, plain_text, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(vid, plain_video, atol=1e-5, rtol=1e-5)
    assert grads.keys() == plain_grads.keys()
    # float32 sums in another order; some gradients are 0 in exact arithmetic (key biases)
    scale = max(float(g.abs().max()) for g in plain_grads.values())
    for key in grads:
        torch.testing.assert_close(grads[key], plain_grads[key], atol=1e-6 * scale, rtol=1e-4)


def test_length_buckets_cut_the_padding(tmp_path: Path, monkeypatch):
    """The towers see fewer slots with buckets (the test can fail: 0 buckets sees them all)."""
    model = make_model(tmp_path / "tok")
    input_ids, attention_mask, video, vmask = _texts_and_clips(model)
    seen = []
    for tower in (model.text_encoder, model.video_encoder):
        tower.register_forward_pre_hook(
            lambda module, args, kwargs: seen.append(tuple(kwargs["inputs_embeds"].shape[:2])),
            with_kwargs=True)

    def slots(num_buckets: int) -> int:
        seen.clear()
        model.length_buckets = num_buckets
        with torch.no_grad():
            model.encode_text(input_ids, attention_mask)
            model.encode_video(video, vmask)
        return sum(rows * width for rows, width in seen)

    plain = slots(0)
    assert plain == 7 * input_ids.shape[1] + 7 * 34
    assert slots(1) == plain  # the longest text and the full clip fill the width
    assert slots(3) == plain and len(seen) == 2  # 7 rows: too few for buckets of 16
    monkeypatch.setattr(videoclip.model, "MIN_BUCKET_ROWS", 2)
    assert slots(3) < plain
    assert [rows for rows, _ in seen] == [3, 2, 2, 3, 2, 2]
    assert max(width for _, width in seen[:3]) == int(attention_mask.sum(1).max())
    with pytest.raises(ValueError, match="length_buckets=-1"):
        slots(-1)


# ---------------------------------------------------------------------------------- prefetch


def _batch(step: int) -> Batch:
    gen = torch.Generator().manual_seed(step)
    return Batch(video=torch.randn(2, 3, 4, generator=gen), vmask=torch.ones(2, 3, dtype=bool),
                 input_ids=torch.full((2, 5), step), attention_mask=torch.ones(2, 5, dtype=int),
                 video_ids=[f"v{step}", f"w{step}"])


def test_prefetcher_yields_the_batches_in_order():
    with Prefetcher(_batch, range(3, 9), depth=2) as loader:
        got = list(loader)
    assert [b.video_ids for b in got] == [_batch(s).video_ids for s in range(3, 9)]
    for step, batch in zip(range(3, 9), got):
        assert torch.equal(batch.video, _batch(step).video)


def test_prefetcher_raises_the_error_at_its_step_and_stops_early():
    def make(step: int) -> Batch:
        if step == 2:
            raise KeyError("video 'x' is not in the store")
        return _batch(step)

    loader = Prefetcher(make, range(5))
    seen = []
    with pytest.raises(KeyError, match="not in the store"):
        for batch in loader:
            seen.append(batch.video_ids[0])
    loader.close()
    assert seen == ["v0", "v1"]
    # leaving early ends the thread even though it was blocked on a full queue
    started = threading.active_count()
    loader = Prefetcher(_batch, range(1000), depth=1)
    next(iter(loader))
    loader.close()
    assert not loader._thread.is_alive() and threading.active_count() <= started


# ---------------------------------------------------------------------------------- training


def test_reuse_config_conflicts_and_legacy_checkpoints():
    for conflict in ({"grouping": "random"}, {"first_32s": True}, {"sampler": "milnce"}):
        with pytest.raises(ConfigError, match="retrieval_source='reuse'"):
            PretrainConfig.from_dict({"retrieval_source": "reuse", **conflict})
    with pytest.raises(ConfigError, match="length_buckets=-1 must be >= 0"):
        PretrainConfig.from_dict({"length_buckets": -1})
    with pytest.raises(ConfigError, match="precision"):
        PretrainConfig.from_dict({"precision": "fp16"})
    # a checkpoint written before the fast-path keys existed ran the plain path
    now = PretrainConfig()
    saved = now.to_dict()
    for section, key in (("model", "length_buckets"), ("optim", "fused_optimizer"),
                         ("model", "attn_implementation"), ("run", "precision")):
        del saved[section][key]
    assert config_differences(saved, now) == [
        "fused_optimizer: checkpoint False vs now True",
        "length_buckets: checkpoint 0 vs now 4",
    ]
    legacy = PretrainConfig.from_dict({"fused_optimizer": False, "length_buckets": 0})
    assert config_differences(saved, legacy) == []
    # prefetch does not change what is computed: a run may resume with it switched
    assert config_differences(PretrainConfig(run=train.RunCfg(prefetch=False)).to_dict(),
                                     now) == []


def test_reused_vectors_are_the_mean_of_each_videos_training_pairs():
    ids = [f"v{i}" for i in range(5)]
    ddp = Dist(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))
    reuse = ReusedVectors(ids, enabled=True)
    rng = np.random.default_rng(0)
    pairs = {v: [] for v in ids}
    for _ in range(3):
        batch_ids = list(rng.choice(["v0", "v1", "v3"], size=4))
        video_emb, text_emb = torch.randn(4, 6), torch.randn(4, 6)
        reuse.add(batch_ids, video_emb, text_emb)
        for v, a, b in zip(batch_ids, video_emb, text_emb):
            pairs[v].append(((a + b) / 2).numpy())
    restored = ReusedVectors(ids, enabled=True)
    restored.load_state([reuse.state()], rank=0)  # the checkpoint round trip
    shard = np.array([3, 1, 4])
    for source in (reuse, restored):
        vectors, have = source.take(shard, ddp)
        assert have.tolist() == [bool(pairs["v3"]), bool(pairs["v1"]), False]
        for row, v in enumerate(["v3", "v1"]):
            if pairs[v]:
                np.testing.assert_allclose(vectors[row], np.mean(pairs[v], axis=0), rtol=1e-5)
        assert source.take(shard, ddp)[1].sum() == 0  # taken: the next epoch starts empty
    assert ReusedVectors(ids, enabled=False).state() is None


@pytest.mark.slow
def test_reuse_with_prefetch_kill_and_resume_is_bit_identical(smoke_world, tiny_backbone, tmp_path):
    """retrieval_source='reuse' embeds only the videos the last epoch did not train on; its
    per-video sums live in the checkpoints, so a killed run resumes to the same weights; and
    prefetching (on in the killed run, off in the reference) changes nothing."""
    values = tiny_config(smoke_world, tiny_backbone, tmp_path / "ref", retrieval_source="reuse",
                         prefetch=False, num_epochs=3, max_videos=24)  # 6 steps an epoch
    reference = pretrain(values)
    retrieval = [r for r in read_log(reference) if r["type"] == "retrieval"]
    assert retrieval[0]["videos_embedded"] == 24  # nothing to reuse in the first epoch
    for before, after in itertools.pairwise(retrieval):  # only what the last epoch left out
        assert 0 < after["videos_embedded"] == before["videos_left_out"] < 24
    killed = {**values, "run_dir": str(tmp_path / "killed"), "prefetch": True}
    # killed mid-epoch 1: the checkpoint at step 8 holds the sums of epoch 1's first 2 steps,
    # which epoch 2's retrieval stage needs
    pretrain({**killed, "stop_after_steps": 10})
    assert (Path(killed["run_dir"]) / "checkpoints" / "latest").read_text() == "step-00000008"
    run_dir = pretrain({**killed, "resume": True})
    expected = safetensors.torch.load_file(reference / "final" / "model.safetensors")
    got = safetensors.torch.load_file(run_dir / "final" / "model.safetensors")
    for key in expected:
        assert torch.equal(expected[key], got[key]), key
    assert [r["loss"] for r in read_log(run_dir) if r["type"] == "step"] == [
        r["loss"] for r in read_log(reference) if r["type"] == "step"
    ]
