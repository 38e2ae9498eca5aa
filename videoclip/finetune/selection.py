"""Which epoch's model a fine-tuning run reports: the original's rule and an honest one.

The original selects on test data in every task (design §10.0 "Test-time selection", §10.6
item 5): YouCook2, MSR-VTT and MSR-VTT QA score every epoch's checkpoint on the test set and
report the best first metric (R@1, accuracy); COIN and CrossTask report ``checkpoint_best.pt``,
the epoch with the lowest loss on the *test* videos. Both are labelled here as test-set
selection. Beside them, the last epoch: a rule that never looks at the test set.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from videoclip.evaluation.registry import BENCHMARKS
from videoclip.finetune.examples import TEST_BENCHMARK

__all__ = ["LABELS", "ORIGINAL_RULE", "PRIMARY_METRIC", "select_epoch", "selections"]

#: The metric a task's test-set selection maximises and tables lead with: the headline of its
#: test benchmark (R@1, accuracy, frame accuracy, recall).
PRIMARY_METRIC = {task: BENCHMARKS[bench].headline for task, bench in TEST_BENCHMARK.items()}
#: The original's rule per task (design §10 summary, "checkpoint tested").
ORIGINAL_RULE = {"youcook2": "best_test_metric", "msrvtt": "best_test_metric",
                 "msrvtt-qa": "best_test_metric", "coin": "lowest_test_loss",
                 "crosstask": "lowest_test_loss"}
LABELS = {
    "best_test_metric": "test-set selection (original): best epoch on the test metric",
    "lowest_test_loss": "test-set selection (original): lowest loss on the test videos",
    "last_epoch": "last epoch (no test data used)",
}


def select_epoch(records: Sequence[Mapping[str, Any]], rule: str, *, metric: str = "") -> Mapping[str, Any]:
    """The record (``{"epoch", "metrics": {...}, "test_loss"}``, one per epoch, in order) a rule picks.

    ``best_test_metric``: the largest ``metrics[metric]`` (ties: the earliest epoch);
    ``lowest_test_loss``: the smallest ``test_loss`` (ties: the earliest, as fairseq only
    replaces ``checkpoint_best`` on a strictly lower loss); ``last_epoch``: the last record.
    """
    if not records:
        raise ValueError("no epoch was evaluated; run with eval_every_epoch on")
    if rule == "last_epoch":
        return records[-1]
    if rule == "best_test_metric":
        if not metric:
            raise ValueError("best_test_metric needs the metric's name")
        return max(records, key=lambda r: (r["metrics"][metric], -r["epoch"]))
    if rule == "lowest_test_loss":
        if any(r.get("test_loss") is None for r in records):
            raise ValueError("lowest_test_loss needs each epoch's test loss (coin, crosstask)")
        return min(records, key=lambda r: (r["test_loss"], r["epoch"]))
    raise ValueError(f"rule={rule!r}; choose one of {sorted(LABELS)}")


def selections(task: str, records: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Both rules for ``task``: ``{"test_selection": ..., "last_epoch": ...}``, each the chosen
    epoch, its metrics and the rule's label."""
    out = {}
    for key, rule in (("test_selection", ORIGINAL_RULE[task]), ("last_epoch", "last_epoch")):
        chosen = select_epoch(records, rule, metric=PRIMARY_METRIC[task])
        out[key] = {"rule": rule, "label": LABELS[rule], "epoch": chosen["epoch"],
                    "metrics": dict(chosen["metrics"]), "test_loss": chosen.get("test_loss")}
    return out
