"""Overrides and presets read numbers as a user types them; a negative seed is refused by name."""

from __future__ import annotations

import pytest
import torch

from videoclip._yaml import load_yaml
from videoclip.book.runner import _parse_override
from videoclip.cli import _parse_overrides
from videoclip.train import ConfigError, PretrainConfig
from videoclip.train.distributed import setup_distributed


@pytest.mark.parametrize("text, value", [
    ("1e-3", 1e-3), ("-2E+4", -2e4), ("5e2", 500.0), ("1.5e-3", 1.5e-3), ("3", 3), ("0.5", 0.5),
    ("abc", "abc"), ("1e", "1e"), ("[1e-3, 2]", [1e-3, 2]), ("true", True),
])
def test_yaml_reads_exponent_floats(text, value):
    assert load_yaml(text) == value and type(load_yaml(text)) is type(value)


def test_pretrain_override_lr_1e_3_is_a_float(tmp_path):
    overrides = _parse_overrides(["--lr", "1e-3", "--lr_end=1e-5", "--adam_betas", "[0.9, 9.8e-1]"])
    cfg = PretrainConfig.from_dict(overrides, source="command line")
    assert (cfg.optim.lr, cfg.optim.lr_end, cfg.optim.adam_betas) == (1e-3, 1e-5, (0.9, 0.98))
    preset = tmp_path / "p.yaml"
    preset.write_text("lr: 2e-4\n")
    assert PretrainConfig.from_yaml(preset).optim.lr == 2e-4
    with pytest.raises(ConfigError, match="lr='abc': expected float"):
        PretrainConfig.from_dict(_parse_overrides(["--lr", "abc"]))


def test_notebook_override_reads_exponent_floats():
    assert _parse_override("lr=1e-3") == ("lr", 1e-3)


def test_negative_seed_is_refused_by_name():
    with pytest.raises(ConfigError, match="seed=-1 must be >= 0"):
        PretrainConfig.from_dict({"seed": -1})


@pytest.mark.parametrize("device", ["tpu", "cuda"])
def test_an_unusable_device_is_refused_by_name(device):
    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    with pytest.raises(ConfigError, match=f"device='{device}'"):
        setup_distributed(device)
