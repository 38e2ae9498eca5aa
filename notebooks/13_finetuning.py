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
# # Fine-tuning
#
# Half of every results table in VideoCLIP {cite}`xu2021videoclip` is *fine-tuned*: the
# pre-trained towers trained further on each benchmark's own training split. The paper gives
# these rows but almost no recipe; everything below follows the authors' code (design §10).
#
# > "With fine-tuning, VideoCLIP reaches state-of-the-art on Youcook2." — §5.4
#
# > "Fine-tuning VideoCLIP further yields a ∼10% accuracy gain, indicating potential room for
# > improvement." — §5.4 (COIN)
#
# > "We obtain 9,473 training clip-text pairs from 1222 videos and 3,305 test clip-text pairs
# > from 430 videos." — A.1 (YouCook2)
#
# What the original trains, per task (design §10.1–10.5):
#
# | task | training data | trained | loss | per GPU, epochs |
# |---|---|---|---|---|
# | YouCook2 retrieval | training segments, first ≤32 s + sentence | both towers | text→video only | 128 pairs, 10 |
# | MSR-VTT retrieval | 9k videos × 20, a random caption each time | both towers | text→video only | 224 pairs, 10 |
# | MSR-VTT multiple choice | 7k videos × 20 (retrieval data: no question is trained on) | both towers | video→text only | 128 pairs, 5 |
# | COIN segmentation | training videos, 32-s windows, stride 8 | video tower + **new 779-way head** | cross-entropy per second | 1 video, 8 |
# | CrossTask localisation | 30 videos per task, windows 32/16 | both towers | BCE per (second, step) | 1 video, 5 |
#
# Two things the paper does not say matter for reading its numbers. The original **selects the
# reported checkpoint on the test set** in every task: the best epoch on the test metric
# (retrieval, QA) or the lowest loss on the test videos (COIN, CrossTask) (design §10.6, item 5).
# We report that rule, labelled as test-set selection, beside the **last epoch**, a rule that
# never looks at the test set. And the fine-tuned COIN number comes from a classifier with an
# explicit background class, not from the zero-shot γ rule; the all-background baseline is
# printed beside it.
#
# Every run here is on the simulated toy world with the book's toy model: the numbers test the
# mechanisms (does fine-tuning move each metric, how much does test-set selection add), not the
# paper's values.

# %% tags=["parameters"]
work_dir = "../artifacts/smoke"  # artefact cache (toy: ../artifacts/toy)
data_root = ""  # empty → simulated world; paper: "$VIDEOCLIP_DATA_DIR" (real files and features)
world_preset = "smoke"  # simulated world size: smoke | toy | paper
world_seed = 0
real_data_dir = "$VIDEOCLIP_DATA_DIR"  # real annotation files to ground the simulated text ("" → procedural)
pretrain_preset = "smoke"  # the book's model (params/pretrain/<name>.yaml; toy: toy, paper: paper)
finetune_preset = "smoke"  # params/finetune/<name>.yaml; toy: toy, paper: paper (the original's settings)
tasks = ["youcook2", "msrvtt", "msrvtt-qa", "coin", "crosstask"]  # the paper's five fine-tuned rows
seeds = [1, 2]  # fine-tuning seeds per task (toy: 3; the original: one run, fairseq seed 1)
batch_size = 64  # clips, texts or windows per forward pass when scoring zero-shot
device = "auto"  # "auto" → cuda when available, else cpu

# %%
import json
import time

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
import torch
from IPython.display import display

from videoclip.book import finetuning as ft
from videoclip.book.workspace import ensure_pretrained, resolve_data_root
from videoclip.finetune.selection import LABELS, ORIGINAL_RULE, PRIMARY_METRIC
from videoclip.model import VideoCLIP
from videoclip.sim.truth import has_world_truth
from videoclip.train import read_log

sns.set_theme(style="whitegrid")
CHAPTER = "13_finetuning"
started = time.perf_counter()
device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
root = resolve_data_root(data_root, work_dir=work_dir, world_preset=world_preset,
                         world_seed=world_seed, real_data=real_data_dir)
simulated = has_world_truth(root)
pretrain_dir = ensure_pretrained(work_dir, root, preset=pretrain_preset)
model = VideoCLIP.from_pretrained(pretrain_dir / "final").to(device).eval()
print(f"data root: {root}\npre-trained model: {pretrain_dir / 'final'} (preset {pretrain_preset})"
      f"\nfine-tuning preset: {finetune_preset}, seeds {seeds}")
print("These numbers come from a SIMULATED world: they test the mechanisms, not the paper's values."
      if simulated else "Real data root.")

# %% [markdown]
# ## Zero-shot first
#
# The pre-trained model on each task's test set with the zero-shot protocols of chapters 05–08
# (design §7). CrossTask uses the original code's split here (videos without features removed
# before the seeded draw), the complement of its fine-tuning videos, so that zero-shot and
# fine-tuned rows share one test set; on a world where every video has features it is the
# official split.

# %%
zero = {task: ft.zero_shot(task, model, root, batch_size=batch_size, device=device) for task in tasks}
zero_rows = {task: {PRIMARY_METRIC[task]: r[PRIMARY_METRIC[task]],
                    **({"background_baseline": r["background_baseline"]} if task == "coin" else {})}
             for task, r in zero.items()}
display(pd.DataFrame(zero_rows).T.round(1))

# %% [markdown]
# ## Fine-tuning: every task, several seeds
#
# Each run starts from the same pre-trained weights and differs only in its seed (dropout, the
# batch order, MSR-VTT's caption draws, COIN's new head). After every epoch it scores the test
# set, so both selection rules can be read off the same run. Runs are cached under `work_dir`; they
# are independent, so they train in parallel processes of one thread each (one per core).

# %%
finetune_started = time.perf_counter()
run_dirs = ft.ensure_finetuned_runs(work_dir, tasks, seeds, init=pretrain_dir / "final", data_root=root,
                                    preset=finetune_preset)
runs = {task: [ft.read_run(d) for d in dirs] for task, dirs in run_dirs.items()}
finetune_seconds = time.perf_counter() - finetune_started
print(f"{sum(len(v) for v in runs.values())} fine-tuning runs ready in {finetune_seconds:.0f} s "
      "(0 when cached)")

# %% [markdown]
# ## Zero-shot against fine-tuned (Tables 1, 3, 4, 5)
#
# Ours: mean over seeds with a 95 % Student-t interval. *Selection gain* is the per-seed
# difference between the two rules: what choosing the epoch on the test set adds to the number.

# %%
summary = ft.summary_table(zero, runs)
display(summary)
if "coin" in runs:
    baseline = [r["epochs"][-1]["metrics"]["background_baseline"] for r in runs["coin"]]
    print(f"COIN: the all-background baseline of the test seconds is {baseline[0]:.1f}% (the fine-tuned "
          f"classifier predicts background on {runs['coin'][0]['selection']['last_epoch']['metrics']['predicted_outside_share']:.1f}% "
          "of them in the last epoch of the first seed).")

# %% [markdown]
# ## The two selection rules, run by run
#
# The epoch each rule picks and its headline value. The original's rule per task: 
# retrieval and QA take the best test metric over epochs, COIN and CrossTask the lowest loss on
# the test videos.

# %%
print("\n".join(f"{task}: {LABELS[ORIGINAL_RULE[task]]}" for task in tasks))
display(ft.selection_table(runs, seeds).round(1))

# %%
fig, axes = plt.subplots(1, len(tasks), figsize=(3.2 * len(tasks), 3), squeeze=False)
for ax, task in zip(axes[0], tasks):
    metric = PRIMARY_METRIC[task]
    for seed, result in zip(seeds, runs[task]):
        epochs = [e["epoch"] for e in result["epochs"]]
        ax.plot(epochs, [e["metrics"][metric] for e in result["epochs"]], marker="o", label=f"seed {seed}")
    ax.axhline(zero[task][metric], color="black", linestyle="--", linewidth=1, label="zero-shot")
    ax.set_title(task, fontsize=10)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"test {metric}")
axes[0][0].legend(fontsize=7)
fig.tight_layout()

# %% [markdown]
# ## Training loss
#
# The loss of every update (first seed), smoothed over 10 updates. Retrieval losses start near
# log(batch size); COIN's near log(779) for its fresh head; CrossTask's BCE near log 2.

# %%
fig, axes = plt.subplots(1, len(tasks), figsize=(3.2 * len(tasks), 2.8), squeeze=False)
for ax, task in zip(axes[0], tasks):
    steps = pd.DataFrame([r for r in read_log(run_dirs[task][0]) if r["type"] == "step"])
    ax.plot(steps["global_step"], steps["loss"].rolling(10, min_periods=1).mean())
    ax.set_title(f"{task} ({runs[task][0]['loss']})", fontsize=10)
    ax.set_xlabel("update")
axes[0][0].set_ylabel("training loss")
fig.tight_layout()

# %% [markdown]
# ## What it costs
#
# Per run: updates, seconds of training and of the per-epoch test scoring (on this machine, as
# measured when the runs were made). The toy preset (`params/finetune/toy.yaml`) was sized before
# any result: one run per task of an untrained model of the toy architecture took ~9.5 CPU-minutes
# on one thread for the whole chapter (zero-shot 42 s; per run youcook2 ~19 s, msrvtt ~21 s,
# msrvtt-qa ~31 s, coin ~58 s, crosstask ~47 s), about 6 minutes of a 2-core `make book`. The test
# scoring after every epoch, which the test-set selection rule needs, is most of it; on the paper
# profile it is a small share (thousands of updates per epoch).

# %%
display(ft.cost_table(runs))
total = sum(c["train_seconds"] + c["eval_seconds"] for rs in runs.values() for c in (r["cost"] for r in rs))
print(f"All {sum(len(v) for v in runs.values())} runs: {total / 60:.1f} min of training and scoring when made; "
      f"this execution of the chapter: {(time.perf_counter() - started) / 60:.1f} min.")

# %% [markdown]
# ## Deviations and open questions
#
# Listed with their reasons in design §11.11; in short:
#
# * **YouCook2 training clips** are the training segments of the official annotation file: the
#   original's `youcook_train.pkl` (9,473 clips with features) is not public.
# * **bf16 instead of fp16** with loss scaling on a GPU; fp32 on a CPU.
# * **Batches** are the original's fixed contiguous chunks, their order shuffled each epoch; with
#   several processes each takes `len(batches) // processes` per epoch.
# * **GPUs for COIN** (2 or 8, design §10.7 Q2) change its number of updates fourfold; the paper
#   preset leaves it to `torchrun`.
# * The toy preset differs from the paper's settings where a CPU forces it, each change marked in
#   `params/finetune/toy.yaml`: fewer epochs, a subset of the MSR-VTT and CrossTask training
#   videos, batches of 32 pairs, the toy pre-training's learning rate.
#
# The paper's rows and ours also go to the scorecard (`videoclip.book.finetuning.finetuned_scorecard`
# reads this chapter's results file): paper number, ours under each selection rule, the profile.

# %% [markdown]
# ## Checks and results file

# %%
for task in tasks:
    metric = PRIMARY_METRIC[task]
    assert 0 <= zero[task][metric] <= 100, (task, zero[task][metric])
    assert len(runs[task]) == len(seeds)
    for result in runs[task]:
        assert result["task"] == task and len(result["epochs"]) >= 1
        for epoch in result["epochs"]:
            assert 0 <= epoch["metrics"][metric] <= 100, (task, epoch)
        for rule in ("test_selection", "last_epoch"):
            assert result["selection"][rule]["epoch"] in [e["epoch"] for e in result["epochs"]]
path = ft.write_results_file(work_dir, zero, runs, seeds, config={
    "data_root": str(root), "simulated": simulated, "pretrain_preset": pretrain_preset,
    "finetune_preset": finetune_preset, "seeds": seeds, "pretrain_dir": str(pretrain_dir),
    "run_dirs": {task: [str(d) for d in dirs] for task, dirs in run_dirs.items()}})
print(f"wrote {path}")
print(json.dumps({task: summary.loc[task, "ours fine-tuned, last epoch"] for task in tasks}))
