"""Frames for S3D, decoded with PyAV through the filter chain of MMPT's ffmpeg call (SPEC §3).

MMPT's extractor runs ``ffmpeg -i VIDEO -vf fps=30,scale=W:H,crop=224:224:X:Y -pix_fmt rgb24``
with ``W:H`` putting the shorter side at 224 (``int(long * 224 / short)`` for the other) and
the crop centred at ``X = int((W - 224) / 2)``, ``Y = int((H - 224) / 2)``. Here the same
filters run in a PyAV filter graph, ending in a ``format=rgb24`` filter as the ffmpeg CLI's
does, so the scaler converts and resizes in one step exactly as there; timestamps are shifted
so the file starts at 0, as the CLI shifts them. Design §12 lists what differs (rotation,
corrupt packets).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

__all__ = ["VideoDecodeError", "iter_frames", "read_frames", "scaled_size"]

FPS = 30
SIZE = 224


class VideoDecodeError(RuntimeError):
    """A video that cannot be decoded (unreadable, no video stream, no frames, corrupt data)."""


def scaled_size(height: int, width: int, size: int = SIZE) -> tuple[int, int]:
    """``(height, width)`` after MMPT's scale: the shorter side becomes ``size``."""
    if height >= width:
        return int(height * size / width), size
    return size, int(width * size / height)


def _graph(stream: av.video.stream.VideoStream, fps: int, size: int) -> av.filter.Graph:
    """buffer → fps → scale (bicubic) → centre crop → rgb24 → sink, for this stream."""
    height, width = scaled_size(stream.codec_context.height, stream.codec_context.width, size)
    x, y = int((width - size) / 2), int((height - size) / 2)
    graph = av.filter.Graph()
    chain = [
        graph.add_buffer(template=stream),
        graph.add("fps", f"fps={fps}"),
        graph.add("scale", f"{width}:{height}:flags=bicubic"),
        graph.add("crop", f"{size}:{size}:{x}:{y}"),
        graph.add("format", "rgb24"),
        graph.add("buffersink"),
    ]
    for upstream, downstream in itertools.pairwise(chain):
        upstream.link_to(downstream)
    graph.configure()
    return graph


def _drain(graph: av.filter.Graph) -> Iterator[np.ndarray]:
    while True:
        try:
            frame = graph.pull()
        except (av.error.BlockingIOError, av.error.EOFError):
            return
        yield frame.to_ndarray().transpose(2, 0, 1)  # (H, W, 3) → (3, H, W)


def iter_frames(path: str | Path, *, fps: int = FPS, size: int = SIZE) -> Iterator[np.ndarray]:
    """Yield the video's frames one by one, uint8 ``(3, size, size)``, as MMPT's ffmpeg call.

    Raises :class:`VideoDecodeError` naming the file when it cannot be opened, has no video
    stream, holds corrupt data, or yields no frame.
    """
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as exc:
        raise VideoDecodeError(f"{path}: cannot open ({exc}); the file is not a readable "
                               "video (empty, truncated or another format)") from exc
    with container:
        if not container.streams.video:
            raise VideoDecodeError(f"{path}: no video stream (audio only?); drop the file "
                                   "from the list")
        stream = container.streams.video[0]
        stream.thread_count = 1  # parallelism comes from decoding several videos at once
        # the ffmpeg CLI shifts timestamps so that the file starts at 0
        offset = 0
        if container.start_time is not None:
            offset = round(Fraction(container.start_time, av.time_base) / stream.time_base)
        count = 0
        try:
            graph = _graph(stream, fps, size)
            for frame in container.decode(stream):
                if frame.pts is None:
                    raise VideoDecodeError(f"{path}: a frame without a timestamp; remux the "
                                           "file (ffmpeg -i IN -c copy OUT.mp4)")
                frame.pts -= offset
                graph.push(frame)
                for image in _drain(graph):
                    count += 1
                    yield image
            graph.push(None)  # end of stream: the fps filter emits its last frames
            for image in _drain(graph):
                count += 1
                yield image
        except av.error.FFmpegError as exc:
            raise VideoDecodeError(f"{path}: corrupt video data after {count} frames ({exc}); "
                                   "re-download or re-encode the file") from exc
        if count == 0:
            raise VideoDecodeError(f"{path}: no video frames; the file is empty or truncated")


def read_frames(path: str | Path, fps: int = FPS, size: int = SIZE) -> np.ndarray:
    """All frames of a video, uint8 ``(N, 3, size, size)``, as MMPT's ffmpeg call (SPEC §3)."""
    return np.stack(list(iter_frames(path, fps=fps, size=size)))
