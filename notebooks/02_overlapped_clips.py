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
# # Overlapped clips
#
# The first of VideoCLIP's two ideas {cite}`xu2021videoclip` is how a *positive* video-text pair
# is drawn from a narrated video:
#
# > "To build overlapping *positive* video/text pairs, we (i) sample a text clip (because
# > sampling a video clip first may not have nearby corresponding text); (ii) sample a timestamp
# > within the boundary of text clip as the *center* for a video clip; (iii) grow a video clip
# > with random duration (up to ∼32 seconds) from this center timestamp." — §3.3
#
# The argument is that narration and action are loosely timed:
#
# > "it is less likely that temporally aligned video and text clips are also semantically close
# > in short clips. […] One explanation for this low relevance of temporal alignment is that
# > humans are less likely to speak and perform actions simultaneously." — §3.3
#
# The alternative it is compared against (Table 7, "w/o overlap") is **exact** alignment, as in
# MIL-NCE {cite}`miech2020milnce`-style pre-training: the video clip spans exactly the text's
# time (design §4). This chapter draws both samplers' pairs, then uses the simulated world's
# ground truth to measure **how often the paired video shows what the paired text talks
# about**, and how that depends on how far the narration lags the action.

# %% tags=["parameters"]
work_dir = "../artifacts/smoke"  # artefact cache (toy: ../artifacts/toy)
data_root = ""  # empty → simulated world; paper: "$VIDEOCLIP_DATA_DIR" (real HowTo100M, design §4)
world_preset = "smoke"  # the simulated world (also the ground-truth world under the paper profile)
world_seed = 0
real_data_dir = "$VIDEOCLIP_DATA_DIR"  # real annotation files to ground the simulated text ("" → procedural)
backbone = "minilm-l6"  # tokenizer of the text tower; paper: bert-base-uncased (design §1)
clip_per_video = 16  # pairs drawn per video per round; paper: 16 (design §4)
rounds = 2  # rounds of drawing over every video
example_pairs = 6  # pairs drawn on the timeline, per sampler
lag_scales = [0.0, 1.0, 2.0, 4.0]  # multipliers of every narration lag in the sweep worlds
lag_world_videos = 120  # pre-training videos per sweep world
lag_world_seconds = [60.0, 150.0]  # their durations (the toy preset's range)
seed = 0  # sampler seed

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from IPython.display import display
from matplotlib.patches import Rectangle
from tqdm import tqdm

from videoclip.backbone import load_tokenizer
from videoclip.book import analysis, stats
from videoclip.book.workspace import ensure_world, resolve_data_root
from videoclip.data.samplers import ClipSampler
from videoclip.sim.truth import load_world_truth

sns.set_theme(style="whitegrid")
rng = np.random.default_rng(seed)
tokenizer = load_tokenizer(backbone)
root = resolve_data_root(data_root, work_dir=work_dir, world_preset=world_preset,
                         world_seed=world_seed, real_data=real_data_dir)
# The ground-truth measurements always use a simulated world (the same one as `root` unless a
# real data root is given): real narration has no known step times.
world = ensure_world(work_dir, preset=world_preset, seed=world_seed, real_data=real_data_dir)
cache_dir = Path(work_dir) / "token_cache"
store, cache, video_ids, report = analysis.pretraining_corpus(root, tokenizer, cache_dir=cache_dir / root.name)
print(f"data root {root}: {len(video_ids)} usable pre-training videos; dropped: "
      + ", ".join(f"{k} {v}" for k, v in report.items() if k.startswith("num_") and k != "num_usable"))
if world == root:
    world_store, world_cache, world_ids = store, cache, video_ids
else:
    world_store, world_cache, world_ids, _ = analysis.pretraining_corpus(world, tokenizer,
                                                                         cache_dir=cache_dir / world.name)
truth = load_world_truth(world)
print(f"ground-truth world {world.name}: {len(world_ids)} videos, {len(truth.steps)} step instances")

# %% [markdown]
# ## Sampled pairs on a timeline
#
# A few pairs drawn from one video of the simulated world by each sampler. Each row is a pair:
# the thin bar is the text clip's time span (whole caption lines grown to a budget of 8–64
# tokens), the thick bar its video clip; the dot is the overlap sampler's centre second. The
# shaded columns are the video's true step intervals, the ticks along the top its caption lines.

# %%
candidates = [v for v in world_ids[:200] if truth.video_steps(v).text.nunique() >= 3]
example = max(candidates, key=world_store.num_seconds)  # the longest, for room to see the clips
steps = truth.video_steps(example)
c0, c1 = world_cache.caption_range(example)
fig, axes = plt.subplots(2, 1, figsize=(12, 1.3 + 0.5 * example_pairs * 2), sharex=True)
for ax, kind in zip(axes, ["overlap", "exact"]):
    pairs = ClipSampler(kind=kind).sample([example], world_store, world_cache,
                                          clip_per_video=example_pairs, rng=rng)
    table = analysis.pair_truth(pairs, world_cache, truth)
    for row in steps.itertuples():
        ax.axvspan(row.start, row.end, color="tab:green", alpha=0.15, linewidth=0)
    ax.vlines(world_cache.starts[c0:c1], example_pairs - 0.2, example_pairs + 0.1, color="grey", linewidth=0.8)
    for i, row in enumerate(table.itertuples()):
        ax.plot([row.text_start, row.text_end], [i, i], color="tab:blue", linewidth=2, zorder=3)
        colour = "tab:orange" if row.describes_screen else "tab:red"
        ax.add_patch(Rectangle((row.video_start, i - 0.32), row.video_seconds, 0.64, color=colour, alpha=0.7))
        if pairs.centre[i] >= 0:
            ax.plot(pairs.centre[i] + 0.5, i, "k.", markersize=6)
    ax.set_yticks(range(example_pairs), [f"pair {i}" for i in range(example_pairs)], fontsize=8)
    ax.set_ylim(-0.7, example_pairs + 0.3)
    ax.invert_yaxis()
    ax.set_title(f"{kind} sampler — orange: the video shows a step the text narrates; red: it does not",
                 fontsize=10)
axes[-1].set_xlabel(f"seconds of video {example} (simulated world; green: true step intervals)")
axes[-1].set_xlim(0, world_store.num_seconds(example))
fig.tight_layout()

# %% [markdown]
# ## How often does the paired text describe what is on screen?
#
# With the simulated world's ground truth, each pair is scored (`videoclip.book.analysis.pair_truth`):
#
# * **text narrates a step** — the text clip overlaps the speech of at least one step;
# * **describes screen** — the video clip overlaps the true interval of a step that its text
#   narrates (or of a repeat of that step), as a share of all pairs and of the pairs whose text
#   narrates a step;
# * **on-screen share of seconds** — the share of the video clip's seconds showing such a step.
#
# As a naive reference, each pair is scored again with its video clip moved to a random place in
# the same video (same length: "shuffled"). Intervals are 95 % cluster-bootstrap intervals over
# videos; the overlap − exact difference is bootstrapped paired (both samplers draw from the same
# videos).

# %%
pairs_truth = analysis.sample_pair_table(world_ids, world_store, world_cache, truth=truth,
                                         clip_per_video=clip_per_video, rounds=rounds, shuffled=True, rng=rng)
summary = analysis.screen_match_summary(pairs_truth, seed=seed)
display(summary.pivot(index="measure", columns="kind", values="percent").round(1))
fig, ax = plt.subplots(figsize=(10, 3.6))
order = list(analysis.SCREEN_MEASURES)
kinds = list(dict.fromkeys(summary.kind))
width = 0.8 / len(kinds)
for j, kind in enumerate(kinds):
    part = summary[summary.kind == kind].set_index("measure").loc[order]
    x = np.arange(len(order)) + (j - (len(kinds) - 1) / 2) * width
    ax.bar(x, part.percent, width, label=kind, yerr=[part.percent - part.ci_low, part.ci_high - part.percent],
           capsize=2, color=sns.color_palette("Paired")[[1, 0, 3, 2][j % 4]])
ax.set_xticks(range(len(order)), order)
ax.set_ylabel("% of pairs (95% CI)")
ax.set_title(f"{len(pairs_truth) // len(kinds)} pairs per sampler, simulated world {world.name}")
ax.legend(fontsize=8, ncols=2)
fig.tight_layout()

# %%
def measure(table: pd.DataFrame, kind: str, name: str = "describes screen") -> pd.Series:
    return table[(table.kind == kind) & (table.measure == name)].iloc[0]


over, exact = measure(summary, "overlap"), measure(summary, "exact")
diff = analysis.paired_difference(pairs_truth, "overlap", "exact", seed=seed)
verdict = {"above": "higher than", "below": "lower than"}.get(
    stats.interval_side(diff["ci_low"], diff["ci_high"]), "not distinguishable from")
print(f"Overlapped pairs show what their text narrates in {over.percent:.1f}% of pairs, exactly aligned "
      f"pairs in {exact.percent:.1f}%: a difference of {diff['difference']:+.1f} points "
      f"[{diff['ci_low']:+.1f}, {diff['ci_high']:+.1f}] (paired over {diff['videos']} videos), so overlap "
      f"is {verdict} exact alignment on this measure.")
for kind in ("overlap", "exact"):
    real, shuffled = measure(summary, kind), measure(summary, f"{kind} (shuffled)")
    print(f"{kind}: {real.percent:.1f}% against {shuffled.percent:.1f}% with the clip moved at random.")

# %% [markdown]
# Longer clips overlap more steps by construction, so the same measure is broken down by the
# text clip's length (its token budget decides how many caption lines it spans) — the regime
# §3.3 worries about is the *short* text clip.

# %%
scored = pairs_truth[~pairs_truth.kind.str.contains("shuffled")].copy()
scored["text tokens"] = pd.cut(scored.text_tokens, [0, 16, 32, 48, 61])
by_length = scored.groupby(["kind", "text tokens"], observed=True).agg(
    describes_screen=("describes_screen", "mean"), video_seconds=("video_seconds", "mean"),
    pairs=("describes_screen", "size")).reset_index()
by_length["describes_screen"] *= 100
display(by_length.pivot(index="text tokens", columns="kind", values=["describes_screen", "video_seconds"]).round(1))
fig, ax = plt.subplots(figsize=(6, 3.2))
sns.pointplot(data=scored.assign(describes=100 * scored.describes_screen), x="text tokens", y="describes",
              hue="kind", errorbar=("ci", 95), ax=ax)
ax.set_ylabel("describes screen (% of pairs)")
fig.tight_layout()

# %% [markdown]
# Exactly aligned video clips are longer (they span the whole text clip) and a longer clip shows
# more steps, so the comparison above mixes the sampler with the clip length. Matched by the
# **video** clip's length, the two samplers compare like with like:

# %%
scored["video seconds"] = pd.cut(scored.video_seconds, [0, 8, 16, 24, 32], include_lowest=True)
by_video = scored.groupby(["video seconds", "kind"], observed=True).agg(
    describes_screen=("describes_screen", "mean"), pairs=("describes_screen", "size")).reset_index()
by_video["describes_screen"] *= 100
display(by_video.pivot(index="video seconds", columns="kind", values=["describes_screen", "pairs"]).round(1))

# %% [markdown]
# ## A check of the simulator: pair relevance as the narration lag grows
#
# The simulator's `lag_scale` knob multiplies every narration lag (0 speaks each step while it
# happens). Small worlds that differ only in this knob (same seed, same videos and steps) are
# generated and the same measurement repeated. This is **a check of the simulator, not
# evidence** about overlapped clips: how often a pair is relevant follows from how the world
# generates its narration (design §13.1), so the sweep shows what the lag knob does to the
# pairs a model will see. Whether overlap then *trains* better is the ablations chapter's lag
# experiment.

# %%
sweep = []
for scale in tqdm(lag_scales, desc="lag worlds"):
    lag_world = ensure_world(work_dir, preset="smoke", seed=world_seed, real_data=real_data_dir,
                             num_videos=lag_world_videos, pretrain_seconds=lag_world_seconds,
                             lag_scale=scale)
    w_store, w_cache, w_ids, _ = analysis.pretraining_corpus(lag_world, tokenizer,
                                                             cache_dir=cache_dir / lag_world.name)
    w_truth = load_world_truth(lag_world)
    table = analysis.sample_pair_table(w_ids, w_store, w_cache, truth=w_truth, clip_per_video=clip_per_video,
                                       rounds=rounds, rng=rng)
    lags = analysis.lag_summary(w_truth.steps)
    sweep.append(analysis.screen_match_summary(table, seed=seed).assign(
        lag_scale=scale, median_abs_lag_s=lags["median_abs_lag_s"]))
sweep = pd.concat(sweep, ignore_index=True)
display(sweep[sweep.measure == "describes screen"].pivot(index=["lag_scale", "median_abs_lag_s"],
                                                         columns="kind", values="percent").round(1))
fig, axes = plt.subplots(1, 2, figsize=(11, 3.4))
for ax, name in zip(axes, ["describes screen", "on-screen share of seconds"]):
    for kind, colour in zip(["overlap", "exact"], ["tab:orange", "tab:blue"]):
        part = sweep[(sweep.kind == kind) & (sweep.measure == name)]
        ax.plot(part.lag_scale, part.percent, "o-", color=colour, label=kind)
        ax.fill_between(part.lag_scale, part.ci_low, part.ci_high, color=colour, alpha=0.2)
    ax.set_xlabel("lag_scale (× every narration lag)")
    ax.set_ylabel(f"{name} (%)")
    ax.legend()
fig.suptitle(f"sweep worlds of {lag_world_videos} videos each (simulated)", fontsize=10)
fig.tight_layout()

# %%
at = sweep[sweep.measure == "describes screen"].pivot(index="lag_scale", columns="kind", values="percent")
gap = (at["overlap"] - at["exact"]).round(1)
print("overlap − exact, 'describes screen' (percentage points) per lag_scale: "
      + ", ".join(f"{s:g}: {g:+.1f}" for s, g in gap.items()))
steps_up = np.diff(gap.to_numpy())
direction = ("the larger the lag, the better overlap fares against exact alignment" if (steps_up > 0).all()
             else "the larger the lag, the worse overlap fares against exact alignment" if (steps_up < 0).all()
             else "no consistent trend across the lags tried")
print(f"From the smallest to the largest lag, overlap − exact goes from {gap.iloc[0]:+.1f} to "
      f"{gap.iloc[-1]:+.1f} points: {direction} on this measure.")
assert at.notna().all().all()

# %% [markdown]
# These measures count how often a positive pair is *relevant*. They do not capture the rest of
# §3.3's argument — that overlapped clips of varied lengths give the contrastive loss more and
# more varied positives, and keep relevant pairs out of the negatives — which only training can
# test: the ablations chapter trains with both samplers and compares retrieval.

# %% [markdown]
# ## How long are the pairs?
#
# The text clip grows by whole caption lines until it holds a budget drawn uniformly from 8–64
# tokens (or spans 256 s), and is then cut to 61 tokens; the overlapped video clip is 3–32 s
# long, the exact one spans the text's time, cut to 32 s (design §4). Drawn here on the data root
# itself (real HowTo100M captions under the paper profile).

# %%
lengths = analysis.sample_pair_table(video_ids, store, cache, clip_per_video=clip_per_video, rounds=1, rng=rng)
display(lengths.groupby("kind")[["text_tokens", "text_tokens_raw", "num_captions", "video_seconds"]]
        .describe().T.round(1))
fig, axes = plt.subplots(1, 2, figsize=(11, 3.2))
sns.histplot(data=lengths, x="text_tokens_raw", hue="kind", binwidth=2, element="step", ax=axes[0])
for x in (8, 61, 64):
    axes[0].axvline(x, color="black", linestyle=":", linewidth=1)
axes[0].set_xlabel("tokens per text clip before the cut (dotted: budget 8..64, cut 61)")
sns.histplot(data=lengths, x="video_seconds", hue="kind", binwidth=1, element="step", ax=axes[1])
for x in (3, 32):
    axes[1].axvline(x, color="black", linestyle=":", linewidth=1)
axes[1].set_xlabel("seconds per video clip (dotted: 3..32)")
fig.tight_layout()
over_len = lengths[lengths.kind == "overlap"]
assert over_len.video_seconds.between(3, 32).all(), over_len.video_seconds.describe()
assert (lengths.text_tokens <= 61).all() and (lengths[lengths.kind == "exact"].video_seconds <= 32).all()
print(f"empty exact clips (text past the end of the features): "
      f"{int((lengths[lengths.kind == 'exact'].video_seconds == 0).sum())} of {len(lengths) // 2}")
