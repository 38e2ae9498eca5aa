"""Video feature stores: per-video ``.npy`` arrays and a packed, memory-mapped shard format.

design §3: one S3D vector per second, 512-d, L2-normalised per second, stored float16 as one
array ``[seconds, 512]`` per video (the released layout, :class:`NpyFeatureStore`). For scale
(1.2M HowTo100M videos) :class:`PackedFeatureStore` keeps many videos in one contiguous
``(rows, dim)`` array per shard, plus row offsets and an id index, memory-mapped so that a
clip sampler reads only the seconds it needs. :func:`pack_features` / :func:`unpack_features`
convert between the two layouts (from the shell: ``videoclip features pack SRC OUT`` and
``videoclip features unpack SRC OUT``).

Packed layout (a directory)::

    index.json                   {"format", "version", "dim", "dtype", "num_videos", "shards": [...]}
    shard_00000.npy              (rows, dim) float16, videos back to back
    shard_00000.offsets.npy      (num_videos + 1,) int64 row offsets
    shard_00000.ids.txt          one video id per line, in the order of the offsets
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from videoclip._io import atomic_dir, atomic_write

__all__ = [
    "FeatureError",
    "FeatureNormWarning",
    "FeatureStore",
    "NpyFeatureStore",
    "PackedFeatureStore",
    "open_feature_store",
    "pack_features",
    "unpack_features",
    "validate_features",
    "write_features",
]

PACKED_FORMAT = "videoclip-packed-features"
PACKED_VERSION = 1
_NORM_TOL = 2e-2  # float16 storage alone moves a unit norm by ~1e-3
_NORM_FIX = "L2-normalise each second's feature vector before storing it (design §3)"


class FeatureError(ValueError):
    """A feature file or store that cannot be used; the message names the file, row and fix."""


class FeatureNormWarning(UserWarning):
    """Feature rows are not unit-norm (design §3): retrieval scores will be poor."""


@runtime_checkable
class FeatureStore(Protocol):
    """What every store offers. Arrays are float32 ``(seconds, dim)``."""

    path: Path
    dim: int

    def ids(self) -> list[str]: ...
    def __contains__(self, vid: object) -> bool: ...
    def __len__(self) -> int: ...
    def num_seconds(self, vid: str) -> int: ...
    def load(self, vid: str) -> np.ndarray: ...
    def load_span(self, vid: str, start: int, end: int) -> np.ndarray: ...


def validate_features(array: np.ndarray, source: str, *, dim: int = 512) -> None:
    """Raise :class:`FeatureError` unless ``array`` is a finite float16/32 ``(seconds, dim)`` array.

    Args:
        array: the video's features, ``(S, dim)``.
        source: the file (or ``store:vid``) named in the error.
        dim: the expected feature dimension (512 for S3D, design §3).
    """
    if array.dtype not in (np.float16, np.float32):
        raise FeatureError(
            f"{source}: dtype {array.dtype}, expected float16 or float32; "
            "save the features with array.astype(np.float16)"
        )
    if array.ndim != 2:
        raise FeatureError(
            f"{source}: shape {array.shape}, expected 2-D (seconds, {dim}); "
            "store one vector per second of video (design §3)"
        )
    if array.shape[1] != dim:
        raise FeatureError(
            f"{source}: dimension {array.shape[1]}, expected {dim}; these are not S3D "
            f"{dim}-d features (the 1024-d HowTo100M release is a different feature, design §3)"
        )
    finite = np.isfinite(array).all(axis=1)
    if not finite.all():
        row = int(np.argmin(finite))
        raise FeatureError(
            f"{source}: row {row} (second {row}) holds NaN or inf "
            f"({int((~finite).sum())} bad rows); re-extract this video's features"
        )


def _norms_ok(array: np.ndarray) -> bool:
    norms = np.linalg.norm(array.astype(np.float32, copy=False), axis=1)
    return bool(np.all(np.abs(norms - 1.0) <= _NORM_TOL))


class _NormCheck:
    """Warns once per store when a loaded video's rows are not unit-norm."""

    def __init__(self) -> None:
        self._warned = False

    def check(self, array: np.ndarray, source: str) -> None:
        if self._warned or _norms_ok(array):
            return
        self._warned = True
        norms = np.linalg.norm(array.astype(np.float32, copy=False), axis=1)
        warnings.warn(
            f"{source}: feature rows are not unit-norm (norms {norms.min():.3g}..{norms.max():.3g}); "
            f"{_NORM_FIX}. Warned once per store.",
            FeatureNormWarning,
            stacklevel=3,
        )


def _read_npy_header(path: Path) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype from a ``.npy`` header, without reading the data."""
    try:
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
            else:
                shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
            expected = fh.tell() + int(np.prod(shape)) * dtype.itemsize
            size = os.fstat(fh.fileno()).st_size
    except (ValueError, EOFError, OSError) as exc:
        raise FeatureError(
            f"{path}: not a readable .npy file ({exc}); the file is corrupt or truncated: "
            "re-extract or re-download it, or delete it to drop the video"
        ) from exc
    if size != expected:
        raise FeatureError(
            f"{path}: {size} bytes but its header {shape} {dtype} needs {expected}; the file is "
            "truncated or corrupt: re-extract or re-download it, or delete it to drop the video"
        )
    return shape, dtype


def _check_vid(vid: str) -> None:
    if not vid or "/" in vid or "\\" in vid or vid in (".", ".."):
        raise FeatureError(f"video id {vid!r} cannot be a file name; use the bare video id")


class NpyFeatureStore:
    """A directory of ``<vid>.npy`` arrays ``[seconds, dim]`` (the released layout, design §3).

    Every :meth:`load` validates the array (dtype, 2-D, dimension, finite) and warns once per
    store when the rows are not unit-norm.
    """

    def __init__(self, path: str | Path, *, dim: int = 512) -> None:
        self.path = Path(path)
        self.dim = dim
        if not self.path.is_dir():
            raise FeatureError(f"{self.path}: feature directory not found; pass the folder of <vid>.npy")
        self._ids = sorted(p.name[:-4] for p in os.scandir(self.path)
                           if p.name.endswith(".npy") and p.is_file())
        if not self._ids:
            raise FeatureError(
                f"{self.path}: no <vid>.npy files and no index.json; "
                "point at a folder of per-video features or a packed store"
            )
        self._id_set = set(self._ids)
        self._seconds: dict[str, int] = {}
        self._norms = _NormCheck()

    def __repr__(self) -> str:
        return f"NpyFeatureStore({str(self.path)!r}, videos={len(self)}, dim={self.dim})"

    def ids(self) -> list[str]:
        """All video ids, sorted."""
        return list(self._ids)

    def __contains__(self, vid: object) -> bool:
        return vid in self._id_set

    def __len__(self) -> int:
        return len(self._ids)

    def _file(self, vid: str) -> Path:
        if vid not in self._id_set:
            raise KeyError(f"video {vid!r} has no features in {self.path}")
        return self.path / f"{vid}.npy"

    def num_seconds(self, vid: str) -> int:
        """Number of one-second rows (read from the header only)."""
        if vid not in self._seconds:
            path = self._file(vid)
            shape, _ = _read_npy_header(path)
            if len(shape) != 2:
                raise FeatureError(f"{path}: shape {shape}, expected 2-D (seconds, {self.dim})")
            self._seconds[vid] = int(shape[0])
        return self._seconds[vid]

    def load(self, vid: str) -> np.ndarray:
        """The validated features of one video, float32 ``(S, dim)``."""
        path = self._file(vid)
        try:
            array = np.load(path, allow_pickle=False)
        except (ValueError, EOFError, OSError) as exc:
            raise FeatureError(
                f"{path}: cannot read ({exc}); the file is corrupt or truncated: "
                "re-extract or re-download it, or delete it to drop the video"
            ) from exc
        validate_features(array, str(path), dim=self.dim)
        self._norms.check(array, str(path))
        self._seconds[vid] = int(array.shape[0])
        return array.astype(np.float32)

    def load_span(self, vid: str, start: int, end: int) -> np.ndarray:
        """Seconds ``[start, end)`` of one video, float32 ``(end - start, dim)``."""
        array = self.load(vid)
        _check_span(vid, start, end, array.shape[0])
        return array[start:end]


def _check_span(vid: str, start: int, end: int, num_seconds: int) -> None:
    if not 0 <= start <= end <= num_seconds:
        raise IndexError(f"span [{start}, {end}) outside video {vid!r} of {num_seconds} s")


class PackedFeatureStore:
    """Many videos per memory-mapped shard: ``(rows, dim)`` array + offsets + id index.

    Values were validated when the store was written (:func:`pack_features`); opening checks
    the layout (format, dtype, dimension, offsets, file sizes). :meth:`load` re-validates a
    video; :meth:`load_span` is the sampler's hot path and only copies rows.
    """

    def __init__(self, path: str | Path, *, dim: int = 512) -> None:
        self.path = Path(path)
        self.dim = dim
        index_path = self.path / "index.json"
        try:
            index = json.loads(index_path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise FeatureError(
                f"{index_path}: cannot read the packed-store index ({exc}); "
                "rebuild the store with videoclip.data.features.pack_features"
            ) from exc
        if index.get("format") != PACKED_FORMAT or index.get("version") != PACKED_VERSION:
            raise FeatureError(
                f"{index_path}: format {index.get('format')!r} v{index.get('version')}, expected "
                f"{PACKED_FORMAT!r} v{PACKED_VERSION}; rebuild the store with pack_features"
            )
        if index.get("dim") != dim:
            raise FeatureError(
                f"{index_path}: dimension {index.get('dim')}, expected {dim}; "
                "pack features of the right dimension"
            )
        self.shards: list[np.ndarray] = []
        self.offsets: list[np.ndarray] = []
        self._ids: list[str] = []
        self._where: dict[str, tuple[int, int]] = {}
        for shard_idx, shard in enumerate(index["shards"]):
            data, offsets, ids = self._open_shard(shard["name"])
            self.shards.append(data)
            self.offsets.append(offsets)
            for row, vid in enumerate(ids):
                if vid in self._where:
                    raise FeatureError(
                        f"{self.path / (shard['name'] + '.ids.txt')}: video {vid!r} appears twice; "
                        "rebuild the store with pack_features"
                    )
                self._where[vid] = (shard_idx, row)
            self._ids.extend(ids)
        if len(self._ids) != index.get("num_videos"):
            raise FeatureError(
                f"{index_path}: num_videos {index.get('num_videos')} but the shards hold "
                f"{len(self._ids)}; rebuild the store with pack_features"
            )
        self._norms = _NormCheck()

    def _open_shard(self, name: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
        data_path = self.path / f"{name}.npy"
        fix = "the store is corrupt or truncated: rebuild it with pack_features"
        try:
            data = np.load(data_path, mmap_mode="r", allow_pickle=False)
            offsets = np.load(self.path / f"{name}.offsets.npy", allow_pickle=False)
            ids = (self.path / f"{name}.ids.txt").read_text().splitlines()
        except (ValueError, EOFError, OSError) as exc:
            raise FeatureError(f"{data_path}: cannot open shard ({exc}); {fix}") from exc
        if data.dtype not in (np.float16, np.float32) or data.ndim != 2 or data.shape[1] != self.dim:
            raise FeatureError(
                f"{data_path}: {data.dtype} {data.shape}, expected float16 (rows, {self.dim}); {fix}"
            )
        if (offsets.ndim != 1 or len(offsets) != len(ids) + 1 or offsets[0] != 0
                or offsets[-1] != data.shape[0] or np.any(np.diff(offsets) < 0)):
            raise FeatureError(
                f"{data_path}: offsets do not match {len(ids)} ids and {data.shape[0]} rows; {fix}"
            )
        # a plain ndarray over the same mapping: slicing a np.memmap costs ~3 µs more per call
        return data.view(np.ndarray), offsets.astype(np.int64), ids

    def __repr__(self) -> str:
        return (f"PackedFeatureStore({str(self.path)!r}, videos={len(self)}, "
                f"shards={len(self.shards)}, dim={self.dim})")

    def ids(self) -> list[str]:
        """All video ids, in storage order."""
        return list(self._ids)

    def __contains__(self, vid: object) -> bool:
        return vid in self._where

    def __len__(self) -> int:
        return len(self._ids)

    def locate(self, vid: str) -> tuple[int, int, int]:
        """``(shard index, first row, num_seconds)`` of one video; rows live in ``self.shards``."""
        try:
            shard_idx, row = self._where[vid]
        except KeyError:
            raise KeyError(f"video {vid!r} has no features in {self.path}") from None
        offsets = self.offsets[shard_idx]
        return shard_idx, int(offsets[row]), int(offsets[row + 1] - offsets[row])

    def num_seconds(self, vid: str) -> int:
        """Number of one-second rows."""
        return self.locate(vid)[2]

    def load(self, vid: str) -> np.ndarray:
        """The validated features of one video, float32 ``(S, dim)``."""
        shard_idx, first, length = self.locate(vid)
        array = np.asarray(self.shards[shard_idx][first:first + length])
        source = f"{self.path}:{vid}"
        validate_features(array, source, dim=self.dim)
        self._norms.check(array, source)
        return array.astype(np.float32)

    def load_span(self, vid: str, start: int, end: int) -> np.ndarray:
        """Seconds ``[start, end)`` of one video, float32 ``(end - start, dim)`` (no re-validation)."""
        shard_idx, first, length = self.locate(vid)
        _check_span(vid, start, end, length)
        return self.shards[shard_idx][first + start:first + end].astype(np.float32)


def open_feature_store(path: str | Path, *, dim: int = 512) -> NpyFeatureStore | PackedFeatureStore:
    """Open a packed store (a directory with ``index.json``) or a directory of ``<vid>.npy``."""
    path = Path(path)
    if (path / "index.json").is_file():
        return PackedFeatureStore(path, dim=dim)
    return NpyFeatureStore(path, dim=dim)


def _atomic_save_npy(path: Path, array: np.ndarray) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.save(fh, array, allow_pickle=False)

    atomic_write(path, write)


def write_features(directory: str | Path, vid: str, array: np.ndarray, *, dim: int = 512) -> Path:
    """Atomically write one video's features as ``<directory>/<vid>.npy`` float16 ``(S, dim)``.

    The array is validated (2-D, dimension, finite) but not normalised: row norms are the
    reader's check, so a writer can produce un-normalised features on purpose.
    """
    _check_vid(vid)
    array = np.asarray(array)
    if not np.issubdtype(array.dtype, np.floating):
        raise FeatureError(f"{vid}: dtype {array.dtype}; pass floating-point features")
    array = array.astype(np.float16)
    validate_features(array, f"{vid} (to be written to {directory})", dim=dim)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{vid}.npy"
    _atomic_save_npy(path, array)
    return path


def pack_features(
    src: str | Path,
    out_dir: str | Path,
    *,
    shard_videos: int = 4096,
    ids: Iterable[str] | None = None,
    dim: int = 512,
) -> PackedFeatureStore:
    """Pack a feature store (usually a ``<vid>.npy`` directory) into a packed store.

    Every video is validated as it is copied. The store is built in a temporary sibling
    directory and renamed into place, so a crash never leaves a half-written store.

    Args:
        src: a feature directory or store path (anything :func:`open_feature_store` opens).
        out_dir: the new store's directory; must not exist yet.
        shard_videos: videos per shard.
        ids: the videos to pack (default: all, in the source's order).
    """
    if shard_videos < 1:
        raise ValueError(f"shard_videos={shard_videos}; use a positive number")
    out_dir = Path(out_dir)
    if out_dir.exists():
        raise FileExistsError(f"{out_dir}: already exists; pick a new directory or delete it")
    store = open_feature_store(src, dim=dim)
    vids = list(store.ids() if ids is None else ids)
    missing = [v for v in vids if v not in store]
    if missing:
        raise FeatureError(f"{store.path}: {len(missing)} requested ids have no features, "
                           f"e.g. {missing[:3]}; pass ids that exist")
    with atomic_dir(out_dir) as tmp_dir:
        shards = []
        for shard_idx, first in enumerate(range(0, len(vids), shard_videos)):
            chunk = vids[first:first + shard_videos]
            lengths = np.array([store.num_seconds(v) for v in chunk], dtype=np.int64)
            offsets = np.concatenate([[0], np.cumsum(lengths)])
            name = f"shard_{shard_idx:05d}"
            data = np.lib.format.open_memmap(tmp_dir / f"{name}.npy", mode="w+",
                                             dtype=np.float16, shape=(int(offsets[-1]), dim))
            for vid, a, b in zip(chunk, offsets[:-1], offsets[1:]):
                data[a:b] = store.load(vid)
            data.flush()
            del data
            np.save(tmp_dir / f"{name}.offsets.npy", offsets)
            (tmp_dir / f"{name}.ids.txt").write_text("".join(f"{v}\n" for v in chunk))
            shards.append({"name": name, "num_videos": len(chunk), "num_rows": int(offsets[-1])})
        index = {"format": PACKED_FORMAT, "version": PACKED_VERSION, "dim": dim,
                 "dtype": "float16", "num_videos": len(vids), "shards": shards}
        (tmp_dir / "index.json").write_text(json.dumps(index, indent=1))
    return PackedFeatureStore(out_dir, dim=dim)


def unpack_features(src: str | Path, out_dir: str | Path, *, dim: int = 512) -> NpyFeatureStore:
    """Write every video of a (packed) store as ``<out_dir>/<vid>.npy`` float16."""
    store = open_feature_store(src, dim=dim)
    for vid in store.ids():
        write_features(out_dir, vid, store.load(vid), dim=dim)
    return NpyFeatureStore(out_dir, dim=dim)

