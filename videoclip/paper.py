"""The paper's reported zero-shot numbers (design §8; Xu et al. 2021, Tables 1-5 and 7), as data.

These are *the paper's* numbers, printed beside ours; nothing here is a result of this package.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PaperNumber:
    """One zero-shot number of the paper: our benchmark id and metric key, the value (percent),
    the paper's own names for them, and the table that prints it."""

    benchmark: str
    metric: str
    value: float
    paper_benchmark: str
    paper_metric: str
    table: str


#: The paper's zero-shot numbers (Tables 1-5), the one table of them in the package.
ZERO_SHOT: tuple[PaperNumber, ...] = (
    *(PaperNumber("youcook2", m, v, "YouCook2", m, "Table 1")
      for m, v in (("R@1", 22.7), ("R@5", 50.4), ("R@10", 63.1))),
    *(PaperNumber("msrvtt", m, v, "MSR-VTT", m, "Table 1")
      for m, v in (("R@1", 10.4), ("R@5", 22.2), ("R@10", 30.0))),
    PaperNumber("didemo", "rank@1", 16.6, "DiDeMo", "R@1", "Table 2"),
    PaperNumber("didemo", "rank@5", 46.9, "DiDeMo", "R@5", "Table 2"),
    PaperNumber("msrvtt_mc", "accuracy", 73.9, "MSR-VTT MC", "accuracy", "Table 3"),
    PaperNumber("coin", "frame_accuracy", 58.9, "COIN", "frame accuracy", "Table 4"),
    PaperNumber("crosstask", "recall", 33.9, "CrossTask", "recall", "Table 5"),
)

#: The same numbers keyed by the paper's names: (benchmark, metric) -> value.
PAPER_ZERO_SHOT: dict[tuple[str, str], float] = {
    (r.paper_benchmark, r.paper_metric): r.value for r in ZERO_SHOT}


def paper_numbers(benchmark: str) -> dict[str, float]:
    """The paper's zero-shot numbers of one benchmark under our metric keys."""
    out = {r.metric: r.value for r in ZERO_SHOT if r.benchmark == benchmark}
    if not out:
        known = sorted({r.benchmark for r in ZERO_SHOT})
        raise KeyError(f"no paper number for benchmark {benchmark!r}; known: {known}")
    return out


def paper_table(benchmark: str) -> str:
    """Where the paper prints the benchmark's numbers ("Table 1", ...)."""
    return next(r.table for r in ZERO_SHOT if r.benchmark == benchmark)


# A community run of the released checkpoint on YouCook2 (design §8): R@1/5/10 and median rank.
RELEASED_CHECKPOINT_YOUCOOK2 = {"R@1": 22.4, "R@5": 50.3, "R@10": 62.6, "MdR": 5.0}

# Table 7: YouCook2 zero-shot R@1/5/10 of each ablation.
PAPER_ABLATIONS: dict[str, tuple[float, float, float]] = {
    "VideoCLIP (full)": (22.7, 50.4, 63.1),
    "w/o retrieval": (18.5, 42.8, 54.6),
    "w/o retrieval and overlap": (12.4, 30.2, 40.7),
    "MIL-NCE clips and loss": (16.1, 38.6, 51.1),
    "shared video/text transformer": (21.9, 48.1, 60.6),
    "retrieve k": (22.5, 49.3, 61.4),
    "use first 32 sec for retrieval": (20.1, 46.3, 58.7),
    "[CLS] instead of mean pooling": (22.1, 47.1, 59.6),
}


def zero_shot_table():
    """The paper's zero-shot numbers as a pandas DataFrame (benchmark, metric, paper, table)."""
    import pandas as pd

    rows = [{"benchmark": r.paper_benchmark, "metric": r.paper_metric, "paper": r.value,
             "table": r.table} for r in ZERO_SHOT]
    return pd.DataFrame(rows)


def ablation_table():
    """Table 7 as a DataFrame indexed by ablation with columns R@1, R@5, R@10."""
    import pandas as pd

    return pd.DataFrame.from_dict(PAPER_ABLATIONS, orient="index", columns=["R@1", "R@5", "R@10"])
