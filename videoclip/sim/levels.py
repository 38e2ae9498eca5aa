"""How hard is a data root? Chance levels and a concept-oracle reference per benchmark.

Both run through the official protocols of :mod:`videoclip.evaluation` (design §7), so a level
is scored exactly as a model's number is:

* :func:`oracle_levels` — the evaluators run with an :class:`OracleModel`: it knows each
  concept's true feature direction (``world_truth.npz``) and scores a text by the projection
  of the stored (noisy, smoothed) features on the sum of the directions of the concepts its
  words name. It is the score of a model that learned word ↔ concept perfectly but nothing
  else; a trained model can beat it only by exploiting regularities it does not use (context,
  step order). Only a simulated world has concepts.
* :func:`chance_levels` — what a scorer without information gets: closed forms where they are
  simple (retrieval, multiple choice, COIN's trivial baselines), random rankings scored by the
  official DiDeMo metric, and a seeded :class:`RandomModel` through the CrossTask evaluator.

Both return ``{benchmark: {metric: value}}``, metrics in percent.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from videoclip.data.benchmarks import (
    DIDEMO_MOMENTS,
    load_coin,
    load_didemo,
    load_msrvtt_mc,
    load_msrvtt_test,
    load_youcook2_val,
)
from videoclip.evaluation import (
    evaluate_step_localization,
    moment_metrics,
)
from videoclip.evaluation.common import open_store
from videoclip.evaluation.registry import BENCHMARKS
from videoclip.evaluation.segmentation import OUTSIDE, coin_targets
from videoclip.text import text_concepts

__all__ = ["OracleModel", "RandomModel", "chance_levels", "oracle_levels"]


# --------------------------------------------------------------------------- scorers


class OracleModel:
    """A scorer that knows the simulated world's concepts (the evaluators' model protocol).

    Embeddings live in the feature space (``D = 512``): a text is the unit sum of the true
    directions of the concepts it names (:func:`videoclip.sim.taxonomy.text_concepts`; words
    the world does not know are ignored, a text naming no known concept is the zero vector and
    counted in :attr:`texts_without_concepts`); a clip is the unit mean of its feature rows; a
    token state is the feature row itself, without context. A score is thus the projection of
    the features on the text's concept direction.

    Args:
        concepts: ``(C,)`` concept names.
        directions: ``(C, 512)`` their feature directions (normalised here).
    """

    def __init__(self, concepts: Sequence[str], directions: np.ndarray) -> None:
        directions = np.asarray(directions, dtype=np.float32)
        if directions.ndim != 2 or len(directions) != len(concepts):
            raise ValueError(f"directions have shape {directions.shape} for {len(concepts)} concepts; "
                             "pass one (dim,) row per concept")
        self.index = {str(name): i for i, name in enumerate(concepts)}
        self.directions = torch.from_numpy(directions / np.linalg.norm(directions, axis=1, keepdims=True))
        self.texts_without_concepts = 0

    @classmethod
    def from_data_root(cls, data_dir: str | Path) -> OracleModel:
        """The oracle of a simulated data root (its ``world_truth.npz``)."""
        path = Path(data_dir) / "world_truth.npz"
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} is missing: the concept oracle needs a simulated data root "
                "(written by videoclip.sim.world); real data has no true concepts")
        with np.load(path) as truth:
            return cls([str(c) for c in truth["concepts"]], truth["directions"])

    def encode_texts(self, texts: list[str]) -> torch.Tensor:
        """``(N, 512)`` unit sums of the directions of each text's known concepts."""
        out = torch.zeros(len(texts), self.directions.shape[1])
        for i, text in enumerate(texts):
            rows = [self.index[c] for c in text_concepts(text) if c in self.index]
            if not rows:
                self.texts_without_concepts += 1
                continue
            v = self.directions[rows].sum(dim=0)
            out[i] = v / v.norm()
        return out

    def encode_video(self, video: torch.Tensor, vmask: torch.Tensor) -> torch.Tensor:
        """``(B, 512)`` unit mean of the unmasked rows of ``video (B, T, 512)``."""
        mask = vmask.to(video.dtype)[..., None]
        mean = (video * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)
        return mean / mean.norm(dim=1, keepdim=True).clamp(min=1e-8)

    def video_token_states(self, video: torch.Tensor, vmask: torch.Tensor, *,
                           mask_cls: bool) -> torch.Tensor:
        """``(B, T, 512)``: the feature rows, zero where masked (no ``[CLS]``, so ``mask_cls`` is moot)."""
        return video * vmask.to(video.dtype)[..., None]


class RandomModel:
    """A scorer without information: fresh standard-normal embeddings from a seeded generator.

    Every call draws new vectors (``(B, dim)``, ``(N, dim)``, ``(B, T, dim)``), so scores are
    exchangeable across candidates; the same seed and call order give the same numbers.
    """

    def __init__(self, *, seed: int = 0, dim: int = 32) -> None:
        self.dim = dim
        self.generator = torch.Generator().manual_seed(seed)

    def _draw(self, *shape: int) -> torch.Tensor:
        return torch.randn(*shape, self.dim, generator=self.generator)

    def encode_texts(self, texts: list[str]) -> torch.Tensor:
        return self._draw(len(texts))

    def encode_video(self, video: torch.Tensor, vmask: torch.Tensor) -> torch.Tensor:
        return self._draw(video.shape[0]).to(video.device)

    def video_token_states(self, video: torch.Tensor, vmask: torch.Tensor, *,
                           mask_cls: bool) -> torch.Tensor:
        return self._draw(video.shape[0], video.shape[1]).to(video.device)


# --------------------------------------------------------------------------- oracle


_RETRIEVAL_KEYS = {"R@1": "R@1", "R@5": "R@5", "R@10": "R@10", "MdR": "MdR", "MnR": "MnR",
                   "num_queries": "num_scored"}
#: Per benchmark: the oracle level's keys -> the evaluator's result keys.
_ORACLE_KEYS: dict[str, dict[str, str]] = {
    "youcook2": _RETRIEVAL_KEYS,
    "msrvtt": _RETRIEVAL_KEYS,
    "msrvtt_mc": {"accuracy": "accuracy", "num_queries": "num_scored"},
    "didemo": {"rank@1": "rank@1", "rank@5": "rank@5", "mIoU": "mIoU", "num_queries": "num_queries"},
    "coin": {"frame_accuracy": "frame_accuracy", "gamma": "gamma",
             "background_baseline": "background_baseline"},
    "crosstask": {"recall": "recall", "num_tasks": "num_tasks"},
}


def oracle_levels(data_dir: str | Path) -> dict[str, dict]:
    """The concept oracle's score on each benchmark of a simulated data root, in percent.

    Each official evaluator runs with :class:`OracleModel` and its default protocol (YouCook2:
    MIL-NCE clip list; DiDeMo: all 21 moments; CrossTask: the official split). Every entry
    holds ``texts_without_concepts``, the texts the oracle could not embed (scored as zero).
    COIN adds γ and ``step_seconds_argmax_accuracy``: the share of step seconds whose best
    label, without the Outside rejection, is the true one.
    """
    oracle = OracleModel.from_data_root(data_dir)
    out: dict[str, dict] = {}

    def run(name: str, evaluate: Callable[..., tuple[dict, Any]], keys: dict[str, str],
            **kwargs: Any) -> None:
        before = oracle.texts_without_concepts
        results, _ = evaluate(oracle, data_dir, progress=False, **kwargs)
        out[name] = {new: results[old] for new, old in keys.items()}
        out[name]["texts_without_concepts"] = oracle.texts_without_concepts - before

    for name, bench in BENCHMARKS.items():
        run(name, bench.evaluate, _ORACLE_KEYS[name])
    out["coin"]["step_seconds_argmax_accuracy"] = _coin_argmax_accuracy(oracle, data_dir)
    return out


def _coin_argmax_accuracy(oracle: OracleModel, data_dir: str | Path) -> float:
    """Percent of COIN step seconds (test videos with features) whose best label is right.

    The oracle has no context, so its per-second logits are ``features @ labels.T`` whatever
    the window; this is the evaluator's ranking before the Outside rule.
    """
    coin = load_coin(Path(data_dir) / "coin" / "COIN.json", subset="testing")
    store = open_store(data_dir, "coin", None)
    label_ids = np.array(list(coin.labels))
    labels = oracle.encode_texts(list(coin.labels.values())).numpy()
    hits = total = 0
    for video in coin.videos:
        if video.video_id not in store:
            continue
        features = store.load(video.video_id)
        targets, _ = coin_targets(video, len(features))
        steps = targets != OUTSIDE
        hits += int((label_ids[(features[steps] @ labels.T).argmax(axis=1)] == targets[steps]).sum())
        total += int(steps.sum())
    if total == 0:
        raise ValueError(f"no COIN test second with a step has features in {store}")
    return 100.0 * hits / total


# --------------------------------------------------------------------------- chance


def chance_levels(data_dir: str | Path, *, num_draws: int = 50, num_model_draws: int = 5,
                  seed: int = 0) -> dict[str, dict]:
    """Chance level of each benchmark of a data root (simulated or real), in percent.

    * Retrieval: the expected recall of a uniformly random ranking of the file's N clips,
      ``R@k = k/N``, ``MdR = MnR = (N+1)/2``.
    * Multiple choice: ``1 / number of options``.
    * DiDeMo: the mean over ``num_draws`` uniformly random rankings of the 21 moments, scored
      by the official :func:`videoclip.evaluation.moment_metrics`.
    * COIN (testing subset, seconds up to ``ceil(duration)``): ``all_background``, every
      second labelled Outside (the strongest trivial baseline), and ``uniform_guess``, one of
      the labels or Outside uniformly at random.
    * CrossTask: the mean over ``num_model_draws`` :class:`RandomModel` runs (seeds ``seed``,
      ``seed + 1``, …) of the official evaluator; it needs the features, as a model does.
    """
    if num_draws < 1 or num_model_draws < 1:
        raise ValueError(f"num_draws={num_draws}, num_model_draws={num_model_draws}; use 1 or more")
    root = Path(data_dir)
    rng = np.random.default_rng(seed)
    levels = {
        "youcook2": lambda: _chance_retrieval(len(load_youcook2_val(root))),
        "msrvtt": lambda: _chance_retrieval(len(load_msrvtt_test(root))),
        "msrvtt_mc": lambda: _chance_multiple_choice(load_msrvtt_mc(root)),
        "didemo": lambda: _chance_didemo([q.times for q in load_didemo(root)], rng, num_draws),
        "coin": lambda: _chance_coin(load_coin(root / "coin" / "COIN.json", subset="testing")),
        "crosstask": lambda: _chance_crosstask(root, seed, num_model_draws),
    }
    return {name: levels[name]() for name in BENCHMARKS}


def _chance_multiple_choice(questions: list) -> dict[str, float]:
    return {"accuracy": 100 * float(np.mean([1 / len(q.options) for q in questions])),
            "num_queries": len(questions)}


def _chance_didemo(times: list, rng: np.random.Generator, num_draws: int) -> dict[str, float]:
    draws = [moment_metrics([[DIDEMO_MOMENTS[m] for m in rng.permutation(len(DIDEMO_MOMENTS))]
                             for _ in times], times) for _ in range(num_draws)]
    out = {k: float(np.mean([d[k] for d in draws])) for k in ("rank@1", "rank@5", "mIoU")}
    out["num_queries"] = len(times)
    return out


def _chance_coin(coin) -> dict[str, float]:
    targets = np.concatenate([coin_targets(v, math.ceil(v.duration))[0] for v in coin.videos])
    return {"all_background": 100 * float(np.mean(targets == OUTSIDE)),
            "uniform_guess": 100 / (len(coin.labels) + 1), "num_labels": len(coin.labels)}


def _chance_crosstask(root: Path, seed: int, num_model_draws: int) -> dict[str, float]:
    runs = [evaluate_step_localization(RandomModel(seed=seed + i), root, progress=False)[0]
            for i in range(num_model_draws)]
    return {"recall": float(np.mean([r["recall"] for r in runs])), "num_tasks": runs[0]["num_tasks"]}


def _chance_retrieval(n: int) -> dict[str, float]:
    return {"R@1": 100 / n, "R@5": 100 * min(5, n) / n, "R@10": 100 * min(10, n) / n,
            "MdR": (n + 1) / 2, "MnR": (n + 1) / 2, "num_queries": n}
