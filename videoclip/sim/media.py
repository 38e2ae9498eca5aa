"""Raw media for the video pipeline's tests and demo: PyAV-made videos and an S3D with random weights.

No real S3D weights exist where this book is built: :func:`random_s3d_files` saves an S3D with
random weights (random BatchNorm statistics too) under the release's state-dict keys, with a
small vocabulary file. Features from it show the pipeline's mechanics and cost, nothing about
what S3D sees. Videos are smooth moving gradients plus noise, written with PyAV.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch

from videoclip.video.s3d import S3D

__all__ = ["WORDS", "random_s3d_files", "write_audio_only", "write_video"]

#: the random S3D's vocabulary
WORDS = ["cut", "the", "tomato", "open", "door", "pour", "water", "into", "bowl", "it's"]


def random_s3d_files(directory: Path, *, seed: int = 0) -> tuple[Path, Path]:
    """``(weights.pth, dict.npy)``: an S3D with random weights in the release's key layout."""
    directory.mkdir(parents=True, exist_ok=True)
    dict_path = directory / "s3d_dict.npy"
    np.save(dict_path, np.array(WORDS))
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in S3D({}).state_dict().items()}
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in shapes.items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(0)
        elif key.endswith(("running_var", "bn1.weight", "bn2.weight")):
            state[key] = 0.5 + torch.rand(shape, generator=g)
        elif len(shape) >= 2:  # conv / linear / embedding: fan-in scaled, activations stay O(1)
            fan_in = shape[1:].numel() if len(shape) > 2 or "word_embd" not in key else 1
            state[key] = torch.randn(shape, generator=g) * (2.0 / fan_in) ** 0.5
        else:  # biases, BN shifts and means
            state[key] = 0.1 * torch.randn(shape, generator=g)
    weights_path = directory / "s3d_howto100m.pth"
    torch.save(state, weights_path)
    return weights_path, dict_path


def write_video(path: Path, *, width: int = 64, height: int = 48, num_frames: int = 45,
                fps: int = 30, pts: list[int] | None = None, time_base: Fraction | None = None,
                codec: str = "mpeg4", audio: bool = False, seed: int = 0) -> np.ndarray:
    """Write a small video with PyAV; returns the frames written, uint8 ``(N, H, W, 3)``.

    ``pts`` (in ``time_base``) gives a variable frame rate; frames are smooth gradients plus
    noise so that scaling is tested on real content.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    frames = []
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if time_base is not None:
            stream.codec_context.time_base = time_base
            stream.time_base = time_base
        if audio:
            audio_stream = container.add_stream("aac", rate=16000)
        for i in range(num_frames):
            base = np.stack([(xx * 4 + i * 7) % 256, (yy * 5 + i * 3) % 256,
                             ((xx + yy) * 3 + i * 11) % 256], axis=-1)
            image = np.clip(base + rng.integers(-20, 20, base.shape), 0, 255).astype(np.uint8)
            frames.append(image)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            if pts is not None:
                frame.pts, frame.time_base = pts[i], time_base
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
        if audio:
            _write_tone(container, audio_stream, seconds=num_frames / fps)
    return np.stack(frames)


def write_audio_only(path: Path, *, seconds: float = 1.0) -> None:
    """A file with one AAC audio stream and no video."""
    with av.open(str(path), "w") as container:
        _write_tone(container, container.add_stream("aac", rate=16000), seconds=seconds)


def _write_tone(container: av.container.OutputContainer, stream: av.audio.stream.AudioStream, *,
                seconds: float) -> None:
    samples = int(16000 * seconds)
    tone = (0.1 * np.sin(np.arange(samples) / 5.0)).astype(np.float32)[None]
    for first in range(0, samples, 1024):
        frame = av.AudioFrame.from_ndarray(tone[:, first:first + 1024], format="flt",
                                           layout="mono")
        frame.sample_rate = 16000
        frame.pts = first
        container.mux(stream.encode(frame))
    container.mux(stream.encode())
