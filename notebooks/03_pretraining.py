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
# # Pre-training
#
# VideoCLIP {cite}`xu2021videoclip` trains its two towers on HowTo100M {cite}`miech2019howto100m`
# with a contrastive loss whose positives are overlapped video-text clips (§3.3) and whose negatives
# come from batches of similar videos (§3.4). The paper alternates two stages every epoch:
#
# > "Our overall training process can be described as a two-stage method that alternatively
# > performs *retrieval* and *training* in each epoch, and is summarized in Algorithm 1." — §3.4
#
# > **Algorithm 1** (Retrieval Augmented Training). *foreach epoch do*: (2) infer global features
# > for all videos on the model, $z_V = \frac{1}{2|B_V|}\sum_{(v,t)\in B_V}(z_v + z_t)$; (3) build a
# > dense index on all videos' $z_V$; (4) retrieve $|\mathcal{C}|$ video clusters, each sampled as
# > $c \sim k\mathrm{NN}(z_V, 2k)$, $|c| = k$, from a random video $V$; (5) sample overlapped
# > video-text pairs from $c \in \mathcal{C}$ to train $M$. — §3.4
#
# > "We pre-train our model on 8 NVIDIA Tesla V100 GPUs (each with 32 GB memory) for 25 epochs
# > using fp16 precision for ∼1 day. We use Adam … with betas of (0.9, 0.98), an initial learning
# > rate of 5e-5, 1000 steps of warm-up, and a polynomial decay learning rate schedule. Gradients
# > are clipped at 2.0. The softmax temperature in objective (5) is set to τ = 1.0." — §5.3
#
# design §6 adds what the paper leaves out: weight decay 0, Adam ε 1e-8, and a decay horizon of
# 10⁶ updates in the original configuration, so the learning rate is nearly flat after warm-up.
# The loss is the sum of the video→text and text→video cross-entropies over the batch (§3.2,
# Eq. 4–5), each averaged over its rows, so a model that cannot tell the pairs of a batch of $B$
# apart scores $2\ln B$: the **chance level** drawn below.
#
# This chapter trains the book's model (`videoclip.train.pretrain`, through
# `videoclip.book.workspace.ensure_pretrained`, which caches the run so that later chapters reuse it)
# and shows its configuration, its loss and learning-rate curves, and its throughput. The toy
# preset trains 2 epochs: it trained 4 until the whole book had to fit 30 minutes on 2 cores, a
# resize made before any result of this world was read (design §11.13).

# %% tags=["parameters"]
work_dir = "../artifacts/smoke"  # artefact cache (toy: ../artifacts/toy)
data_root = ""  # empty → simulated world; paper: "$VIDEOCLIP_DATA_DIR" (real files, design §3-4)
world_preset = "smoke"  # simulated world size: smoke | toy | paper
world_seed = 0
real_data_dir = "$VIDEOCLIP_DATA_DIR"  # real annotation files to ground the simulated text ("" → procedural)
pretrain_preset = "smoke"  # the book's model (params/pretrain/<name>.yaml; toy: toy, paper: paper, design §6)
paper_preset = "paper"  # the paper's settings, printed beside this run's (design §6)
smooth_steps = 5  # window of the rolling mean drawn over the loss curve

# %%
import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from IPython.display import display

from videoclip import VideoCLIP
from videoclip.book.workspace import ensure_pretrained, preset_path, resolve_data_root
from videoclip.sim.truth import has_world_truth
from videoclip.train import PretrainConfig, RunLog

sns.set_theme(style="whitegrid")
pd.set_option("display.max_colwidth", 80)
root = resolve_data_root(data_root, work_dir=work_dir, world_preset=world_preset,
                         world_seed=world_seed, real_data=real_data_dir)
simulated = has_world_truth(root)
print(f"data root: {root} ({'simulated world' if simulated else 'real data root'})")

# %% [markdown]
# ## The run
#
# `ensure_pretrained` trains once per setting (the preset, the data root) and returns the cached
# run directory afterwards; a run killed earlier resumes from its last checkpoint. The run
# directory holds `log.jsonl` (a line per step and per epoch's retrieval stage) and `final/`, the
# trained model every later chapter loads.

# %%
run_dir = ensure_pretrained(work_dir, data_root=root, preset=pretrain_preset)
log = RunLog.read(run_dir)
start, steps, retrieval = log.start, pd.DataFrame(log.steps), pd.DataFrame(log.retrieval)
cfg = {k: v for section in start["config"].values() for k, v in section.items()}
model = VideoCLIP.from_pretrained(run_dir / "final")
num_params = sum(p.numel() for p in model.parameters())
print(f"run directory: {run_dir}")
print(f"{start['num_videos']} training videos, {start['steps_per_epoch']} steps per epoch, "
      f"{len(steps)} steps in {cfg['num_epochs']} epoch(s), on {start['world_size']} process(es), "
      f"device {start['device']}; the trained model has {num_params / 1e6:.1f}M parameters")
text_layers = cfg["num_text_layers"] if cfg["num_text_layers"] is not None else "all"
print(f"This model was trained on {'simulated' if simulated else 'real'} features with the "
      f"{cfg['backbone']!r} backbone: a video tower of {cfg['num_video_layers']} layer(s) and a text "
      f"tower of {text_layers} layer(s) (the paper: bert-base-uncased, 6 and 12).")
display(pd.Series({k: v for k, v in start["data"].items() if k != "caption_report"}, name="videos")
        .to_frame())

# %% [markdown]
# ## Configuration: this run beside the paper
#
# Every key of `videoclip.train.PretrainConfig` as this run used it (read back from its log), and
# the value of the paper preset (`params/pretrain/paper.yaml`, whose comments cite design §1–6; its
# `num_video_per_batch` is per GPU, with 8 GPUs). Paths and run-only switches are left out.

# %%
paper_cfg = PretrainConfig.from_yaml(preset_path(paper_preset)).flat()
sections = PretrainConfig.keys()
hidden = {"data_dir", "run_dir", "resume", "progress", "device", "token_cache_dir"}
def shown(key: str, value: object) -> str:
    return "all" if key == "num_text_layers" and value is None else str(value)


config_table = pd.DataFrame([
    {"section": sections[key], "key": key, "this run": shown(key, value), "paper": shown(key, paper_cfg[key])}
    for key, value in cfg.items() if key not in hidden])
config_table["differs"] = np.where(config_table["this run"] != config_table["paper"], "≠", "")
display(config_table.set_index(["section", "key"]))
pairs_per_step = cfg["num_video_per_batch"] * cfg["clip_per_video"]
paper_pairs = paper_cfg["num_video_per_batch"] * paper_cfg["clip_per_video"]
print(f"pairs per step and process: {pairs_per_step} here, {paper_pairs} in the paper "
      f"(x {start['world_size']} and x 8 processes)")

# %% [markdown]
# ## Loss and learning rate
#
# The loss of every step (light) and its rolling mean over `smooth_steps` steps; the dashed line is
# the chance level $2\ln B$ of a batch of $B$ pairs, the dotted verticals are epoch boundaries
# (where the retrieval stage rebuilds the groups). The learning rate is the one each step used:
# linear warm-up, then polynomial (linear) decay towards `total_steps`.

# %%
chance = 2 * math.log(pairs_per_step)  # the loss is computed per process on its own batch
steps["smoothed"] = steps.loss.rolling(smooth_steps, min_periods=1).mean()
boundaries = steps.groupby("epoch").global_step.min().iloc[1:] - 0.5
fig, (ax_loss, ax_lr) = plt.subplots(1, 2, figsize=(12, 3.6))
ax_loss.plot(steps.global_step, steps.loss, color="tab:blue", alpha=0.3, label="loss per step")
ax_loss.plot(steps.global_step, steps.smoothed, color="tab:blue", label=f"rolling mean ({smooth_steps})")
ax_loss.axhline(chance, color="black", linestyle="--", linewidth=1,
                label=f"chance 2·ln({pairs_per_step}) = {chance:.2f}")
ax_lr.plot(steps.global_step, steps.lr, color="tab:green")
for ax in (ax_loss, ax_lr):
    for x in boundaries:
        ax.axvline(x, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("step")
ax_loss.set_ylabel("contrastive loss (v→t + t→v)")
ax_loss.legend(fontsize=8)
ax_lr.set_ylabel("learning rate")
ax_lr.ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
fig.suptitle(f"pre-training on {'the simulated world' if simulated else 'real features'} "
             f"({cfg['backbone']}, {len(steps)} steps)", fontsize=10)
fig.tight_layout()

# %%
window = max(1, len(steps) // 4)
first, last = steps.loss.iloc[:window].mean(), steps.loss.iloc[-window:].mean()
below = "below" if last < chance else "not below"
print(f"mean loss of the first {window} step(s): {first:.3f}; of the last {window}: {last:.3f} "
      f"({100 * (last - first) / first:+.0f}%), {below} the chance level {chance:.3f}.")
print(f"peak learning rate {steps.lr.max():.2e} (configured {cfg['lr']:.2e}); gradient norm before "
      f"clipping at {cfg['grad_clip']}: median {steps.grad_norm.median():.2f}, "
      f"{100 * (steps.grad_norm > cfg['grad_clip']).mean():.0f}% of steps clipped.")
assert np.isfinite(steps.loss).all() and len(steps) == start["steps_per_epoch"] * cfg["num_epochs"]
assert steps.lr.max() <= cfg["lr"] + 1e-12  # invariant: the schedule never exceeds its peak lr

# %% [markdown]
# ## Throughput
#
# Pairs per second of each optimisation step (forward, backward and update, batch assembly
# included), and per epoch the seconds spent in training steps and in the retrieval stage
# (embedding every training video, indexing, clustering). On the CPU that builds this book these
# are wall-clock times on shared cores, so they are noisy; the paper reports about a day for 25
# epochs on 8 V100s.

# %%
steps["seconds"] = pairs_per_step * start["world_size"] / steps.pairs_per_s
per_epoch = steps.groupby("epoch").agg(steps=("step", "size"), train_s=("seconds", "sum"),
                                       median_pairs_per_s=("pairs_per_s", "median"))
if "seconds" in retrieval:
    per_epoch["retrieval_s"] = retrieval.set_index("epoch").seconds
per_epoch["epoch_s"] = per_epoch.drop(columns=["steps", "median_pairs_per_s"]).sum(axis=1)
display(per_epoch.round(1))
fig, ax = plt.subplots(figsize=(12, 3))
ax.plot(steps.global_step, steps.pairs_per_s, ".", color="tab:purple", alpha=0.5)
ax.axhline(steps.pairs_per_s.median(), color="black", linewidth=1,
           label=f"median {steps.pairs_per_s.median():.1f} pairs/s")
ax.set_xlabel("step")
ax.set_ylabel("pairs per second")
ax.set_ylim(bottom=0)
ax.legend(fontsize=8)
fig.tight_layout()
retrieval_note = (f"; the retrieval stage takes {per_epoch.retrieval_s.mean():.1f} s per epoch "
                  f"({100 * per_epoch.retrieval_s.sum() / per_epoch.epoch_s.sum():.0f}% of the run)"
                  if "retrieval_s" in per_epoch else "")
print(f"median {steps.pairs_per_s.median():.1f} pairs/s on {start['device']}; "
      f"{per_epoch.epoch_s.mean():.1f} s per epoch{retrieval_note}.")
assert (steps.pairs_per_s > 0).all()

# %% [markdown]
# ## At paper scale: a projection, not a measurement
#
# How long would the paper's pre-training (25 epochs × 1.1 M videos × 16 pairs, 512 pairs a step;
# design §4, §6) take on **one** H100 (989 dense bf16 TFLOP/s)? `videoclip.book.projection` counts the
# BERT-base towers' training FLOPs per pair, at the padded shapes (text 63, video 34 tokens) and
# at the real token counts that length buckets approach, and divides by an **assumed** model FLOPs
# utilisation. Each epoch's retrieval stage adds a forward pass over every video's 16 clips (a
# third of a training pass), or with `retrieval_source="reuse"` only over the share of videos the
# previous epoch left out of its groups — taken from this run's log. FAISS is not included
# (`bench/RESULTS.md` projects it). The GPU numbers that would replace these assumptions come from
# `bash bench/gpu.sh` on a GPU box.

# %%
from videoclip.book.projection import DEFAULT_REAL_TOKENS, project

left_out = float((retrieval.videos_left_out / start["num_videos"]).mean())
projection = pd.DataFrame(project(peak_tflops=989.0, mfus=[0.3, 0.4, 0.5], tokens=DEFAULT_REAL_TOKENS,
                                  left_out_share=left_out, faiss_s=0.0, pairs_per_s=None))
display(projection.set_index(["flops", "scenario"]).round(1))
at_40 = projection[projection.scenario.str.startswith("MFU 40%")]
print(f"PROJECTION at an assumed 40% MFU on one H100: {at_40.train_h.min():.1f}–{at_40.train_h.max():.1f} h of "
      f"training steps, {at_40.with_reuse_h.min():.1f}–{at_40.with_embed_h.max():.1f} h with the retrieval stage "
      f"(left-out share {left_out:.2f} from this run); the original took about a day on 8 V100s.")
