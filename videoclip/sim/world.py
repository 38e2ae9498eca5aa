"""The simulated world: a HowTo100M-like corpus and all five benchmarks, in the official formats.

``simulate(out_dir, preset="toy")`` writes a complete data root (layout: book/paper_profile.md; design §3–4,
§7) that the loaders read exactly as they read real files, plus ``world.json`` (seed, knobs,
sizes, text sources) and ``world_truth.npz`` (concept directions and the pre-training steps'
true intervals and narration onsets; read by :mod:`videoclip.sim.levels` and the book,
never by a loader, sampler or evaluator).

The world (details in :mod:`videoclip.sim.video` and :mod:`videoclip.sim.taxonomy`):
tasks are ordered steps; a step shows concepts (the stems of its content words); each second's
feature is a fixed random projection of the concepts on screen plus a per-video appearance,
smoothed, noisy and L2-normalised. Narration speaks steps loosely in time, paraphrased, with
filler talk and ASR noise. Benchmark videos are rendered the same way but never narrated, and
their ids are disjoint from the pre-training corpus; their captions are the clean step texts,
which share words (hence concepts) with the narration of the same steps.

CLI: ``python -m videoclip simulate --out DIR --preset toy [--seed 0] [--real-data DIR]``.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
from collections import Counter
from pathlib import Path

import numpy as np

from videoclip._io import check_output_dir, write_deterministic_npz
from videoclip.data.features import write_features
from videoclip.sim.config import SimConfig, make_config
from videoclip.sim.narration import ConceptSpeaker, Lexicon, TextGuard
from videoclip.sim.taxonomy import (
    TALKING_HEAD,
    Task,
    Taxonomy,
    make_step,
    procedural_taxonomy,
    real_taxonomy,
)
from videoclip.sim.video import (
    ConceptSpace,
    StepSpan,
    caption_lines,
    instance_steps,
    layout,
    narrate,
    render_features,
)
from videoclip.text import STOP_WORDS, words_of

# --------------------------------------------------------------------------- helpers

_ID_CHARS = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"))


class _Ids:
    """YouTube-like 11-character ids, unique across the whole data root."""

    def __init__(self, seed: int) -> None:
        self._rng = np.random.default_rng([seed, 404])
        self.used: set[str] = set()

    def new(self) -> str:
        while True:
            vid = "".join(self._rng.choice(_ID_CHARS, size=11))
            if vid not in self.used and not vid.startswith("-"):
                self.used.add(vid)
                return vid


def _seconds(duration: float) -> int:
    return max(1, math.ceil(duration))


def _step_spans(
    rng: np.random.Generator, task: Task, duration: float, coverage: float, cfg: SimConfig,
    *, integer: bool = False, extra_objects: list[str] | None = None,
) -> list[StepSpan]:
    """Performed steps of ``task`` laid out over ``duration`` seconds."""
    order = instance_steps(rng, len(task.steps), cfg)
    times = layout(rng, len(order), duration, coverage=coverage, cfg=cfg)
    spans = []
    for k, (start, end) in zip(order, times):
        step = task.steps[k]
        if integer:
            start, end = float(round(start)), float(max(round(end), round(start) + 1))
        caption, concepts = step.caption, step.concepts
        if extra_objects and rng.random() < cfg.extra_object_prob:
            extra = str(extra_objects[int(rng.integers(len(extra_objects)))])
            if extra not in words_of(caption):
                extra_step = make_step(extra)
                caption = f"{caption} {'with' if rng.random() < 0.5 else 'next to'} the {extra}"
                concepts = concepts + tuple(c for c in extra_step.concepts if c not in concepts)
        spans.append(StepSpan(step, k, start, min(end, duration), concepts, caption))
    return spans


def _variant_spans(variant, duration: float, *, integer: bool) -> list[StepSpan]:
    spans = []
    for k, (step, (a, b)) in enumerate(zip(variant.steps, variant.spans)):
        start, end = a * duration, max(b * duration, a * duration + 1.0)
        if integer:
            start, end = float(math.floor(start)), float(max(round(end), math.floor(start) + 1))
        spans.append(StepSpan(step, k, round(start, 2), round(min(end, duration), 2),
                              step.concepts, step.caption))
    return spans


def _events(spans: list[StepSpan]) -> list[tuple[float, float, tuple[str, ...]]]:
    return [(s.start, s.end, s.concepts) for s in spans]


def _write_json(path: Path, obj: object, *, indent: int | str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=indent) + ("\n" if indent is not None else ""))


def _write_csv(path: Path, rows: list[list[object]], header: list[str] | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    if header:
        writer.writerow(header)
    writer.writerows(rows)
    path.write_text(buf.getvalue())


def _fmt(x: float) -> str:
    return f"{x:.2f}"


# --------------------------------------------------------------------------- the world


class _World:
    """Shared state of one simulation run: config, taxonomy, concept space, ids, vocabulary."""

    def __init__(self, out: Path, cfg: SimConfig, seed: int, taxonomy: Taxonomy) -> None:
        self.out, self.cfg, self.seed, self.tax = out, cfg, seed, taxonomy
        self.domains = sorted({t.domain for t in [*taxonomy.tasks, *taxonomy.coin]} | {"open"})
        self.scenes = {d: [f"scene:{d}:{k}" for k in range(cfg.scenes_per_domain)] for d in self.domains}
        names = taxonomy.concept_names() + [s for d in self.domains for s in self.scenes[d]]
        self.space = ConceptSpace(sorted(set(names) | {TALKING_HEAD}), seed)
        vocab: set[str] = set()
        for task in taxonomy.tasks:
            for step in task.steps:
                vocab.update(words_of(step.caption))
        for line in taxonomy.filler[:2000]:
            vocab.update(words_of(line))
        self.vocabulary = sorted(vocab)
        self.ids = _Ids(seed)
        self.sizes: dict[str, object] = {}
        self._extra: dict[str, list[str]] = {}
        self.speaker = self.guard = None  # world v1: steps speak their own text
        if cfg.world_version == 2:
            self.speaker = ConceptSpeaker(Lexicon(taxonomy.filler), cfg)
            self.guard = TextGuard(taxonomy.annotation_texts())

    def narration_counts(self) -> dict[str, int]:
        """World v2's text-source counts for world.json (design §13.1); empty for v1."""
        if self.speaker is None:
            return {}
        return {"guarded_texts": self.guard.num_texts, "fallback_words": self.speaker.fallback_words,
                "dropped_step_utterances": self.guard.dropped_steps,
                "dropped_filler_utterances": self.guard.dropped_filler}

    def rng(self, *key: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, *key])

    def scene(self, rng: np.random.Generator, domain: str) -> str:
        options = self.scenes[domain]
        return options[int(rng.integers(len(options)))]

    def features(self, sub: str, vid: str, rng, duration, events, domain, *, talking_head=True):
        array, _, _ = render_features(
            rng, _seconds(duration), events, scene=self.scene(rng, domain), space=self.space,
            cfg=self.cfg, talking_head=talking_head,
        )
        write_features(self.out / sub / "features", Path(vid).stem, array)

    def extra_objects(self, task: Task) -> list[str] | None:
        """Procedural tasks may name one more object of their domain per step instance."""
        if self.tax.grounded:
            return None
        if task.domain not in self._extra:
            self._extra[task.domain] = sorted({w for t in self.tax.tasks if t.domain == task.domain
                                               for s in t.steps for w in words_of(s.text)[1:]
                                               if w not in STOP_WORDS})
        return self._extra[task.domain]


def _open_task(world: _World, rng: np.random.Generator, k: int) -> Task:
    """A non-instructional "vlog": 3–6 open-domain events in a row."""
    pool = world.tax.open_sentences
    picks = rng.choice(len(pool), size=int(rng.integers(3, 7)), replace=False)
    steps = tuple(make_step(pool[i]) for i in picks)
    return Task(-1 - k, f"Daily Vlog {k}", "open", steps, "open")


def _pretrain(world: _World) -> dict[str, np.ndarray]:
    """howto100m/: caption.json, HowTo100M_v1.csv, task_ids.csv, train/val lists, features."""
    cfg, tax, out = world.cfg, world.tax, world.out / "howto100m"
    num_open_tasks = 5
    task_rows = [(t.task_id, t.name) for t in tax.tasks]
    task_rows += [(len(tax.tasks) + k, f"Daily Vlog {k}") for k in range(num_open_tasks)]
    captions: dict[str, dict[str, list]] = {}
    meta_rows, vids, video_task = [], [], []
    truth: dict[str, list] = {k: [] for k in ("video", "index", "start", "end", "onset", "speech_end",
                                              "text")}
    rank_of: Counter[int] = Counter()
    total_seconds = 0
    for i in range(cfg.num_videos):
        rng = world.rng(1, i)
        vid = world.ids.new()
        duration = round(float(rng.uniform(*cfg.pretrain_seconds)), 2)
        if rng.random() < cfg.open_domain_share:
            k = int(rng.integers(num_open_tasks))
            task = _open_task(world, rng, k)
            task_id = len(tax.tasks) + k
        else:
            task = tax.tasks[int(rng.integers(len(tax.tasks)))]
            task_id = task.task_id
        if task.variants:
            spans = _variant_spans(task.variants[int(rng.integers(len(task.variants)))], duration,
                                   integer=False)
        else:
            spans = _step_spans(rng, task, duration, cfg.step_coverage, cfg,
                                extra_objects=world.extra_objects(task))
        world.features("howto100m", vid, rng, duration, _events(spans), task.domain)
        total_seconds += _seconds(duration)
        utterances, onsets = narrate(rng, spans, duration, task_name=task.name, filler=tax.filler,
                                     vocabulary=world.vocabulary, cfg=cfg, speaker=world.speaker,
                                     guard=world.guard)
        starts, ends, texts = caption_lines(rng, utterances, cfg)
        speech_end = {u.step: u.end for u in utterances if u.step >= 0}
        captions[vid] = {"start": starts, "end": ends, "text": texts}
        rank_of[task_id] += 1
        category = tax.domain_of_category.get(task.domain, task.domain)
        meta_rows.append([vid, category, task.domain, rank_of[task_id], task_id])
        vids.append(vid)
        video_task.append(task_id)
        for k, (span, onset) in enumerate(zip(spans, onsets)):
            truth["video"].append(i)
            truth["index"].append(span.step_index)
            truth["start"].append(span.start)
            truth["end"].append(span.end)
            truth["onset"].append(onset)
            truth["speech_end"].append(speech_end.get(k, math.nan))
            truth["text"].append(span.caption)
    _write_json(out / "caption.json", captions)
    _write_csv(out / "HowTo100M_v1.csv", meta_rows,
               ["video_id", "category_1", "category_2", "rank", "task_id"])
    (out / "task_ids.csv").write_text("".join(f"{i}\t{name}\n" for i, name in task_rows))
    num_val = max(1, round(cfg.val_share * len(vids)))
    (out / "train.lst").write_text("".join(v + "\n" for v in vids[num_val:]))
    (out / "val.lst").write_text("".join(v + "\n" for v in vids[:num_val]))
    world.sizes["howto100m"] = {"videos": len(vids), "train": len(vids) - num_val, "val": num_val,
                                "seconds": total_seconds}
    return {
        "pretrain_video_ids": np.array(vids),
        "pretrain_video_task": np.array(video_task, np.int64),
        "pretrain_step_video": np.array(truth["video"], np.int64),
        "pretrain_step_index": np.array(truth["index"], np.int64),
        "pretrain_step_start": np.array(truth["start"], np.float64),
        "pretrain_step_end": np.array(truth["end"], np.float64),
        "pretrain_step_onset": np.array(truth["onset"], np.float64),
        "pretrain_step_speech_end": np.array(truth["speech_end"], np.float64),
        "pretrain_step_text": np.array(truth["text"]),
    }


def _youcook(world: _World) -> None:
    """youcook2/youcookii_annotations_trainval.json, validation_youcook.csv, features."""
    cfg, tax = world.cfg, world.tax
    database: dict[str, dict] = {}
    clip_rows = []
    rng = world.rng(2, 0)
    plans: list[tuple[str, Task, object]] = []
    for subset, count, attr in (("validation", cfg.youcook_val_videos, "eval_variants"),
                                ("training", cfg.youcook_train_videos, "variants")):
        if tax.grounded:
            pool = [(t, v) for t in tax.youcook for v in getattr(t, attr)
                    if v.duration <= cfg.youcook_seconds[1]]
            picks = rng.choice(len(pool), size=min(count, len(pool)), replace=False)
            plans += [(subset, pool[i][0], pool[i][1]) for i in sorted(picks)]
        else:
            plans += [(subset, tax.youcook[int(rng.integers(len(tax.youcook)))], None)
                      for _ in range(count)]
    for j, (subset, task, variant) in enumerate(plans):
        vrng = world.rng(2, 1, j)
        vid = world.ids.new()
        if variant is not None:
            duration = round(variant.duration, 2)
            spans = _variant_spans(variant, duration, integer=True)
        else:
            duration = round(float(vrng.uniform(*cfg.youcook_seconds)), 2)
            spans = _step_spans(vrng, task, duration, cfg.step_coverage, cfg, integer=True,
                                extra_objects=world.extra_objects(task))
        world.features("youcook2", vid, vrng, duration, _events(spans), task.domain)
        annotations = [{"segment": [int(s.start), int(s.end)], "id": k, "sentence": s.caption}
                       for k, s in enumerate(spans)]
        database[vid] = {"duration": duration, "subset": subset, "recipe_type": task.ext_id,
                         "annotations": annotations,
                         "video_url": f"https://www.youtube.com/watch?v={vid}"}
        if subset == "validation":
            clip_rows += [[a["segment"][1], a["segment"][0], task.ext_id, a["sentence"], vid]
                          for a in annotations]
    _write_json(world.out / "youcook2" / "youcookii_annotations_trainval.json",
                {"database": database}, indent=4)
    _write_csv(world.out / "youcook2" / "validation_youcook.csv", clip_rows,
               ["end", "start", "task", "text", "video_id"])
    world.sizes["youcook2"] = {"validation_videos": sum(p[0] == "validation" for p in plans),
                               "training_videos": sum(p[0] == "training" for p in plans),
                               "validation_clips": len(clip_rows)}


def _msrvtt(world: _World) -> None:
    """msrvtt/MSRVTT_JSFUSION_test.csv, msrvtt_mc_test.jsonl, features."""
    cfg, tax = world.cfg, world.tax
    clips = tax.msrvtt[: cfg.msrvtt_clips]
    rows, mc_lines = [], []
    for i, (vid, caption, second) in enumerate(clips):
        rng = world.rng(3, i)
        duration = round(float(rng.uniform(*cfg.msrvtt_seconds)), 2)
        concepts = tuple(dict.fromkeys(make_step(caption).concepts + make_step(second).concepts))
        events = [(0.0, duration, concepts)]
        if rng.random() < cfg.msrvtt_extra_event_prob:
            other = make_step(tax.open_sentences[int(rng.integers(len(tax.open_sentences)))])
            start = float(rng.uniform(0, duration / 2))
            events.append((start, start + duration * float(rng.uniform(0.3, 0.5)), other.concepts))
        world.features("msrvtt", vid, rng, duration, events, "open", talking_head=False)
        rows.append([f"ret{i}", "msr" + vid.removeprefix("video"), vid, caption])
        if tax.grounded:
            pool = tax.msrvtt_distractors
        else:
            pool = [c for j, (_, c, _) in enumerate(tax.msrvtt) if j != i] + tax.msrvtt_distractors
        wrong = [pool[k] for k in rng.choice(len(pool), size=4, replace=False)]
        answer = int(rng.integers(5))
        options = wrong[:answer] + [second] + wrong[answer:]
        mc_lines.append(json.dumps({"qid": f"mc{i}", "clip_name": vid,
                                    "title": f"msr{int(rng.integers(100000, 1000000))}",
                                    "answer": str(answer), "options": options}))
    _write_csv(world.out / "msrvtt" / "MSRVTT_JSFUSION_test.csv", rows,
               ["key", "vid_key", "video_id", "sentence"])
    (world.out / "msrvtt" / "msrvtt_mc_test.jsonl").write_text("".join(x + "\n" for x in mc_lines))
    world.sizes["msrvtt"] = {"clips": len(rows), "mc_questions": len(mc_lines)}


def _true_moment(times: list[list[int]]) -> tuple[int, int]:
    """The moment most annotators marked (first among ties)."""
    counts = Counter(tuple(t) for t in times)
    best = max(counts.values())
    return next(tuple(t) for t in times if counts[tuple(t)] == best)


def _didemo(world: _World) -> None:
    """didemo/test_data.json (LocalizingMoments format) and features/<video stem>.npy."""
    cfg, tax = world.cfg, world.tax
    entries, annotation_id = [], 0
    for i, (video, num_segments, queries) in enumerate(tax.didemo[: cfg.didemo_videos]):
        rng = world.rng(4, i)
        duration = round(float(rng.uniform(5 * (num_segments - 1) + 0.5, 5 * num_segments)), 2)
        events = []
        for description, real_times in queries:
            times = [list(t) for t in real_times]
            if not times:  # procedural: draw the moment and four annotators around it
                start = int(rng.integers(num_segments))
                end = min(num_segments - 1, start + int(rng.choice([0, 0, 1, 2])))
                for _ in range(4):
                    s, e = start, end
                    if rng.random() >= cfg.didemo_agreement:
                        if rng.random() < 0.5:
                            s = int(np.clip(s + rng.choice([-1, 1]), 0, e))
                        else:
                            e = int(np.clip(e + rng.choice([-1, 1]), s, num_segments - 1))
                    times.append([s, e])
            start, end = _true_moment(times)
            events.append((5.0 * start, min(5.0 * (end + 1), duration), make_step(description).concepts))
            annotation_id += int(rng.integers(1, 20))
            flickr_id = video.split("_")[1] if video.count("_") >= 2 else str(i)
            entries.append({"num_segments": num_segments, "description": description,
                            "dl_link": f"https://www.flickr.com/video_download.gne?id={flickr_id}",
                            "times": times, "video": video, "annotation_id": annotation_id})
        world.features("didemo", video, rng, duration, events, "open", talking_head=False)
    _write_json(world.out / "didemo" / "test_data.json", entries)
    world.sizes["didemo"] = {"videos": min(cfg.didemo_videos, len(tax.didemo)), "queries": len(entries)}


def _camel(name: str) -> str:
    return "".join(w[:1].upper() + w[1:] for w in name.split())


def _coin(world: _World) -> None:
    """coin/COIN.json ({"database": …}, subsets training/testing) and features."""
    cfg, tax = world.cfg, world.tax
    database: dict[str, dict] = {}
    total = cfg.coin_test_videos + cfg.coin_train_videos
    for i in range(total):
        rng = world.rng(5, i)
        task = tax.coin[int(rng.integers(len(tax.coin)))]
        vid = world.ids.new()
        duration = round(float(rng.uniform(*cfg.coin_seconds)), 3)
        spans = _step_spans(rng, task, duration, cfg.coin_step_coverage, cfg, integer=True)
        world.features("coin", vid, rng, duration, _events(spans), task.domain)
        target_id, label = task.ext_id.split(":", 1)
        database[vid] = {
            "recipe_type": int(target_id),
            "annotation": [{"id": str(s.step.action_id), "segment": [s.start, s.end],
                            "label": s.step.text} for s in spans],
            "video_url": f"https://www.youtube.com/embed/{vid}",
            "start": max(0.0, spans[0].start - float(rng.uniform(0, 3))),
            "end": min(duration, spans[-1].end + float(rng.uniform(0, 3))),
            "duration": duration,
            "class": label,
            "subset": "testing" if i < cfg.coin_test_videos else "training",
        }
    _write_json(world.out / "coin" / "COIN.json", {"database": database}, indent="\t")
    world.sizes["coin"] = {"testing_videos": cfg.coin_test_videos, "training_videos": cfg.coin_train_videos}


def _card(task: Task) -> str:
    url = "http://www.wikihow.com/" + "-".join(task.name.split())
    steps = [s.text for s in task.steps]
    return f"{task.ext_id}\n{task.name}\n{url}\n{len(steps)}\n{','.join(steps)}\n\n"


def _crosstask(world: _World) -> None:
    """crosstask/: tasks_primary.txt, tasks_related.txt, videos.csv, videos_val.csv,
    annotations/<task>_<vid>.csv, features."""
    cfg, tax, out = world.cfg, world.tax, world.out / "crosstask"
    primary = tax.crosstask_primary[: cfg.crosstask_tasks]
    rows, val_rows = [], []
    per_task = cfg.crosstask_train_per_task + cfg.crosstask_val_per_task + cfg.crosstask_test_per_task
    for t, task in enumerate(primary):
        for j in range(per_task):
            rng = world.rng(6, t, j)
            vid = world.ids.new()
            duration = round(float(rng.uniform(*cfg.crosstask_seconds)), 2)
            spans = _step_spans(rng, task, duration, cfg.crosstask_step_coverage, cfg)
            world.features("crosstask", vid, rng, duration, _events(spans), task.domain)
            lines = sorted((s.start, s.step_index + 1, s.end) for s in spans)
            _write_csv(out / "annotations" / f"{task.ext_id}_{vid}.csv",
                       [[k, _fmt(a), _fmt(b)] for a, k, b in lines])
            row = [task.ext_id, vid, f"https://www.youtube.com/watch?v={vid}"]
            rows.append(row)
            if j < cfg.crosstask_val_per_task:
                val_rows.append(row)
    related = tax.crosstask_related
    for j in range(cfg.crosstask_related_videos if related else 0):
        rng = world.rng(6, 10**6, j)
        task = related[int(rng.integers(len(related)))]
        vid = world.ids.new()
        duration = round(float(rng.uniform(*cfg.crosstask_seconds)), 2)
        spans = _step_spans(rng, task, duration, cfg.crosstask_step_coverage, cfg)
        world.features("crosstask", vid, rng, duration, _events(spans), task.domain)
        rows.append([task.ext_id, vid, f"https://www.youtube.com/watch?v={vid}"])
    order = world.rng(6, 10**7).permutation(len(rows))
    _write_csv(out / "videos.csv", [rows[i] for i in order])
    _write_csv(out / "videos_val.csv", val_rows)
    (out / "tasks_primary.txt").write_text("".join(_card(t) for t in primary))
    (out / "tasks_related.txt").write_text("".join(_card(t) for t in related))
    world.sizes["crosstask"] = {"tasks": len(primary), "videos_per_task": per_task,
                                "val_per_task": cfg.crosstask_val_per_task,
                                "related_videos": cfg.crosstask_related_videos if related else 0}


def _procedural_ext_ids(taxonomy: Taxonomy, seed: int) -> Taxonomy:
    """Benchmark-style ids for a procedural taxonomy (CrossTask ids, COIN targets, recipe types)."""
    rng = np.random.default_rng([seed, 505])
    ext: dict[int, str] = {}
    for task in taxonomy.crosstask_primary:
        ext[task.task_id] = str(int(rng.integers(10000, 120000)))
    action = 1  # COIN step ids start at 1 (0 is Outside)
    coin = []
    for k, task in enumerate(taxonomy.coin):
        steps = []
        for step in task.steps:
            steps.append(dataclasses.replace(step, action_id=action))
            action += 1
        coin.append(dataclasses.replace(task, steps=tuple(steps), ext_id=f"{k}:{_camel(task.name)}"))
    youcook = [dataclasses.replace(t, ext_id=str(101 + k)) for k, t in enumerate(taxonomy.youcook)]
    primary = [dataclasses.replace(t, ext_id=ext[t.task_id]) for t in taxonomy.crosstask_primary]
    taken = {t.task_id for t in [*taxonomy.crosstask_primary, *taxonomy.coin]}
    related = [dataclasses.replace(t, ext_id=str(int(rng.integers(120000, 200000))))
               for t in taxonomy.tasks if t.task_id not in taken][:4]
    return dataclasses.replace(taxonomy, coin=coin, youcook=youcook, crosstask_primary=primary,
                               crosstask_related=related)


def simulate(
    out_dir: str | Path,
    *,
    preset: str = "toy",
    seed: int = 0,
    real_data_dir: str | Path | None = None,
    overwrite: bool = False,
    **knob_overrides: object,
) -> Path:
    """Write a complete simulated data root to ``out_dir`` and return its path.

    Args:
        out_dir: the data root to create (must not already hold a world).
        preset: "smoke" (seconds), "toy" (the book's default), "paper" (stores at scale).
        seed: every random choice follows from it; the same seed writes the same bytes.
        real_data_dir: a directory of the real annotation files (MANIFEST.md); when given, tasks,
            steps and captions are grounded in them, else the procedural taxonomy is used.
        overwrite: write into a non-empty ``out_dir`` that holds no world (files of the same
            name are replaced); without it such a directory is refused, untouched.
        knob_overrides: any :class:`SimConfig` field (sizes or knobs).
    """
    cfg = make_config(preset, **knob_overrides)
    out = Path(out_dir)
    if (out / "world.json").exists():
        raise FileExistsError(f"{out} already holds a simulated world; remove it or pick another --out")
    check_output_dir(out, overwrite=overwrite)  # e.g. a real data root: never written over
    if real_data_dir is not None:
        taxonomy = real_taxonomy(real_data_dir, seed, num_open=max(50, cfg.num_videos // 5))
    else:
        taxonomy = _procedural_ext_ids(procedural_taxonomy(
            seed, tasks_per_domain=cfg.tasks_per_domain, num_crosstask=cfg.crosstask_tasks,
            num_coin=max(4, 3 * cfg.tasks_per_domain), num_youcook=max(2, cfg.tasks_per_domain),
            num_open=max(50, cfg.num_videos // 5), num_msrvtt=cfg.msrvtt_clips,
            num_didemo_videos=cfg.didemo_videos,
        ), seed)
    out.mkdir(parents=True, exist_ok=True)
    world = _World(out, cfg, seed, taxonomy)
    truth = _pretrain(world)
    _youcook(world)
    _msrvtt(world)
    _didemo(world)
    _coin(world)
    _crosstask(world)
    truth["concepts"] = np.array(world.space.names)
    truth["directions"] = world.space.directions.astype(np.float16)
    write_deterministic_npz(out / "world_truth.npz", truth)
    _write_json(out / "world.json", {
        "generator": "videoclip.sim.world", "version": cfg.world_version, "preset": preset,
        "seed": seed, "grounded": taxonomy.grounded, "text_sources": taxonomy.sources,
        "config": dataclasses.asdict(cfg), "sizes": world.sizes,
        "num_concepts": len(world.space.names), "num_tasks": len(taxonomy.tasks),
        "narration": world.narration_counts(),
    }, indent=2)
    return out


__all__ = ["simulate"]
