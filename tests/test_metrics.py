"""Metrics of the zero-shot evaluators against naive references and hand-computed cases."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from videoclip.data.benchmarks import DIDEMO_MOMENTS
from videoclip.evaluation.crosstask import align_steps, recall
from videoclip.evaluation.didemo import moment_iou, moment_metrics
from videoclip.evaluation.metrics import accuracy, pessimistic_ranks, retrieval_metrics
from videoclip.evaluation.segmentation import (
    label_with_outside,
    outside_threshold,
    per_class_accuracy,
)
from videoclip.evaluation.videoqa import multiple_choice_correct

# ----------------------------------------------------------------------------- retrieval


def naive_ranks(sim: np.ndarray) -> list[int]:
    """Sort each row with ties placing the match last; its 1-based position is the rank."""
    ranks = []
    for i, row in enumerate(sim.tolist()):
        order = sorted(range(len(row)), key=lambda j: (-row[j], j == i))
        ranks.append(order.index(i) + 1)
    return ranks


@pytest.mark.parametrize("seed", range(5))
def test_retrieval_metrics_match_naive(seed):
    rng = np.random.default_rng(seed)
    num_texts, num_videos = rng.integers(1, 40), rng.integers(40, 60)
    sim = rng.integers(0, 4, size=(num_texts, num_videos)).astype(float)  # many ties
    ranks = np.array(naive_ranks(sim))
    got = retrieval_metrics(sim)
    for k in (1, 5, 10):
        assert got[f"R@{k}"] == pytest.approx(100 * np.mean(ranks <= k))
    assert got["MdR"] == pytest.approx(np.median(ranks))
    assert got["MnR"] == pytest.approx(ranks.mean())
    assert (pessimistic_ranks(sim) == ranks).all()


def test_retrieval_metrics_hand_cases():
    right = retrieval_metrics(np.eye(3))
    assert (right["R@1"], right["R@5"], right["MdR"], right["MnR"]) == (100, 100, 1, 1)
    tied = retrieval_metrics(np.ones((4, 4)))  # pessimistic: every match ranks last
    assert (tied["R@1"], tied["R@5"], tied["MdR"]) == (0, 100, 4)
    wrong = retrieval_metrics(-np.eye(12))
    assert (wrong["R@10"], wrong["MdR"], wrong["MnR"]) == (0, 12, 12)
    one = retrieval_metrics([[0.3]])
    assert (one["R@1"], one["MdR"], one["num_videos"]) == (100, 1, 1)
    assert retrieval_metrics([[1.0, 0.0], [1.0, 0.5]])["MdR"] == 1.5  # ranks 1 and 2


def test_retrieval_metrics_reject_bad_input():
    with pytest.raises(ValueError, match="NaN"):
        retrieval_metrics([[np.nan, 0.0], [0.0, 1.0]])
    with pytest.raises(ValueError, match="num_texts <= num_videos"):
        retrieval_metrics(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="matrix"):
        retrieval_metrics(np.zeros(3))


def test_accuracy_and_multiple_choice():
    assert accuracy([1, 2, 3, 4], [1, 0, 3, 0]) == 50
    with pytest.raises(ValueError):
        accuracy([1, 2], [1])
    scores = np.array([[0.9, 0.1, 0.0], [0.5, 0.5, 0.1], [0.1, 0.2, 0.3]])
    # row 1 ties the answer with another option: pessimistically wrong
    assert multiple_choice_correct(scores, np.array([0, 0, 2])).tolist() == [True, False, True]
    assert not multiple_choice_correct(np.ones((4, 5)), np.zeros(4, dtype=int)).any()


# ----------------------------------------------------------------------------- DiDeMo


def localizing_moments_eval(segments, data):
    """LocalizingMoments utils/eval.py, line for line (python 3), as the reference."""
    def iou(pred, gt):
        intersection = max(0, min(pred[1], gt[1]) + 1 - max(pred[0], gt[0]))
        union = max(pred[1], gt[1]) + 1 - min(pred[0], gt[0])
        return float(intersection) / union

    def rank(pred, gt):
        return pred.index(tuple(gt)) + 1

    average_ranks, average_iou = [], []
    for s, d in zip(segments, data):
        pred = s[0]
        ious = [iou(pred, t) for t in d["times"]]
        average_iou.append(np.mean(np.sort(ious)[-3:]))
        ranks = [rank(s, t) for t in d["times"]]
        average_ranks.append(np.mean(np.sort(ranks)[:3]))
    rank1 = np.sum(np.array(average_ranks) <= 1) / float(len(average_ranks))
    rank5 = np.sum(np.array(average_ranks) <= 5) / float(len(average_ranks))
    return rank1, rank5, np.mean(average_iou)


def test_moment_iou_hand():
    assert moment_iou((0, 1), (1, 2)) == pytest.approx(1 / 3)
    assert moment_iou((0, 0), (5, 5)) == 0
    assert moment_iou((2, 4), (2, 4)) == 1


def test_moment_metrics_hand_cases():
    canonical = list(DIDEMO_MOMENTS)
    right = moment_metrics([canonical], [[(0, 0)] * 4])
    assert (right["rank@1"], right["rank@5"], right["mIoU"]) == (100, 100, 100)
    # ranks 1, 1, 2, 3 -> best three average 4/3: a rank@5 hit, not a rank@1 hit
    split = moment_metrics([canonical], [[(0, 0), (0, 0), (1, 1), (2, 2)]])
    assert (split["rank@1"], split["rank@5"]) == (0, 100)
    assert split["mIoU"] == pytest.approx(100 * 2 / 3)
    wrong = moment_metrics([canonical[::-1]], [[(0, 0)] * 4])  # (0, 0) ranked last of 21
    assert (wrong["rank@1"], wrong["rank@5"], wrong["mIoU"]) == (0, 0, 0)


@pytest.mark.realdata
def test_moment_metrics_match_localizing_moments_on_real_times(real_data_dir):
    data = json.loads((real_data_dir / "didemo/test_data.json").read_text())
    rng = np.random.default_rng(0)
    rankings = [[DIDEMO_MOMENTS[m] for m in rng.permutation(21)] for _ in data]
    rank1, rank5, miou = localizing_moments_eval(rankings, data)
    got = moment_metrics(rankings, [[tuple(t) for t in d["times"]] for d in data])
    assert got["rank@1"] == pytest.approx(100 * rank1)
    assert got["rank@5"] == pytest.approx(100 * rank5)
    assert got["mIoU"] == pytest.approx(100 * miou)
    assert got["num_queries"] == 4021


def test_moment_metrics_missing_moments():
    ranked = [[(0, 0), (1, 1)]]
    with pytest.raises(ValueError, match="not in the ranking"):
        moment_metrics(ranked, [[(0, 0), (5, 5), (5, 5), (0, 0)]])
    # the original code's rule: unranked annotations are ignored; ranks 1, 1 -> rank@1 hit
    got = moment_metrics(ranked, [[(0, 0), (5, 5), (5, 5), (0, 0)]], missing="skip")
    assert got["rank@1"] == 100
    none_left = moment_metrics(ranked, [[(5, 5)] * 4], missing="skip")
    assert none_left["rank@5"] == 0 and none_left["num_queries_without_ranked_annotation"] == 1


# ----------------------------------------------------------------------------- CrossTask


def official_dp(costs: np.ndarray) -> np.ndarray:
    """DmZhukov/CrossTask dp.pyx (exactly_one=True, bg_cost=0) transcribed loop for loop."""
    C = costs.astype(np.float32)
    T, K = C.shape
    K_ext = 2 * K + 1
    L = -np.ones([T + 1, K_ext])
    P = -np.ones([T + 1, K_ext], dtype=int)
    L[0, 0] = 0
    P[0, 0] = 0

    def get_step(k):
        return 0 if k % 2 == 0 else (k + 1) // 2

    for t in range(1, T + 1):
        Lt, Pt = L[t - 1, :], P[t - 1, :]
        for k in range(K_ext):
            s = get_step(k)
            opt_label, opt_value = -1, 0.0
            j = k
            if (opt_label == -1 or opt_value > Lt[j]) and Pt[j] != -1 and s == 0:
                opt_label, opt_value = j, Lt[j]
            j = k - 1
            if j >= 0 and (opt_label == -1 or opt_value > Lt[j]) and Pt[j] != -1:
                opt_label, opt_value = j, Lt[j]
            if s != 0:
                j = k - 2
                if j >= 0 and (opt_label == -1 or opt_value > Lt[j]) and Pt[j] != -1:
                    opt_label, opt_value = j, Lt[j]
            L[t, k] = opt_value + (C[t - 1][s - 1] if s != 0 else 0.0)
            P[t, k] = opt_label
    Y = np.zeros((T, K), dtype=np.uint8)
    k = K_ext - 1 if (L[T, K_ext - 1] < L[T, K_ext - 2] or P[T, K_ext - 2] == -1) else K_ext - 2
    for t in range(T, 0, -1):
        s = get_step(k)
        if s > 0:
            Y[t - 1, s - 1] = 1
        k = P[t, k]
    return Y


def brute_force_alignment(costs: np.ndarray) -> tuple[float, tuple[int, ...]]:
    """The cheapest strictly increasing seconds t_1 < ... < t_K, one per step."""
    T, K = costs.shape
    return min((sum(float(costs[t, k]) for k, t in enumerate(times)), times)
               for times in itertools.combinations(range(T), K))


@pytest.mark.parametrize("seed", range(40))
def test_align_steps_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    K = int(rng.integers(1, 5))
    T = int(rng.integers(K, 9))
    costs = rng.random((T, K)).astype(np.float32)
    y = align_steps(costs)
    assert (y.sum(axis=0) == 1).all() and y.sum() == K
    times = tuple(int(t) for t in y.argmax(axis=0))
    best_cost, best_times = brute_force_alignment(costs)
    assert times == best_times
    assert sum(float(costs[t, k]) for k, t in enumerate(times)) == pytest.approx(best_cost)


@pytest.mark.parametrize("seed", range(30))
def test_align_steps_breaks_ties_like_the_official_dp(seed):
    rng = np.random.default_rng(100 + seed)
    K = int(rng.integers(1, 6))
    T = int(rng.integers(K, 25))
    costs = rng.integers(0, 3, size=(T, K)).astype(np.float32)  # many ties
    assert (align_steps(costs) == official_dp(costs)).all()


def test_align_steps_hand_and_bad_input():
    assert align_steps(np.array([[5.0], [1.0], [3.0]])).ravel().tolist() == [0, 1, 0]
    # two steps in order even though step 2 is cheapest first
    y = align_steps(np.array([[9.0, 0.0], [0.0, 9.0], [9.0, 9.0]]))
    assert y.argmax(axis=0).tolist() == [1, 2]
    assert align_steps(np.zeros((3, 3))).argmax(axis=0).tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="cannot hold"):
        align_steps(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="num_steps >= 1"):
        align_steps(np.zeros((4, 0)))
    with pytest.raises(ValueError, match="NaN"):
        align_steps(np.array([[np.nan], [0.0]]))


def official_recalls(Y_true, Y_pred):
    """DmZhukov/CrossTask train.py get_recalls, as the reference."""
    step_match = {task: 0 for task in Y_true}
    step_total = {task: 0 for task in Y_true}
    for task, ys_true in Y_true.items():
        ys_pred = Y_pred[task]
        for vid in set(ys_pred.keys()).intersection(set(ys_true.keys())):
            y_true, y_pred = ys_true[vid], ys_pred[vid]
            step_total[task] += (y_true.sum(axis=0) > 0).sum()
            step_match[task] += (y_true * y_pred).sum()
    return {task: step_match[task] / n for task, n in step_total.items()}


def test_recall_matches_official_counting():
    rng = np.random.default_rng(0)
    y_true, y_pred = {}, {}
    for task in ("a", "b", "c"):
        K = int(rng.integers(2, 8))
        for v in range(5):
            T = int(rng.integers(K + 1, 40))
            true = np.zeros((T, K), dtype=np.uint8)
            for k in range(K):
                if rng.random() < 0.8:
                    s = int(rng.integers(0, T - 1))
                    true[s:s + int(rng.integers(1, 6)), k] = 1
            y_true.setdefault(task, {})[f"v{v}"] = true
            y_pred.setdefault(task, {})[f"v{v}"] = align_steps(rng.random((T, K)))
        y_pred[task]["extra"] = np.zeros((3, K))  # predictions without ground truth are ignored
    got = recall(y_true, y_pred)
    want = official_recalls(y_true, y_pred)
    assert got == pytest.approx({t: 100 * r for t, r in want.items()})


def test_recall_hand_and_bad_input():
    true = np.zeros((5, 2), dtype=np.uint8)
    true[0:2, 0] = 1
    true[3, 1] = 1
    pred = np.zeros((5, 2), dtype=np.uint8)
    pred[1, 0] = pred[4, 1] = 1
    assert recall({"t": {"v": true}}, {"t": {"v": pred}}) == {"t": 50.0}
    with pytest.raises(ValueError, match="no ground-truth step"):
        recall({"t": {"v": np.zeros((5, 2))}}, {"t": {"v": pred}})
    with pytest.raises(ValueError, match="no predictions"):
        recall({"t": {"v": true}}, {})


# ----------------------------------------------------------------------------- COIN


def test_outside_threshold_hand_and_naive():
    emb = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
    assert outside_threshold(emb) == pytest.approx(0.8)
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(7, 5))
    naive = max(float(emb[i] @ emb[j]) for i in range(7) for j in range(7) if i != j)
    assert outside_threshold(emb) == pytest.approx(naive)
    with pytest.raises(ValueError, match="num_labels >= 2"):
        outside_threshold(np.ones((1, 4)))


def test_label_with_outside_rule():
    logits = np.array([[0.9, 0.1], [0.5, 0.7], [0.2, 0.3], [0.6, 0.1]])
    # the last second's best logit equals gamma: Outside (the rule is "<= gamma")
    assert label_with_outside(logits, 0.6).tolist() == [1, 2, 0, 0]
    assert label_with_outside(logits, 0.6, np.array([17, 42])).tolist() == [17, 42, 0, 0]


def test_per_class_accuracy_naive():
    rng = np.random.default_rng(1)
    true, pred = rng.integers(0, 4, 200), rng.integers(0, 4, 200)
    got = per_class_accuracy(pred, true)
    for c in range(4):
        hits = [p == c for p, t in zip(pred, true) if t == c]
        assert got[c] == pytest.approx(100 * sum(hits) / len(hits))
    assert per_class_accuracy(np.zeros(5, int), np.zeros(5, int)) == {0: 100.0}
