"""Frames as MMPT's ffmpeg call makes them: the PyAV filter graph against independent references.

No ffmpeg binary is assumed: the reference decodes every frame plainly with PyAV, picks frames
for 30 fps by the fps filter's rule written out here, resizes each with swscale directly
(``VideoFrame.reformat``, no filter graph) and crops with numpy; a second, looser check resizes
with torch's bicubic to pin the geometry without swscale. When an ``ffmpeg`` binary is on the
PATH, one more test compares with the CLI itself.
"""

from __future__ import annotations

import math
import shutil
import subprocess
from fractions import Fraction

import av
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from videoclip.sim.media import write_audio_only, write_video
from videoclip.video import VideoDecodeError, read_frames, scaled_size

# a variable frame rate: 10..70 ms between frames
VFR_PTS = np.cumsum(np.random.default_rng(0).integers(10, 70, size=30)).tolist()


def round_half_up(value: Fraction) -> int:
    return math.floor(value + Fraction(1, 2))  # libav's "near" rounding (Python's round is even)


def naive_frames(path, fps=30, size=224):
    """Every decoded frame, the fps filter's choice per output tick, swscale, numpy crop."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        start = Fraction(container.start_time or 0, 1_000_000)
    times = [f.pts * stream.time_base - start for f in frames]
    end = times[-1] + frames[-1].duration * stream.time_base
    ticks = [round_half_up(t * fps) for t in times]  # input timestamps in output ticks, rounded near
    height, width = scaled_size(frames[0].height, frames[0].width, size)
    x, y = int((width - size) / 2), int((height - size) / 2)
    out = []
    for tick in range(ticks[0], round_half_up(end * fps)):
        chosen = max(i for i, t in enumerate(ticks) if t <= tick)  # the latest frame shown
        rgb = frames[chosen].reformat(width=width, height=height, format="rgb24",
                                      interpolation="BICUBIC").to_ndarray()
        out.append(rgb[y:y + size, x:x + size].transpose(2, 0, 1))
    return np.stack(out)


def assert_same_frames(frames, path):
    """Same frame count and each frame the reference's frame: the filter graph's scaler and a
    direct swscale call differ by ~2-3 levels on average (sub-pixel phase, chroma siting), while
    neighbouring frames of the test videos differ by more than 10."""
    reference = naive_frames(path).astype(np.float32)
    assert frames.shape == reference.shape
    per_frame = np.abs(frames - reference).mean(axis=(1, 2, 3))
    assert per_frame.max() < 4, per_frame


def torch_geometry_error(frames, path, shift):
    """Mean error against torch's bicubic of the decoded RGB frames (no swscale resize), with
    the centre crop moved ``shift`` pixels along the long side; ``None`` when off the image."""
    with av.open(str(path)) as container:
        images = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    _n, h, w, _ = images.shape
    height, width = scaled_size(h, w)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    x = F.interpolate(x, size=(height, width), mode="bicubic", align_corners=False).clamp(0, 255)
    top, left = int((height - 224) / 2), int((width - 224) / 2)
    top, left = (top, left + shift) if width > height else (top + shift, left)
    if not (0 <= top <= height - 224 and 0 <= left <= width - 224):
        return None
    return float(np.abs(frames - x[:, :, top:top + 224, left:left + 224].numpy()).mean())


@pytest.mark.parametrize("name,kwargs,expected_n", [
    ("landscape", {"width": 80, "height": 48, "num_frames": 45, "fps": 30}, 45),
    ("portrait", {"width": 48, "height": 72, "num_frames": 30, "fps": 30}, 30),
    ("sixty_fps", {"width": 64, "height": 48, "num_frames": 40, "fps": 60}, 20),
    ("fifteen_fps", {"width": 64, "height": 48, "num_frames": 12, "fps": 15}, 24),
    ("short", {"width": 64, "height": 64, "num_frames": 7, "fps": 30}, 7),
])
def test_frames_equal_naive_reference(tmp_path, name, kwargs, expected_n):
    path = tmp_path / f"{name}.mp4"
    write_video(path, **kwargs)
    frames = read_frames(path)
    assert frames.dtype == np.uint8 and frames.shape == (expected_n, 3, 224, 224)
    assert_same_frames(frames, path)
    if kwargs["fps"] == 30:  # one output frame per input frame: the geometry without swscale
        centred = torch_geometry_error(frames, path, 0)
        assert centred < 4
        for shift in (-1, 1):
            shifted = torch_geometry_error(frames, path, shift)
            assert shifted is None or shifted > centred


def test_variable_frame_rate(tmp_path):
    path = tmp_path / "vfr.mkv"
    write_video(path, num_frames=30, pts=VFR_PTS, time_base=Fraction(1, 1000), fps=30)
    assert_same_frames(read_frames(path), path)


def test_scaled_size_is_mmpt_rule():
    assert scaled_size(480, 640) == (224, 298)  # int(640 * 224 / 480) = 298
    assert scaled_size(1920, 1080) == (398, 224)
    assert scaled_size(100, 100) == (224, 224)


@pytest.mark.parametrize("kind", ["zero_byte", "audio_only", "truncated", "not_a_video"])
def test_bad_files_raise_naming_the_file(tmp_path, kind):
    path = tmp_path / f"{kind}.mp4"
    if kind == "zero_byte":
        path.write_bytes(b"")
    elif kind == "audio_only":
        write_audio_only(path)
    elif kind == "truncated":
        write_video(tmp_path / "full.mp4", num_frames=60)
        data = (tmp_path / "full.mp4").read_bytes()
        path.write_bytes(data[: len(data) // 3])
    else:
        path.write_text("hello")
    with pytest.raises(VideoDecodeError, match=f"{kind}.mp4"):
        read_frames(path)


def test_video_with_audio_decodes_the_video(tmp_path):
    path = tmp_path / "av.mp4"
    write_video(path, num_frames=20, audio=True)
    assert read_frames(path).shape == (20, 3, 224, 224)


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="no ffmpeg binary installed")
@pytest.mark.parametrize("kwargs", [
    {"width": 80, "height": 48, "num_frames": 50, "fps": 25},
    {"width": 48, "height": 72, "num_frames": 20, "fps": 60},
    {"width": 64, "height": 64, "num_frames": 7, "fps": 30},
    {"num_frames": 30, "pts": VFR_PTS, "time_base": Fraction(1, 1000), "fps": 30},
])
def test_frames_equal_ffmpeg_cli(tmp_path, kwargs):
    path = tmp_path / "cli.mkv"
    write_video(path, **kwargs)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        height, width = scaled_size(stream.height, stream.width)
    x, y = int((width - 224) / 2), int((height - 224) / 2)
    out = subprocess.run(  # MMPT's call (ffmpeg-python): fps, scale W:H, crop, rawvideo rgb24
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(path), "-vf",
         f"fps=fps=30,scale={width}:{height},crop=224:224:{x}:{y}", "-f", "rawvideo",
         "-pix_fmt", "rgb24", "pipe:"], check=True, capture_output=True).stdout
    cli = np.frombuffer(out, np.uint8).reshape(-1, 224, 224, 3).transpose(0, 3, 1, 2)
    np.testing.assert_array_equal(read_frames(path), cli)
