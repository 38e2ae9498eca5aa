# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Your own videos: from raw video to search
#
# Every other chapter starts from per-second S3D features. This one starts from video files and
# runs the whole way a user would: decode, extract S3D features with MMPT's recipe, index 32-s
# windows, and search them with a text query — the commands of the README's "Use it on your own
# videos" section, called here as library functions so that each stage can be timed.
#
# > "We use a frozen S3D (Xie et al., 2018) pre-trained on HowTo100M by (Miech et al., 2020) to
# > extract video tokens of 30 fps (1 token per second)." — paper §4.1 (implementation details)
#
# **What runs here.** No real S3D weights exist where this book is built, so by default the
# videos are **synthetic** (moving gradients written with PyAV) and S3D has **random weights**
# in the release's exact layout: the features, the index and the search ranks below show the
# **mechanics and the cost** of the pipeline, not what S3D sees. With MIL-NCE's real files
# (`s3d_weights`, `s3d_dict`) and your own `video_dir`, the same cells search your videos with
# MIL-NCE's text tower. The recipe, and where this code departs from MMPT's extractor, are on
# the design page (design §3, §12).

# %% tags=["parameters"]
work_dir = "../artifacts/smoke"  # artefact cache (toy: ../artifacts/toy; paper: ../artifacts/paper)
video_dir = ""  # your videos ("" → write num_videos synthetic videos with PyAV)
num_videos = 3  # synthetic videos
video_seconds = 3  # length of the first synthetic video; each next one is 2 s longer
s3d_weights = ""  # MIL-NCE's s3d_howto100m.pth ("" → random weights: mechanics and cost only)
s3d_dict = ""  # MIL-NCE's s3d_dict.npy (with s3d_weights)
frame_size = 32  # 224 is the recipe (design §3); smaller only makes the smoke run fast
workers = 1  # decoding processes beside S3D
batch_size = 4  # 30-frame chunks per S3D call
queries = ["cut the tomato", "pour water into the bowl"]  # text queries
top_k = 3  # moments shown per query
device = "auto"  # "auto" → cuda when available, else cpu

# %%
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from IPython.display import display

from videoclip.data.features import NpyFeatureStore
from videoclip.sim.media import random_s3d_files, write_video
from videoclip.video import S3D, MilNCEScorer, MomentIndex, extract_videos, read_frames
from videoclip.video.extract import list_videos, prepare_out_dir, weights_digest
from videoclip.video.index import mean_embedding

device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
out = Path(work_dir) / "your_videos"
shutil.rmtree(out, ignore_errors=True)  # this chapter's own artefacts: every run starts afresh
synthetic = not video_dir
if synthetic:
    shapes = [(320, 240), (240, 320), (256, 256)]  # landscape, portrait, square
    for i in range(num_videos):
        width, height = shapes[i % len(shapes)]
        write_video(out / "videos" / f"video{i}.mp4", width=width, height=height,
                    num_frames=30 * (video_seconds + 2 * i), seed=i)
    video_dir = out / "videos"
random_weights = not s3d_weights
if random_weights:
    s3d_weights, s3d_dict = random_s3d_files(out / "s3d")
videos = list_videos([video_dir])
s3d = S3D.from_milnce_checkpoint(s3d_weights, dict_path=s3d_dict).to(device)
print(f"{len(videos)} {'synthetic ' if synthetic else ''}videos; S3D with "
      f"{'RANDOM weights' if random_weights else 'MIL-NCE weights'} on {device}; "
      f"frames {frame_size}²")

# %% [markdown]
# ## Decoding
#
# Frames at 30 fps, the shorter side scaled to the frame size (bicubic), centre-cropped, RGB —
# the filters of MMPT's `ffmpeg` call, run in a PyAV filter graph (design §12). Timed alone,
# on one core.

# %%
start = time.perf_counter()
num_frames = {path.stem: len(read_frames(path, size=frame_size)) for path in videos}
decode_s = time.perf_counter() - start
assert all(n > 0 for n in num_frames.values())
print(f"decoded {sum(num_frames.values())} frames in {decode_s:.2f} s: "
      f"{sum(num_frames.values()) / decode_s:.0f} frames/s")

# %% [markdown]
# ## Extraction
#
# `extract_videos` is what `python -m videoclip extract` runs: `workers` processes decode ahead
# while S3D embeds 30-frame chunks; each video's `(seconds, 512)` float16 array is written
# atomically as `<video_id>.npy`.

# %%
features_dir = out / "features"
prepare_out_dir(features_dir, weights_digest=weights_digest(s3d_weights), overwrite=False,
                size=frame_size)
start = time.perf_counter()
report = extract_videos(s3d, videos, features_dir, workers=workers, batch_size=batch_size,
                        size=frame_size, progress=False)
extract_s = time.perf_counter() - start
print(report.summary())
store = NpyFeatureStore(features_dir)
shapes = {vid: store.load(vid).shape for vid in store.ids()}
display(pd.DataFrame({"frames": num_frames, "feature rows (s)": {v: s[0] for v, s in shapes.items()}}))
assert not report.failed and len(store) == len(videos)
assert all(shapes[vid] == (-(-num_frames[vid] // 30), 512) for vid in store.ids())
assert all(np.allclose(np.linalg.norm(store.load(v), axis=1), 1, atol=2e-3) for v in store.ids())

# %% [markdown]
# ## Index and search
#
# Each video's features are cut into the zero-shot windows (32 s, stride 16 s; a shorter video is
# one window). Without a VideoCLIP model at hand this chapter indexes MIL-NCE's own joint space:
# a window's vector is the mean of its S3D seconds, a query's is MIL-NCE's text tower, the score
# their dot product (`python -m videoclip index FEATURES --model milnce`). With a converted
# VideoCLIP checkpoint, `--model DIR` puts the windows through its video tower instead.

# %%
start = time.perf_counter()
index = MomentIndex.build(store, mean_embedding, model="milnce")
index.save(out / "index")
index_s = time.perf_counter() - start
scorer = MilNCEScorer(s3d.text_module).eval()
with torch.inference_mode():
    query_emb = scorer.encode_texts(queries).float().cpu().numpy()
hits = pd.DataFrame([{"query": q, "rank": r, **m._asdict()} for q, emb in zip(queries, query_emb)
                     for r, m in enumerate(index.search(emb, top_k), 1)])
assert len(index) >= len(store) and np.isfinite(hits["score"]).all()  # invariant: a video gives 1+ windows
if random_weights:
    print("RANDOM S3D weights: these ranks show the mechanics only, not a retrieval result.")
display(hits)

# %% [markdown]
# ## Cost
#
# Measured here, on this machine, at this frame size; S3D's cost grows with the frame area, so
# a 32² smoke run says little about 224². `bench/bench_video.py` measures the recipe's 224² per
# core and projects the cost of YouCook2's and HowTo100M's videos (`bench/RESULTS.md`).

# %%
seconds_of_video = sum(s[0] for s in shapes.values())
cost = pd.DataFrame([
    {"stage": "decode", "wall s": decode_s, "rate": f"{sum(num_frames.values()) / decode_s:.0f} frames/s"},
    {"stage": "extract (decode + S3D)", "wall s": extract_s,
     "rate": f"{seconds_of_video / extract_s:.2f} s of video / s"},
    {"stage": "index", "wall s": index_s, "rate": f"{len(index)} windows"},
])
display(cost.round(2))
