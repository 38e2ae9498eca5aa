"""Atomic file and directory writes: the one implementation every writer of the package uses.

A file is written to a temporary name in its own directory, flushed to disk and ``os.replace``-d
into place, so a crash never leaves a half-written file under the final name. A directory is
filled under a temporary name and renamed the same way. Temporary names start with a dot.

Not ``tempfile.mkstemp``: its 0600 mode would survive the rename (feature files and caches would
become owner-only); the writer creates the file with the process's usual mode.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import uuid
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "atomic_dir",
    "atomic_torch_save",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "check_output_dir",
    "check_output_file",
    "write_deterministic_npz",
]


def _temporary_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")


def atomic_write(path: str | os.PathLike, writer: Callable[[Path], None]) -> Path:
    """Write ``path`` atomically: ``writer(tmp)`` creates a temporary file, then it is renamed.

    The temporary file lives in the same directory (so ``os.replace`` is atomic), is flushed
    to disk before the rename, and is removed if the writer raises.

    Args:
        path: the final file (its parent directories are created).
        writer: called with the temporary path; must create that file.

    Returns:
        ``path`` as a ``Path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_name(path)
    try:
        writer(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`)."""
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically (see :func:`atomic_write`)."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(
    path: str | os.PathLike,
    obj: Any,
    *,
    indent: int | None = 2,
    default: Callable[[Any], Any] | None = None,
) -> Path:
    """``json.dumps(obj)`` to ``path`` atomically (see :func:`atomic_write`)."""
    return atomic_write_text(path, json.dumps(obj, indent=indent, default=default))


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save(obj, path)``, atomically (see :func:`atomic_write`)."""
    import torch

    return atomic_write(path, lambda tmp: torch.save(obj, tmp))


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, *, replace: bool = False) -> Iterator[Path]:
    """Fill a directory under a temporary name; on success rename it to ``path``.

    ``with atomic_dir(out) as tmp: write files into tmp`` — if the block raises, the temporary
    directory is removed and ``path`` is untouched.

    Args:
        path: the final directory; it must not exist unless ``replace`` is true.
        replace: remove an existing ``path`` just before the rename (a resumed run redoing a
            checkpoint a killed run had saved).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_name(path)
    tmp.mkdir()
    try:
        yield tmp
        if replace and path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def check_output_dir(path: str | os.PathLike, *, overwrite: bool = False,
                     option: str = "--out") -> Path:
    """Refuse to write into a directory this command did not create: ``path`` must be missing
    or empty unless ``overwrite`` (the user's explicit ``--overwrite``).

    Raises:
        FileExistsError: ``path`` is a file, or a non-empty directory without ``overwrite``.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"{option} {path} is a file; name a directory")
    held = sorted(p.name for p in path.iterdir()) if path.is_dir() else []
    if held and not overwrite:
        shown = ", ".join(held[:3]) + (", ..." if len(held) > 3 else "")
        raise FileExistsError(
            f"{option} {path} is not empty ({shown}); nothing was written: choose a new or "
            f"empty directory, or pass --overwrite to write into it"
        )
    return path


def check_output_file(path: str | os.PathLike, *, overwrite: bool = False,
                      option: str = "--out") -> Path:
    """Before the work starts: ``path`` can be written (its folder exists or can be made and
    takes a file) and holds nothing yet, unless ``overwrite``.

    Raises:
        FileExistsError: ``path`` is a directory, or a file without ``overwrite``.
        OSError: its folder cannot be created or written (read-only disk, no permission).
    """
    path = Path(path)
    if path.is_dir():
        raise FileExistsError(f"{option} {path} is a directory; name a file, e.g. {path}/results.json")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{option} {path} exists; nothing was run: choose another file, "
                              f"or pass --overwrite to replace it")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        probe = _temporary_name(path)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise OSError(exc.errno, f"{option} {path} cannot be written ({exc.strerror}); nothing "
                                 f"was run: choose a writable location") from exc
    return path


def write_deterministic_npz(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> Path:
    """Like ``np.savez`` but byte-deterministic (fixed zip timestamps) and atomic."""

    def write(tmp: Path) -> None:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
            for name, array in arrays.items():
                buf = io.BytesIO()
                np.lib.format.write_array(buf, np.asarray(array), allow_pickle=False)
                info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                zf.writestr(info, buf.getvalue())

    return atomic_write(path, write)
