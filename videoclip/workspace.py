"""What the book's notebooks share: a work directory of cached artefacts (worlds, runs, results).

Each notebook runs standalone (nbval runs them one by one): it asks for the world or the trained model
it needs, and gets the cached one when an earlier chapter already made it with the same settings, or
makes it now. Artefacts are keyed by a hash of their settings and written atomically (to a temporary
directory, then renamed), so a killed notebook never leaves a half-written world behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any


def settings_key(settings: dict[str, Any]) -> str:
    """A short stable hash of JSON-able settings."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def real_data_dir(value: str) -> Path | None:
    """Expand a notebook's ``real_data_dir`` parameter (``"$VIDEOCLIP_DATA_DIR"`` by default).

    An empty expansion means "no real files": the simulator then uses its procedural taxonomy.
    A non-empty value that is not a directory is an error, never a silent fallback.
    """
    expanded = os.path.expandvars(value).strip()
    if not expanded or expanded.startswith("$"):
        return None
    path = Path(expanded)
    if not path.is_dir():
        raise FileNotFoundError(f"real_data_dir={value!r} expands to {path}, which is not a directory; "
                                "point VIDEOCLIP_DATA_DIR at the real annotation files or set real_data_dir=''")
    return path.resolve()


def ensure_world(work_dir: str | Path, *, preset: str, seed: int = 0, real_data: str = "",
                 **knobs: Any) -> Path:
    """The simulated data root for these settings under ``work_dir/worlds``, written once.

    Args:
        work_dir: the notebooks' artefact directory (e.g. ``../artifacts/toy``).
        preset, seed, knobs: passed to :func:`videoclip.data.simulate.simulate`.
        real_data: a ``real_data_dir`` parameter value (see :func:`real_data_dir`).
    """
    from videoclip.data.simulate import simulate

    real = real_data_dir(real_data)
    settings = {"preset": preset, "seed": seed, "real": str(real) if real else None, **knobs}
    root = Path(work_dir).resolve() / "worlds" / f"{preset}-seed{seed}-{settings_key(settings)}"
    if (root / "world.json").exists():
        return root
    tmp = root.with_name(root.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    simulate(tmp, preset=preset, seed=seed, real_data_dir=real, **knobs)
    os.replace(tmp, root)
    return root


def world_info(root: str | Path) -> dict[str, Any]:
    """The simulator's ``world.json`` (seed, knobs, sizes, text source)."""
    return json.loads((Path(root) / "world.json").read_text())


def resolve_data_root(data_root: str, *, work_dir: str | Path, world_preset: str, world_seed: int = 0,
                      real_data: str = "", **knobs: Any) -> Path:
    """A notebook's data root: ``data_root`` when given (real features, paper profile), else the
    simulated world of ``world_preset`` (written once under ``work_dir``)."""
    if data_root:
        path = Path(os.path.expandvars(data_root))
        if not path.is_dir():
            raise FileNotFoundError(f"data_root={data_root!r} ({path}) is not a directory; see "
                                    "book/paper_profile.md for the layout, or leave it empty to simulate")
        return path.resolve()
    return ensure_world(work_dir, preset=world_preset, seed=world_seed, real_data=real_data, **knobs)
