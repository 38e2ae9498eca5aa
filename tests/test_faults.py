"""Fault injection: truncated and corrupt files of every kind the package reads.

Each case ends in a clear error that names the file (reliability review §2-§4), never a raw
library error without a path, and never a silently different result.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from test_checkpoint import released_state_dict, write_checkpoint
from test_model import make_model

from videoclip.checkpoint import CheckpointError
from videoclip.data.benchmarks import AnnotationError, load_didemo
from videoclip.data.captions import CaptionError, load_captions
from videoclip.data.features import FeatureError, open_feature_store, write_features
from videoclip.model import VideoCLIP


def _truncate(path: Path, keep: float) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)] if isinstance(keep, float) else data[:keep])
    return path


# ----------------------------------------------------------------------------- MMPT checkpoint


@pytest.mark.parametrize("damage", ["half", "minus100", "empty", "random", "text"])
@pytest.mark.parametrize("trust_pickle", [False, True])
def test_damaged_mmpt_checkpoint_is_named(tmp_path: Path, backbone_dir: Path, damage: str,
                                          trust_pickle: bool) -> None:
    path = write_checkpoint(tmp_path / "ckpt.pt", released_state_dict())
    data = path.read_bytes()
    path.write_bytes({"half": data[: len(data) // 2], "minus100": data[:-100], "empty": b"",
                      "random": np.random.default_rng(0).bytes(4096),
                      "text": b"hello\nworld\n"}[damage])
    with pytest.raises(CheckpointError, match=r"ckpt.pt: cannot read it as a PyTorch checkpoint"):
        VideoCLIP.from_mmpt_checkpoint(path, backbone=str(backbone_dir), trust_pickle=trust_pickle)


def test_checkpoint_path_that_is_a_directory_is_named(tmp_path: Path, backbone_dir: Path) -> None:
    with pytest.raises(CheckpointError, match="is a directory; pass the checkpoint file"):
        VideoCLIP.from_mmpt_checkpoint(tmp_path, backbone=str(backbone_dir))


# ----------------------------------------------------------------------------- saved model


@pytest.fixture()
def saved(tmp_path: Path) -> Path:
    return make_model(tmp_path / "tok").save_pretrained(tmp_path / "saved")


@pytest.mark.parametrize("damage", ["config_truncated", "config_empty", "weights_truncated",
                                    "weights_empty", "tokenizer_empty", "tokenizer_config_only"])
def test_half_written_model_dir_is_named(saved: Path, damage: str) -> None:
    if damage.startswith("config"):
        _truncate(saved / "config.json", 0.5 if damage == "config_truncated" else 0)
        where = "config.json: cannot read it"
    elif damage.startswith("weights"):
        _truncate(saved / "model.safetensors", 0.5 if damage == "weights_truncated" else 0)
        where = "model.safetensors: cannot read it"
    else:
        keep = {"tokenizer_config.json"} if damage == "tokenizer_config_only" else set()
        for file in (saved / "tokenizer").iterdir():
            if file.name not in keep:
                file.unlink()
        where = "tokenizer: incomplete tokenizer folder"
    with pytest.raises(CheckpointError, match=rf"{where}.*save or convert the model again"):
        VideoCLIP.from_pretrained(saved)


# ----------------------------------------------------------------------------- data files


def test_truncated_feature_file_is_named(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    array = rng.standard_normal((40, 512)).astype(np.float32)
    array /= np.linalg.norm(array, axis=1, keepdims=True)
    _truncate(write_features(tmp_path, "vid", array), 0.5)
    with pytest.raises(FeatureError, match="vid"):
        open_feature_store(tmp_path).load("vid")


def test_truncated_caption_and_annotation_files_are_named(tmp_path: Path) -> None:
    captions = tmp_path / "caption.json"
    captions.write_text(json.dumps({"v": {"start": [0], "end": [2], "text": ["hi"]}}))
    _truncate(captions, 0.5)
    with pytest.raises(CaptionError, match="caption.json"):
        load_captions(captions)
    didemo = tmp_path / "didemo/test_data.json"
    didemo.parent.mkdir()
    didemo.write_text(json.dumps([{"video": "a.mp4", "description": "d", "times": [[0, 0]],
                                   "annotation_id": 1, "num_segments": 6}]))
    _truncate(didemo, 0.5)
    with pytest.raises(AnnotationError, match="test_data.json: not valid JSON"):
        load_didemo(tmp_path)


def test_full_disk_during_an_atomic_write_keeps_the_old_file(tmp_path: Path, monkeypatch) -> None:
    """ENOSPC in the middle of a write: the error names the file, the old contents survive."""
    from videoclip.checkpoint import atomic_torch_save

    target = atomic_torch_save({"step": 1}, tmp_path / "state.pt")
    real_save = torch.save

    def full_disk(obj, f, *args, **kwargs):
        real_save(obj, f, *args, **kwargs)
        raise OSError(28, os.strerror(28))

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(OSError, match="No space left"):
        atomic_torch_save({"step": 2}, target)
    assert torch.load(target, weights_only=True) == {"step": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["state.pt"]
