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
# # Multiple-choice VideoQA
#
# The second zero-shot test of VideoCLIP {cite}`xu2021videoclip` turns retrieval around: one
# video, five candidate captions, and the model must pick the one that describes it — the
# MSR-VTT multiple-choice test of JSFusion {cite}`yu2018jsfusion` (Table 3).
#
# > "In multiple-choice VideoQA (Yu et al., 2018), the model aligns each video with one out of
# > several text candidate answers. It tests video→text similarities with a pre-trained model. We
# > formulate this task as ranking candidate textual answers for a given video question query.
# > This corresponds to the NCE(z_v, z_t) term in Equation 4, where the subtle differences in texts
# > are discriminated against each other." — §4
#
# > "We further use the QA test data (Yu et al., 2018) for MSR-VTT to evaluate multiple-choice
# > VideoQA. [...] On average, VideoQA for MSR-VTT has 5 candidate answers per video." — §5.2
#
# > "In Table 3, zero-shot VideoCLIP outperforms most supervised methods but similarly suffers from
# > domain shift from HowTo100M to MSR-VTT." — §5.4
#
# The answer is the candidate with the largest dot product with the video (its first 32 s); a tie
# counts as wrong. Beside the book's pre-trained model: the same architecture before
# pre-training, chance (one in five), the simulated world's concept oracle and the paper's number.

# %% tags=["parameters"]
work_dir = "../artifacts/smoke"  # artefact cache (toy: ../artifacts/toy)
data_root = ""  # empty → simulated world; paper: "$VIDEOCLIP_DATA_DIR" (real files, design §3, §7)
world_preset = "smoke"  # simulated world size: smoke | toy | paper
world_seed = 0
real_data_dir = "$VIDEOCLIP_DATA_DIR"  # real annotation files to ground the simulated text ("" → procedural)
pretrain_preset = "smoke"  # the book's model (params/pretrain/<name>.yaml; toy: toy, paper: paper, design §6)
model_dir = ""  # a saved model to evaluate instead of pre-training ("" → pre-train; released profile: the converted checkpoint)
batch_size = 64  # clips or texts per forward pass
device = "auto"  # "auto" → cuda when available, else cpu
seed = 0  # the untrained model's new video MLP, the bootstrap draws
num_boot = 1000  # bootstrap resamples for the 95% interval
num_examples = 4  # questions shown in the table of confident mistakes
s3d_weights = ""  # MIL-NCE's s3d_howto100m.pth → the MIL-NCE row ("" → none; paper: set, design §12)
s3d_dict = ""  # MIL-NCE's s3d_dict.npy (with s3d_weights)

# %%

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from IPython.display import display

from videoclip.book import chapter, stats
from videoclip.data.benchmarks import load_msrvtt_mc
from videoclip.evaluation import evaluate_videoqa

sns.set_theme(style="whitegrid")
pd.set_option("display.max_colwidth", 70)
CHAPTER = "06_videoqa"
ch = chapter.setup_chapter(
    CHAPTER, data_root=data_root, work_dir=work_dir, world_preset=world_preset, world_seed=world_seed,
    real_data_dir=real_data_dir, pretrain_preset=pretrain_preset, device=device, seed=seed,
    model_dir=model_dir)
root, simulated, model, untrained, chance, oracle = ch.root, ch.simulated, ch.model, ch.untrained, ch.chance, ch.oracle
milnce = chapter.milnce_baseline(s3d_weights, s3d_dict, device=ch.device)

# %% [markdown]
# ## Accuracy (Table 3)

# %%
ROWS = chapter.model_rows(model_dir)
qa, qa_predictions = {}, {}
for name, scorer in chapter.scorers(model, untrained, milnce):
    qa[name], qa_predictions[name] = evaluate_videoqa(scorer, root, batch_size=batch_size)
print(f"{qa['model']['num_scored']} of {qa['model']['num_questions']} questions scored "
      f"(skipped: {qa['model']['skipped'] or 'none'}); protocol — {qa['model']['protocol']}")
display(chapter.comparison_table(
    {ROWS["model"]: qa["model"], ROWS["untrained"]: qa["untrained"], ROWS["milnce"]: qa.get("milnce"),
     "chance": chance["msrvtt_mc"],
     chapter.ORACLE_ROW: oracle and oracle["msrvtt_mc"]},
    ["accuracy"], benchmark="msrvtt_mc").round(1))

# %%
correct = 100.0 * qa_predictions["model"]["correct"].to_numpy()
ci = stats.bootstrap_ci(correct, num_boot=num_boot, seed=seed)
value, low, high = ci["estimate"], ci["ci_low"], ci["ci_high"]
verdict = ch.standing("msrvtt_mc", "MSR-VTT multiple-choice accuracy", value, (low, high),
                      metric="accuracy", untrained=qa["untrained"]["accuracy"])
print(verdict["sentence"])

# %% [markdown]
# ## How sure is the model? Per-question margins
#
# For each question, the margin is the answer's score minus the best wrong option's score: it is
# positive exactly when the question is answered right. A model that separates the options well
# puts its mass far to the right; one that guesses sits around zero. The scales of the two models'
# dot products differ, so each panel has its own axis.

# %%
margins = {name: chapter.answer_margins(np.stack(qa_predictions[name]["scores"]),
                                       qa_predictions[name]["answer"].to_numpy())
           for name in qa}
fig, axes = plt.subplots(1, 2, figsize=(12, 3.2))
for ax, name in zip(axes, ("model", "untrained")):
    sns.histplot(margins[name], bins=30, ax=ax, color="tab:blue" if name == "model" else "tab:grey")
    ax.axvline(0, color="black", linestyle="--", linewidth=1)
    ax.set_xlabel("answer score − best wrong option's score (> 0: answered right)")
    ax.set_title(f"{ROWS[name]}: {np.mean(margins[name] > 0) * 100:.1f}% right", fontsize=10)
fig.tight_layout()
summary = pd.DataFrame({ROWS[name]: {"median margin": np.median(m), "share > 0 (%)": 100 * np.mean(m > 0),
                                     "share tied (%)": 100 * np.mean(m == 0)}
                        for name, m in margins.items()}).T
display(summary.round(3))

# %% [markdown]
# The model's most confident mistakes: the questions with the most negative margin, the right
# answer and the caption the model picked instead.

# %%
options = {q.qid: q.options for q in load_msrvtt_mc(root)}
mistakes = qa_predictions["model"].assign(margin=margins["model"]).sort_values("margin").head(num_examples)
display(pd.DataFrame({"video": mistakes.video_id, "margin": mistakes.margin.round(3),
                      "answer": mistakes.answer_text,
                      "picked": [options[q][p] for q, p in zip(mistakes.qid, mistakes.predicted)]})
        .reset_index(drop=True))

# %% [markdown]
# ## Checks and results file

# %%
for name, result in qa.items():
    assert 0 <= result["accuracy"] <= 100, (name, result)
    assert np.isclose(result["accuracy"], 100 * np.mean(margins[name] > 0)), name
assert 0 < chance["msrvtt_mc"]["accuracy"] < 100, chance["msrvtt_mc"]
assert np.isclose(chance["msrvtt_mc"]["accuracy"], qa["model"]["chance"]), (chance["msrvtt_mc"], qa["model"]["chance"])
ch.record("msrvtt_mc", qa["model"], qa["untrained"], headline="accuracy")
ch.write(seed=seed)
