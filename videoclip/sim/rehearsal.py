"""A rehearsal data root: the real annotation files, with random features of the real sizes.

No S3D features are at hand (SPEC §9), so the paper profile cannot run here on real data. This
module builds the next best thing: a data root in exactly the layout of ``book/paper_profile.md``
from the *real* public annotation files (``VIDEOCLIP_DATA_DIR``), with one feature file for every
video the evaluation protocols read — random unit vectors, float16, ``[seconds, 512]`` like S3D
(SPEC §3) — whose lengths come from the annotations. Every loader, sampler and evaluator then
reads files of the real count and size; the metrics are at chance level by construction.

What is real and what is made up (also written to ``rehearsal.json`` at the root):

===========  =====================================================================================
YouCook2     both official files, copied; features for the 457 validation videos, ``ceil(duration)``
             seconds from the annotation file (the training videos' are not read zero-shot)
MSR-VTT      both files, copied; features for the 2,990 videos they name (1k-A and multiple
             choice); no duration is in these files: 10-30 s drawn (MSR-VTT clips are 10-30 s)
DiDeMo       ``test_data.json``, copied; 5 s x ``num_segments`` per video (the 5-s chunks)
COIN         the 12-video excerpt of ``COIN.json`` (the full file is not at hand), as ``COIN.json``;
             ``ceil(duration)`` seconds
CrossTask    the release (task cards, video lists, every annotation), copied; features for every
             primary-task video: the last annotated second plus 0-30 s drawn
HowTo100M    ``caption.json`` built from MIL-NCE's 100 per-video caption CSVs (real ASR); no
             ``HowTo100M_v1.csv`` is at hand: each video gets one of the first 10 tasks of
             ``task_ids.csv`` (the 110-line excerpt) in turn, labelled ``rehearsal``; a 2 % validation list; features
             up to the last caption plus 0-30 s drawn
===========  =====================================================================================

    python -m videoclip.sim.rehearsal ANNOTATIONS OUT [--seed 0]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from videoclip._io import atomic_dir, atomic_torch_save
from videoclip.data.benchmarks import (
    load_coin,
    load_crosstask,
    load_didemo,
    load_msrvtt_mc,
    load_msrvtt_test,
    load_youcook2_val,
)
from videoclip.data.captions import load_captions
from videoclip.data.features import write_features

__all__ = ["FEATURE_DIM", "MADE_UP", "MANIFEST", "build_rehearsal_root", "video_seconds",
           "write_mmpt_checkpoint"]

FEATURE_DIM = 512  # S3D's joint space (SPEC §3)
MANIFEST = "rehearsal.json"
_TAIL_SECONDS = 30  # drawn seconds after the last annotated one (0..30)
_MSRVTT_SECONDS = (10, 30)  # MSR-VTT clips are 10-30 s long
_HOWTO_CAPTIONS = "howto100m/mil_nce_small_train_captions"
_HOWTO_TASKS = "howto100m/task_ids_first110_lines.csv"
_HOWTO_TASKS_USED = 10  # videos per task ~10: the group statistics of chapter 04 need same-task pairs
_COIN_EXCERPT = "coin/COIN_excerpt_first12.json"
#: What the rehearsal root makes up (every feature value is random); written to the manifest.
MADE_UP = {
    "features": "random unit rows, float16 [seconds, 512]: every metric is at chance level",
    "msrvtt": "durations drawn 10-30 s (the files at hand give none)",
    "crosstask": "durations: the last annotated second plus 0-30 s drawn",
    "coin": "COIN.json is the 12-video excerpt (6 testing videos), not the full release",
    "howto100m": "caption.json from MIL-NCE's 100 caption CSVs; HowTo100M_v1.csv made up (the "
                 "first 10 tasks of the task_ids.csv excerpt in turn); durations: the last caption "
                 "plus 0-30 s drawn",
}
# (source under the annotation root, destination under the data root): copied byte for byte
_COPIES = (
    ("youcook2/youcookii_annotations_trainval.json", "youcook2/youcookii_annotations_trainval.json"),
    ("youcook2/validation_youcook.csv", "youcook2/validation_youcook.csv"),
    ("msrvtt/MSRVTT_JSFUSION_test.csv", "msrvtt/MSRVTT_JSFUSION_test.csv"),
    ("msrvtt/msrvtt_mc_test.jsonl", "msrvtt/msrvtt_mc_test.jsonl"),
    ("didemo/test_data.json", "didemo/test_data.json"),
    (_COIN_EXCERPT, "coin/COIN.json"),
    ("crosstask/tasks_primary.txt", "crosstask/tasks_primary.txt"),
    ("crosstask/videos.csv", "crosstask/videos.csv"),
    ("crosstask/videos_val.csv", "crosstask/videos_val.csv"),
    ("crosstask/annotations", "crosstask/annotations"),
    (_HOWTO_TASKS, "howto100m/task_ids.csv"),
)


def _drawn(rng: np.random.Generator, low: int, high: int) -> int:
    return int(rng.integers(low, high + 1))


def video_seconds(root: Path, rng: np.random.Generator) -> dict[str, dict[str, int]]:
    """``{benchmark: {feature id: seconds}}`` of every video the zero-shot protocols read.

    ``root`` is a data root holding the copied annotation files (read with the library's loaders,
    so a file they reject stops the build with their error).
    """
    youcook = json.loads((root / "youcook2/youcookii_annotations_trainval.json").read_text())
    database = youcook["database"]
    referenced = {p.video_id for p in load_youcook2_val(root)}
    youcook2 = {vid: math.ceil(rec["duration"]) for vid, rec in database.items()
                if rec["subset"] == "validation" or vid in referenced}

    msrvtt_ids = sorted({p.video_id for p in load_msrvtt_test(root)}
                        | {q.video_id for q in load_msrvtt_mc(root)})
    msrvtt = {vid: _drawn(rng, *_MSRVTT_SECONDS) for vid in msrvtt_ids}

    didemo: dict[str, int] = {}
    for query in load_didemo(root):
        didemo[query.video_id] = max(didemo.get(query.video_id, 0), 5 * query.num_segments)

    coin = {v.video_id: math.ceil(v.duration) for v in load_coin(root / "coin/COIN.json").videos}
    coin.update({v.video_id: math.ceil(v.duration)
                 for v in load_coin(root / "coin/COIN.json", subset="training").videos})

    crosstask_data = load_crosstask(root)
    crosstask = {}
    for task, vids in crosstask_data.videos.items():
        for vid in vids:
            ends = [float(line.split(",")[2]) for line in
                    crosstask_data.annotation_path(task, vid).read_text().splitlines() if line.strip()]
            crosstask[vid] = math.ceil(max(ends, default=0.0)) + _drawn(rng, 0, _TAIL_SECONDS)
    return {"youcook2": youcook2, "msrvtt": msrvtt, "didemo": didemo, "coin": coin,
            "crosstask": crosstask}


def _howto100m(annotations: Path, out: Path, rng: np.random.Generator) -> dict[str, int]:
    """``howto100m/``: caption.json, HowTo100M_v1.csv, train.lst, val.lst; returns seconds per video."""
    captions = load_captions(annotations / _HOWTO_CAPTIONS, dedup=False)
    task_ids = [line.split("\t")[0] for line in (out / "howto100m/task_ids.csv").read_text().splitlines()
                if line.strip()]
    vids = sorted(captions.videos)
    caption_json = {vid: {"start": captions.videos[vid].start.tolist(),
                          "end": captions.videos[vid].end.tolist(),
                          "text": list(captions.videos[vid].text)} for vid in vids}
    (out / "howto100m/caption.json").write_text(json.dumps(caption_json))
    with open(out / "howto100m/HowTo100M_v1.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["video_id", "category_1", "category_2", "rank", "task_id"])
        for i, vid in enumerate(vids):
            writer.writerow([vid, "rehearsal", "rehearsal", 1, task_ids[i % _HOWTO_TASKS_USED]])
    order = rng.permutation(len(vids))
    num_val = max(1, round(0.02 * len(vids)))
    (out / "howto100m/val.lst").write_text("".join(vids[i] + "\n" for i in sorted(order[:num_val])))
    (out / "howto100m/train.lst").write_text("".join(vids[i] + "\n" for i in sorted(order[num_val:])))
    return {vid: math.ceil(float(captions.videos[vid].end.max())) + _drawn(rng, 0, _TAIL_SECONDS)
            for vid in vids}


def _write_random_features(directory: Path, seconds: dict[str, int], rng: np.random.Generator) -> int:
    """One ``<vid>.npy`` of random unit rows ``[seconds, 512]`` float16 per video; returns the bytes."""
    total = 0
    for vid in sorted(seconds):
        # uniform in [-1, 1)^512, then unit length: a symmetric draw, 4x cheaper than normals
        rows = rng.random((seconds[vid], FEATURE_DIM), dtype=np.float32)  # (S, 512)
        rows = 2 * rows - 1
        rows /= np.sqrt(np.einsum("sd,sd->s", rows, rows))[:, None]
        total += write_features(directory, vid, rows, dim=FEATURE_DIM).stat().st_size
    return total


def _copy(src: Path, dst: Path) -> None:
    if not src.exists():
        raise FileNotFoundError(f"{src} is missing: point the annotation root at the real annotation "
                                "files (the layout of their MANIFEST.md)")
    dst.parent.mkdir(parents=True, exist_ok=True)
    (shutil.copytree if src.is_dir() else shutil.copyfile)(src, dst)


def build_rehearsal_root(annotations: str | Path, out: str | Path, *, seed: int = 0,
                         progress: Callable[[str], Any] = print) -> dict[str, Any]:
    """Write the rehearsal data root ``out`` from the annotation root ``annotations``.

    Built under a temporary name and renamed into place; an ``out`` that already holds a
    rehearsal root of the same annotations and seed is reused, anything else there is an error.

    Args:
        annotations: the real annotation files (``VIDEOCLIP_DATA_DIR``, layout of its MANIFEST.md).
        out: the data root to write (layout of book/paper_profile.md).
        seed: draws the features and the made-up durations.

    Returns:
        The manifest (also ``out/rehearsal.json``): per benchmark the number of feature files,
        their seconds and bytes, and what is real or made up.
    """
    annotations, out = Path(annotations).resolve(), Path(out)
    settings = {"annotations": str(annotations), "seed": seed}
    if out.exists():
        manifest_path = out / MANIFEST
        if manifest_path.is_file():
            manifest = json.loads(manifest_path.read_text())
            if manifest.get("settings") == settings:
                progress(f"rehearsal data root {out}: up to date, reused")
                return manifest
        raise FileExistsError(f"{out} exists and is not a rehearsal root of these settings; "
                              "remove it or pick another directory")
    with atomic_dir(out) as tmp:
        for src, dst in _COPIES:
            _copy(annotations / src, tmp / dst)
        seconds = {"howto100m": _howto100m(annotations, tmp, np.random.default_rng([seed, 0])),
                   **video_seconds(tmp, np.random.default_rng([seed, 1]))}
        summary = {}
        for k, (benchmark, per_video) in enumerate(seconds.items()):
            progress(f"rehearsal features: {benchmark}, {len(per_video)} videos")
            size = _write_random_features(tmp / benchmark / "features", per_video,
                                          np.random.default_rng([seed, 2, k]))
            summary[benchmark] = {"videos": len(per_video), "seconds": sum(per_video.values()),
                                  "bytes": size}
        manifest = {"settings": settings, "features": summary,
                    "copied": [f"{src} -> {dst}" for src, dst in _COPIES], "made_up": MADE_UP}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return manifest


def write_mmpt_checkpoint(path: str | Path, backbone: str | Path, *, num_video_layers: int,
                          num_text_layers: int, seed: int = 0) -> Path:
    """A random checkpoint in the released file's layout (design §2), for ``videoclip convert``.

    Like ``checkpoint_best.pt``: a fairseq dict with ``args`` (an ``argparse.Namespace``), the
    weights under ``model`` in fp16 with the ``mmmodel.`` keys — the video MLP, the video BERT
    (``bert.`` infix) and the text BERT (none), each with its unused pooler and its
    ``position_ids`` buffer — and optimizer state. The towers have ``backbone``'s config
    (a local directory) with the given numbers of layers; every weight is random.
    """
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    config = BertConfig.from_pretrained(str(backbone))
    hidden = config.hidden_size
    state = {f"mmmodel.video_encoder.videomlp.{name}": torch.randn(shape) * 0.02
             for name, shape in (("linear1.weight", (hidden, FEATURE_DIM)), ("linear1.bias", (hidden,)),
                                 ("LayerNorm.weight", (hidden,)), ("LayerNorm.bias", (hidden,)),
                                 ("linear2.weight", (hidden, hidden)), ("linear2.bias", (hidden,)))}
    for prefix, layers in (("mmmodel.video_encoder.bert.", num_video_layers),
                           ("mmmodel.text_encoder.", num_text_layers)):
        config.num_hidden_layers = layers
        tower = BertModel(config)  # random weights, pooler included
        state.update({prefix + key: value for key, value in tower.state_dict().items()})
        state[prefix + "embeddings.position_ids"] = torch.arange(config.max_position_embeddings)[None]
    state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    checkpoint = {"args": argparse.Namespace(arch="mmfusionseparate", fp16=True), "model": state,
                  "optimizer_history": [{"criterion_name": "MMCriterion", "num_updates": 0}],
                  "extra_state": {"epoch": 1}}
    return atomic_torch_save(checkpoint, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m videoclip.sim.rehearsal", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("annotations", type=Path, help="the real annotation files (VIDEOCLIP_DATA_DIR)")
    parser.add_argument("out", type=Path, help="the data root to write")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        manifest = build_rehearsal_root(args.annotations, args.out, seed=args.seed)
    except (OSError, ValueError) as exc:
        print(f"rehearsal: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(manifest["features"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
