"""The ``extract``, ``index`` and ``search`` subcommands: raw videos → features → index → moments.

Each command is one ``add_<name>_parser(subparsers)`` declaring its arguments and one
``run_<name>(args)`` handler, so the package CLI wires each in with one line. Heavy imports
happen inside the handlers so ``--help`` stays fast. ``python -m videoclip.video.commands``
runs them standalone.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["add_extract_parser", "add_index_parser", "add_search_parser", "main",
           "run_extract", "run_index", "run_search"]


def _device(requested: str | None) -> str:
    import torch

    if requested:
        return requested
    if torch.cuda.is_available():
        return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    return "cpu"


# ----------------------------------------------------------------------------------- extract


def add_extract_parser(sub: argparse._SubParsersAction) -> None:
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
    p.set_defaults(handler=run_extract)


def run_extract(args: argparse.Namespace) -> int:
    from videoclip.video.extract import (
        extract_videos,
        list_videos,
        prepare_out_dir,
        weights_digest,
        write_failures,
    )
    from videoclip.video.s3d import S3D

    import torch

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


def add_index_parser(sub: argparse._SubParsersAction) -> None:
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
    p.set_defaults(handler=run_index)


def run_index(args: argparse.Namespace) -> int:
    from videoclip.data.features import open_feature_store
    from videoclip.video.index import MomentIndex, check_out_dir

    check_out_dir(args.out, overwrite=args.overwrite)  # before the work, not after
    store = open_feature_store(args.features)
    if args.model == "milnce":
        embed, model_name = _milnce_embed, "milnce"
    else:
        embed, model_name = _videoclip_embed(Path(args.model), _device(args.device)), args.model
    index = MomentIndex.build(store, embed, model=model_name, batch_size=args.batch_size,
                              progress=True)
    index.save(args.out, overwrite=args.overwrite)
    print(f"indexed {len(index)} moments of {len(store)} videos ({index.dim}-d, {model_name}) "
          f"into {args.out}")
    return 0


def _milnce_embed(clips: list[np.ndarray]) -> np.ndarray:
    """MIL-NCE's clip vector: the mean of the per-second S3D vectors (SPEC §3)."""
    return np.stack([clip.astype(np.float32).mean(axis=0) for clip in clips])


def _videoclip_embed(model_dir: Path, device: str):
    import torch

    from videoclip.evaluation.common import encode_clips
    from videoclip.model import VideoCLIP

    model = VideoCLIP.from_pretrained(model_dir).eval().to(device)
    return lambda clips: encode_clips(model, clips, batch_size=len(clips),
                                      device=torch.device(device)).cpu().numpy()


# ------------------------------------------------------------------------------------ search


def add_search_parser(sub: argparse._SubParsersAction) -> None:
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
    p.set_defaults(handler=run_search)


def run_search(args: argparse.Namespace) -> int:
    import torch

    from videoclip.video.index import MomentIndex, MomentIndexError, format_moments

    index = MomentIndex.load(args.index)
    if index.model == "milnce":
        if args.s3d is None or args.s3d_dict is None:
            raise MomentIndexError(f"{args.index}: a milnce index; pass --s3d s3d_howto100m.pth "
                                   "and --s3d-dict s3d_dict.npy for MIL-NCE's text tower")
        from videoclip.video.milnce import MilNCEScorer

        model = MilNCEScorer.from_milnce_checkpoint(args.s3d, dict_path=args.s3d_dict)
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


# -------------------------------------------------------------------------------- standalone


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m videoclip.video.commands extract|index|search …``; errors as one line."""
    parser = argparse.ArgumentParser(prog="videoclip", description=__doc__)
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (add_extract_parser, add_index_parser, add_search_parser):
        add(sub)
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except Exception as err:
        if args.debug or not (type(err).__module__.startswith("videoclip")
                              or isinstance(err, (FileNotFoundError, FileExistsError))):
            raise
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
