"""The benchmarks, one row each: what a data root holds for it, how to read it, how to score it.

Adding a benchmark is its loader (:mod:`videoclip.data.benchmarks`), its evaluator (a module of
:mod:`videoclip.evaluation`, or an existing one with a keyword) and one :class:`Benchmark` row
here; the paper's numbers for it are rows of :data:`videoclip.paper.ZERO_SHOT`. The command
line, the book's data inventory, the scorecard and the simulator's chance and oracle levels
iterate :data:`BENCHMARKS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from videoclip.data.benchmarks import (
    load_coin,
    load_crosstask,
    load_didemo,
    load_msrvtt_mc,
    load_msrvtt_test,
    load_youcook2_val,
)
from videoclip.evaluation.crosstask import evaluate_step_localization
from videoclip.evaluation.didemo import evaluate_didemo
from videoclip.evaluation.retrieval import evaluate_retrieval
from videoclip.evaluation.segmentation import evaluate_segmentation
from videoclip.evaluation.videoqa import evaluate_videoqa

__all__ = ["BENCHMARKS", "Benchmark", "UnknownBenchmarkError", "benchmark"]


class UnknownBenchmarkError(KeyError):
    """A benchmark name that is no row of :data:`BENCHMARKS`; the message lists the known ones."""

    def __str__(self) -> str:  # KeyError quotes its message; we want plain text
        return str(self.args[0])


@dataclass(frozen=True)
class Benchmark:
    """One zero-shot benchmark.

    Attributes:
        id: our id (``"msrvtt_mc"``); the key of :data:`BENCHMARKS` and of the paper's numbers.
        cli_name: its name on the command line (``python -m videoclip evaluate NAME``).
        task: what is evaluated, in words (``"multiple-choice VideoQA"``).
        items: what one evaluation item is (``"questions"``).
        files: the official files (and folders) under the data root that its loader reads.
        features: the feature folder's parent under the data root (``<features>/features``).
        load: ``load(data_dir)`` → the test set as the loader returns it.
        evaluate: ``evaluate(model, data_dir, **options) -> (results, predictions)``.
        headline: the metric key (in the evaluator's results) the book leads with.
        chance_key: the key of the headline's reference in the chance levels
            (:func:`videoclip.sim.levels.chance_levels`).
    """

    id: str
    cli_name: str
    task: str
    items: str
    files: tuple[str, ...]
    features: str
    load: Callable[[str | Path], Any]
    evaluate: Callable[..., tuple[dict[str, Any], Any]]
    headline: str
    chance_key: str


def _load_coin_test(data_dir: str | Path):
    return load_coin(Path(data_dir) / "coin" / "COIN.json")


BENCHMARKS: dict[str, Benchmark] = {
    b.id: b
    for b in (
        Benchmark(
            "youcook2",
            "youcook2",
            "text→video retrieval",
            "clip-text pairs",
            ("youcook2/youcookii_annotations_trainval.json", "youcook2/validation_youcook.csv"),
            "youcook2",
            load_youcook2_val,
            partial(evaluate_retrieval, benchmark="youcook2"),
            "R@1",
            "R@1",
        ),
        Benchmark(
            "msrvtt",
            "msrvtt",
            "text→video retrieval",
            "clip-text pairs",
            ("msrvtt/MSRVTT_JSFUSION_test.csv",),
            "msrvtt",
            load_msrvtt_test,
            partial(evaluate_retrieval, benchmark="msrvtt"),
            "R@1",
            "R@1",
        ),
        Benchmark(
            "msrvtt_mc",
            "msrvtt-mc",
            "multiple-choice VideoQA",
            "questions",
            ("msrvtt/msrvtt_mc_test.jsonl",),
            "msrvtt",
            load_msrvtt_mc,
            evaluate_videoqa,
            "accuracy",
            "accuracy",
        ),
        Benchmark(
            "didemo",
            "didemo",
            "moment localisation (retrieval)",
            "queries",
            ("didemo/test_data.json",),
            "didemo",
            load_didemo,
            evaluate_didemo,
            "rank@1",
            "rank@1",
        ),
        Benchmark(
            "coin",
            "coin",
            "action segmentation",
            "step segments",
            ("coin/COIN.json",),
            "coin",
            _load_coin_test,
            evaluate_segmentation,
            "frame_accuracy",
            "all_background",
        ),
        Benchmark(
            "crosstask",
            "crosstask",
            "action step localisation",
            "annotated steps",
            (
                "crosstask/tasks_primary.txt",
                "crosstask/videos.csv",
                "crosstask/videos_val.csv",
                "crosstask/annotations",
            ),
            "crosstask",
            load_crosstask,
            evaluate_step_localization,
            "recall",
            "recall",
        ),
    )
}


def benchmark(name: str) -> Benchmark:
    """The row of a benchmark by id or command-line name; an unknown name lists the known ones."""
    for row in BENCHMARKS.values():
        if name in (row.id, row.cli_name):
            return row
    known = ", ".join(b.cli_name for b in BENCHMARKS.values())
    raise UnknownBenchmarkError(f"unknown benchmark {name!r}; choose one of {known}")
