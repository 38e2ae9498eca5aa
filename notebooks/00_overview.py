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
# # Overview: VideoCLIP and what this book tests
#
# VideoCLIP {cite}`xu2021videoclip` pre-trains a video transformer and a text transformer with a
# contrastive loss on HowTo100M {cite}`miech2019howto100m` narrations, and then uses the two
# towers *zero-shot* — without any label of the end task — for text→video retrieval, multiple-choice
# VideoQA, action segmentation and action step localisation.
#
# > "we pre-train with temporally **overlapped** pairs of video and text clips (of varying length),
# > thereby greatly increasing the quality and quantity of the video-text alignment" — §1
#
# > "We propose a **retrieval augmented pre-training** approach to retrieve a cluster of videos that
# > are similar to each other for each training batch." — §1
#
# This book rebuilds both ideas in the `videoclip` package and tests them. Its default profile
# (**toy**) runs everything on a laptop CPU on a *simulated* instructional-video world (there are no
# S3D features here), so its numbers test the *mechanisms*, not the paper's absolute values; the
# **paper** profile runs the same notebooks on real S3D features with `bert-base-uncased` on a GPU box
# (see {doc}`../paper_profile`).

# %% tags=["parameters"]
backbone = "minilm-l6"  # paper: bert-base-uncased (design §1)
num_video_layers = 6  # paper: 6 (the first six BERT layers, design §1)
batch_size = 4  # video-text pairs in the demonstration forward pass
seed = 0

# %%
import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
import torch

from videoclip import VideoCLIP
from videoclip.paper import ablation_table, zero_shot_table

sns.set_theme(style="whitegrid")
torch.manual_seed(seed)

# %% [markdown]
# ## The paper's claims, in numbers
#
# The zero-shot results the paper reports (Tables 1–5). Every later chapter prints its own number
# beside these.

# %%
paper = zero_shot_table()
paper

# %% [markdown]
# Table 7 of the paper removes one idea at a time and reports YouCook2 text→video recall. The two
# ideas of the title carry most of the gain: without retrieval-augmented batches R@1 falls from 22.7
# to 18.5, and without overlapped clips as well to 12.4.

# %%
ablations = ablation_table()
fig, ax = plt.subplots(figsize=(8, 3.8))
sns.barplot(x=ablations["R@1"], y=ablations.index, color="tab:blue", ax=ax)
ax.set_xlabel("YouCook2 zero-shot R@1 (%) — as reported in the paper, Table 7")
ax.set_ylabel("")
for value, y in zip(ablations["R@1"], range(len(ablations))):
    ax.text(value + 0.2, y, f"{value:.1f}", va="center")
fig.tight_layout()

# %% [markdown]
# ## Predictions, written before any result
#
# These are fixed *before* the simulated world, the training or any evaluation was run, and are not
# edited afterwards; the scorecard chapter checks each one.
#
# 1. **Overlap helps when narration is loose.** On a world whose narration lags or leads the action,
#    pre-training with overlapped clips beats exactly aligned clips in YouCook2-style retrieval R@1;
#    the gain shrinks as the lag goes to zero.
# 2. **Retrieved groups are harder.** Groups built from nearest neighbours in the video-vector index
#    hold a larger share of same-task video pairs than random groups, in every epoch.
# 3. **Harder groups help, a little.** Retrieval-augmented training does not hurt, and on average
#    improves retrieval R@1 over random groups, with overlapping confidence intervals likely at toy
#    scale.
# 4. **Zero-shot transfer works above chance everywhere** and stays well below the oracle ceiling of
#    the simulated world.
# 5. **Action segmentation is dominated by background.** The COIN-style frame accuracy lies close to
#    the all-background baseline, as the community found for the released checkpoint's 58.9.
# 6. **Small design choices are small.** Shared towers and `[CLS]` pooling change R@1 by less than
#    the seed-to-seed spread; embedding videos by their first 32 s for retrieval makes groups less
#    coherent than embedding whole videos.
#
# ### Rules changed after seeing results (recorded, not hidden)
#
# Two rules were added after a review of the first toy results, and are marked as such wherever
# they act (design §13.3–13.4):
#
# * **A benchmark that cannot discriminate is excluded from the verdicts.** When the world's
#   oracle does not beat the chance level by more than 5 points, no model can be told from
#   chance on that benchmark under its protocol; COIN's γ rule does this here (chapter 07). Such a
#   benchmark leaves prediction 4 and makes prediction 5 inconclusive, with the reason printed.
# * **A Table 7 row that starts collapsed is invalid on this backbone.** The toy ablations cut
#   MiniLM, which was trained with mean pooling, to one layer per tower; its `[CLS]` state is then
#   nearly the same for every input. A row whose untrained model embeds every input to nearly one
#   vector measures the backbone, not the design choice: prediction 6 counts it as "unclear", not
#   as "fails".
#
# ### Predictions for world v2, written before its first run
#
# World v1 narrated the benchmarks' own step names and YouCook2's training sentences; world v2
# (the default, design §13.1) narrates only the steps' concepts, in the words of real HowTo100M
# ASR. Before any v2 world was generated:
#
# 1. **No benchmark sentence in the corpus.** Exact hits (benchmark texts of two words or more
#    found verbatim in a pre-training video's captions) are 0 for every benchmark in v2; in v1
#    they are high for CrossTask and COIN and above 0 for YouCook2.
# 2. **Words shared, sentences not.** Unigram overlap stays above 50 % in v2 for CrossTask, COIN
#    and YouCook2 (the concepts are shared by design) but below v1's; 3- and 4-gram overlap falls
#    to less than half of v1's for those three.
# 3. **Same difficulty.** Chance and oracle levels of every benchmark are identical in v1 and v2
#    (the features and benchmark files are the same bytes).
# 4. **Harder zero-shot.** The pre-trained model's YouCook2 R@1 and CrossTask recall are lower in
#    v2 than in v1; MSR-VTT and DiDeMo change less than those two.
# 5. Predictions 1–6 above stand as written for v2.

# %% [markdown]
# ## The model in one forward pass
#
# Two BERT towers (design §1): the video tower reads `[CLS] v₁ … v_T [SEP]`, where each second's 512-d
# S3D feature goes through an MLP to the hidden size; the text tower reads `[CLS] tokens [SEP]`.
# Each clip is the mean of its last-layer states over the real slots plus `[SEP]`; the score is the
# dot product. Here both towers start from the offline MiniLM-L6 {cite}`wang2020minilm` (384-d).

# %%
model = VideoCLIP.from_backbone(backbone, num_video_layers=num_video_layers).eval()
num_seconds = torch.tensor([5, 12, 32, 20][:batch_size] + [8] * max(0, batch_size - 4))
video = torch.nn.functional.normalize(torch.randn(batch_size, 32, 512), dim=-1)  # (B, T, 512)
vmask = torch.arange(32)[None, :] < num_seconds[:, None]  # (B, T)
texts = ["crack the eggs into a bowl", "whisk the eggs", "pour the batter into the pan",
         "flip the pancake"][:batch_size] + ["serve"] * max(0, batch_size - 4)
with torch.no_grad():
    video_emb = model.encode_video(video, vmask)  # (B, D)
    text_emb = model.encode_texts(texts)  # (B, D)
    states = model.video_token_states(video, vmask, mask_cls=True)  # (B, T, D)
shapes = pd.DataFrame({
    "tensor": ["video features", "vmask", "video_emb", "text_emb", "video token states", "scores"],
    "shape": [tuple(video.shape), tuple(vmask.shape), tuple(video_emb.shape), tuple(text_emb.shape),
              tuple(states.shape), tuple((text_emb @ video_emb.T).shape)],
})
print(f"{sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters")
shapes

# %%
hidden_size = model.config.bert["hidden_size"]
assert video_emb.shape == text_emb.shape == (batch_size, hidden_size)
assert states.shape == (batch_size, 32, hidden_size)
assert torch.isfinite(text_emb @ video_emb.T).all()
