"""How hard is a simulated world? Chance levels and a concept-oracle ceiling per benchmark.

* :func:`chance_levels` — what a scorer without information gets (expected values, or a seeded
  Monte-Carlo average where no closed form is simple), read from the benchmark files alone, so
  it applies to real data roots too.
* :func:`oracle_levels` — a *concept oracle*: it knows each concept's true feature direction
  (``world_truth.npz``) and scores a text by the sum of the directions of the concepts its words
  name, against the stored (noisy, smoothed) features. It is the score of a model that learned
  word ↔ concept perfectly but nothing else; a trained model can beat it only by exploiting
  regularities it does not use (e.g. context, step order).

Both follow SPEC §7's protocols in simplified form (first 32 s of a segment, 21 DiDeMo moments,
COIN's Outside rule, CrossTask's ordered one-second alignment) and return
``{benchmark: {metric: value}}`` with metrics in percent. The official evaluators live in
``videoclip.evaluation``; these are reference levels for the book, not replacements.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from videoclip.data.benchmarks import (
    CoinVideo,
    CrossTaskData,
    crosstask_split,
    load_coin,
    load_crosstask,
    load_didemo,
    load_msrvtt_mc,
    load_msrvtt_test,
    load_youcook2_val,
    read_step_annotation,
)
from videoclip.data.taxonomy import text_concepts

MAX_SECONDS = 32  # SPEC §7: evaluation uses the first 32 s of a clip
DIDEMO_MOMENTS = [(s, e) for s in range(6) for e in range(s, 6)]  # 21 moments over 6 chunks
CROSSTASK_TRAIN_PER_TASK = 30  # the official random_split holds out 30 training videos per task


# --------------------------------------------------------------------------- metrics


def _ranks(sim: np.ndarray) -> np.ndarray:
    """1-based rank of the diagonal entry in each row, ties broken pessimistically."""
    true = np.diag(sim)[:, None]
    return (sim >= true).sum(axis=1)


def _retrieval(ranks: np.ndarray) -> dict[str, float]:
    return {"R@1": 100 * float(np.mean(ranks <= 1)), "R@5": 100 * float(np.mean(ranks <= 5)),
            "R@10": 100 * float(np.mean(ranks <= 10)), "MdR": float(np.median(ranks)),
            "num_queries": len(ranks)}


def _iou(a: tuple[int, int], b: tuple[int, int]) -> float:
    inter = max(0, min(a[1], b[1]) - max(a[0], b[0]) + 1)
    union = max(a[1], b[1]) - min(a[0], b[0]) + 1
    return inter / union


def _didemo_scores(ranked: list[list[tuple[int, int]]], times: list) -> dict[str, float]:
    """LocalizingMoments' metrics: best 3 of the annotators' ranks and IoUs."""
    r1, r5, miou = [], [], []
    for moments, gts in zip(ranked, times):
        ranks = sorted(moments.index(tuple(t)) + 1 for t in gts if tuple(t) in moments)
        mean_rank = float(np.mean(ranks[:3]))
        ious = sorted(_iou(moments[0], tuple(t)) for t in gts)
        r1.append(mean_rank <= 1)
        r5.append(mean_rank <= 5)
        miou.append(float(np.mean(ious[-3:])))
    return {"rank@1": 100 * float(np.mean(r1)), "rank@5": 100 * float(np.mean(r5)),
            "mIoU": 100 * float(np.mean(miou)), "num_queries": len(ranked)}


def align_ordered(cost: np.ndarray) -> np.ndarray:
    """``(T, K)`` 0/1: each step k gets one second t_k, t_1 < … < t_K, minimising Σ cost[t_k, k]."""
    num_t, num_k = cost.shape
    total = np.full((num_t + 1, num_k + 1), np.inf)
    total[:, 0] = 0.0
    for k in range(1, num_k + 1):
        for t in range(k, num_t + 1):  # best over the first t seconds for the first k steps
            total[t, k] = min(total[t - 1, k], total[t - 1, k - 1] + cost[t - 1, k - 1])
    out = np.zeros((num_t, num_k), np.uint8)
    t = num_t
    for k in range(num_k, 0, -1):
        while total[t, k] == total[t - 1, k]:
            t -= 1
        out[t - 1, k - 1] = 1
        t -= 1
    return out


# --------------------------------------------------------------------------- reading


def _crosstask_test(root: Path) -> tuple[dict[str, tuple[str, ...]], dict[str, list[str]], CrossTaskData]:
    """Primary tasks' steps and the official test videos (the loader's split, seed 0)."""
    data = load_crosstask(root)
    _, test = crosstask_split(data.videos, data.val_videos)
    return {t: task.steps for t, task in data.tasks.items()}, test, data


def _coin_truth(video: CoinVideo, num_t: int) -> np.ndarray:
    """Per-second step id of a COIN video (0 = background, "Outside")."""
    y = np.zeros(num_t, np.int64)
    for seg in video.segments:
        y[int(np.floor(seg.start)) : int(np.ceil(seg.end))] = seg.label_id
    return y


# --------------------------------------------------------------------------- chance


def chance_levels(data_dir: str | Path, *, num_draws: int = 50, seed: int = 0) -> dict[str, dict]:
    """Chance level of each benchmark of a data root (simulated or real), in percent.

    Retrieval: expected recall of a uniformly random ranking (R@k = k/N, MdR = (N+1)/2).
    Multiple choice: 1/5. DiDeMo and CrossTask: the mean over ``num_draws`` random rankings /
    random scores (seeded). COIN: the all-background baseline and a uniform guess over the
    labels and background.
    """
    root = Path(data_dir)
    rng = np.random.default_rng(seed)
    out: dict[str, dict] = {}
    out["youcook2"] = _chance_retrieval(len(load_youcook2_val(root)))
    out["msrvtt"] = _chance_retrieval(len(load_msrvtt_test(root)))
    mc = load_msrvtt_mc(root)
    out["msrvtt_mc"] = {"accuracy": 100 * float(np.mean([1 / len(q.options) for q in mc])),
                        "num_queries": len(mc)}
    queries = load_didemo(root)
    draws = []
    for _ in range(num_draws):
        ranked = [[DIDEMO_MOMENTS[i] for i in rng.permutation(21)] for _ in queries]
        draws.append(_didemo_scores(ranked, [q.times for q in queries]))
    out["didemo"] = {k: float(np.mean([d[k] for d in draws])) for k in ("rank@1", "rank@5", "mIoU")}
    out["didemo"]["num_queries"] = len(queries)
    coin = load_coin(root / "coin" / "COIN.json")
    background = total = 0
    for video in coin.videos:
        y = _coin_truth(video, int(np.ceil(video.duration)))
        background += int((y == 0).sum())
        total += len(y)
    out["coin"] = {"all_background": 100 * background / total,
                   "uniform_guess": 100 / (len(coin.labels) + 1), "num_labels": len(coin.labels)}
    steps, test, data = _crosstask_test(root)
    draws = []
    for _ in range(max(1, num_draws // 10)):
        recalls = {}
        for task, vids in test.items():
            hit = present = 0
            for vid in vids:
                num_t = _crosstask_length(root, data, task, vid)
                y = read_step_annotation(data.annotation_path(task, vid), num_t, len(steps[task]))
                if num_t < len(steps[task]):
                    continue
                pred = align_ordered(rng.random(y.shape))
                hit += int((y * pred).sum())
                present += int((y.sum(axis=0) > 0).sum())
            recalls[task] = hit / max(present, 1)
        draws.append(100 * float(np.mean(list(recalls.values()))))
    out["crosstask"] = {"recall": float(np.mean(draws)), "num_tasks": len(test)}
    return out


def _chance_retrieval(n: int) -> dict[str, float]:
    return {"R@1": 100 / n, "R@5": 100 * min(5, n) / n, "R@10": 100 * min(10, n) / n,
            "MdR": (n + 1) / 2, "num_queries": n}


def _crosstask_length(root: Path, data: CrossTaskData, task: str, vid: str) -> int:
    """Seconds of a CrossTask video: its feature rows where present, else its last step's end."""
    path = root / "crosstask" / "features" / f"{vid}.npy"
    if path.is_file():
        return int(np.load(path, mmap_mode="r").shape[0])
    lines = data.annotation_path(task, vid).read_text().split()
    return int(np.ceil(max(float(line.split(",")[2]) for line in lines)))


# --------------------------------------------------------------------------- oracle


class _Oracle:
    """Text vectors from true concept directions; video vectors from the stored features."""

    def __init__(self, root: Path) -> None:
        truth_path = root / "world_truth.npz"
        if not truth_path.is_file():
            raise FileNotFoundError(
                f"{truth_path} is missing: the concept oracle needs a simulated data root "
                "(written by videoclip.data.simulate); real data has no true concepts"
            )
        with np.load(truth_path) as truth:
            names = [str(x) for x in truth["concepts"]]
            directions = truth["directions"].astype(np.float32)
        self.root = root
        self.index = {n: i for i, n in enumerate(names)}
        self.directions = directions / np.linalg.norm(directions, axis=1, keepdims=True)

    def texts(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.directions.shape[1]), np.float32)
        for i, text in enumerate(texts):
            rows = [self.index[c] for c in text_concepts(text) if c in self.index]
            if rows:
                v = self.directions[rows].sum(axis=0)
                out[i] = v / np.linalg.norm(v)
        return out

    def features(self, sub: str, vid: str) -> np.ndarray:
        return np.load(self.root / sub / "features" / f"{Path(vid).stem}.npy").astype(np.float32)


def _mean_span(features: np.ndarray, start: int, end: int) -> np.ndarray:
    start = min(max(start, 0), len(features) - 1)
    end = min(max(end, start + 1), start + MAX_SECONDS, len(features))
    v = features[start:end].mean(axis=0)
    return v / max(float(np.linalg.norm(v)), 1e-8)


def oracle_levels(data_dir: str | Path) -> dict[str, dict]:
    """The concept oracle's score on each benchmark of a simulated data root, in percent."""
    root = Path(data_dir)
    oracle = _Oracle(root)
    out: dict[str, dict] = {}
    cache: dict[tuple[str, str], np.ndarray] = {}

    def feats(sub: str, vid: str) -> np.ndarray:
        if (sub, vid) not in cache:
            cache[(sub, vid)] = oracle.features(sub, vid)
        return cache[(sub, vid)]

    for name, pairs in (("youcook2", load_youcook2_val(root)), ("msrvtt", load_msrvtt_test(root))):
        videos = np.stack([_mean_span(feats(name, p.video_id), p.start or 0,
                                      MAX_SECONDS if p.end is None else p.end) for p in pairs])
        out[name] = _retrieval(_ranks(oracle.texts([p.text for p in pairs]) @ videos.T))
    correct = []
    mc = load_msrvtt_mc(root)
    for q in mc:
        scores = oracle.texts(list(q.options)) @ _mean_span(feats("msrvtt", q.video_id), 0, MAX_SECONDS)
        correct.append(scores[q.answer] > np.delete(scores, q.answer).max())  # ties count as wrong
    out["msrvtt_mc"] = {"accuracy": 100 * float(np.mean(correct)), "num_queries": len(mc)}
    queries = load_didemo(root)
    ranked = []
    for q in queries:
        f = feats("didemo", q.video_id)
        text = oracle.texts([q.description])[0]
        scores = [text @ _mean_span(f, 5 * s, 5 * (e + 1)) if 5 * s < len(f) else -np.inf
                  for s, e in DIDEMO_MOMENTS]
        ranked.append([DIDEMO_MOMENTS[i] for i in np.argsort(-np.array(scores), kind="stable")])
    out["didemo"] = _didemo_scores(ranked, [q.times for q in queries])
    out["coin"] = _oracle_coin(root, oracle)
    out["crosstask"] = _oracle_crosstask(root, oracle)
    return out


def _oracle_coin(root: Path, oracle: _Oracle) -> dict[str, float]:
    """Per-second argmax over label texts, background when the best score ≤ γ (SPEC §7)."""
    coin = load_coin(root / "coin" / "COIN.json")
    ids = np.array(list(coin.labels))
    label_vecs = oracle.texts(list(coin.labels.values()))  # (L, 512)
    gram = label_vecs @ label_vecs.T
    np.fill_diagonal(gram, -np.inf)
    gamma = float(gram.max())
    hit = total = hit_steps = total_steps = 0
    for video in coin.videos:
        f = oracle.features("coin", video.video_id)
        y = _coin_truth(video, len(f))
        scores = f @ label_vecs.T
        best = ids[scores.argmax(axis=1)]
        pred = np.where(scores.max(axis=1) > gamma, best, 0)
        hit += int((pred == y).sum())
        total += len(y)
        steps = y > 0
        hit_steps += int((best[steps] == y[steps]).sum())
        total_steps += int(steps.sum())
    return {"frame_accuracy": 100 * hit / total, "gamma": gamma,
            "step_seconds_argmax_accuracy": 100 * hit_steps / max(total_steps, 1)}


def _oracle_crosstask(root: Path, oracle: _Oracle) -> dict[str, float]:
    """Scores = feature · step text; log-softmax over steps; ordered alignment; recall per task."""
    steps, test, data = _crosstask_test(root)
    recalls = {}
    for task, vids in test.items():
        step_vecs = oracle.texts(list(steps[task]))
        hit = present = 0
        for vid in vids:
            f = oracle.features("crosstask", vid)
            if len(f) < len(step_vecs):
                continue
            y = read_step_annotation(data.annotation_path(task, vid), len(f), len(step_vecs))
            scores = f @ step_vecs.T
            log_p = scores - np.log(np.exp(scores).sum(axis=1, keepdims=True))
            pred = align_ordered(-log_p)
            hit += int((y * pred).sum())
            present += int((y.sum(axis=0) > 0).sum())
        recalls[task] = hit / max(present, 1)
    return {"recall": 100 * float(np.mean(list(recalls.values()))), "num_tasks": len(recalls)}
