"""The paper's reported numbers (SPEC §8, §10; Xu et al. 2021, Tables 1-5 and 7), as data.

These are *the paper's* numbers, printed beside ours; nothing here is a result of this package.
"""

from __future__ import annotations

# (benchmark, metric) -> value in percent, from the paper's zero-shot rows.
PAPER_ZERO_SHOT: dict[tuple[str, str], float] = {
    ("YouCook2", "R@1"): 22.7, ("YouCook2", "R@5"): 50.4, ("YouCook2", "R@10"): 63.1,
    ("MSR-VTT", "R@1"): 10.4, ("MSR-VTT", "R@5"): 22.2, ("MSR-VTT", "R@10"): 30.0,
    ("DiDeMo", "R@1"): 16.6, ("DiDeMo", "R@5"): 46.9,
    ("MSR-VTT MC", "accuracy"): 73.9,
    ("COIN", "frame accuracy"): 58.9,
    ("CrossTask", "recall"): 33.9,
}

# The paper's fine-tuned (supervised) rows, by fine-tuning task (SPEC §10 summary; Tables 1, 3-5).
FINETUNED: dict[str, dict[str, float]] = {
    "youcook2": {"R@1": 32.2, "R@5": 62.6, "R@10": 75.0},
    "msrvtt": {"R@1": 30.9, "R@5": 55.4, "R@10": 66.8},
    "msrvtt-qa": {"accuracy": 92.1},
    "coin": {"frame_accuracy": 68.7},
    "crosstask": {"recall": 47.3},
}

# Where each number is printed in the paper.
PAPER_TABLE: dict[str, str] = {
    "YouCook2": "Table 1", "MSR-VTT": "Table 1", "DiDeMo": "Table 2", "MSR-VTT MC": "Table 3",
    "COIN": "Table 4", "CrossTask": "Table 5",
}

# A community run of the released checkpoint on YouCook2 (SPEC §8): R@1/5/10 and median rank.
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

    rows = [{"benchmark": b, "metric": m, "paper": v, "table": PAPER_TABLE[b]}
            for (b, m), v in PAPER_ZERO_SHOT.items()]
    return pd.DataFrame(rows)


def ablation_table():
    """Table 7 as a DataFrame indexed by ablation with columns R@1, R@5, R@10."""
    import pandas as pd

    return pd.DataFrame.from_dict(PAPER_ABLATIONS, orient="index", columns=["R@1", "R@5", "R@10"])
