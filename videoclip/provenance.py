"""Provenance for every results file: which code, which libraries, which device, when."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from videoclip._io import atomic_write_json


def git_sha(cwd: str | Path | None = None) -> str:
    """The current commit (with ``-dirty`` when the tree has changes), or ``"unknown"`` outside git."""
    cwd = Path(cwd) if cwd else Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return sha + ("-dirty" if dirty else "")


def environment() -> dict[str, Any]:
    """Library versions and the compute device."""
    import numpy
    import torch
    import transformers

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"cpu ({os.cpu_count()} cores)"
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "numpy": numpy.__version__,
        "device": device,
        "host": platform.node(),
    }


def provenance() -> dict[str, Any]:
    from videoclip import __version__

    return {
        "videoclip": __version__,
        "git_sha": git_sha(),
        "time_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        **environment(),
    }


def write_results(path: str | Path, results: dict[str, Any], *, config: dict[str, Any] | None = None) -> Path:
    """Write ``{"results", "config", "provenance"}`` as JSON, atomically (write then rename)."""
    payload = {"results": results, "config": config or {}, "provenance": provenance()}
    return atomic_write_json(path, payload, indent=2, default=_jsonable)


def read_results(path: str | Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def _jsonable(value: Any) -> Any:
    """numpy scalars/arrays and paths into JSON."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
