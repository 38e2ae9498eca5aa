"""``python -m videoclip evaluate TASK --model DIR --data-dir ROOT [--out results.json]``.

Zero-shot evaluation of a saved model (``save_pretrained`` directory, e.g. a run's ``final/``) or of
the released MMPT checkpoint (``--mmpt-checkpoint checkpoint_best.pt --backbone bert-base-uncased``)
on one benchmark of a data root (layout: book/paper_profile.md). Prints the results as JSON.
"""

from __future__ import annotations

import argparse
import json
from functools import partial
from pathlib import Path

from videoclip.evaluation.crosstask import evaluate_step_localization
from videoclip.evaluation.didemo import evaluate_didemo
from videoclip.evaluation.retrieval import evaluate_retrieval
from videoclip.evaluation.segmentation import evaluate_segmentation
from videoclip.evaluation.videoqa import evaluate_videoqa

TASKS = {
    "youcook2": partial(evaluate_retrieval, benchmark="youcook2"),
    "msrvtt": partial(evaluate_retrieval, benchmark="msrvtt"),
    "didemo": evaluate_didemo,
    "msrvtt-mc": evaluate_videoqa,
    "coin": evaluate_segmentation,
    "crosstask": evaluate_step_localization,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="videoclip evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("task", choices=sorted(TASKS))
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", type=Path, help="a save_pretrained directory")
    source.add_argument("--mmpt-checkpoint", type=Path, help="the released fairseq checkpoint")
    parser.add_argument("--backbone", default="bert-base-uncased",
                        help="tokenizer/config source for --mmpt-checkpoint")
    parser.add_argument("--data-dir", type=Path, required=True, help="the data root")
    parser.add_argument("--device", default=None, help="cpu | cuda (default: cuda when available)")
    parser.add_argument("--out", type=Path, default=None, help="write results with provenance here")
    args = parser.parse_args(argv)

    from videoclip.model import VideoCLIP

    model = (VideoCLIP.from_pretrained(args.model) if args.model is not None
             else VideoCLIP.from_mmpt_checkpoint(args.mmpt_checkpoint, backbone=args.backbone))
    results, _ = TASKS[args.task](model.eval(), args.data_dir, device=args.device, out_path=args.out)
    print(json.dumps(results, indent=2, default=str))
    return 0
