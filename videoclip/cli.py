"""Command line: ``python -m videoclip <command> …`` (also installed as ``videoclip``).

Every subcommand is one ``_add_<name>(subparsers)`` that declares its arguments and one
``_<name>(args)`` handler that calls the library; heavy imports happen inside the handlers so
``--help`` stays fast. Errors the package raises on purpose (its own exception classes, missing or
existing files) print as one line ``error: …`` with exit status 2; ``--debug`` shows the traceback.

The book's notebooks have their own runner, ``python -m videoclip.book run | all | sync``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# ---------------------------------------------------------------------------------- simulate


def _add_simulate(sub: argparse._SubParsersAction) -> None:
    from videoclip.sim.config import PRESETS

    p = sub.add_parser("simulate", help="write a simulated data root (features + captions + all benchmarks)",
                       description="Write a simulated data root in the benchmarks' official formats.")
    p.add_argument("--out", required=True, help="data root to write")
    p.add_argument("--preset", default="toy", choices=sorted(PRESETS))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--real-data", default=None, help="real annotation files to ground text in")
    p.add_argument("--num-videos", type=int, default=None, help="override the corpus size")
    p.set_defaults(handler=_simulate)


def _simulate(args: argparse.Namespace) -> int:
    from videoclip.sim.world import simulate

    overrides = {} if args.num_videos is None else {"num_videos": args.num_videos}
    path = simulate(args.out, preset=args.preset, seed=args.seed, real_data_dir=args.real_data,
                    **overrides)
    sizes = json.loads((path / "world.json").read_text())["sizes"]
    print(f"wrote {path}: " + ", ".join(f"{k} {v}" for k, v in sizes.items()))
    return 0


# ---------------------------------------------------------------------------------- pretrain


def _add_pretrain(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "pretrain", help="VideoCLIP pre-training with retrieval-augmented batches (torchrun for multi-GPU)",
        description="VideoCLIP pre-training. Any config field can be overridden: --key value or "
                    "--key=value (YAML values), e.g. --lr 1e-4 --grouping=random.")
    p.add_argument("--preset", help="YAML preset (flat parameters or sections)")
    p.add_argument("--resume", action="store_true", help="continue the run in run_dir")
    p.set_defaults(handler=_pretrain, takes_overrides=True)


def _parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``["--lr", "1e-4", "--grouping=random"]`` → ``{"lr": 1e-4, "grouping": "random"}`` (YAML values)."""
    import yaml

    from videoclip.train import ConfigError

    overrides: dict[str, Any] = {}
    i = 0
    while i < len(items):
        item = items[i]
        if not item.startswith("--"):
            raise ConfigError(f"unexpected argument {item!r}; overrides are --key value or --key=value")
        if "=" in item:
            key, text = item[2:].split("=", 1)
            i += 1
        else:
            if i + 1 >= len(items):
                raise ConfigError(f"{item} needs a value")
            key, text = item[2:], items[i + 1]
            i += 2
        overrides[key.replace("-", "_")] = yaml.safe_load(text)
    return overrides


def _pretrain(args: argparse.Namespace) -> int:
    from videoclip.train import PretrainConfig, pretrain

    overrides = _parse_overrides(args.overrides)
    if args.resume:
        overrides["resume"] = True
    cfg = (PretrainConfig.from_yaml(args.preset, overrides) if args.preset
           else PretrainConfig.from_dict(overrides, source="command line"))
    print(pretrain(cfg))
    return 0


# ---------------------------------------------------------------------------------- evaluate


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate", help="zero-shot evaluation of a model on one benchmark",
        description="Zero-shot evaluation of a saved model (a save_pretrained directory, e.g. a run's "
                    "final/) or of the released MMPT checkpoint on one benchmark of a data root "
                    "(layout: book/paper_profile.md). Prints the results as JSON.")
    p.add_argument("task", help="a benchmark: youcook2 | msrvtt | didemo | msrvtt-mc | coin | "
                                "crosstask (the rows of videoclip/evaluation/registry.py)")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", type=Path, help="a save_pretrained directory")
    source.add_argument("--mmpt-checkpoint", type=Path, help="the released fairseq checkpoint")
    p.add_argument("--backbone", default="bert-base-uncased",
                   help="tokenizer/config source for --mmpt-checkpoint")
    p.add_argument("--data-dir", type=Path, required=True, help="the data root")
    p.add_argument("--device", default=None, help="cpu | cuda (default: cuda when available)")
    p.add_argument("--out", type=Path, default=None, help="write results with provenance here")
    p.set_defaults(handler=_evaluate)


def _evaluate(args: argparse.Namespace) -> int:
    from videoclip.evaluation.registry import benchmark
    from videoclip.model import VideoCLIP

    evaluate = benchmark(args.task).evaluate
    model = (VideoCLIP.from_pretrained(args.model) if args.model is not None
             else VideoCLIP.from_mmpt_checkpoint(args.mmpt_checkpoint, backbone=args.backbone))
    results, _ = evaluate(model.eval(), args.data_dir, device=args.device, out_path=args.out)
    print(json.dumps(results, indent=2, default=str))
    return 0


# ---------------------------------------------------------------------------------- convert


def _add_convert(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "convert", help="the released MMPT checkpoint → save_pretrained directory",
        description="Convert the released MMPT checkpoint into a save_pretrained directory (design §2).")
    p.add_argument("checkpoint", type=Path, help="the released checkpoint_best.pt")
    p.add_argument("out_dir", type=Path, help="directory to write (safetensors + config.json)")
    p.add_argument("--backbone", default="bert-base-uncased",
                   help="tokenizer/config source: a hub name or a local bert-base-uncased directory")
    p.add_argument("--trust-pickle", action="store_true",
                   help="allow arbitrary pickled objects in the checkpoint (only for files you trust)")
    p.set_defaults(handler=_convert)


def _convert(args: argparse.Namespace) -> int:
    from videoclip.model import VideoCLIP

    model = VideoCLIP.from_mmpt_checkpoint(args.checkpoint, backbone=args.backbone,
                                           trust_pickle=args.trust_pickle)
    model.save_pretrained(args.out_dir)
    print(f"wrote {args.out_dir}")
    return 0


# ---------------------------------------------------------------------------------- features


def _add_features(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("features", help="pack a folder of <vid>.npy into one memory-mapped store (pack | unpack)",
                       description="Convert feature stores between the per-video and the packed layout "
                                   "(design §3); the loaders open either at the same path.")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    pack = actions.add_parser("pack", help="a folder of <vid>.npy -> one packed, memory-mapped store")
    pack.add_argument("src", type=Path, help="a folder of <vid>.npy (or a packed store)")
    pack.add_argument("out", type=Path, help="the new store's folder (must not exist)")
    pack.add_argument("--shard-videos", type=int, default=4096, help="videos per shard")
    unpack = actions.add_parser("unpack", help="a packed store -> a folder of <vid>.npy")
    unpack.add_argument("src", type=Path, help="a packed store")
    unpack.add_argument("out", type=Path, help="the folder to write <vid>.npy into")
    for action in (pack, unpack):
        action.add_argument("--dim", type=int, default=512, help="feature dimension (S3D: 512)")
    p.set_defaults(handler=_features)


def _features(args: argparse.Namespace) -> int:
    from videoclip.data.features import pack_features, unpack_features

    if args.action == "pack":
        store = pack_features(args.src, args.out, shard_videos=args.shard_videos, dim=args.dim)
    else:
        store = unpack_features(args.src, args.out, dim=args.dim)
    print(f"wrote {store!r}")
    return 0


# ---------------------------------------------------------------------------------- main

SUBCOMMANDS = (_add_simulate, _add_pretrain, _add_evaluate, _add_convert, _add_features)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="videoclip", description=__doc__.split("\n\n")[0])
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in SUBCOMMANDS:
        add(sub)
    return parser


def _is_user_error(err: BaseException) -> bool:
    """An error the package raises on purpose: one of its own classes, or a missing/existing file."""
    return (type(err).__module__.startswith("videoclip")
            or isinstance(err, (FileNotFoundError, FileExistsError)))


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(list(sys.argv[1:] if argv is None else argv))
    if args.command is None:
        parser.print_help()
        return 2
    if rest and not getattr(args, "takes_overrides", False):
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    args.overrides = rest
    try:
        return int(args.handler(args) or 0)
    except Exception as err:
        if args.debug or not _is_user_error(err):
            raise
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
