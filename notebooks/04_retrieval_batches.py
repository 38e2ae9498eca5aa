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
# # Retrieval-augmented batches
#
# A contrastive loss learns only as much as its negatives demand. With random batches of
# HowTo100M {cite}`miech2019howto100m` videos the other pairs of a batch are mostly about other
# tasks altogether, and easy to tell apart. VideoCLIP {cite}`xu2021videoclip` builds each batch
# from a *cluster* of similar videos instead:
#
# > "Our intention is to learn to model more fine-grained video-text similarity by using difficult
# > examples in our contrastive pre-training objective (5). We construct *negatives* in our
# > training batch by using hard pairs $\{z_t^-\}$, which are semantically [close] to the pairs in
# > the numerator, using retrieval based sampling." — §3.4
#
# > **Algorithm 1** (Retrieval Augmented Training). *foreach epoch do*: (2) infer global features
# > for all videos on the model, $z_V = \frac{1}{2|B_V|}\sum_{(v,t)\in B_V}(z_v + z_t)$; (3) build a
# > dense index on all videos' $z_V$; (4) retrieve $|\mathcal{C}|$ video clusters, each sampled as
# > $c \sim k\mathrm{NN}(z_V, 2k)$, $|c| = k$, from a random video $V$; (5) sample overlapped
# > video-text pairs from $c \in \mathcal{C}$ to train $M$. — §3.4
#
# > "Instead of searching $k$ nearest videos directly (see ablation in Table 7), we sample $k$
# > videos from the $2k$ nearest videos. This is because we want videos in a cluster to be mutually
# > closer to each other (not all close to video $V$)." — §3.4
#
# In the package (`videoclip.retrieval`, design §5): `embed_videos` gives each training video the
# mean of (pooled video + pooled text) / 2 over clips from the *aligned* sampler; a FAISS index
# (`VectorRetriever`) holds the vectors; `cluster_groups` draws N/32 query videos and for each keeps
# a random 32 of the query and its 64 nearest other videos. `random_groups` is the "w/o retrieval"
# ablation.
#
# What does "harder" mean here? HowTo100M gives each video the wikiHow **task** it was found by
# (the simulated world writes the same `HowTo100M_v1.csv`): two videos of one task share steps,
# objects and words, so they are the hard negatives the paper wants. This chapter measures how
# many pairs of videos in a group share a task, and how similar their vectors are, for clustered
# and for random groups: first per epoch from the training log, then with the trained model.

# %% tags=["parameters"]
work_dir = "../artifacts/smoke"  # artefact cache (toy: ../artifacts/toy)
data_root = ""  # empty → simulated world; paper: "$VIDEOCLIP_DATA_DIR" (real files, design §3-5)
world_preset = "smoke"  # simulated world size: smoke | toy | paper
world_seed = 0
real_data_dir = "$VIDEOCLIP_DATA_DIR"  # real annotation files to ground the simulated text ("" → procedural)
pretrain_preset = "smoke"  # the book's model (params/pretrain/<name>.yaml; toy: toy, paper: paper, design §6)
max_videos = 0  # training videos to embed here (0: all the run trained on; paper: a sample of the 1.1 M)
rounds = 10  # independent draws of an epoch's groups, pooled for the statistics
precision_k = 10  # neighbours per video for the neighbourhood precision
num_boot = 1000  # bootstrap draws of each 95% interval
map_max_videos = 3000  # videos drawn on the 2-D map
highlight_group = 0  # which clustered group the map highlights
seed = 0

# %%
import csv
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from IPython.display import display
from tqdm.auto import tqdm

from videoclip import VideoCLIP
from videoclip.book import analysis, stats
from videoclip.book.workspace import ensure_pretrained, resolve_data_root
from videoclip.retrieval import cluster_groups, embed_videos, group_stats, random_groups
from videoclip.sim.truth import has_world_truth
from videoclip.train import RunLog, read_task_labels

sns.set_theme(style="whitegrid")
root = resolve_data_root(data_root, work_dir=work_dir, world_preset=world_preset,
                         world_seed=world_seed, real_data=real_data_dir)
simulated = has_world_truth(root)
run_dir = ensure_pretrained(work_dir, data_root=root, preset=pretrain_preset)
log = RunLog.read(run_dir)
start = log.start
cfg = {k: v for section in start["config"].values() for k, v in section.items()}
print(f"data root: {root} ({'simulated world' if simulated else 'real data root'})")
print(f"run: {run_dir.name}, grouping={cfg['grouping']!r}, {cfg['num_video_per_batch']} videos per group, "
      f"{cfg['num_neighbours']} neighbours, {cfg['num_epochs']} epoch(s) on {start['num_videos']} videos")

# %% [markdown]
# ## Per epoch, during training
#
# At the start of every epoch the training loop logs the statistics of the groups it is about to
# train on (`videoclip.retrieval.group_stats`): the share of same-task pairs among all pairs of
# videos inside a group, for the epoch's clustered groups and for random groups drawn from the
# same videos, and the expected share of a random pair. The first epoch's clusters come from
# the *untrained* model (the backbone's text tower is already a sentence encoder, the video tower
# is not yet trained).

# %%
epochs = pd.DataFrame(log.retrieval)
if "same_task_share" in epochs:
    per_epoch = epochs.set_index("epoch")[["same_task_share", "random_groups_same_task_share",
                                           "random_share", "coverage", "seconds"]]
    display((per_epoch * [100, 100, 100, 100, 1]).round(1).rename(columns={
        "same_task_share": "clustered groups (%)", "random_groups_same_task_share": "random groups (%)",
        "random_share": "random pair, expected (%)", "coverage": "videos in a group (%)",
        "seconds": "retrieval stage (s)"}))
    fig, ax = plt.subplots(figsize=(8, 3.4))
    for column, style, label in [("same_task_share", "o-", f"{cfg['grouping']} groups (trained on)"),
                                 ("random_groups_same_task_share", "s-", "random groups"),
                                 ("random_share", "kx:", "random pair, expected")]:
        ax.plot(per_epoch.index, 100 * per_epoch[column], style, label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("same-task share of pairs (%)")
    ax.set_xticks(per_epoch.index)
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    ax.set_title(f"groups of {cfg['num_video_per_batch']} videos "
                 f"({'simulated world' if simulated else 'real data'})", fontsize=10)
    fig.tight_layout()
    above = (per_epoch.same_task_share > per_epoch.random_groups_same_task_share).sum()
    lift = per_epoch.same_task_share / per_epoch.random_share
    print(f"The trained-on groups hold more same-task pairs than random groups in {above} of "
          f"{len(per_epoch)} epoch(s); their lift over a random pair is {lift.iloc[0]:.1f}x in the first "
          f"epoch and {lift.iloc[-1]:.1f}x in the last.")
else:
    print("The run logged no task statistics (task_csv was empty): see the measurements below.")

# %% [markdown]
# ## With the trained model
#
# The trained model embeds the training videos as the retrieval stage does (`embed_videos` with
# the run's `retrieval_clips`), and the epoch's groups are drawn `rounds` times over from those
# vectors. Besides the paper's sampled clusters and random groups, the table has the **retrieve
# k** variant (the query and its nearest videos, Table 7) and clusters drawn from the **first
# 32 s** embedding (a video embedded from one clip of its first 32 seconds, Table 7). For every
# grouping: the same-task share of pairs and the mean cosine similarity of pairs of whole-video
# vectors (both pooled over all pairs of all groups), with 95 % bootstrap intervals that resample
# groups.

# %%
model = VideoCLIP.from_pretrained(run_dir / "final")
store, cache, usable, _ = analysis.pretraining_corpus(root, model.tokenizer,
                                                      cache_dir=Path(work_dir) / "token_cache" / root.name)
listed = (root / cfg["train_list"]).read_text().split()
usable_set = set(usable)
video_ids = [v for v in listed if v in usable_set][: cfg["max_videos"] or None]
assert len(video_ids) == start["num_videos"], (len(video_ids), start["num_videos"])
if max_videos and max_videos < len(video_ids):
    keep = np.sort(np.random.default_rng(seed).choice(len(video_ids), max_videos, replace=False))
    video_ids = [video_ids[i] for i in keep]
meta = pd.read_csv(root / cfg["task_csv"], dtype=str).set_index("video_id")
task_of = read_task_labels(root / cfg["task_csv"])
labels = np.array([task_of[v] for v in video_ids])
domains = meta.loc[video_ids, "category_1"].fillna("unknown").to_numpy()
task_file = root / "howto100m" / "task_ids.csv"  # "<id>\t<task name>" per line, no header
if task_file.is_file():
    task_names = pd.read_csv(task_file, sep="\t", header=None, names=["id", "name"], dtype=str,
                             quoting=csv.QUOTE_NONE).set_index("id").name.to_dict()
else:
    task_names = {}
    print(f"{task_file} is missing: tasks are shown by their ids")
names = np.array([f"{t}: {task_names.get(t, '?')}"[:40] for t in labels])
embed = {"num_clips": cfg["retrieval_clips"], "batch_size": cfg["embed_batch_size"], "progress": True}
vectors = embed_videos(model, store, cache, video_ids, rng=np.random.default_rng(seed), **embed)
vectors_32s = embed_videos(model, store, cache, video_ids, first_32s=True, rng=np.random.default_rng(seed),
                           **embed)
print(f"{len(video_ids)} videos of {len(set(labels))} tasks in {len(set(domains))} domains; "
      f"vectors {vectors.shape}")

# %%
group_size = cfg["num_video_per_batch"]
cluster = {"group_size": group_size, "num_neighbours": cfg["num_neighbours"], "index": cfg["index"],
           "metric": cfg["metric"], "nlist": cfg["nlist"], "nprobe": cfg["nprobe"]}
groupings = {
    "clustered (paper)": lambda rng: cluster_groups(vectors, mode="sample", rng=rng, **cluster),
    "retrieve k": lambda rng: cluster_groups(vectors, mode="nearest", rng=rng, **cluster),
    "clustered, first 32 s": lambda rng: cluster_groups(vectors_32s, mode="sample", rng=rng, **cluster),
    "random": lambda rng: random_groups(len(video_ids), group_size=group_size, rng=rng),
}
drawn = {name: [] for name in groupings}
for r in tqdm(range(rounds), desc="draw groups"):
    for j, (name, draw) in enumerate(groupings.items()):
        drawn[name] += draw(np.random.default_rng([seed, r, j]))
per_group = pd.concat([stats.group_pair_stats(groups, vectors, labels).assign(grouping=name)
                       for name, groups in drawn.items()], ignore_index=True)
per_group = per_group[per_group.pairs > 0]  # a group of one video has no pairs
per_group["same_task_percent"] = 100 * per_group.same_task_share
rows = []
for name, part in per_group.groupby("grouping", sort=False):
    share = stats.bootstrap_ci(part.same_task_share, weights=part.pairs, num_boot=num_boot, seed=seed)
    cosine = stats.bootstrap_ci(part.mean_cosine, weights=part.pairs, num_boot=num_boot, seed=seed)
    check = group_stats(drawn[name], labels)["same_task_share"]
    assert abs(check - share["estimate"]) < 1e-9, (name, check, share["estimate"])
    rows.append({"grouping": name, "groups": len(part),
                 "same-task share (%)": 100 * share["estimate"],
                 "95% CI": f"[{100 * share['ci_low']:.1f}, {100 * share['ci_high']:.1f}]",
                 "mean cosine": cosine["estimate"],
                 "cosine 95% CI": f"[{cosine['ci_low']:.3f}, {cosine['ci_high']:.3f}]"})
hardness = pd.DataFrame(rows).set_index("grouping")
expected = group_stats(drawn["random"], labels)["random_share"]
display(hardness.round(3))
print(f"a random pair of these videos shares its task with probability {100 * expected:.1f}%")

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 3.6))
order = list(groupings)
for ax, column, label in zip(axes, ["same_task_percent", "mean_cosine"],
                             ["same-task share of pairs (%)", "mean pairwise cosine (whole-video vectors)"]):
    sns.boxplot(data=per_group, x="grouping", y=column, order=order, ax=ax, color="lightgrey", fliersize=0)
    sns.stripplot(data=per_group, x="grouping", y=column, order=order, ax=ax, size=2.5, alpha=0.5)
    ax.set_xlabel("")
    ax.set_ylabel(label)
    ax.tick_params(axis="x", labelsize=8)
axes[0].axhline(100 * expected, color="black", linestyle=":", linewidth=1, label="random pair, expected")
axes[0].legend(fontsize=8)
fig.suptitle(f"{rounds} draws of an epoch's groups of {group_size} videos, one dot per group", fontsize=10)
fig.tight_layout()

# %%
clustered, rand = (per_group[per_group.grouping == name] for name in ("clustered (paper)", "random"))
diff, cos_diff = (stats.bootstrap_difference(clustered[c], rand[c], weights_a=clustered.pairs,
                                             weights_b=rand.pairs, num_boot=num_boot, seed=seed)
                  for c in ("same_task_share", "mean_cosine"))
share_c, share_r = hardness.loc[["clustered (paper)", "random"], "same-task share (%)"]
verdict = {"above": "harder than", "below": "easier than"}.get(
    stats.interval_side(diff["ci_low"], diff["ci_high"]), "not distinguishable from")
print(f"Clustered groups hold {share_c:.1f}% same-task pairs against {share_r:.1f}% in random groups: "
      f"{100 * diff['estimate']:+.1f} points [{100 * diff['ci_low']:+.1f}, {100 * diff['ci_high']:+.1f}] "
      f"({f'{share_c / share_r:.1f}x' if share_r > 0 else 'random groups hold no same-task pair'}); "
      f"their videos' mean cosine is {cos_diff['estimate']:+.3f} "
      f"[{cos_diff['ci_low']:+.3f}, {cos_diff['ci_high']:+.3f}] higher. By the same-task measure, "
      f"clustered groups are {verdict} random ones here.")

# %% [markdown]
# ## A map of the video vectors
#
# The whole-video vectors projected on their first two principal components
# (`videoclip.book.stats.pca`, an SVD), coloured by HowTo100M domain (`category_1`) on the left and by
# task on the right (the most frequent tasks; the rest grey). The black rings are one clustered
# group, the videos of one batch.

# %%
coords, explained = stats.pca(vectors, 2)
group = drawn["clustered (paper)"][highlight_group]
rng = np.random.default_rng(seed)
shown = np.arange(len(video_ids))
if len(shown) > map_max_videos:
    shown = np.union1d(rng.choice(len(shown), map_max_videos, replace=False), group)
top_tasks = pd.Series(names).value_counts().index[:8]
task_colour = np.where(np.isin(names, top_tasks), names, "other tasks")
fig, axes = plt.subplots(1, 2, figsize=(13, 5), sharex=True, sharey=True)
for ax, hue, title in zip(axes, [domains, task_colour], ["domain (category_1)", "task (8 most frequent)"]):
    frame = pd.DataFrame({"pc1": coords[shown, 0], "pc2": coords[shown, 1], "hue": hue[shown]})
    coloured = sorted(set(frame.hue) - {"other tasks"})
    palette = dict(zip(coloured, sns.color_palette("tab10" if len(coloured) <= 10 else "tab20", len(coloured))))
    palette["other tasks"] = (0.8, 0.8, 0.8)
    hue_order = coloured + (["other tasks"] if "other tasks" in set(frame.hue) else [])
    sns.scatterplot(data=frame, x="pc1", y="pc2", hue="hue", hue_order=hue_order, palette=palette, s=14,
                    linewidth=0, ax=ax)
    ax.scatter(coords[group, 0], coords[group, 1], s=70, facecolors="none", edgecolors="black", linewidths=1.2,
               label=f"clustered group {highlight_group}")
    ax.set_title(f"coloured by {title}", fontsize=10)
    ax.set_xlabel(f"PC 1 ({100 * explained[0]:.0f}% of variance)")
    ax.set_ylabel(f"PC 2 ({100 * explained[1]:.0f}% of variance)")
    ax.legend(fontsize=7, markerscale=0.8, loc="best")
fig.suptitle(f"{len(shown)} training videos, trained model ({'simulated world' if simulated else 'real data'})",
             fontsize=10)
fig.tight_layout()
members = pd.DataFrame({"video_id": np.array(video_ids)[group], "task": names[group],
                        "domain": domains[group]})
print(f"clustered group {highlight_group}: {members.task.nunique()} distinct tasks among {len(members)} videos")
display(members.value_counts(["domain", "task"]).rename("videos").to_frame())

# %% [markdown]
# ## Whole video or its first 32 seconds?
#
# > "Line 2 computes the global features $z_V$ for each video by averaging the embeddings of all of
# > its video-text clips. An ablation (in appendix) shows that this is better than using the
# > starting clip of a video to infer the representative video embedding." — §3.4
#
# Two measures of the same embeddings, without training anything: the same-task share of the
# clusters each one yields (above), and the **neighbourhood precision** — the share of a video's
# `precision_k` nearest other videos that share its task (`videoclip.book.stats.neighbour_precision`,
# the index's metric), with a 95 % bootstrap interval over videos. The ablations chapter trains
# with each and compares retrieval.

# %%
k = min(precision_k, len(video_ids) - 1)
precision = {name: stats.neighbour_precision(v, labels, k=k, metric=cfg["metric"])
             for name, v in [("whole video", vectors), ("first 32 s", vectors_32s)]}
rows = []
for name, values in precision.items():
    ci = stats.bootstrap_ci(values, num_boot=num_boot, seed=seed)
    grouping = "clustered (paper)" if name == "whole video" else "clustered, first 32 s"
    rows.append({"embedding": name, f"precision@{k} (%)": 100 * ci["estimate"],
                 "95% CI": f"[{100 * ci['ci_low']:.1f}, {100 * ci['ci_high']:.1f}]",
                 "cluster same-task share (%)": hardness.loc[grouping, "same-task share (%)"]})
first_32 = pd.DataFrame(rows).set_index("embedding")
display(first_32.round(1))
paired = stats.bootstrap_ci(precision["whole video"] - precision["first 32 s"], num_boot=num_boot, seed=seed)
better = {"above": "more", "below": "less"}.get(
    stats.interval_side(paired["ci_low"], paired["ci_high"]), "not distinguishably more or less")
print(f"Whole-video neighbourhoods are {better} task-coherent than first-32-s ones: precision@{k} "
      f"{100 * paired['estimate']:+.1f} points [{100 * paired['ci_low']:+.1f}, "
      f"{100 * paired['ci_high']:+.1f}] (paired over {len(video_ids)} videos); chance is {100 * expected:.1f}%.")
assert all(np.isfinite(v).all() for v in precision.values())
