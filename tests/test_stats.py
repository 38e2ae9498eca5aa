"""Tests of videoclip.book.stats against naive references (loops, eigen-decompositions, coverage)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from videoclip.book.stats import (
    bootstrap_ci,
    bootstrap_difference,
    group_pair_stats,
    interval_side,
    neighbour_precision,
    pca,
)
from videoclip.retrieval import group_stats, random_groups


def _naive_bootstrap(values, weights, num_boot, seed):
    """The same resampling as a plain loop (one draw of indices per replicate)."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(values), (num_boot, len(values)))
    return np.array([sum(values[i] * weights[i] for i in row) / sum(weights[i] for i in row) for row in idx])


def test_bootstrap_ci_matches_a_naive_loop():
    rng = np.random.default_rng(1)
    values, weights = rng.random(30), rng.integers(1, 10, 30).astype(float)
    result = bootstrap_ci(values, weights=weights, num_boot=300, seed=3)
    draws = _naive_bootstrap(values, weights, 300, 3)
    assert result["estimate"] == pytest.approx((values * weights).sum() / weights.sum())
    assert result["ci_low"] == pytest.approx(np.percentile(draws, 2.5))
    assert result["ci_high"] == pytest.approx(np.percentile(draws, 97.5))
    assert result["n"] == 30


def test_bootstrap_ci_covers_the_true_mean_about_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    covered = 0
    for trial in range(200):
        sample = rng.exponential(scale=2.0, size=60)  # true mean 2
        ci = bootstrap_ci(sample, num_boot=400, seed=trial)
        covered += ci["ci_low"] <= 2.0 <= ci["ci_high"]
    assert 0.88 <= covered / 200 <= 0.99


def test_bootstrap_ci_edge_cases_and_errors():
    single = bootstrap_ci([0.4])
    assert single["estimate"] == single["ci_low"] == single["ci_high"] == pytest.approx(0.4)
    with pytest.raises(ValueError, match="rows \\[1\\]"):
        bootstrap_ci([1.0, np.nan])
    with pytest.raises(ValueError, match="weights"):
        bootstrap_ci([1.0, 2.0], weights=[1.0])
    with pytest.raises(ValueError, match="sum to"):
        bootstrap_ci([1.0, 2.0], weights=[0.0, 0.0])
    with pytest.raises(ValueError, match="level"):
        bootstrap_ci([1.0, 2.0], level=95)
    with pytest.raises(ValueError, match="non-empty"):
        bootstrap_ci([])


def test_bootstrap_difference_separates_shifted_samples_and_not_equal_ones():
    rng = np.random.default_rng(2)
    a, b = rng.normal(1.0, 1.0, 80), rng.normal(0.0, 1.0, 60)
    diff = bootstrap_difference(a, b, num_boot=500)
    assert diff["estimate"] == pytest.approx(a.mean() - b.mean())
    assert 0 < diff["ci_low"] < diff["estimate"] < diff["ci_high"]
    same = bootstrap_difference(rng.normal(0, 1, 80), rng.normal(0, 1, 80), num_boot=500)
    assert same["ci_low"] < 0 < same["ci_high"]
    assert (diff["n_a"], diff["n_b"]) == (80, 60)


def _naive_group_rows(groups, vectors, labels):
    rows = []
    for group in groups:
        members = sorted({int(i) for i in group})
        pairs = list(itertools.combinations(members, 2))
        same = sum(labels[i] == labels[j] for i, j in pairs)
        cos = [vectors[i] @ vectors[j] / np.linalg.norm(vectors[i]) / np.linalg.norm(vectors[j])
               for i, j in pairs]
        rows.append((len(members), len(pairs), same, np.mean(cos) if cos else np.nan))
    return rows


def test_group_pair_stats_matches_pairwise_loops_and_group_stats():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(40, 6))
    labels = rng.integers(0, 4, 40).astype(str)
    groups = random_groups(40, group_size=8, rng=rng) + [np.array([3, 3, 5]), np.array([7])]
    table = group_pair_stats(groups, vectors, labels)
    for (size, pairs, same, cos), row in zip(_naive_group_rows(groups, vectors, labels), table.itertuples()):
        assert (row.size, row.pairs, row.same_task_pairs) == (size, pairs, same)
        if pairs:
            assert row.mean_cosine == pytest.approx(cos)
            assert row.same_task_share == pytest.approx(same / pairs)
        else:
            assert np.isnan(row.mean_cosine) and np.isnan(row.same_task_share)
    pooled = table.same_task_pairs.sum() / table.pairs.sum()
    assert pooled == pytest.approx(group_stats(groups, labels)["same_task_share"])


def test_group_pair_stats_errors():
    vectors = np.eye(3)
    with pytest.raises(ValueError, match="outside"):
        group_pair_stats([np.array([0, 5])], vectors, ["a", "b", "c"])
    with pytest.raises(ValueError, match="zero"):
        group_pair_stats([np.array([0, 1])], np.zeros((3, 2)), ["a", "b", "c"])
    with pytest.raises(ValueError, match="labels"):
        group_pair_stats([np.array([0, 1])], vectors, ["a", "b"])


def test_neighbour_precision_matches_brute_force():
    rng = np.random.default_rng(4)
    centres = rng.normal(size=(5, 8))
    labels = np.repeat(np.arange(5), 12)
    vectors = (centres[labels] + 0.8 * rng.normal(size=(60, 8))).astype(np.float32)
    for metric in ("l2", "ip"):
        shares = neighbour_precision(vectors, labels, k=5, metric=metric)
        for q in range(60):
            if metric == "l2":
                score = -((vectors - vectors[q]) ** 2).sum(1)
            else:
                score = vectors @ vectors[q]
            score[q] = -np.inf
            nearest = np.argsort(-score, kind="stable")[:5]
            assert shares[q] == pytest.approx((labels[nearest] == labels[q]).mean())
    assert neighbour_precision(vectors, labels, k=5).mean() > 1 / 5 + 0.1  # clustered data beats chance
    with pytest.raises(ValueError, match="k=60"):
        neighbour_precision(vectors, labels, k=60)


def test_pca_matches_the_covariance_eigenvectors():
    rng = np.random.default_rng(5)
    vectors = rng.normal(size=(200, 5)) @ np.diag([5.0, 2.0, 1.0, 0.5, 0.1]) @ np.linalg.qr(
        rng.normal(size=(5, 5)))[0]
    coords, explained = pca(vectors, 2)
    centred = vectors - vectors.mean(0)
    eigval, eigvec = np.linalg.eigh(np.cov(centred.T, bias=True))
    order = np.argsort(eigval)[::-1]
    for k in range(2):
        reference = centred @ eigvec[:, order[k]]
        assert abs(np.corrcoef(coords[:, k], reference)[0, 1]) == pytest.approx(1.0, abs=1e-9)
        assert coords[:, k].var() == pytest.approx(eigval[order[k]])
    assert explained == pytest.approx(eigval[order[:2]] / eigval.sum())
    again, _ = pca(vectors[::-1].copy(), 2)  # sign convention: the same map for reordered rows
    assert again[::-1] == pytest.approx(coords)
    with pytest.raises(ValueError, match="num_components"):
        pca(vectors, 6)


def test_interval_side():
    assert interval_side(0.5, 2.0) == "above"
    assert interval_side(-2.0, -0.1) == "below"
    assert interval_side(-1.0, 1.0) == "includes"
    assert interval_side(0.0, 1.0) == "includes"  # touching the reference does not exclude it
    assert interval_side(3.0, 4.0, ref=5.0) == "below"
    assert interval_side(float("nan"), float("nan")) == "none"
