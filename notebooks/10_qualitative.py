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
# # Qualitative retrieval
#
# Recall numbers say how often the right clip comes first, not what comes first instead. The
# paper {cite}`xu2021videoclip` looks at a few YouCook2 {cite}`zhou2018youcook2` queries and the
# text of the clip VideoCLIP ranks first (Table 6), zero-shot and after fine-tuning:
#
# > "We examine errors for text-video retrieval of Youcook2 in both zero-shot transfer and
# > fine-tuning setting in Table 6. We observe that in zero-shot transfer, VideoCLIP has no prior
# > knowledge about a particular task/dataset on how long a text and video clip should be paired
# > together for the text-retrieval task. Fine-tuning allows to correct this type of error.
# > Further, we observe that VideoCLIP tends to mix objects of similar color/shape together." — §5.7
#
# > | Query text | Top-1, zero-shot | Top-1, fine-tuned |
# > |---|---|---|
# > | pick the ends off the verdalago | put chickpeas parsley chopped onion chili powder | pick the ends off the verdalago |
# > | place chicken in hot oil and fry until golden brown | fry the chicken in oil | fry the chicken wings in deep oil |
# > | rub salt and pepper onto the chicken | season them with salt and pepper | rub salt and pepper onto the chicken |
# >
# > — Table 6 (three of its five rows)
#
# This book does not fine-tune, so the second column here is the **same architecture before
# pre-training**: what pre-training changed. Queries are drawn at random (seeded) from the
# queries whose own clip ranks first (successes) and from the others (failures), and every
# failure is sorted into what the model retrieved instead.

# %% tags=["parameters"]
work_dir = "../artifacts/smoke"  # artefact cache (toy: ../artifacts/toy)
data_root = ""  # empty → simulated world; paper: "$VIDEOCLIP_DATA_DIR" (real YouCook2 + S3D features, design §3, §7)
world_preset = "smoke"  # simulated world size: smoke | toy | paper
world_seed = 0
real_data_dir = "$VIDEOCLIP_DATA_DIR"  # real annotation files to ground the simulated text ("" → procedural)
pretrain_preset = "smoke"  # the book's model (params/pretrain/<name>.yaml; toy: toy, paper: paper, design §6)
model_dir = ""  # a saved model to evaluate instead of pre-training ("" → pre-train; released profile: the converted checkpoint)
youcook2_clip_list = "milnce"  # paper: "milnce", the zero-shot clip list (design §7)
num_success = 4  # queries shown whose own clip ranks first
num_failure = 6  # queries shown whose own clip does not (the paper's Table 6 shows 5 queries)
seed = 0  # which queries are drawn; the untrained model's new video MLP
batch_size = 64  # clips or texts per forward pass
device = "auto"  # "auto" → cuda when available, else cpu

# %%

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from IPython.display import display

from videoclip.book import chapter, qualitative
from videoclip.evaluation import evaluate_retrieval

sns.set_theme(style="whitegrid")
pd.set_option("display.max_colwidth", 70)
ch = chapter.setup_chapter(
    "10_qualitative", data_root=data_root, work_dir=work_dir, world_preset=world_preset,
    world_seed=world_seed, real_data_dir=real_data_dir, pretrain_preset=pretrain_preset,
    device=device, seed=seed, model_dir=model_dir)
root = ch.root
scorers = {"pre-trained": ch.model, "untrained": ch.untrained}
results, predictions = {}, {}
for name, scorer in scorers.items():
    results[name], predictions[name] = evaluate_retrieval(scorer, root, benchmark="youcook2",
                                                          clip_list=youcook2_clip_list,
                                                          batch_size=batch_size, progress=False)
display(pd.DataFrame(results).T[["R@1", "R@5", "R@10", "MdR", "num_scored"]].round(1))

# %% [markdown]
# ## Queries and what comes first
#
# For each drawn query: the text of the clip ranked first by the pre-trained model, whether it
# is the query's own clip, the rank of the own clip among all `num_scored` clips, and the same
# for the model before pre-training. `shared concepts` are the content-word stems the query
# shares with the pre-trained model's top-1 text.

# %%
examples, counts = qualitative.pick_examples(predictions["pre-trained"], num_success=num_success,
                                             num_failure=num_failure, seed=seed)
before = predictions["untrained"].set_index("item_id")[["rank", "top1_text"]].add_suffix("_before")
shown = examples.join(before, on="item_id")
table = pd.DataFrame({
    "query": shown.text, "top-1 text (pre-trained)": shown.top1_text,
    "right clip?": shown.correct.map({True: "yes", False: "no"}), "rank of right clip": shown["rank"],
    "shared concepts": shown.shared_concepts.map(", ".join),
    "top-1 text (untrained)": shown.top1_text_before, "rank (untrained)": shown.rank_before})
print(f"{counts['successes']} of {len(predictions['pre-trained'])} queries rank their own clip first; "
      f"showing {counts['successes_shown']} of them and {counts['failures_shown']} of the "
      f"{counts['failures']} others (drawn with seed {seed}).")
display(table)
assert (examples[examples.correct].top1_item_id == examples[examples.correct].item_id).all()
assert counts["successes_shown"] + counts["failures_shown"] == len(examples)

# %% [markdown]
# ## What do the failures retrieve?
#
# Every failure (own clip not first), sorted by the first that applies
# (`videoclip.book.qualitative.error_breakdown`): the top-1 clip has **the same text** as the query (a
# step described identically in two videos: no text-only model can tell them apart), it is
# **another segment of the same video** (the right video, the wrong stretch of it — the
# zero-shot error §5.7 describes as not knowing "how long a text and video clip should be
# paired"), it is another video's clip whose text **shares a content word** (a near miss, like
# Table 6's "fry the chicken in oil"), or it is **unrelated**.

# %%
breakdown = pd.DataFrame({name: qualitative.error_breakdown(p) for name, p in predictions.items()}).T
categories = ["same_text", "same_video", "shared_concept", "unrelated"]
display(breakdown[["queries", "failures", *categories]].astype(int))
fig, ax = plt.subplots(figsize=(8, 2.6))
left = pd.Series(0.0, index=breakdown.index)
for category, colour in zip(categories, sns.color_palette("Set2", len(categories))):
    ax.barh(breakdown.index, breakdown[f"{category}_pct"], left=left, color=colour, label=category.replace("_", " "))
    left += breakdown[f"{category}_pct"]
ax.set_xlabel("% of failed queries")
ax.legend(fontsize=8, ncols=4, loc="upper center", bbox_to_anchor=(0.5, -0.35))
fig.tight_layout()
pre = breakdown.loc["pre-trained"]
print(f"Of the pre-trained model's {int(pre.failures)} failures, {pre.same_video_pct:.0f}% retrieve another "
      f"segment of the right video, {pre.shared_concept_pct:.0f}% a clip of another video whose text shares "
      f"a content word, {pre.same_text_pct:.0f}% a clip with the very same text, and {pre.unrelated_pct:.0f}% "
      "an unrelated clip.")
assert (breakdown[categories].sum(axis=1) == breakdown.failures).all()
