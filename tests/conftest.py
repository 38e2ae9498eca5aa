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
    """A procedural smoke world (no real files, seed 3), written once per session.

    Read-only: a test that changes files of a world makes its own.
    """
    from videoclip.sim.world import simulate

    return simulate(tmp_path_factory.mktemp("smoke_world") / "root", preset="smoke", seed=3)
