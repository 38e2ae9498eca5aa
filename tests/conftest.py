"""Shared fixtures. Fixtures are generated in tmp_path, never downloaded (STYLE.md)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """The directory of real annotation files (``$VIDEOCLIP_DATA_DIR``; CI sets ``../shared/data``).

    Skips the test cleanly when the variable is unset or the directory is missing.
    """
    value = os.environ.get("VIDEOCLIP_DATA_DIR", "")
    if not value:
        pytest.skip("VIDEOCLIP_DATA_DIR is not set (point it at the real annotation files)")
    path = Path(value)
    if not path.is_dir():
        pytest.skip(f"VIDEOCLIP_DATA_DIR={value} is not a directory")
    return path


@pytest.fixture(scope="session")
def smoke_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A procedural smoke world (no real files, seed 0), written once per session.

    Tests must not change its files (a test that does makes its own world); training on it adds
    token caches beside its captions.
    """
    from videoclip.sim.world import simulate

    return simulate(tmp_path_factory.mktemp("smoke_world") / "root", preset="smoke", seed=0)


@pytest.fixture(scope="session")
def tiny_backbone(smoke_world: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 2-layer, 16-d BERT whose vocabulary is the smoke world's caption words."""
    from helpers import write_tiny_backbone

    return write_tiny_backbone(tmp_path_factory.mktemp("tiny_backbone") / "tiny-bert",
                               smoke_world / "howto100m" / "caption.json")


@pytest.fixture(scope="session")
def s3d_files(tmp_path_factory) -> tuple[Path, Path]:
    """``(s3d_howto100m.pth, s3d_dict.npy)`` with random weights in the release's key layout."""
    from videoclip.sim.media import random_s3d_files

    return random_s3d_files(tmp_path_factory.mktemp("s3d"))


@pytest.fixture()
def backbone_dir(tmp_path: Path) -> Path:
    """A local 'bert-base-uncased' stand-in: the tiny config and tokenizer files."""
    from helpers import TINY_BERT, make_tokenizer  # heavy (torch): only where requested
    from transformers import BertConfig

    directory = tmp_path / "backbone"
    BertConfig(**TINY_BERT).save_pretrained(directory)
    make_tokenizer(directory).save_pretrained(directory)
    return directory
