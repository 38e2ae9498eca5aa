"""Command line: ``python -m videoclip <command> …`` (also installed as ``videoclip``).

Commands:
  simulate    write a simulated data root (features + captions + all benchmarks)
  pretrain    VideoCLIP pre-training with retrieval-augmented batches (torchrun for multi-GPU)
  evaluate    zero-shot evaluation of a model on one benchmark
  convert     the released MMPT checkpoint → save_pretrained directory
  features    pack a folder of <vid>.npy into one memory-mapped store (pack | unpack)
  notebooks   execute the book's notebooks (run | all | sync)
"""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "simulate": "videoclip.data.simulate",
    "pretrain": "videoclip.train",
    "evaluate": "videoclip.evaluation.cli",
    "convert": "videoclip.checkpoint",
    "features": "videoclip.data.features",
    "notebooks": "videoclip.notebooks",
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        print(__doc__)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    module = importlib.import_module(COMMANDS[argv[0]])
    return int(module.main(argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())
