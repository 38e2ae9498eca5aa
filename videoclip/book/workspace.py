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

from videoclip._io import atomic_dir
from videoclip.book.runner import PARAMS_DIR

PRESET_DIR = PARAMS_DIR / "pretrain"  # pre-training presets by name: <name>.yaml


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
        preset, seed, knobs: passed to :func:`videoclip.sim.world.simulate`.
        real_data: a ``real_data_dir`` parameter value (see :func:`real_data_dir`).
    """
    from videoclip.sim.config import make_config
    from videoclip.sim.world import simulate

    real = real_data_dir(real_data)
    settings = {"preset": preset, "seed": seed, "real": str(real) if real else None,
                "world_version": make_config(preset, **knobs).world_version, **knobs}
    root = Path(work_dir).resolve() / "worlds" / f"{preset}-seed{seed}-{settings_key(settings)}"
    if (root / "world.json").exists():
        return root
    with atomic_dir(root) as tmp:
        simulate(tmp, preset=preset, seed=seed, real_data_dir=real, **knobs)
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


# Settings that change how a run is shown or stored, not what it computes.
_RUN_ONLY_KEYS = ("run_dir", "resume", "progress", "stop_after_steps", "keep_checkpoints",
                  "checkpoint_every", "device")


def preset_path(preset: str | Path, *, kind: str = "pretrain") -> Path:
    """A preset by name (``"toy"`` → ``params/<kind>/toy.yaml``; kinds: ``pretrain``,
    ``finetune``), or a YAML file's path.

    Raises:
        FileNotFoundError: no such preset; the message lists the known names.
    """
    text = str(preset)
    directory = PARAMS_DIR / kind
    path = directory / f"{text}.yaml" if "/" not in text and not text.endswith(".yaml") else Path(text)
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in directory.glob("*.yaml")))
        raise FileNotFoundError(f"no {kind} preset {text!r}; name one of {known} "
                                f"(params/{kind}/<name>.yaml) or give a YAML file")
    return path


def pretrain_config(data_root: str | Path, *, preset: str | Path | None = None, **overrides: Any):
    """The :class:`videoclip.train.PretrainConfig` of a preset (:func:`preset_path`) plus flat
    overrides, on ``data_root``."""
    from videoclip.train import PretrainConfig

    overrides = {**overrides, "data_dir": str(Path(data_root).resolve())}
    return (PretrainConfig.from_yaml(preset_path(preset), overrides) if preset is not None
            else PretrainConfig.from_dict(overrides))


def pretrain_run_dir(work_dir: str | Path, data_root: str | Path, *, preset: str | Path | None = None,
                     name: str = "pretrain", **overrides: Any) -> Path:
    """Where :func:`ensure_pretrained` keeps the run of these settings: ``work_dir/runs/<name>-<hash>``.

    Train there with ``torchrun`` (``run_dir=…``) to give the notebooks a multi-GPU run.
    """
    return _run_dir(work_dir, pretrain_config(data_root, preset=preset, **overrides), name)


def _run_dir(work_dir: str | Path, config: Any, name: str) -> Path:
    key = settings_key({k: v for k, v in config.flat().items() if k not in _RUN_ONLY_KEYS})
    return Path(work_dir).resolve() / "runs" / f"{name}-{key}"


def ensure_token_cache(data_root: str | Path, *, preset: str | Path | None = None, **overrides: Any) -> None:
    """Tokenise ``data_root``'s captions for the preset's backbone now, where the trainer keeps the
    cache: runs started next, in parallel processes, then read it instead of each building it."""
    from videoclip.backbone import load_tokenizer
    from videoclip.data.captions import build_token_cache

    cfg = pretrain_config(data_root, preset=preset, **overrides)
    data_dir = Path(cfg.data.data_dir)
    build_token_cache(data_dir / cfg.data.captions, load_tokenizer(cfg.model.backbone),
                      cache_dir=data_dir / cfg.data.token_cache_dir if cfg.data.token_cache_dir else None)


def ensure_pretrained(work_dir: str | Path, data_root: str | Path, *, preset: str | Path | None = None,
                      name: str = "pretrain", prune_when_done: bool = True, **overrides: Any) -> Path:
    """The run directory of a pre-training run with these settings, trained once and then reused.

    Args:
        work_dir: the notebooks' artefact directory; the run lives in :func:`pretrain_run_dir`.
        data_root: the data root to train on (its ``howto100m/`` corpus).
        preset: a pre-training preset's name (``params/pretrain/<name>.yaml``, :func:`preset_path`),
            so that every chapter asking for "the toy model" gets the same run.
        prune_when_done: delete the run's ``checkpoints/`` once ``final/`` is written. They exist to
            resume a killed run; a finished one needs only ``final/`` (a toy checkpoint with its
            Adam state is ~0.3 GB, and the ablations train 30 runs).
        overrides: flat ``PretrainConfig`` keys on top of the preset (the ablations); unknown keys raise.

    A run killed earlier resumes from its last checkpoint. Returns the run directory (``final/`` holds
    the model, ``log.jsonl`` the curves).
    """
    return ensure_run(work_dir, pretrain_config(data_root, preset=preset, **overrides), name=name,
                      prune_when_done=prune_when_done)


def ensure_run(work_dir: str | Path, config: Any, *, name: str = "pretrain",
               prune_when_done: bool = True) -> Path:
    """:func:`ensure_pretrained` for a parsed :class:`videoclip.train.PretrainConfig` (a chapter
    parses its preset once and uses the config for the run and for the untrained reference)."""
    from videoclip.train import pretrain

    run_dir = _run_dir(work_dir, config, name)
    if not (run_dir / "final" / "config.json").exists():
        pretrain({**config.flat(), "run_dir": str(run_dir), "resume": True})
    if prune_when_done and (run_dir / "checkpoints").exists():
        shutil.rmtree(run_dir / "checkpoints")
    return run_dir


def run_costs(work_dir: str | Path) -> list[dict[str, Any]]:
    """The compute each cached run of ``work_dir/runs`` took when it was trained: ``run``, ``kind``
    (``pretrain``, ``ablation`` or ``finetune``), ``steps``, ``train_s`` (its optimisation steps)
    and ``retrieval_s`` (its retrieval stages; 0 for fine-tuning), from a pre-training run's
    ``log.jsonl`` or a finished fine-tuning run's ``results.json``; evaluation is not counted, and
    an unfinished fine-tuning run is left out. A cached run costs these once, in the build that
    first trained it."""
    from videoclip.train import RunLog

    rows = []
    for log_path in sorted(Path(work_dir).glob("runs/*/log.jsonl")):
        run_dir = log_path.parent
        kind = run_dir.name.split("-", 1)[0]
        if kind == "finetune":
            if (run_dir / "results.json").is_file():
                cost = json.loads((run_dir / "results.json").read_text())["results"]["cost"]
                rows.append({"run": run_dir.name, "kind": kind, "steps": cost["steps"],
                             "train_s": cost["train_seconds"], "retrieval_s": 0.0})
            continue
        log = RunLog.read(run_dir)
        rows.append({"run": run_dir.name, "kind": kind, "steps": len(log.steps),
                     "train_s": sum(log.pairs_per_step / r["pairs_per_s"] for r in log.steps),
                     "retrieval_s": sum(r["seconds"] for r in log.retrieval)})
    return rows
