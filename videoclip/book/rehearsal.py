"""``make rehearsal``: the paper and released profiles, end to end, on a rehearsal data root.

book/paper_profile.md tells a user with S3D features what to run; nobody here has them. This
rehearsal runs those instructions on the next best thing and proves the layout, the loaders and
every chapter at the real annotation files' full size (book/paper_profile.md §5):

1. the data root of :func:`videoclip.sim.rehearsal.build_rehearsal_root` (the real annotation
   files, random features of the annotated lengths), its HowTo100M features packed with
   ``videoclip features pack`` and moved into place exactly as paper_profile.md §2 says;
   the pre-training run by paper_profile.md §3's ``torchrun`` commands (one process), which
   chapter 03 then finds and reuses;
2. a small random BERT-shaped backbone (the stand-in for ``bert-base-uncased``, which needs the
   hub) and a pre-training preset: ``params/pretrain/paper.yaml`` with sizes overridden
   (:data:`PRETRAIN_SIZES`);
3. every chapter on the **paper** profile, overriding only sizes (:data:`CHAPTER_SIZES`);
4. a random checkpoint in the released layout, converted with ``videoclip convert``, and every
   chapter on the **released** profile (03, 04 and 09 are written as skipped).

Each step is reused when already done (the runner's stamps); ``rehearsal.json`` in the output
directory records the wall time of each chapter and the counts the evaluators scored.

    python -m videoclip.book.rehearsal --annotations $VIDEOCLIP_DATA_DIR [--out artifacts/rehearsal]
        [--device auto] [--profiles paper,released] [--chapters 05,06]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from videoclip._io import atomic_dir, atomic_write_json, atomic_write_text
from videoclip.book.runner import (
    PARAMS_DIR,
    REPO,
    declared_parameters,
    list_notebooks,
    run_notebook,
)
from videoclip.sim.rehearsal import build_rehearsal_root, write_mmpt_checkpoint

#: params/pretrain/paper.yaml's values that a CPU rehearsal shrinks (everything else is the paper's).
PRETRAIN_SIZES = {
    "num_video_layers": 1,  # paper: 6
    "clip_per_video": 4,  # paper: 16
    "num_video_per_batch": 8,  # paper: 32
    "num_epochs": 1,  # paper: 25
    "warmup_steps": 2,  # paper: 1000
    "total_steps": 0,  # paper: 1e6 (decay over this run's own steps)
    "num_neighbours": 16,  # paper: 64
    "retrieval_clips": 2,  # paper: 16
    "nlist": 1,  # paper: 512 (IVF kept; one list trains on the smallest corpus here, 58 videos)
}
#: The small random BERT that stands in for bert-base-uncased: narrow (64), but 6 layers deep,
#: as chapter 09's shared-towers row keeps the paper's 6 layers in both towers.
BACKBONE = {"hidden_size": 64, "num_hidden_layers": 6, "num_attention_heads": 2,
            "intermediate_size": 128}
#: Chapter parameters a CPU rehearsal shrinks, applied where a chapter declares them; "{...}" are
#: filled in by :func:`chapter_overrides`.
CHAPTER_SIZES: dict[str, Any] = {
    "backbone": "{backbone}",
    "num_video_layers": 1,
    "pretrain_preset": "{preset}",
    "finetune_preset": "{finetune}",  # chapter 13: params/finetune/paper.yaml with FINETUNE_SIZES
    "ablation_preset": "{preset}",
    "lag_preset": "{preset}",
    "world_preset": "smoke",  # the simulated side worlds of chapters 02 and 09 (paper: toy)
    "lag_world_preset": "smoke",
    "lag_world_videos": 60,
    "lag_scales": [0.0, 1.0],
    "s3d_weights": "",  # MIL-NCE's S3D weights (the MIL-NCE row) are not at hand: row not run
    "num_videos": 2,  # chapter 12's synthetic raw videos (paper: 8 of 30-44 s at 224², on a GPU)
    "video_seconds": 4,
    "frame_size": 64,
    "workers": 1,
    "seeds": [0],
    "spread_depths": [1, 2],  # chapter 09's towers cut to these depths (paper: up to 12 layers)
    "train_overrides": {"max_videos": 48},  # chapter 09: each ablation run on 48 videos (6 steps; IVF needs 39)
    "rounds": 1,
    "smooth_steps": 2,
}
#: Fine-tuning sizes a CPU rehearsal shrinks in every task of params/finetune/paper.yaml: one epoch
#: on a few training items (retrieval and QA: 16 items of 8 a batch; COIN, CrossTask: 2 videos);
#: the test sets, scored after the epoch, stay whole.
FINETUNE_SIZES = {"retrieval": {"num_epochs": 1, "batch_size": 8, "max_items": 16, "dup": 1},
                  "video": {"num_epochs": 1, "max_items": 2}}
PROFILES = ("paper", "released")


def write_backbone(path: Path) -> Path:
    """A random BERT of :data:`BACKBONE`'s sizes with MiniLM's (bert-base-uncased's) vocabulary."""
    import torch
    from transformers import BertConfig, BertModel

    from videoclip.backbone import load_tokenizer

    if (path / "config.json").is_file():
        return path
    torch.manual_seed(0)
    with atomic_dir(path) as tmp:
        BertModel(BertConfig(vocab_size=30522, **BACKBONE)).save_pretrained(tmp)
        load_tokenizer("minilm-l6").save_pretrained(tmp)
    return path


def write_preset(path: Path, backbone: Path) -> Path:
    """params/pretrain/paper.yaml with :data:`PRETRAIN_SIZES` and the local backbone."""
    preset = yaml.safe_load((PARAMS_DIR / "pretrain" / "paper.yaml").read_text())
    preset.update(PRETRAIN_SIZES, backbone=str(backbone))
    atomic_write_text(path, "# params/pretrain/paper.yaml, sizes overridden for the rehearsal\n"
                      + yaml.safe_dump(preset, sort_keys=False))
    return path


def write_finetune_preset(path: Path) -> Path:
    """params/finetune/paper.yaml with :data:`FINETUNE_SIZES` in every task's section."""
    preset = yaml.safe_load((PARAMS_DIR / "finetune" / "paper.yaml").read_text())
    preset.update(warmup_steps=1, eval_batch_size=64)
    for task, section in preset["tasks"].items():
        section.update(FINETUNE_SIZES["video" if task in ("coin", "crosstask") else "retrieval"])
    atomic_write_text(path, "# params/finetune/paper.yaml, sizes overridden for the rehearsal\n"
                      + yaml.safe_dump(preset, sort_keys=False))
    return path


def pack_howto100m(data_root: Path) -> None:
    """paper_profile.md §2's commands: pack the HowTo100M features, move the store into place."""
    features = data_root / "howto100m" / "features"
    if (features / "index.json").is_file():
        return
    packed = features.with_name("features.packed")
    subprocess.run([sys.executable, "-m", "videoclip", "features", "pack", str(features), str(packed)],
                   check=True)
    os.replace(features, features.with_name("features.npy"))
    os.replace(packed, features)


def convert_released(out: Path, backbone: Path) -> Path:
    """A random checkpoint in the released layout, converted as paper_profile.md §4 says."""
    converted = out / "converted"
    if (converted / "config.json").is_file():
        return converted
    checkpoint = write_mmpt_checkpoint(out / "checkpoint_best.pt", backbone, num_video_layers=1,
                                       num_text_layers=BACKBONE["num_hidden_layers"])
    subprocess.run([sys.executable, "-m", "videoclip", "convert", str(checkpoint), str(converted),
                    "--backbone", str(backbone)], check=True)
    return converted


def pretrain_with_torchrun(work_dir: Path, data_root: Path, preset: Path) -> Path:
    """paper_profile.md §3's multi-GPU commands on one process: the run directory the notebooks
    look for, then ``torchrun ... videoclip pretrain`` into it (chapter 03 then reuses the run)."""
    snippet = ("from videoclip.book.workspace import pretrain_run_dir as d; "
               f"print(d({str(work_dir)!r}, {str(data_root)!r}, preset={str(preset)!r}))")
    run_dir = subprocess.run([sys.executable, "-c", snippet], check=True, capture_output=True,
                             text=True).stdout.strip()
    if not (Path(run_dir) / "final" / "config.json").is_file():
        subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "1",
                        "-m", "videoclip", "pretrain", "--preset", str(preset),
                        "--data_dir", str(data_root), "--run_dir", run_dir], check=True)
    return Path(run_dir)


def chapter_overrides(path: Path, *, work_dir: Path, executed_dir: Path, annotations: Path,
                      backbone: Path, preset: Path, finetune_preset: Path, device: str) -> dict[str, Any]:
    """:data:`CHAPTER_SIZES` and the rehearsal's directories, for the parameters ``path`` declares."""
    fill = {"{backbone}": str(backbone), "{preset}": str(preset), "{finetune}": str(finetune_preset)}
    values = {key: fill.get(value, value) if isinstance(value, str) else value
              for key, value in CHAPTER_SIZES.items()}
    values.update(work_dir=str(work_dir), executed_dir=str(executed_dir),
                  real_data_dir=str(annotations), device=device)
    declared = declared_parameters(path)
    return {key: value for key, value in values.items() if key in declared}


def scored_counts(work_dir: Path) -> dict[str, dict[str, Any]]:
    """What the zero-shot chapters scored, from their results files (``work_dir/results``)."""
    keys = ("num_pairs", "num_scored", "num_questions", "num_videos", "num_test_videos", "skipped")
    counts = {}
    for results in sorted((work_dir / "results").glob("*.json")):
        payload = json.loads(results.read_text())["results"]
        for benchmark, record in payload.get("benchmarks", {}).items():
            if "headline" not in record:  # not a zero-shot benchmark record
                continue
            model = record["model"]
            counts[benchmark] = {"chapter": payload["chapter"], "headline": record["headline"],
                                 record["headline"]: model[record["headline"]],
                                 **{k: model[k] for k in keys if k in model}}
    return counts


def rehearse(annotations: Path, out: Path, *, device: str = "auto",
             profiles: tuple[str, ...] = PROFILES, chapters: tuple[str, ...] = ()) -> dict[str, Any]:
    """Run the rehearsal into ``out``; returns (and writes to ``out/rehearsal.json``) its record.

    ``chapters`` (numbers such as ``"06"``) limits it to those chapters (``bench/gpu.sh``'s
    short form); empty: every chapter."""
    start = time.perf_counter()
    out = out.resolve()
    data_root = out / "data"
    build_rehearsal_root(annotations, data_root)
    pack_howto100m(data_root)
    backbone = write_backbone(out / f"backbone-{BACKBONE['hidden_size']}x{BACKBONE['num_hidden_layers']}")
    preset = write_preset(out / "pretrain.yaml", backbone)
    finetune_preset = write_finetune_preset(out / "finetune.yaml")
    os.environ.update(VIDEOCLIP_DATA_DIR=str(data_root), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    record: dict[str, Any] = {"data_root": str(data_root), "build_s": round(time.perf_counter() - start, 1)}
    for profile in profiles:
        if profile == "released":
            os.environ["VIDEOCLIP_MODEL"] = str(convert_released(out, backbone))
        work_dir, executed_dir = out / f"work-{profile}", out / f"executed-{profile}"
        if profile == "paper":
            began = time.perf_counter()
            pretrain_with_torchrun(work_dir, data_root, preset)
            record["torchrun_s"] = round(time.perf_counter() - began, 1)
        seconds, upstream = {}, ""
        for path in list_notebooks():
            if chapters and path.stem[:2] not in chapters:
                continue
            overrides = chapter_overrides(path, work_dir=work_dir, executed_dir=executed_dir,
                                          annotations=annotations, backbone=backbone, preset=preset,
                                          finetune_preset=finetune_preset, device=device)
            began = time.perf_counter()
            _, upstream = run_notebook(path.stem, profile, overrides=overrides,
                                       output_dir=executed_dir, upstream=upstream)
            seconds[path.stem] = round(time.perf_counter() - began, 1)
        record[profile] = {"chapter_s": seconds, "executed": str(executed_dir),
                           "scored": scored_counts(work_dir)}
    record["wall_s"] = round(time.perf_counter() - start, 1)
    atomic_write_json(out / "rehearsal.json", record)
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m videoclip.book.rehearsal", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--annotations", type=Path, default=os.environ.get("VIDEOCLIP_DATA_DIR"),
                        help="the real annotation files (default: $VIDEOCLIP_DATA_DIR)")
    parser.add_argument("--out", type=Path, default=REPO / "artifacts" / "rehearsal")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--profiles", default=",".join(PROFILES), help="paper,released or one of them")
    parser.add_argument("--chapters", default="", help="only these chapters, e.g. 05,06 (default: all)")
    args = parser.parse_args(argv)
    profiles = tuple(p for p in args.profiles.split(",") if p)
    chapters = tuple(c.strip()[:2] for c in args.chapters.split(",") if c.strip())
    if not args.annotations or not Path(args.annotations).is_dir():
        print("error: give the real annotation files: --annotations DIR or VIDEOCLIP_DATA_DIR",
              file=sys.stderr)
        return 2
    if set(profiles) - set(PROFILES):
        print(f"error: --profiles {args.profiles!r}: choose from {', '.join(PROFILES)}", file=sys.stderr)
        return 2
    record = rehearse(Path(args.annotations).resolve(), args.out, device=args.device, profiles=profiles,
                      chapters=chapters)
    print(json.dumps(record, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
