"""Features as MMPT's recipe makes them, and the batch extractor: bad files reported, none lost,
resumable after SIGKILL. S3D has random weights; frames are 32² (S3D is fully convolutional and
the recipe's code path is the same at 224², which costs ~17 s per second of video on one core)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from videoclip.cli import main
from videoclip.data.features import NpyFeatureStore
from videoclip.sim.media import write_audio_only, write_video
from videoclip.video import S3D, extract_features, extract_videos, read_frames
from videoclip.video.extract import (
    ExtractError,
    list_videos,
    prepare_out_dir,
    write_failures,
)

SIZE = 32
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def s3d(s3d_files):
    return S3D.from_milnce_checkpoint(s3d_files[0], dict_path=s3d_files[1])


def mmpt_features(s3d, path):
    """MMPT's extract.py + preprocessing.py for ``--type=s3d --half_precision 1``, written out."""
    video = torch.from_numpy(read_frames(path, size=SIZE)).float()  # (N, 3, H, W)
    video = video / 255.0
    pad = (30 - len(video) % 30) % 30
    video = torch.cat([video, torch.zeros(pad, *video.shape[1:])])
    video = video.view(-1, 30, 3, SIZE, SIZE).transpose(1, 2)  # (chunks, 3, 30, H, W)
    with torch.no_grad():
        emb = s3d(video)["video_embedding"]
    return F.normalize(emb, dim=1).numpy().astype("float16")


@pytest.mark.parametrize("num_frames", [7, 30, 61])
def test_features_equal_the_original_recipe(s3d, tmp_path, num_frames):
    path = tmp_path / "v.mp4"
    write_video(path, num_frames=num_frames)
    ours = extract_features(s3d, path, size=SIZE, batch_size=2)
    assert ours.dtype == np.float16 and ours.shape == (-(-num_frames // 30), 512)
    norms = np.linalg.norm(ours.astype(np.float32), axis=1)
    np.testing.assert_allclose(norms, 1.0, atol=2e-3)
    ref = mmpt_features(s3d, path).astype(np.float32)
    cosine = (ours.astype(np.float32) * ref).sum(1) / np.linalg.norm(ref, axis=1) / norms
    assert cosine.min() >= 0.999


def make_videos(folder: Path, *, good: int = 3, bad: bool = True) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    videos = {}
    shapes = [(80, 48), (48, 72), (64, 64)]
    for i in range(good):
        width, height = shapes[i % 3]
        videos[f"good{i}"] = folder / f"good{i}.mp4"
        write_video(videos[f"good{i}"], width=width, height=height, num_frames=12 + 5 * i, seed=i)
    if bad:
        videos["vfr"] = folder / "vfr.mkv"
        write_video(videos["vfr"], num_frames=20, time_base=Fraction(1, 1000),
                    pts=list(range(0, 20 * 45, 45)))
        videos["zero"] = folder / "zero.mp4"
        videos["zero"].write_bytes(b"")
        videos["audio"] = folder / "audio.mp4"
        write_audio_only(videos["audio"])
        videos["truncated"] = folder / "truncated.mp4"
        write_video(folder.parent / "full.mp4", num_frames=40)
        data = (folder.parent / "full.mp4").read_bytes()
        videos["truncated"].write_bytes(data[: len(data) // 3])
    return videos


@pytest.mark.parametrize("workers", [0, 2])
def test_bad_videos_are_reported_and_none_lost(s3d, tmp_path, workers):
    videos = make_videos(tmp_path / "videos")
    out = tmp_path / "features"
    prepare_out_dir(out, weights_digest="abc", overwrite=False, size=SIZE)
    report = extract_videos(s3d, list_videos([tmp_path / "videos"]), out, workers=workers,
                            size=SIZE, progress=False)
    assert sorted(report.extracted) == ["good0", "good1", "good2", "vfr"]
    assert sorted(Path(p).stem for p in report.failed) == ["audio", "truncated", "zero"]
    assert all(Path(p).name in reason for p, reason in report.failed.items())
    store = NpyFeatureStore(out)
    assert sorted(store.ids()) == sorted(report.extracted)
    for vid in store.ids():
        frames = len(read_frames(videos[vid], size=SIZE))
        assert store.num_seconds(vid) == -(-frames // 30)
        np.testing.assert_allclose(np.linalg.norm(store.load(vid), axis=1), 1.0, atol=2e-3)
    failures = write_failures(out, report)
    assert sorted(line.split("\t")[0] for line in failures.read_text().splitlines()) == sorted(
        report.failed)


def test_out_dir_is_refused_unless_ours(tmp_path):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not made by `videoclip extract`"):
        prepare_out_dir(foreign, weights_digest="abc", overwrite=False)
    prepare_out_dir(foreign, weights_digest="abc", overwrite=True)  # explicit flag
    assert (foreign / "notes.txt").read_text() == "mine"
    ours = tmp_path / "ours"
    prepare_out_dir(ours, weights_digest="abc", overwrite=False)
    (ours / "x.npy").write_bytes(b"")
    prepare_out_dir(ours, weights_digest="abc", overwrite=False)  # resumable: same weights
    with pytest.raises(FileExistsError, match="other settings or S3D weights"):
        prepare_out_dir(ours, weights_digest="def", overwrite=False)


def test_duplicate_video_ids_are_refused(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "clip.mp4").write_bytes(b"")
    (tmp_path / "b" / "clip.mkv").write_bytes(b"")
    with pytest.raises(ExtractError, match="share the video id 'clip'"):
        list_videos([tmp_path])
    with pytest.raises(FileNotFoundError, match="nowhere"):
        list_videos([tmp_path / "nowhere"])


def _cli(*args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen([sys.executable, "-m", "videoclip", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            **kwargs)


@pytest.mark.slow
def test_extract_index_search_from_the_command_line(s3d_files, tmp_path, capsys):
    make_videos(tmp_path / "videos")
    weights, vocab = map(str, s3d_files)
    features, index = tmp_path / "features", tmp_path / "index"
    proc = _cli("extract", str(tmp_path / "videos"), "--s3d", weights, "--s3d-dict", vocab,
                "--out", str(features), "--size", str(SIZE), "--workers", "1", "--no-progress")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, err  # three bad files
    assert "extracted 4 videos" in out and "3 failed" in out
    assert len((features / "failures.tsv").read_text().splitlines()) == 3
    assert main(["index", str(features), "--model", "milnce", "--out", str(index)]) == 0
    capsys.readouterr()
    assert main(["search", str(index), "cut the tomato", "-k", "3", "--json", "--s3d", weights,
                 "--s3d-dict", vocab]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert len(hits) == 3
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    assert {h["video"] for h in hits} <= {"good0", "good1", "good2", "vfr"}
    assert main(["index", str(features), "--model", "milnce", "--out", str(index)]) == 2
    err = capsys.readouterr().err
    assert "--overwrite" in err and err.count("\n") == 1
    assert main(["search", str(index), "cut the tomato"]) == 2  # milnce needs --s3d
    assert "--s3d" in capsys.readouterr().err


@pytest.mark.slow
def test_a_killed_extract_resumes_without_redoing_finished_videos(s3d_files, tmp_path):
    make_videos(tmp_path / "videos", good=8, bad=False)
    features = tmp_path / "features"
    args = ["extract", str(tmp_path / "videos"), "--s3d", str(s3d_files[0]), "--s3d-dict",
            str(s3d_files[1]), "--out", str(features), "--size", str(SIZE), "--workers", "1",
            "--no-progress"]
    proc = _cli(*args, start_new_session=True)
    deadline = time.monotonic() + 240
    while len(list(features.glob("*.npy"))) < 2:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the extractor and its decoding workers
    proc.wait()
    done = {p.name: p.stat().st_mtime_ns for p in features.glob("*.npy")}
    assert 2 <= len(done) < 8
    proc = _cli(*args)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert f"extracted {8 - len(done)} videos" in out and f"skipped {len(done)}" in out
    assert {p.name: p.stat().st_mtime_ns for p in features.glob("*.npy") if p.name in done} == done
    assert len(NpyFeatureStore(features)) == 8
    assert not list(features.glob(".*.tmp"))


def test_each_torchrun_rank_takes_its_share(s3d_files, tmp_path, monkeypatch, capsys):
    make_videos(tmp_path / "videos", good=3, bad=False)
    args = ["extract", str(tmp_path / "videos"), "--s3d", str(s3d_files[0]), "--s3d-dict",
            str(s3d_files[1]), "--out", str(tmp_path / "features"), "--size", str(SIZE),
            "--workers", "0", "--no-progress", "--device", "cpu"]
    monkeypatch.setenv("WORLD_SIZE", "2")
    for rank, expected in ((1, {"good1.npy"}), (0, {"good0.npy", "good1.npy", "good2.npy"})):
        monkeypatch.setenv("RANK", str(rank))
        assert main(args) == 0
        assert {p.name for p in (tmp_path / "features").glob("*.npy")} == expected
        assert f"rank {rank}/2: extracted {len(expected) if rank else 2} videos" in \
            capsys.readouterr().out


def test_a_failing_write_fails_that_video_only(s3d, tmp_path, monkeypatch):
    from videoclip.video import extract

    make_videos(tmp_path / "videos", good=3, bad=False)
    real_write = extract.write_features

    def flaky_write(directory, vid, array):
        if vid == "good1":
            raise OSError("disk full")
        return real_write(directory, vid, array)

    monkeypatch.setattr(extract, "write_features", flaky_write)
    report = extract_videos(s3d, list_videos([tmp_path / "videos"]), tmp_path / "features",
                            workers=0, size=SIZE, progress=False)
    assert sorted(report.extracted) == ["good0", "good2"]
    assert [Path(p).stem for p in report.failed] == ["good1"]
    assert "OSError: disk full" in next(iter(report.failed.values()))


def read_frames_crashing_on_good1(path, size):
    """Stands in for the decoder in a worker: dies like a segfaulting decoder on one file."""
    if Path(path).stem == "good1":
        os._exit(1)
    return read_frames(path, size=size)


def test_a_crashing_decoder_is_pinned_on_its_file(s3d, tmp_path, monkeypatch):
    from videoclip.video import extract

    make_videos(tmp_path / "videos", good=3, bad=False)
    monkeypatch.setattr(extract, "read_frames", read_frames_crashing_on_good1)
    report = extract_videos(s3d, list_videos([tmp_path / "videos"]), tmp_path / "features",
                            workers=2, size=SIZE, progress=False)
    assert sorted(report.extracted) == ["good0", "good2"]
    assert [Path(p).stem for p in report.failed] == ["good1"]
    assert "decoder crashed" in next(iter(report.failed.values()))
