"""Feature stores (design §3): the released per-video layout, the packed layout, and bad input."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from videoclip.data.features import (
    FeatureError,
    FeatureNormWarning,
    NpyFeatureStore,
    PackedFeatureStore,
    open_feature_store,
    pack_features,
    unpack_features,
    write_features,
)


def unit_rows(rng: np.random.Generator, num_seconds: int, dim: int = 512) -> np.ndarray:
    x = rng.standard_normal((num_seconds, dim))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture()
def npy_dir(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    for i, num_seconds in enumerate([5, 1, 40, 17, 3, 9, 12]):
        write_features(tmp_path / "npy", f"v{i}", unit_rows(rng, num_seconds))
    return tmp_path / "npy"


def test_write_and_load_roundtrip(tmp_path: Path) -> None:
    x = unit_rows(np.random.default_rng(1), 7)
    path = write_features(tmp_path, "abc-_X", x)
    assert path == tmp_path / "abc-_X.npy"
    assert np.load(path).dtype == np.float16  # the released storage type
    assert [p.name for p in tmp_path.iterdir()] == ["abc-_X.npy"]  # no temporary left behind
    store = open_feature_store(tmp_path)
    assert isinstance(store, NpyFeatureStore)
    assert store.ids() == ["abc-_X"] and "abc-_X" in store and len(store) == 1
    assert store.num_seconds("abc-_X") == 7
    loaded = store.load("abc-_X")
    assert loaded.dtype == np.float32 and loaded.shape == (7, 512)
    np.testing.assert_allclose(loaded, x, atol=1e-3)
    np.testing.assert_array_equal(store.load_span("abc-_X", 2, 5), loaded[2:5])
    with pytest.raises(IndexError):
        store.load_span("abc-_X", 5, 8)
    with pytest.raises(KeyError, match="nope"):
        store.load("nope")


def test_packed_store_equals_npy_store(npy_dir: Path, tmp_path: Path) -> None:
    npy = open_feature_store(npy_dir)
    packed = pack_features(npy_dir, tmp_path / "packed", shard_videos=3)
    assert isinstance(open_feature_store(tmp_path / "packed"), PackedFeatureStore)
    assert len(packed.shards) == 3  # 7 videos, 3 per shard
    assert packed.ids() == npy.ids() and len(packed) == len(npy)
    for vid in npy.ids():
        assert packed.num_seconds(vid) == npy.num_seconds(vid)
        np.testing.assert_array_equal(packed.load(vid), npy.load(vid))
        n = npy.num_seconds(vid)
        for start, end in [(0, n), (n // 2, n), (0, 0), (1, max(1, n - 1))]:
            np.testing.assert_array_equal(packed.load_span(vid, start, end),
                                          npy.load_span(vid, start, end))
    back = unpack_features(tmp_path / "packed", tmp_path / "back")
    for vid in npy.ids():
        np.testing.assert_array_equal(back.load(vid), npy.load(vid))


def test_pack_subset_and_existing_target(npy_dir: Path, tmp_path: Path) -> None:
    packed = pack_features(npy_dir, tmp_path / "p", ids=["v3", "v0"])
    assert packed.ids() == ["v3", "v0"]
    with pytest.raises(FileExistsError, match="already exists"):
        pack_features(npy_dir, tmp_path / "p")
    with pytest.raises(FeatureError, match="no features"):
        pack_features(npy_dir, tmp_path / "q", ids=["v0", "missing"])
    assert not (tmp_path / "q").exists()


@pytest.mark.parametrize(
    ("array", "match"),
    [
        (np.zeros((4, 512), dtype=np.int32), "dtype int32"),
        (np.zeros((4, 512), dtype=np.float64), "dtype float64"),
        (np.zeros(512, dtype=np.float16), "expected 2-D"),
        (np.zeros((4, 1024), dtype=np.float16), "dimension 1024"),
    ],
)
def test_bad_arrays_name_the_file(tmp_path: Path, array: np.ndarray, match: str) -> None:
    np.save(tmp_path / "bad.npy", array)
    store = NpyFeatureStore(tmp_path)
    with pytest.raises(FeatureError, match=match) as err:
        store.load("bad")
    assert "bad.npy" in str(err.value)


def test_nan_row_is_named(tmp_path: Path) -> None:
    x = unit_rows(np.random.default_rng(2), 10).astype(np.float16)
    x[6, 3] = np.nan
    x[8, 0] = np.inf
    np.save(tmp_path / "nanvid.npy", x)
    with pytest.raises(FeatureError, match=r"nanvid\.npy: row 6 .*2 bad rows"):
        open_feature_store(tmp_path).load("nanvid")
    with pytest.raises(FeatureError, match="row 6"):
        write_features(tmp_path / "out", "nanvid", x)


def test_truncated_and_garbage_files(npy_dir: Path) -> None:
    data = (npy_dir / "v2.npy").read_bytes()
    (npy_dir / "trunc.npy").write_bytes(data[: len(data) // 2])
    (npy_dir / "garbage.npy").write_bytes(b"not a numpy file at all")
    store = open_feature_store(npy_dir)
    for vid in ("trunc", "garbage"):
        with pytest.raises(FeatureError, match=f"{vid}.npy.*(corrupt|truncated)"):
            store.load(vid)
        with pytest.raises(FeatureError, match=f"{vid}.npy.*re-extract"):
            store.num_seconds(vid)
    with pytest.raises(FeatureError, match=r"(garbage|trunc)\.npy"):
        pack_features(npy_dir, npy_dir.parent / "packed")
    assert not (npy_dir.parent / "packed").exists()  # nothing half-written


def test_norm_warning_once_and_names_the_fix(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    write_features(tmp_path, "raw1", 3.0 * unit_rows(rng, 4))
    write_features(tmp_path, "raw2", 0.5 * unit_rows(rng, 4))
    write_features(tmp_path, "ok", unit_rows(rng, 4))
    store = open_feature_store(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        store.load("ok")  # unit rows: no warning
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        store.load("raw1")
        store.load("raw2")
    assert len(record) == 1 and record[0].category is FeatureNormWarning
    message = str(record[0].message)
    assert "raw1.npy" in message and "L2-normalise" in message


def test_store_directory_errors(tmp_path: Path) -> None:
    with pytest.raises(FeatureError, match="not found"):
        open_feature_store(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FeatureError, match="no <vid>.npy"):
        open_feature_store(tmp_path / "empty")
    with pytest.raises(FeatureError, match="cannot be a file name"):
        write_features(tmp_path, "a/b", np.zeros((2, 512)))


def test_corrupt_packed_store(npy_dir: Path, tmp_path: Path) -> None:
    pack_features(npy_dir, tmp_path / "p", shard_videos=4)
    index_path = tmp_path / "p" / "index.json"
    index = json.loads(index_path.read_text())

    index_path.write_text(json.dumps({**index, "dim": 1024}))
    with pytest.raises(FeatureError, match="dimension 1024"):
        open_feature_store(tmp_path / "p")
    index_path.write_text("{oops")
    with pytest.raises(FeatureError, match="index.json.*rebuild"):
        open_feature_store(tmp_path / "p")
    index_path.write_text(json.dumps(index))
    shard = tmp_path / "p" / "shard_00001.npy"
    shard.write_bytes(shard.read_bytes()[:-1000])
    with pytest.raises(FeatureError, match="shard_00001.npy.*rebuild"):
        open_feature_store(tmp_path / "p")


def test_packed_offsets_must_match(npy_dir: Path, tmp_path: Path) -> None:
    pack_features(npy_dir, tmp_path / "p", shard_videos=10)
    offsets_path = tmp_path / "p" / "shard_00000.offsets.npy"
    offsets = np.load(offsets_path)
    offsets[-1] += 1
    np.save(offsets_path, offsets)
    with pytest.raises(FeatureError, match="offsets do not match"):
        open_feature_store(tmp_path / "p")


def test_pack_command_writes_a_store_and_reports_errors(npy_dir: Path, tmp_path: Path) -> None:
    """The command book/paper_profile.md gives packs, and refuses to overwrite in one line."""
    import subprocess
    import sys

    out = tmp_path / "packed"
    entry = ["-m", "videoclip", "features"]
    proc = subprocess.run([sys.executable, *entry, "pack", str(npy_dir), str(out), "--shard-videos", "3"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    packed, npy = open_feature_store(out), open_feature_store(npy_dir)
    assert isinstance(packed, PackedFeatureStore) and packed.ids() == npy.ids()
    np.testing.assert_array_equal(packed.load("v2"), npy.load("v2"))
    again = subprocess.run([sys.executable, *entry, "pack", str(npy_dir), str(out)],
                           capture_output=True, text=True, check=False)
    assert again.returncode == 2 and "already exists" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1  # one line, no traceback
