"""The rehearsal data root (videoclip.sim.rehearsal): the layout book/paper_profile.md documents,
built from the real annotation files at full size, read by the library's loaders and evaluators.

The root is built once per session (~20 CPU-seconds, ~0.9 GB of random float16 features). The
evaluators run here with a stub scorer (random projections, no transformer), so the test proves the
files, the counts and the protocols at real size in seconds; `make rehearsal` runs the chapters.
"""

from __future__ import annotations

import json
import math
import re
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from videoclip.data.benchmarks import (
    crosstask_split,
    load_crosstask,
    load_didemo,
    load_msrvtt_mc,
    load_msrvtt_test,
    load_youcook2_val,
)
from videoclip.data.features import open_feature_store
from videoclip.sim.rehearsal import MANIFEST, build_rehearsal_root

REPO = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.realdata, pytest.mark.slow]


@pytest.fixture(scope="session")
def rehearsal_root(real_data_dir, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("rehearsal") / "data"
    build_rehearsal_root(real_data_dir, root, progress=lambda _: None)
    return root


def documented_paths() -> list[str]:
    """Every path of the data-root table in book/paper_profile.md (first column, in backticks)."""
    text = (REPO / "book" / "paper_profile.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    return [name.replace("/<vid>.npy", "/") for row in rows
            for name in re.findall(r"`([^`]+)`", row.split("|")[1])]


def test_layout_is_the_documented_one(rehearsal_root):
    paths = documented_paths()
    assert len(paths) >= 15 and "crosstask/annotations/" in paths
    missing = [p for p in paths if not (rehearsal_root / p).exists()
               and not p.startswith("s3d/")]  # model weights, not data: no rehearsal has them
    assert missing == []
    manifest = json.loads((rehearsal_root / MANIFEST).read_text())
    assert set(manifest["features"]) == {"howto100m", "youcook2", "msrvtt", "didemo", "coin", "crosstask"}
    # the reuse of an identical build, and the refusal to write over something else
    assert build_rehearsal_root(manifest["settings"]["annotations"], rehearsal_root,
                                progress=lambda _: None) == manifest
    with pytest.raises(FileExistsError, match="not a rehearsal root"):
        build_rehearsal_root(manifest["settings"]["annotations"], rehearsal_root, seed=1)


def test_every_referenced_video_has_features_as_long_as_annotated(rehearsal_root):
    store = {b: open_feature_store(rehearsal_root / b / "features")
             for b in ("youcook2", "msrvtt", "didemo", "crosstask", "howto100m")}
    clips = load_youcook2_val(rehearsal_root)
    assert len(clips) == 3350
    assert all(clip.end <= store["youcook2"].num_seconds(clip.video_id) for clip in clips)
    database = json.loads((rehearsal_root / "youcook2/youcookii_annotations_trainval.json").read_text())
    assert all(store["youcook2"].num_seconds(v) == math.ceil(database["database"][v]["duration"])
               for v in store["youcook2"].ids())
    msrvtt = {p.video_id for p in load_msrvtt_test(rehearsal_root)}
    mc = {q.video_id for q in load_msrvtt_mc(rehearsal_root)}
    assert len(msrvtt) == 1000 and set(store["msrvtt"].ids()) == msrvtt | mc
    didemo = load_didemo(rehearsal_root)
    assert all(store["didemo"].num_seconds(q.video_id) >= 5 * max(last for _, last in q.times) + 5
               for q in didemo)
    crosstask = load_crosstask(rehearsal_root)
    for task, vids in crosstask.videos.items():
        for vid in vids:
            lines = crosstask.annotation_path(task, vid).read_text().split()
            assert store["crosstask"].num_seconds(vid) >= max(float(x.split(",")[2]) for x in lines)
    vids = (rehearsal_root / "howto100m/train.lst").read_text().split()
    assert len(vids) == 98 and all(v in store["howto100m"] for v in vids)
    row = store["youcook2"].load(clips[0].video_id)  # random unit rows, float16 on disk
    np.testing.assert_allclose(np.linalg.norm(row, axis=1), 1.0, atol=2e-3)


class RandomScorer:
    """A stub zero-shot model: random projections of the features, texts hashed to random vectors."""

    def __init__(self, dim: int = 16) -> None:
        self.proj = torch.from_numpy(np.random.default_rng(0).standard_normal((512, dim))).float()
        self.dim = dim

    def encode_video(self, video, vmask):  # (B, T, 512), (B, T) -> (B, D)
        mean = (video * vmask[..., None]).sum(1) / vmask.sum(1, keepdim=True).clamp(min=1)
        return mean @ self.proj

    def encode_texts(self, texts):  # list of N -> (N, D)
        return torch.stack([torch.from_numpy(np.random.default_rng(zlib.crc32(t.encode()))
                                             .standard_normal(self.dim)).float() for t in texts])

    def video_token_states(self, video, vmask, *, mask_cls):  # -> (B, T, D)
        return video @ self.proj


def test_evaluators_score_every_item_at_chance(rehearsal_root):
    from videoclip.evaluation import (
        evaluate_didemo,
        evaluate_retrieval,
        evaluate_segmentation,
        evaluate_videoqa,
    )

    model, quiet = RandomScorer(), {"progress": False}
    youcook2, _ = evaluate_retrieval(model, rehearsal_root, benchmark="youcook2", **quiet)
    msrvtt, _ = evaluate_retrieval(model, rehearsal_root, benchmark="msrvtt", **quiet)
    assert (youcook2["num_scored"], msrvtt["num_scored"]) == (3350, 1000)
    assert youcook2["skipped"] == msrvtt["skipped"] == {}
    assert youcook2["R@10"] < 2.0 and msrvtt["R@10"] < 5.0  # chance: 0.3 % and 1 %
    videoqa, _ = evaluate_videoqa(model, rehearsal_root, **quiet)
    assert videoqa["num_scored"] == 2990 and 14.0 < videoqa["accuracy"] < 26.0  # chance 20 %
    didemo, _ = evaluate_didemo(model, rehearsal_root, **quiet)
    assert didemo["skipped"] == {} and didemo["rank@1"] < 25.0
    coin, _ = evaluate_segmentation(model, rehearsal_root, **quiet)
    assert coin["num_videos"] == 6 and coin["skipped"] == {}


def test_crosstask_official_test_split_has_features(rehearsal_root):
    """The official split's test videos (the evaluator's input) all have features here."""
    data = load_crosstask(rehearsal_root)
    _, test = crosstask_split(data.videos, data.val_videos)
    store = open_feature_store(rehearsal_root / "crosstask" / "features")
    num_test = sum(len(v) for v in test.values())
    assert len(data.tasks) == 18 and num_test == 2750 - 360 - 18 * 30
    assert all(v in store for vids in test.values() for v in vids)


def test_rehearsal_fine_tuning_is_the_paper_preset_cut_to_one_short_epoch(tmp_path):
    """Chapter 13 in `make rehearsal`: params/finetune/paper.yaml with only sizes changed."""
    from videoclip.book.rehearsal import chapter_overrides, write_finetune_preset
    from videoclip.book.runner import find_notebook
    from videoclip.finetune.loop import load_preset

    preset = write_finetune_preset(tmp_path / "finetune.yaml")
    for task in ("youcook2", "msrvtt", "msrvtt-qa", "coin", "crosstask"):
        cfg = load_preset(preset, {"task": task})
        assert (cfg.optim.num_epochs, cfg.optim.lr, cfg.optim.warmup_steps) == (1, 5e-5, 1)
        assert cfg.task.max_items == (2 if task in ("coin", "crosstask") else 16)
    overrides = chapter_overrides(find_notebook("13"), work_dir=tmp_path, executed_dir=tmp_path,
                                  annotations=tmp_path, backbone=tmp_path / "bert", preset=tmp_path / "p.yaml",
                                  finetune_preset=preset, device="cpu")
    assert overrides["finetune_preset"] == str(preset) and overrides["device"] == "cpu"
