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
# # The data: a simulated instructional-video world
#
# VideoCLIP {cite}`xu2021videoclip` pre-trains on HowTo100M {cite}`miech2019howto100m`: 1.2 M
# YouTube how-to videos, each with per-second S3D {cite}`xie2018s3d` features and the
# automatic speech recognition (ASR) captions of its narration. It then tests zero-shot on five
# benchmarks: YouCook2 {cite}`zhou2018youcook2`, MSR-VTT {cite}`xu2016msrvtt` (retrieval and
# multiple choice {cite}`yu2018jsfusion`), DiDeMo {cite}`hendricks2017didemo`, COIN
# {cite}`tang2019coin` and CrossTask {cite}`zhukov2019crosstask`.
#
# > "we pre-train with temporally **overlapped** pairs of video and text clips (of varying length),
# > thereby greatly increasing the quality and quantity of the video-text alignment" — §1
#
# There are no S3D features on the machine that builds this book, so the default profiles
# (smoke and toy) run on a **simulated world**: `videoclip.sim.world` writes a complete data
# root — captions, per-second features and all five benchmarks — in the *official file
# formats*, and every loader, sampler and evaluator reads it exactly as it reads real files.
# Unlike real data, the simulated world also writes its **ground truth**: when each step really
# happens, when it is spoken about, and the true feature direction of each visual concept. This
# chapter shows what the simulator models, how loose its narration is, how each benchmark is
# built, and how hard each benchmark is (chance and oracle levels). Under the paper profile
# (real data root, no ground truth) it describes the real corpus instead.

# %% tags=["parameters"]
work_dir = "../artifacts/smoke"  # artefact cache (toy: ../artifacts/toy)
data_root = ""  # empty → simulated world; paper: "$VIDEOCLIP_DATA_DIR" (real files, design §3-4, §7)
world_preset = "smoke"  # simulated world size: smoke | toy | paper
world_seed = 0
real_data_dir = "$VIDEOCLIP_DATA_DIR"  # real annotation files to ground the simulated text ("" → procedural)
example_video = ""  # pre-training video to draw ("" → the first with 4+ distinct steps, 3+ spoken)
corpus_max_videos = 2000  # videos sampled for per-video corpus statistics (HowTo100M: 1.2 M)

# %%
import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from IPython.display import display
from matplotlib.patches import Rectangle

from videoclip.book import analysis, chapter
from videoclip.book.scorecard import DISCRIMINATION_MARGIN
from videoclip.book.workspace import resolve_data_root, world_info
from videoclip.data.features import open_feature_store
from videoclip.provenance import write_results
from videoclip.sim import text_overlap
from videoclip.sim.truth import has_world_truth, load_world_truth

sns.set_theme(style="whitegrid")
pd.set_option("display.max_colwidth", 110)
root = resolve_data_root(data_root, work_dir=work_dir, world_preset=world_preset,
                         world_seed=world_seed, real_data=real_data_dir)
simulated = has_world_truth(root)  # the one place the book branches on ground truth
print(f"data root: {root}")
print("simulated world with ground truth" if simulated else
      "real data root: no ground truth, so the simulator's plots are skipped below")

# %% [markdown]
# ## What is in the data root
#
# The files the package reads (the layout of `book/paper_profile.md`); `size` is bytes for a
# file and entries for a folder. `world.json` and `world_truth.npz` exist only in simulated
# worlds and no loader reads them.

# %%
inventory = analysis.data_inventory(root)
display(inventory)

# %% [markdown]
# ## What the simulator models
#
# A world is built from **tasks** made of ordered **steps** ("add flour to a bowl"). A step
# shows **visual concepts** — the stems of its content words — and each concept has a fixed
# random unit direction in the 512-d feature space. A pre-training video is a timeline: a
# talking-head intro, the task's steps (some skipped, repeated or swapped) with idle gaps, an
# outro. Each second's feature is the sum of the directions of the concepts on screen (the
# step's concepts, the scene, the talking head in idle time) plus a per-video appearance
# vector, blurred over about a second, plus noise correlated across seconds, and L2-normalised
# like S3D (design §3). The narration speaks each step *loosely in time* — ahead of it, during
# it, or after it — with filler talk, ASR errors, silent steps and YouTube-style rolling caption
# lines. In world v2 (the default, design §13.1) a step is spoken from its **concepts**: each in a
# word form of real HowTo100M ASR with that stem, in a random order, joined by spoken connectors;
# never in the words of a benchmark's annotation. (World v1 paraphrased the step's own text, which
# for CrossTask, COIN and YouCook2 *is* the benchmark's text.) Text and vision therefore share
# concepts only through words, which is the only thing a model can learn here.
#
# Every knob, the value this world used and the one-line argument for it, read from the
# simulator's source (`SimConfig`). The values were fixed from these arguments before any
# experiment ran.

# %%
if simulated:
    info = world_info(root)
    knobs = analysis.simconfig_table(info["config"])
    print(f"preset {info['preset']!r}, seed {info['seed']}; {info['num_tasks']} tasks, "
          f"{info['num_concepts']} visual concepts")
    display(knobs.drop(columns="default"))
else:
    print("Real data root: the simulator's knobs do not apply.")

# %% [markdown]
# ### Where the text comes from
#
# With real annotation files at hand (`real_data_dir`), the simulator *grounds* its tasks in them:
# CrossTask's and COIN's task and step names, YouCook2's sentences and real step timings, MSR-VTT
# and DiDeMo sentences, and real HowTo100M caption lines as filler talk. Without them it falls back
# to an embedded procedural taxonomy. In world v2 these annotations decide what a step *shows*
# (its concepts) and what the benchmarks *score*; the narration takes its words from the
# HowTo100M lines, and drops any utterance that spells an annotation text of two words or more.
# Which source and which version this world used:

# %%
if simulated:
    print("text grounded in real annotation files" if info["grounded"] else
          "procedural taxonomy (no real annotation files were given)")
    display(pd.Series(info["text_sources"], name="built from").to_frame())
    print(f"world version {info['config']['world_version']}"
          + (": steps speak their own text (the benchmarks' text)" if info["config"]["world_version"] == 1
             else ": steps speak their concepts in HowTo100M word forms"))
    if info.get("narration"):
        narration_counts = info["narration"]
        print(f"{narration_counts['guarded_texts']} annotation texts never spoken; {narration_counts['fallback_words']} concept "
              "words spoken in the annotation's own form (no HowTo100M word has their stem); "
              f"{narration_counts['dropped_step_utterances']} step and {narration_counts['dropped_filler_utterances']} filler "
              "utterances dropped because they spelled an annotation text.")
else:
    print("Real data root: the text is the real annotation files themselves.")

# %% [markdown]
# ## The pre-training corpus
#
# Read as the loaders read it: raw (not yet de-duplicated) caption lines per video, their words
# and durations, and the seconds of features per video.

# %%
caption_file = Path(root) / "howto100m" / "caption.json"
if caption_file.is_file():
    corpus, per_video = analysis.corpus_summary(root, max_videos=corpus_max_videos, seed=world_seed)
    display(pd.Series(corpus, name="count").to_frame())
    display(per_video.drop(columns="video_id").describe().round(1))
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
    for ax, column, label in zip(axes, ["captions", "words_per_caption", "feature_seconds"],
                                 ["caption lines per video", "words per caption line (mean per video)",
                                  "seconds of features per video"]):
        sns.histplot(per_video[column].dropna(), bins=30, ax=ax)
        ax.set_xlabel(label)
    fig.tight_layout()
    assert corpus["videos_with_captions"] > 0 and corpus["captions"] > 0
else:
    print(f"{caption_file} is missing: no pre-training corpus to describe in this data root "
          "(see book/paper_profile.md for where HowTo100M's captions and features go).")

# %% [markdown]
# ## Does the corpus speak the benchmarks' text?
#
# A zero-shot number means little if the pre-training narration already says the benchmark's
# sentences. For each benchmark: the share of its distinct word n-grams found anywhere in the
# pre-training captions (de-duplicated as the trainer reads them), and its **exact hits** — texts
# of two words or more found verbatim in one video's captions (`videoclip.sim.text_overlap`).
# Shared words are expected: concepts are word stems, so text and video can only meet through
# words. Shared sentences are a leak. On a simulated world the same table is measured on world v1
# (same seed and sizes, steps speaking their own text) for comparison.

# %%
if caption_file.is_file():
    label = f"world v{info['config']['world_version']}" if simulated else "real corpus"
    overlap = {label: text_overlap.overlap_table(root, max_videos=None if simulated else corpus_max_videos)}
    if simulated and info["config"]["world_version"] != 1:
        v1_root = resolve_data_root("", work_dir=work_dir, world_preset=world_preset, world_seed=world_seed,
                                    real_data=real_data_dir, world_version=1)
        overlap["world v1"] = text_overlap.overlap_table(v1_root)
    overlap_all = pd.concat(overlap, names=["world"]).reset_index(level=0)
    display(overlap_all.drop(columns=["examples", "one_word_texts"]).set_index(["benchmark", "world"])
            .sort_index().round(1))
    for name, table in overlap.items():
        print(f"{name}: {int(table.exact_hits.sum())} benchmark texts found verbatim in the pre-training captions"
              + (" (" + "; ".join(f"{r.benchmark}: {r.exact_hits}" for r in table.itertuples() if r.exact_hits) + ")"
                 if table.exact_hits.sum() else ""))
    write_results(Path(work_dir) / "results" / "01_data.json",
                  {"chapter": "01_data", "text_overlap": overlap_all.to_dict("records")},
                  config={"data_root": str(root), "simulated": simulated})
    assert overlap_all["exact_hit_%"].dropna().between(0, 100).all()
else:
    print(f"{caption_file} is missing: no pre-training captions to compare with the benchmarks.")

# %% [markdown]
# ## One simulated video: features, steps and narration
#
# The heat map shows, for every second of one pre-training video, the cosine similarity of its
# feature to the true direction of each step's text (the unit sum of the directions of the
# step's concepts: what a perfect word↔concept model would embed). White boxes are the steps'
# true intervals; black bars under each row are when that step is *spoken*. Below, the ASR
# caption lines on the same time axis, coloured and labelled by the step they narrate (grey:
# filler talk).

# %%
if simulated:
    truth = load_world_truth(root)
    steps = truth.steps
    if example_video:
        vid = example_video
    else:
        per = steps.groupby("video_id", sort=False).agg(distinct=("text", "nunique"),
                                                        spoken=("onset", "count"))
        vid = per[(per.distinct >= 4) & (per.spoken >= 3)].index[0]
    video_steps = truth.video_steps(vid).reset_index(drop=True)
    features = open_feature_store(Path(root) / "howto100m" / "features").load(vid)  # (S, 512)
    texts = list(dict.fromkeys(video_steps.text))  # distinct step texts, performed order
    similarity = features @ truth.text_directions(texts).T  # (S, K)
    captions = json.loads(caption_file.read_text())[vid]
    cap_start, cap_end = np.array(captions["start"]), np.array(captions["end"])
    spoken = analysis.narrated_by(cap_start, cap_end, video_steps)  # (lines, instances)

    fig, (ax, ax_cap) = plt.subplots(2, 1, figsize=(13, 2.4 + 0.45 * len(texts)), sharex=True,
                                     gridspec_kw={"height_ratios": [len(texts), 2.4]})
    image = ax.imshow(similarity.T, aspect="auto", cmap="magma", interpolation="nearest",
                      extent=(0, len(features), len(texts) - 0.5, -0.5))
    ax.grid(False)
    colours = sns.color_palette("husl", len(texts))
    for _, row in video_steps.iterrows():
        k = texts.index(row.text)
        ax.add_patch(Rectangle((row.start, k - 0.45), row.end - row.start, 0.9, fill=False,
                               edgecolor="white", linewidth=1.6))
        if not np.isnan(row.onset):
            ax.plot([row.onset, row.speech_end], [k + 0.38, k + 0.38], color="black", linewidth=4,
                    solid_capstyle="butt")
    ax.set_yticks(range(len(texts)), [t[:45] for t in texts], fontsize=8)
    for label, colour in zip(ax.get_yticklabels(), colours):
        label.set_color(colour)
    ax.set_title(f"pre-training video {vid}: feature · step direction (simulated world)")
    for i, (a, b, text) in enumerate(zip(cap_start, cap_end, captions["text"])):
        k = int(np.argmax(spoken[i])) if spoken[i].any() else -1
        colour = colours[texts.index(video_steps.text[k])] if k >= 0 else "lightgrey"
        lane = i % 3
        ax_cap.barh(lane, b - a, left=a, height=0.35, color=colour, edgecolor="none")
        if k >= 0:  # label the lines that narrate a step
            ax_cap.text(a, lane + 0.22, " ".join(text.split()[:3]), fontsize=6.5, va="bottom")
    ax_cap.grid(False)
    ax_cap.set_ylim(-0.4, 3.0)
    ax_cap.set_yticks([])
    ax_cap.set_xlabel("seconds")
    ax_cap.set_ylabel("ASR lines", fontsize=8)
    fig.colorbar(image, ax=[ax, ax_cap], pad=0.01, fraction=0.03, label="cosine")
else:
    print("Real data root: no ground-truth steps or concept directions; the timeline is skipped.")

# %% [markdown]
# The same video as tables: its performed steps with their true intervals and narration onsets,
# and its first caption lines.

# %%
if simulated:
    display(video_steps[["step_index", "text", "start", "end", "onset", "speech_end", "lag"]])
    display(pd.DataFrame({"start": cap_start, "end": cap_end, "text": captions["text"]}).head(15))
    inside = [similarity[int(r.start):int(np.ceil(r.end)), texts.index(r.text)].mean()
              for r in video_steps.itertuples()]
    outside = np.mean([np.delete(similarity[:, k], np.concatenate(
        [np.arange(int(r.start), int(np.ceil(r.end))) for r in video_steps.itertuples() if r.text == t]))
        .mean() for k, t in enumerate(texts)])
    print(f"mean similarity to a step's direction inside its intervals: {np.mean(inside):.3f}; "
          f"elsewhere in the video: {outside:.3f}")

# %% [markdown]
# ## How loose is the narration?
#
# The **lag** of a step is the onset of its narration minus the step's true start. Presenters
# announce a step before doing it (negative lag), speak while doing it, or comment after it is
# done (lag beyond the step's length); some steps are never spoken. This looseness is what
# §3.3's overlapped clips are designed for.

# %%
if simulated:
    lags = steps.dropna(subset=["onset"]).copy()
    lags["when"] = np.select([lags.onset < lags.start, lags.onset < lags.end],
                             ["before the step", "during the step"], "after the step")
    summary = analysis.lag_summary(steps)
    display(pd.Series(summary, name="value").to_frame().round(3))
    fig, ax = plt.subplots(figsize=(9, 3.4))
    sns.histplot(data=lags, x="lag", hue="when", multiple="stack", binwidth=1,
                 binrange=(np.floor(lags.lag.quantile(0.005)), np.ceil(lags.lag.quantile(0.995))), ax=ax,
                 hue_order=["before the step", "during the step", "after the step"])
    ax.axvline(0, color="black", linewidth=1)
    ax.set_xlabel("narration onset − step start (s)")
    ax.set_title(f"lag of {len(lags)} spoken step instances (simulated world, lag_scale = "
                 f"{info['config']['lag_scale']})")
    fig.tight_layout()
    print(f"{100 * summary['unspoken']:.0f}% of step instances are never spoken; of all instances, "
          f"{100 * summary['before_start']:.0f}% are spoken before the step starts and "
          f"{100 * summary['after_end']:.0f}% only after it ends. Median |lag| of spoken steps: "
          f"{summary['median_abs_lag_s']:.1f} s.")
else:
    print("Real data root: the true step times of HowTo100M videos are unknown; no lag distribution.")

# %% [markdown]
# ## How each benchmark is built
#
# Benchmark videos are rendered like pre-training videos but are **never narrated**, and their
# ids are disjoint from the pre-training corpus. Their texts are the clean step descriptions (or
# open-domain sentences). In world v2 they share concepts — words of the same stem — with the
# narration of the same steps, but no sentence (see the overlap table above); in world v1 the
# narration of CrossTask, COIN and YouCook2 steps paraphrased these very texts:
#
# * **YouCook2** (text→video retrieval): cooking videos; one clip-text pair per annotated step
#   segment of the validation videos (MIL-NCE's clip list), each scored on its first 32 s.
# * **MSR-VTT** (text→video retrieval, JSFusion 1k-A): open-domain clips of 10–30 s, one caption
#   each; a clip may show a second, unnamed event.
# * **MSR-VTT multiple choice**: the same clips; the right answer is a second caption of the
#   clip, the four wrong ones come from other clips.
# * **DiDeMo** (moment localisation): videos cut into 5-s chunks; a query's moment is the chunk
#   range most of its four annotators marked.
# * **COIN** (action segmentation): step segments with long background between them; every
#   second is labelled with a step or background.
# * **CrossTask** (action step localisation): the primary tasks' videos with ordered steps,
#   minus the validation list and 30 training videos per task (the official split).
#
# The counts below are read back through the package's loaders (`videoclip.data.benchmarks`),
# the same code the evaluators use; `with_features` counts the benchmark's videos with a feature
# file.

# %%
counts = analysis.benchmark_counts(root)
display(counts)
present = counts[counts.status == "ok"]
for row in counts[counts.status != "ok"].itertuples():
    print(f"{row.benchmark}: {row.status}")
assert len(present) > 0, f"no benchmark files in {root}"
assert (present.videos > 0).all() and (present["items"] > 0).all(), present
if simulated:
    assert len(present) == len(counts) and (present.with_features == present.videos).all()

# %% [markdown]
# ## Chance and oracle levels
#
# How hard each benchmark is, in percent. **Chance** is what a scorer without information gets
# (for COIN: labelling every second background, the strongest trivial baseline). The **oracle**
# knows the true direction of every concept and scores a text by the sum of the directions its
# words name against the stored, noisy features: the score of a model that learned
# word↔concept perfectly and nothing else. It is a reference, not a bound: a trained model can
# beat it by using context or step order, and a benchmark whose oracle is not above chance cannot
# tell any model from chance. Both run through the same official evaluators as the trained model
# (`videoclip.sim.levels`: the oracle is a model whose embeddings are the true concept
# directions; chance uses closed forms or seeded random embeddings).

# %%
if len(present) == len(counts):
    chance, oracle = chapter.reference_levels(root, seed=world_seed, cache_dir=Path(work_dir) / "levels")
    levels = analysis.levels_table(chance, oracle)
    display(levels.round(1))
    if simulated:
        flat = levels[levels.oracle <= levels.chance + DISCRIMINATION_MARGIN]
        for row in flat.itertuples():
            print(f"{row.benchmark} {row.metric}: the oracle ({row.oracle:.1f}) is not above chance "
                  f"({row.chance:.1f}) by more than {DISCRIMINATION_MARGIN:g} points: this benchmark cannot "
                  "tell a model from chance here, and the scorecard leaves it out of the verdicts (design §13.3).")
        print(f"COIN: the oracle's γ (best similarity between two labels) is {oracle['coin']['gamma']:.3f}; "
              f"taking the best label on step seconds, without rejection, it is right on "
              f"{oracle['coin']['step_seconds_argmax_accuracy']:.1f}% of them.")
        if oracle["coin"]["gamma"] >= 0.999:
            print("Two COIN labels name the same concepts, so γ reaches 1 and the oracle rejects "
                  "every second as background: its frame accuracy equals the all-background baseline.")
else:
    print("Some benchmark files are missing (see the table above): the chance levels need all of them.")
