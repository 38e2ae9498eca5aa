"""S3D features per second of video, MMPT's recipe (SPEC §3), and the resumable batch extractor.

Recipe: frames at 30 fps, 224² (``videoclip.video.decode``), as floats /255, zero-padded at the
end to a multiple of 30, cut into chunks ``(3, 30, 224, 224)``; S3D's joint-space
``video_embedding`` per chunk, L2-normalised, stored float16: one row per second.

:func:`extract_videos` runs it over many files: a pool of processes decodes ahead while S3D
runs here (on the GPU when there is one); each video's array is written atomically as
``<out_dir>/<video_id>.npy`` (the layout ``videoclip.data.features.NpyFeatureStore`` reads);
finished videos are skipped on a rerun; a video that fails is recorded and the others go on.
"""

from __future__ import annotations

import glob
import hashlib
import json
import multiprocessing
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from videoclip._io import atomic_write_json, atomic_write_text
from videoclip.data.features import write_features
from videoclip.video.decode import FPS, SIZE, VideoDecodeError, iter_frames, read_frames
from videoclip.video.s3d import S3D

__all__ = ["ExtractError", "ExtractReport", "extract_features", "extract_videos",
           "features_from_frames", "list_videos", "prepare_out_dir", "video_id", "weights_digest",
           "write_failures"]

#: what ``extract`` writes beside the features, so a rerun knows the folder is its own
MARKER = "extract.json"
MARKER_KIND = "videoclip-s3d-features"
VIDEO_SUFFIXES = {".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".flv", ".mpg", ".mpeg",
                  ".ts", ".3gp", ".ogv", ".wmv"}


def _chunks(frames: Iterable[np.ndarray], length: int = FPS) -> Iterator[np.ndarray]:
    """uint8 ``(3, H, W)`` frames → uint8 ``(length, 3, H, W)`` chunks, the last zero-padded."""
    chunk: list[np.ndarray] = []
    for frame in frames:
        chunk.append(frame)
        if len(chunk) == length:
            yield np.stack(chunk)
            chunk = []
    if chunk:
        pad = np.zeros((length - len(chunk), *chunk[0].shape), dtype=np.uint8)
        yield np.concatenate([np.stack(chunk), pad])


@torch.inference_mode()
def features_from_frames(s3d: S3D, frames: Iterable[np.ndarray], *, batch_size: int = 16,
                         ) -> np.ndarray:
    """float16 ``(ceil(N/30), 512)`` unit rows from uint8 frames ``(3, 224, 224)`` (SPEC §3)."""
    device = s3d.device
    rows: list[torch.Tensor] = []
    batch: list[np.ndarray] = []

    def run() -> None:
        video = torch.from_numpy(np.stack(batch)).to(device)  # (B, 30, 3, H, W) uint8
        video = video.permute(0, 2, 1, 3, 4).float() / 255.0  # (B, 3, 30, H, W)
        emb = s3d(video)["video_embedding"]  # the joint space, not mixed_5c
        rows.append(F.normalize(emb.float(), dim=1).cpu())
        batch.clear()

    for chunk in _chunks(frames):
        batch.append(chunk)
        if len(batch) == batch_size:
            run()
    if batch:
        run()
    if not rows:
        raise ValueError("no frames to embed")
    return torch.cat(rows).numpy().astype(np.float16)


def extract_features(s3d: S3D, path: str | Path, *, batch_size: int = 16, size: int = SIZE
                     ) -> np.ndarray:
    """One video's S3D features, float16 ``(ceil(N/30), 512)`` with unit rows (SPEC §3).

    ``size`` is the recipe's 224; a smaller one only makes tests and demos fast.
    """
    return features_from_frames(s3d, iter_frames(path, size=size), batch_size=batch_size)


def video_id(path: Path) -> str:
    """The feature file's name: the video's file name without its extension."""
    return path.stem


def list_videos(inputs: Iterable[str | Path]) -> list[Path]:
    """Files as given, folders searched recursively for video files; sorted, ids unique."""
    videos: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            videos.extend(p for p in sorted(item.rglob("*"))
                          if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
        elif item.exists():
            videos.append(item)
        else:
            raise FileNotFoundError(f"{item}: no such file or folder; pass video files or "
                                    "folders of videos")
    seen: dict[str, Path] = {}
    for path in videos:
        other = seen.setdefault(video_id(path), path)
        if other != path:
            raise ExtractError(f"{other} and {path} share the video id {video_id(path)!r} "
                             "(the feature file name); rename one of them")
    return sorted(seen.values(), key=video_id)


class ExtractError(ValueError):
    """Inputs that cannot be extracted as asked; the message names the files and the fix."""


@dataclass
class ExtractReport:
    """What one extraction run did; ``failed`` maps a video file to the reason."""

    extracted: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    seconds: int = 0  # seconds of video embedded

    def summary(self) -> str:
        return (f"extracted {len(self.extracted)} videos ({self.seconds} s of video), skipped "
                f"{len(self.skipped)} already done, {len(self.failed)} failed")


def weights_digest(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def prepare_out_dir(out_dir: Path, *, weights_digest: str, overwrite: bool, size: int = SIZE
                    ) -> None:
    """Create ``out_dir`` or accept it as a resumable target of the same weights; else refuse."""
    marker = out_dir / MARKER
    expected = {"kind": MARKER_KIND, "fps": FPS, "size": size, "s3d_sha256": weights_digest}
    if out_dir.exists() and not out_dir.is_dir():
        raise FileExistsError(f"{out_dir}: exists and is not a folder; pick another --out")
    # dot-files are temporaries (another rank's marker being written under torchrun)
    if out_dir.is_dir() and not overwrite and any(not p.name.startswith(".")
                                                  for p in out_dir.iterdir()):
        try:
            found = json.loads(marker.read_text())
        except (OSError, json.JSONDecodeError):
            raise FileExistsError(
                f"{out_dir}: not empty and not made by `videoclip extract`; pick a new --out, "
                "or pass --overwrite to write into it") from None
        if found != expected:
            raise FileExistsError(
                f"{out_dir}: made by `videoclip extract` with other settings or S3D weights "
                f"({marker.name}: {found}); use a new --out, or --overwrite to re-extract")
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(marker, expected, indent=1)


def write_failures(out_dir: Path, report: ExtractReport, *, rank: int = 0, world_size: int = 1
                   ) -> Path | None:
    """``failures.tsv`` (``failures.rank<R>.tsv`` under torchrun): video <tab> reason per line.

    Rewritten by every run (a video that failed before and works now leaves the list); removed
    when nothing failed. Returns the file, or None.
    """
    path = out_dir / ("failures.tsv" if world_size == 1 else f"failures.rank{rank}.tsv")
    if not report.failed:
        path.unlink(missing_ok=True)
        return None
    lines = [f"{video}\t{' '.join(reason.split())}\n" for video, reason in report.failed.items()]
    atomic_write_text(path, "".join(lines))
    return path


def _decoded(videos: list[Path], workers: int, size: int
             ) -> Iterator[tuple[Path, np.ndarray | Exception]]:
    """``(video, frames or the error)`` as decoding finishes; ``workers`` processes decode
    ahead (0: here, one by one). When a worker dies (a decoder crash), the videos it had in
    flight are retried one at a time, so the crash is pinned on one file and no other is lost."""
    if workers == 0:
        for path in videos:
            try:
                yield path, read_frames(path, size=size)
            except Exception as exc:  # noqa: BLE001 (one bad file must not stop the others)
                yield path, exc
        return
    queue, suspects = list(reversed(videos)), []
    context = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
    while queue or suspects:
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            running: dict[Future, Path] = {}
            try:
                while queue or suspects or running:
                    limit = 1 if suspects else workers + 1  # one video decoded ahead
                    while (suspects or queue) and len(running) < limit:
                        path = (suspects or queue).pop()
                        running[pool.submit(read_frames, path, size=size)] = path
                    done, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in done:
                        try:
                            result: np.ndarray | Exception = future.result()
                        except BrokenProcessPool:
                            raise
                        except Exception as exc:  # noqa: BLE001 (one bad file must not stop the others)
                            result = exc
                        yield running.pop(future), result
            except BrokenProcessPool:
                if len(running) == 1 and limit == 1:  # alone in the pool: this file did it
                    path = running.popitem()[1]
                    yield path, VideoDecodeError(f"{path}: the decoder crashed on this file")
                suspects.extend(running.values())


def extract_videos(
    s3d: S3D,
    videos: list[Path],
    out_dir: str | Path,
    *,
    workers: int = 2,
    batch_size: int = 16,
    size: int = SIZE,
    redo: bool = False,
    progress: bool = True,
) -> ExtractReport:
    """Extract every video not done yet into ``out_dir/<video_id>.npy``; never stops on a bad one.

    ``out_dir`` must have been prepared (:func:`prepare_out_dir`); ``redo`` re-extracts videos
    that have features already. Returns what was extracted, skipped and why each failure failed.
    """
    out_dir = Path(out_dir)
    report = ExtractReport()
    todo = []
    for path in videos:
        vid = video_id(path)
        for stale in out_dir.glob(f".{glob.escape(vid)}.npy.*.tmp"):  # left by a killed run
            stale.unlink(missing_ok=True)
        if (out_dir / f"{vid}.npy").is_file() and not redo:
            report.skipped.append(vid)
        else:
            todo.append(path)
    bar = tqdm(total=len(todo), desc="extract", unit="video", disable=not progress)
    for path, frames in _decoded(todo, workers, size):
        vid = video_id(path)
        try:
            if isinstance(frames, Exception):
                raise frames
            features = features_from_frames(s3d, frames, batch_size=batch_size)
            write_features(out_dir, vid, features)
        except VideoDecodeError as exc:
            report.failed[str(path)] = str(exc)
        except Exception as exc:  # noqa: BLE001 (S3D or the write: this video fails, not the run)
            report.failed[str(path)] = f"{path}: {type(exc).__name__}: {exc}"
        else:
            report.extracted.append(vid)
            report.seconds += len(features)
        bar.update(1)
        bar.set_postfix(failed=len(report.failed))
    bar.close()
    return report
