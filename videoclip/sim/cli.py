"""The simulator's command line: ``python -m videoclip.sim simulate --out DIR [--preset toy]``.

It lives beside the simulator, not in ``videoclip.cli``: the library never imports ``videoclip.sim``
(the layer rule, README "Layout"). Errors follow the library CLI's policy (:func:`videoclip.cli.run_guarded`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from videoclip import cli
from videoclip.sim.config import PRESETS
from videoclip.sim.world import simulate


def _add_simulate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "simulate",
        help="write a simulated data root (features + captions + all benchmarks)",
        description="Write a simulated data root in the benchmarks' official formats.",
    )
    p.add_argument("--out", required=True, help="data root to write")
    p.add_argument("--preset", default="toy", choices=sorted(PRESETS))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--real-data", default=None, help="real annotation files to ground text in")
    p.add_argument("--num-videos", type=int, default=None, help="override the corpus size")
    p.add_argument("--overwrite", action="store_true", help=cli.OVERWRITE_HELP)
    p.set_defaults(handler=_simulate)


def _simulate(args: argparse.Namespace) -> int:
    overrides = {} if args.num_videos is None else {"num_videos": args.num_videos}
    path = simulate(
        args.out,
        preset=args.preset,
        seed=args.seed,
        real_data_dir=args.real_data,
        overwrite=args.overwrite,
        **overrides,
    )
    sizes = json.loads((path / "world.json").read_text())["sizes"]
    print(f"wrote {path}: " + ", ".join(f"{k} {v}" for k, v in sizes.items()))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return cli.main(argv, subcommands=(_add_simulate,), prog="python -m videoclip.sim")


if __name__ == "__main__":
    sys.exit(main())
