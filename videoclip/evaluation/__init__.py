"""Zero-shot evaluation on the paper's benchmarks (paper §4–5; design §7), one module per task.

=====================  ======================================  ==================================
module                 evaluator                               metric
=====================  ======================================  ==================================
``retrieval``          ``evaluate_retrieval`` (YouCook2,       ``metrics.retrieval_metrics``
                       MSR-VTT)
``didemo``             ``evaluate_didemo``                     ``didemo.moment_metrics``
``videoqa``            ``evaluate_videoqa`` (MSR-VTT MC)       accuracy
``segmentation``       ``evaluate_segmentation`` (COIN)        frame accuracy + background baseline
``crosstask``          ``evaluate_step_localization``          ``crosstask.recall``
=====================  ======================================  ==================================

Every evaluator is ``evaluate_X(model, data_dir, *, features=None, batch_size, device=None,
out_path=None, progress=True) -> (results dict, predictions DataFrame)``; ``results["protocol"]``
says whether a number follows the official protocol or the original code's variant, and
``results["skipped"]`` counts the items the protocol dropped, by reason.
"""

from videoclip.evaluation.crosstask import align_steps, evaluate_step_localization, recall
from videoclip.evaluation.didemo import evaluate_didemo, moment_metrics
from videoclip.evaluation.metrics import retrieval_metrics
from videoclip.evaluation.retrieval import evaluate_retrieval
from videoclip.evaluation.segmentation import evaluate_segmentation, outside_threshold
from videoclip.evaluation.videoqa import evaluate_videoqa

__all__ = [
    "align_steps",
    "evaluate_didemo",
    "evaluate_retrieval",
    "evaluate_segmentation",
    "evaluate_step_localization",
    "evaluate_videoqa",
    "moment_metrics",
    "outside_threshold",
    "recall",
    "retrieval_metrics",
]
