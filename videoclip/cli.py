"""Command line: ``python -m videoclip <command> …`` (also installed as ``videoclip``).

Every subcommand is one ``_add_<name>(subparsers)`` that declares its arguments and one
``_<name>(args)`` handler that calls the library; heavy imports happen inside the handlers so
``--help`` stays fast. Every error prints as one line ``error: <what>, <where>, <what to do>`` on
stderr, exit status 2 for a usage error (bad arguments or configuration, an output that must not be
written over) and 1 for a failure;
``--debug`` (anywhere on the line) shows the traceback instead. :func:`run_guarded` is that policy,
shared by every subcommand and by the book's runner.

The book's notebooks have their own runner, ``python -m videoclip.book run | all | sync``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

PACKAGE_DIR = Path(__file__).resolve().parent
# Exceptions that mean "change the command line" (exit status 2): bad arguments or configuration,
# or an output that holds something (--overwrite, --resume). By name: most classes live in modules
# too heavy to import before a command runs.
USAGE_ERRORS = frozenset(
    {
        "ArgumentTypeError",
        "ConfigError",
        "FileExistsError",
        "UsageError",
        "ParameterTypeError",
        "UnknownBenchmarkError",
        "UnknownNotebookError",
        "UnknownParameterError",
    }
)


class UsageError(ValueError):
    """Options that do not go together, or one that another needs (exit status 2)."""


class Parser(argparse.ArgumentParser):
    """``argparse`` whose usage errors are one line, like every other error."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {message}; see `{self.prog} --help`", file=sys.stderr)
        sys.exit(2)


def _raised_by_package(err: BaseException) -> bool:
    """Raised on purpose: a class of the package, an OSError, or raised by the package's code."""
    frames = traceback.extract_tb(err.__traceback__)
    return (
        type(err).__module__.startswith("videoclip")
        or isinstance(err, OSError)
        or bool(frames)
        and Path(frames[-1].filename).resolve().is_relative_to(PACKAGE_DIR)
    )


def error_line(err: BaseException) -> str:
    """``error: …`` on one line; an error the package did not raise on purpose names its type."""
    text = err.args[0] if isinstance(err, KeyError) and len(err.args) == 1 else str(err)
    text = " ".join(str(text).split()) or type(err).__name__
    if not _raised_by_package(err):
        text = f"{type(err).__name__}: {text} (unexpected; rerun with --debug for the traceback)"
    return f"error: {text}"


def run_guarded(command: Callable[[], int | None], *, debug: bool = False) -> int:
    """Run ``command()`` under the error policy: one line on stderr, exit 2 (usage) or 1."""
    try:
        return int(command() or 0)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        if debug:
            raise
        print(error_line(err), file=sys.stderr)
        return 2 if type(err).__name__ in USAGE_ERRORS else 1


OVERWRITE_HELP = "write into an existing, non-empty output (files of the same name are replaced)"


# ---------------------------------------------------------------------------------- pretrain


def _add_pretrain(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "pretrain",
        help="VideoCLIP pre-training with retrieval-augmented batches (torchrun for multi-GPU)",
        description="VideoCLIP pre-training. Any config field can be overridden: --key value or "
        "--key=value (YAML values), e.g. --lr 1e-4 --grouping=random.",
        epilog="overrides: --KEY VALUE for any key of a preset (params/pretrain/*.yaml), e.g. "
        "--data_dir ROOT --run_dir runs/x --num_epochs 2 --lr 1e-3 --seed 0 "
        "--backbone minilm-l6; values are YAML (1e-3 is a float, [0.9, 0.98] a list); an "
        "unknown key is an error that lists every known key. A fresh run needs a missing "
        "or empty run_dir; --resume continues the run in it.",
    )
    p.add_argument("--preset", help="YAML preset (flat parameters or sections)")
    p.add_argument("--resume", action="store_true", help="continue the run in run_dir")
    p.set_defaults(handler=_pretrain, takes_overrides=True)


def _parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``["--lr", "1e-4", "--grouping=random"]`` → ``{"lr": 1e-4, "grouping": "random"}`` (YAML values)."""
    import yaml

    from videoclip._yaml import load_yaml
    from videoclip.train import ConfigError

    overrides: dict[str, Any] = {}
    i = 0
    while i < len(items):
        item = items[i]
        if not item.startswith("--"):
            raise ConfigError(
                f"unexpected argument {item!r}; overrides are --key value or --key=value"
            )
        if "=" in item:
            key, text = item[2:].split("=", 1)
            i += 1
        else:
            if i + 1 >= len(items):
                raise ConfigError(f"{item} needs a value")
            key, text = item[2:], items[i + 1]
            i += 2
        try:
            overrides[key.replace("-", "_")] = load_yaml(text)
        except yaml.YAMLError as err:
            problem = getattr(err, "problem", None) or "not YAML"
            raise ConfigError(
                f"--{key} {text!r}: the value is not a YAML literal ({problem})"
            ) from None
    return overrides


def _pretrain(args: argparse.Namespace) -> int:
    from videoclip.train import PretrainConfig, pretrain

    overrides = _parse_overrides(args.overrides)
    if args.resume:
        overrides["resume"] = True
    cfg = (
        PretrainConfig.from_yaml(args.preset, overrides)
        if args.preset
        else PretrainConfig.from_dict(overrides, source="command line")
    )
    print(pretrain(cfg))
    return 0


# ---------------------------------------------------------------------------------- finetune


def _add_finetune(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "finetune", help="fine-tune a pre-trained model on one downstream task (torchrun for multi-GPU)",
        description="Fine-tune a pre-trained model (--init: a save_pretrained directory) on one task "
                    "(design §10). A preset holds shared keys and a section per task; any config "
                    "field can be overridden: --key value or --key=value (YAML values). Writes "
                    "run_dir/results.json (every epoch's test scores, both selection rules).")
    p.add_argument("task", choices=("youcook2", "msrvtt", "msrvtt-qa", "coin", "crosstask"))
    p.add_argument("--preset", help="YAML preset, e.g. params/finetune/{smoke,toy,paper}.yaml")
    p.add_argument("--resume", action="store_true", help="continue the run in run_dir")
    p.set_defaults(handler=_finetune, takes_overrides=True)


def _finetune(args: argparse.Namespace) -> int:
    from videoclip.finetune.loop import FinetuneConfig, finetune, load_preset

    overrides = {**_parse_overrides(args.overrides), "task": args.task}
    if args.resume:
        overrides["resume"] = True
    cfg = (load_preset(args.preset, overrides) if args.preset
           else FinetuneConfig.from_dict(overrides, source="command line"))
    print(finetune(cfg))
    return 0


# ---------------------------------------------------------------------------------- evaluate


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="zero-shot evaluation of a model on one benchmark",
        description="Zero-shot evaluation of a saved model (a save_pretrained directory, e.g. a run's "
        "final/) or of the released MMPT checkpoint on one benchmark of a data root "
        "(layout: book/paper_profile.md). Prints the results as JSON.",
    )
    p.add_argument(
        "task",
        help="a benchmark: youcook2 | msrvtt | didemo | msrvtt-mc | coin | "
        "crosstask (the rows of videoclip/evaluation/registry.py)",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="a save_pretrained directory, or milnce (MIL-NCE's S3D "
                                        "text tower on the features themselves; needs --s3d)")
    source.add_argument("--mmpt-checkpoint", type=Path, help="the released fairseq checkpoint")
    p.add_argument(
        "--backbone",
        default="bert-base-uncased",
        help="tokenizer/config source for --mmpt-checkpoint",
    )
    p.add_argument("--s3d", type=Path, help="MIL-NCE's s3d_howto100m.pth (--model milnce)")
    p.add_argument("--s3d-dict", type=Path, help="MIL-NCE's s3d_dict.npy (--model milnce)")
    p.add_argument("--data-dir", type=Path, required=True, help="the data root")
    p.add_argument("--device", default=None, help="cpu | cuda (default: cuda when available)")
    p.add_argument("--out", type=Path, default=None, help="write results with provenance here")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    p.set_defaults(handler=_evaluate)


def _evaluate(args: argparse.Namespace) -> int:
    from videoclip._io import check_output_file
    from videoclip.evaluation.registry import benchmark
    from videoclip.model import VideoCLIP

    evaluate = benchmark(args.task).evaluate
    if args.out is not None:  # before the work: a bad --out must not cost the whole evaluation
        check_output_file(args.out, overwrite=args.overwrite)
    if args.model == "milnce":
        model = _milnce_scorer(args, "--model milnce")
    elif args.model is not None:
        model = VideoCLIP.from_pretrained(Path(args.model))
    else:
        model = VideoCLIP.from_mmpt_checkpoint(args.mmpt_checkpoint, backbone=args.backbone)
    results, _ = evaluate(model.eval(), args.data_dir, device=args.device, out_path=args.out)
    print(json.dumps(results, indent=2, default=str))
    return 0


def _milnce_scorer(args: argparse.Namespace, what: str):
    """MIL-NCE's text tower and feature pooling (design §12) from ``--s3d`` and ``--s3d-dict``."""
    from videoclip.video.milnce import MilNCEScorer

    if args.s3d is None or args.s3d_dict is None:
        raise UsageError(f"{what} needs --s3d s3d_howto100m.pth and --s3d-dict "
                                "s3d_dict.npy (MIL-NCE's text tower)")
    return MilNCEScorer.from_milnce_checkpoint(args.s3d, dict_path=args.s3d_dict)


# ---------------------------------------------------------------------------------- convert


def _add_convert(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "convert",
        help="the released MMPT checkpoint → save_pretrained directory",
        description="Convert the released MMPT checkpoint into a save_pretrained directory (design §2).",
    )
    p.add_argument("checkpoint", type=Path, help="the released checkpoint_best.pt")
    p.add_argument("out_dir", type=Path, help="directory to write (safetensors + config.json)")
    p.add_argument(
        "--backbone",
        default="bert-base-uncased",
        help="tokenizer/config source: a hub name or a local bert-base-uncased directory",
    )
    p.add_argument(
        "--trust-pickle",
        action="store_true",
        help="allow arbitrary pickled objects in the checkpoint (only for files you trust)",
    )
    p.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    p.set_defaults(handler=_convert)


def _convert(args: argparse.Namespace) -> int:
    from videoclip._io import check_output_dir
    from videoclip.model import VideoCLIP

    check_output_dir(args.out_dir, overwrite=args.overwrite, option="out_dir")
    model = VideoCLIP.from_mmpt_checkpoint(
        args.checkpoint, backbone=args.backbone, trust_pickle=args.trust_pickle
    )
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


# ----------------------------------------------------------------------------------- extract


def _device(requested: str | None) -> str:
    import torch

    if requested:
        return requested
    if torch.cuda.is_available():
        return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    return "cpu"


def _add_extract(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "extract", help="S3D features (one <video_id>.npy per video) from raw videos",
        description="MMPT's S3D feature recipe (30 fps, 224², one L2-normalised 512-d vector per "
                    "second, float16). Resumable: videos with features are skipped. Under "
                    "torchrun each rank takes its share (RANK/WORLD_SIZE).")
    p.add_argument("inputs", nargs="+", help="video files or folders of videos (recursive)")
    p.add_argument("--s3d", required=True, type=Path, help="MIL-NCE's s3d_howto100m.pth")
    p.add_argument("--s3d-dict", required=True, type=Path, help="MIL-NCE's s3d_dict.npy")
    p.add_argument("--out", required=True, type=Path, help="feature folder")
    p.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1),
                   help="decoding processes (0: decode in this process)")
    p.add_argument("--batch-size", type=int, default=16, help="30-frame chunks per S3D call")
    p.add_argument("--device", default=None, help="cpu | cuda (default: cuda when available)")
    p.add_argument("--size", type=int, default=224,
                   help="frame size (the recipe's 224; smaller only for tests and demos)")
    p.add_argument("--overwrite", action="store_true",
                   help="write into a folder extract did not make, re-extracting every video")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler=_extract)


def _extract(args: argparse.Namespace) -> int:
    import torch

    from videoclip.video.extract import (
        extract_videos,
        list_videos,
        prepare_out_dir,
        weights_digest,
        write_failures,
    )
    from videoclip.video.s3d import S3D

    rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    device = _device(args.device)
    if device == "cpu" and "OMP_NUM_THREADS" not in os.environ:
        # the decoding processes need their cores: oversubscribed torch threads run S3D ~20x slower
        torch.set_num_threads(max(1, (os.cpu_count() or 1) - args.workers))
    videos = list_videos(args.inputs)[rank::world]
    s3d = S3D.from_milnce_checkpoint(args.s3d, dict_path=args.s3d_dict).to(device)
    prepare_out_dir(args.out, weights_digest=weights_digest(args.s3d), overwrite=args.overwrite,
                    size=args.size)
    report = extract_videos(s3d, videos, args.out, workers=args.workers, size=args.size,
                            batch_size=args.batch_size, redo=args.overwrite,
                            progress=not args.no_progress)
    failures = write_failures(args.out, report, rank=rank, world_size=world)
    prefix = f"rank {rank}/{world}: " if world > 1 else ""
    print(f"{prefix}{report.summary()}")
    for reason in report.failed.values():
        print(f"  failed: {reason}", file=sys.stderr)
    if failures is not None:
        print(f"{prefix}failures listed in {failures}", file=sys.stderr)
    return 1 if report.failed else 0


# ------------------------------------------------------------------------------------- index


def _add_index(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "index", help="embed 32-s windows of every video into a FAISS moment index",
        description="Sliding windows (32 s, stride 16 s) of each video's features, embedded by "
                    "VideoCLIP's video tower (--model DIR, a save_pretrained folder) or, with "
                    "--model milnce, the mean of the S3D vectors themselves.")
    p.add_argument("features", type=Path, help="feature folder (extract's --out) or packed store")
    p.add_argument("--model", required=True, help="a save_pretrained folder, or milnce")
    p.add_argument("--out", required=True, type=Path, help="index folder to write")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default=None, help="cpu | cuda (default: cuda when available)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing index folder")
    p.set_defaults(handler=_index)


def _index(args: argparse.Namespace) -> int:
    from videoclip._io import check_output_dir
    from videoclip.data.features import open_feature_store
    from videoclip.model import VideoCLIP
    from videoclip.video.index import MomentIndex, mean_embedding, tower_embedding

    check_output_dir(args.out, overwrite=args.overwrite)  # before the work, not after
    store = open_feature_store(args.features)
    if args.model == "milnce":
        embed, model_name = mean_embedding, "milnce"
    else:
        model_dir = Path(args.model).resolve()  # search reloads it from any folder
        model = VideoCLIP.from_pretrained(model_dir).eval().to(_device(args.device))
        embed, model_name = tower_embedding(model), str(model_dir)
    index = MomentIndex.build(store, embed, model=model_name, batch_size=args.batch_size,
                              progress=True)
    index.save(args.out, overwrite=args.overwrite)
    print(f"indexed {len(index)} moments of {len(store)} videos ({index.dim}-d, {model_name}) "
          f"into {args.out}")
    return 0


# ------------------------------------------------------------------------------------ search


def _add_search(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "search", help="the best moments of an index for a text query",
        description="Ranked moments (video, start s, end s, score) for a text query, embedded "
                    "by the index's model: VideoCLIP's text tower, or MIL-NCE's (--s3d and "
                    "--s3d-dict needed) for an index built with --model milnce.")
    p.add_argument("index", type=Path, help="index folder (index's --out)")
    p.add_argument("query", help="the text to search for")
    p.add_argument("-k", type=int, default=10, help="moments to return")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--model", default=None, type=Path,
                   help="the model folder (default: the one the index was built with)")
    p.add_argument("--s3d", type=Path, help="MIL-NCE's s3d_howto100m.pth (milnce indexes)")
    p.add_argument("--s3d-dict", type=Path, help="MIL-NCE's s3d_dict.npy (milnce indexes)")
    p.add_argument("--device", default=None, help="cpu | cuda (default: cuda when available)")
    p.set_defaults(handler=_search)


def _search(args: argparse.Namespace) -> int:
    import torch

    from videoclip.video.index import MomentIndex, format_moments

    index = MomentIndex.load(args.index)
    if index.model == "milnce":
        model = _milnce_scorer(args, f"{args.index} (a milnce index)")
    else:
        from videoclip.model import VideoCLIP

        model = VideoCLIP.from_pretrained(args.model or Path(index.model))
    model = model.eval().to(_device(args.device))
    with torch.inference_mode():
        query = model.encode_texts([args.query]).float().cpu().numpy()[0]
    hits = index.search(query, args.k)
    if args.json:
        print(json.dumps([m._asdict() for m in hits], indent=1))
    else:
        print(format_moments(hits))
    return 0


# ---------------------------------------------------------------------------------- main

SUBCOMMANDS = (_add_pretrain, _add_finetune, _add_evaluate, _add_convert, _add_features,
               _add_extract, _add_index, _add_search)


def build_parser(
    subcommands: Sequence[Callable[[argparse._SubParsersAction], None]] = SUBCOMMANDS,
    prog: str = "videoclip",
) -> argparse.ArgumentParser:
    parser = Parser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--debug",
        action="store_true",
        help="show the traceback of an error (accepted anywhere on the line)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in subcommands:
        add(sub)
    return parser


def main(
    argv: Sequence[str] | None = None,
    subcommands: Sequence[Callable[[argparse._SubParsersAction], None]] = SUBCOMMANDS,
    prog: str = "videoclip",
) -> int:
    """Parse ``argv`` and run the chosen subcommand under :func:`run_guarded`."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    parser = build_parser(subcommands, prog)
    try:  # usage errors and --help exit through SystemExit; return their status instead
        args, rest = parser.parse_known_args(argv)
        if rest and not getattr(args, "takes_overrides", False):
            parser.error(f"unrecognized arguments: {' '.join(rest)}")
    except SystemExit as exit_:
        return int(exit_.code or 0)
    if args.command is None:
        parser.print_help()
        return 2
    args.overrides = rest
    return run_guarded(lambda: args.handler(args), debug=debug)


if __name__ == "__main__":
    sys.exit(main())
