"""Weights are validated on load: floating dtype, all finite, the configured shapes and layers.

Reliability review §2: NaN, inf, integer and boolean weights loaded silently, and DiDeMo and
COIN then reported numbers for a NaN model; a checkpoint missing its last text layer loaded
as a shallower model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
import torch
from helpers import make_model, released_state_dict, write_checkpoint

from videoclip.checkpoint import CheckpointError, check_state_dict
from videoclip.evaluation.segmentation import label_with_outside
from videoclip.model import VideoCLIP

KEY = "mmmodel.text_encoder.encoder.layer.1.attention.self.query.weight"
OURS = "text_encoder.encoder.layer.1.attention.self.query.weight"


def _corrupt(value: torch.Tensor, how: str) -> torch.Tensor:
    if how == "nan":
        return value.clone().index_fill_(0, torch.tensor([0]), float("nan"))
    if how == "inf":
        return value.clone().index_fill_(0, torch.tensor([1]), float("inf"))
    return value.to({"int64": torch.int64, "bool": torch.bool}[how])


@pytest.mark.parametrize("how, message", [
    ("nan", "NaN or inf"), ("inf", "NaN or inf"), ("int64", "torch.int64"), ("bool", "torch.bool"),
])
def test_mmpt_checkpoint_with_bad_values_is_refused(tmp_path: Path, backbone_dir: Path, how: str,
                                                    message: str) -> None:
    released = released_state_dict()
    released[KEY] = _corrupt(released[KEY], how)
    path = write_checkpoint(tmp_path / "bad.pt", released)
    with pytest.raises(CheckpointError, match=r"bad.pt: ") as caught:
        VideoCLIP.from_mmpt_checkpoint(path, backbone=str(backbone_dir))
    assert message in str(caught.value) and OURS in str(caught.value)


def test_mmpt_checkpoint_missing_its_last_text_layer_is_refused(tmp_path: Path,
                                                               backbone_dir: Path) -> None:
    released = {k: v for k, v in released_state_dict().items()
                if not k.startswith("mmmodel.text_encoder.encoder.layer.2.")}
    path = write_checkpoint(tmp_path / "short.pt", released)
    with pytest.raises(CheckpointError, match=r"short.pt: 2 text layers but backbone .* has 3"):
        VideoCLIP.from_mmpt_checkpoint(path, backbone=str(backbone_dir))


def test_mmpt_checkpoint_whose_model_is_not_a_dict_is_refused(tmp_path: Path,
                                                              backbone_dir: Path) -> None:
    path = tmp_path / "list.pt"
    torch.save({"model": [1, 2, 3]}, path)
    with pytest.raises(CheckpointError, match=r"list.pt: 'model' holds a list"):
        VideoCLIP.from_mmpt_checkpoint(path, backbone=str(backbone_dir))


@pytest.mark.parametrize("how", ["nan", "inf", "int64", "bool"])
def test_saved_model_with_bad_values_is_refused(tmp_path: Path, how: str) -> None:
    out = make_model(tmp_path / "tok").save_pretrained(tmp_path / "saved")
    state = safetensors.torch.load_file(out / "model.safetensors")
    state[OURS] = _corrupt(state[OURS], how)
    safetensors.torch.save_file(state, out / "model.safetensors")
    with pytest.raises(CheckpointError, match=rf"model.safetensors: .*{OURS}"):
        VideoCLIP.from_pretrained(out)


def test_check_state_dict_accepts_the_model_itself(tmp_path: Path) -> None:
    state = make_model(tmp_path / "tok").state_dict()
    check_state_dict(state, {k: v.clone() for k, v in state.items()}, source="self")


# ----------------------------------------------------------------------------- evaluators


def test_coin_labels_refuse_nan_logits() -> None:
    logits = np.array([[0.1, 0.9], [np.nan, 0.2]])
    with pytest.raises(ValueError, match="logits hold NaN or inf"):
        label_with_outside(logits, gamma=0.5)
