"""Chance and oracle levels run through the official evaluators, checked against naive references."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from videoclip.data.benchmarks import DIDEMO_MOMENTS, load_didemo, load_youcook2_val
from videoclip.data.features import open_feature_store
from videoclip.evaluation import evaluate_retrieval, evaluate_videoqa
from videoclip.evaluation.didemo import moment_iou
from videoclip.sim.levels import OracleModel, RandomModel, chance_levels, oracle_levels
from videoclip.text import text_concepts


@pytest.fixture(scope="session")
def world(smoke_world: Path) -> Path:
    return smoke_world


@pytest.fixture(scope="module")
def levels(world: Path) -> tuple[dict, dict]:
    return chance_levels(world), oracle_levels(world)


def test_chance_below_oracle_and_closed_forms(levels: tuple[dict, dict]) -> None:
    chance, oracle = levels
    n = chance["msrvtt"]["num_queries"]
    assert chance["msrvtt"]["R@1"] == pytest.approx(100 / n)
    assert chance["msrvtt"]["MdR"] == pytest.approx((n + 1) / 2)
    assert chance["msrvtt_mc"]["accuracy"] == pytest.approx(20.0)
    assert 0 < chance["coin"]["all_background"] < 100
    for bench, metric in (("youcook2", "R@1"), ("msrvtt", "R@1"), ("msrvtt_mc", "accuracy"),
                          ("didemo", "rank@1"), ("crosstask", "recall")):
        assert oracle[bench][metric] > 2 * chance[bench][metric], bench
        assert oracle[bench]["texts_without_concepts"] == 0, bench
    assert oracle["coin"]["frame_accuracy"] >= chance["coin"]["all_background"] - 1e-9
    # the evaluator's background baseline (feature seconds) and the closed form (durations) agree here
    assert oracle["coin"]["background_baseline"] == pytest.approx(chance["coin"]["all_background"], abs=1.0)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-8)


def test_oracle_retrieval_equals_a_naive_loop(world: Path, levels: tuple[dict, dict]) -> None:
    """R@k of the oracle through evaluate_retrieval == a plain numpy re-computation."""
    with np.load(world / "world_truth.npz") as truth:
        index = {str(c): i for i, c in enumerate(truth["concepts"])}
        directions = truth["directions"].astype(np.float64)
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    store = open_feature_store(world / "youcook2" / "features")
    pairs = load_youcook2_val(world)
    texts = np.stack([_unit(directions[[index[c] for c in text_concepts(p.text) if c in index]].sum(0))
                      for p in pairs])
    clips = np.stack([_unit(store.load(p.video_id)[p.start:min(p.end, p.start + 32)].mean(0))
                      for p in pairs])
    sim = texts @ clips.T
    ranks = np.array([1 + sum(sim[i, j] > sim[i, i] for j in range(len(pairs)) if j != i)
                      for i in range(len(pairs))])  # no exact ties among these scores
    oracle = levels[1]["youcook2"]
    for k in (1, 5, 10):
        assert oracle[f"R@{k}"] == pytest.approx(100 * np.mean(ranks <= k))
    assert oracle["num_queries"] == len(pairs)
    assert 50 < oracle["R@1"] < 100  # informative: neither trivial nor perfect on this world


def test_oracle_with_shuffled_concepts_falls_to_chance(world: Path, levels: tuple[dict, dict]) -> None:
    oracle = OracleModel.from_data_root(world)
    shuffled = OracleModel(list(oracle.index), oracle.directions.numpy()[
        np.random.default_rng(0).permutation(len(oracle.index))])
    results, _ = evaluate_retrieval(shuffled, world, benchmark="youcook2", progress=False)
    assert results["R@1"] < 4 * levels[0]["youcook2"]["R@1"] < levels[1]["youcook2"]["R@1"]


def test_oracle_model_protocol(tmp_path: Path) -> None:
    oracle = OracleModel(["salt", "pour"], np.array([[2.0, 0, 0], [0, 0, 3.0]]))
    texts = oracle.encode_texts(["add salt", "pour salt", "the of"])
    assert torch.allclose(texts, torch.tensor([[1.0, 0, 0], [2 ** -0.5, 0, 2 ** -0.5], [0, 0, 0]]))
    assert oracle.texts_without_concepts == 1  # "add" is unknown but "salt" is not: only "the of"
    video = torch.tensor([[[1.0, 0, 0], [0, 1.0, 0], [5.0, 5.0, 5.0]]])
    vmask = torch.tensor([[True, True, False]])
    assert torch.allclose(oracle.encode_video(video, vmask), torch.tensor([[2 ** -0.5, 2 ** -0.5, 0]]))
    states = oracle.video_token_states(video, vmask, mask_cls=True)
    assert torch.equal(states[0, :2], video[0, :2]) and not states[0, 2].any()
    with pytest.raises(FileNotFoundError, match="world_truth.npz is missing"):
        OracleModel.from_data_root(tmp_path)
    with pytest.raises(ValueError, match="one \\(dim,\\) row per concept"):
        OracleModel(["a"], np.ones((2, 3)))


def test_random_model_is_seeded_and_lands_on_the_closed_forms(world: Path, levels: tuple[dict, dict]) -> None:
    a, b = RandomModel(seed=1), RandomModel(seed=1)
    assert torch.equal(a.encode_texts(["x", "y"]), b.encode_texts(["x", "y"]))
    assert not torch.equal(a.encode_texts(["x"]), RandomModel(seed=2).encode_texts(["x"]))
    runs = [evaluate_retrieval(RandomModel(seed=s), world, benchmark="msrvtt", progress=False)[0]
            for s in range(40)]
    for k in (5, 10):
        assert np.mean([r[f"R@{k}"] for r in runs]) == pytest.approx(levels[0]["msrvtt"][f"R@{k}"], abs=5)
    qa = [evaluate_videoqa(RandomModel(seed=s), world, progress=False)[0]["accuracy"] for s in range(40)]
    assert np.mean(qa) == pytest.approx(levels[0]["msrvtt_mc"]["accuracy"], abs=5)


def test_didemo_chance_matches_the_exact_expectation(world: Path) -> None:
    """Monte-Carlo rank@1 / mIoU of random rankings vs their exact values under a uniform top moment."""
    times = [[tuple(t) for t in q.times] for q in load_didemo(world)]
    exact_r1 = exact_iou = 0.0
    for gts in times:  # rank@1 needs the best min(3, #annotations) ranks to be 1: one moment that often
        need = min(3, len(gts))
        exact_r1 += sum(gts.count(m) >= need for m in set(gts)) / len(DIDEMO_MOMENTS)
        exact_iou += np.mean([np.mean(sorted(moment_iou(m, t) for t in gts)[-3:]) for m in DIDEMO_MOMENTS])
    got = chance_levels(world, num_draws=400, num_model_draws=1, seed=1)["didemo"]
    assert got["rank@1"] == pytest.approx(100 * exact_r1 / len(times), abs=1.0)
    assert got["mIoU"] == pytest.approx(100 * exact_iou / len(times), abs=1.0)
