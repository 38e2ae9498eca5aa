"""The simulated world's taxonomy: domains, tasks made of ordered steps, and open-domain sentences.

Two sources, one structure (:class:`Taxonomy`):

* :func:`procedural_taxonomy` — embedded word lists (six how-to domains plus an open-domain
  vocabulary for MSR-VTT/DiDeMo-like clips); needs no files.
* :func:`real_taxonomy` — grounded in the real annotation files of a data directory
  (``$VIDEOCLIP_DATA_DIR``, the files the data manifest lists: book/paper_profile.md): CrossTask tasks and steps,
  COIN's 180 targets and 778 steps with their domains, YouCook2 sentences, timings and recipe
  types, MSR-VTT and DiDeMo sentences, HowTo100M caption lines as filler talk.

A *visual concept* is the crude stem of a content word (:func:`concepts_of`), so a step
"slice the bread" shows the concepts ``slic`` and ``bread``. Text and vision therefore share
concepts through words: a benchmark caption shares words with the narration of the same
concepts, which is the only route by which a model can learn word ↔ visual concept here.
Scenes and the talking head are visual-only concepts whose keys are not words
(``scene:...``), so no text names them.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from videoclip.text import concepts_of, text_concepts, words_of

TALKING_HEAD = "scene:talking-head"

def _w(text: str) -> list[str]:
    """Words of an embedded word list."""
    return text.split()


@dataclass(frozen=True)
class Step:
    """One step of a task: ``text`` is its canonical name ("pour water"), ``caption`` a clean
    descriptive sentence (YouCook2 style), ``concepts`` what it shows on screen."""

    text: str
    caption: str
    concepts: tuple[str, ...]
    action_id: int = -1  # COIN action id where grounded in COIN; else assigned by the simulator


def make_step(text: str, caption: str | None = None, action_id: int = -1) -> Step:
    caption = text if caption is None else caption
    concepts = text_concepts(caption)
    if not concepts:
        raise ValueError(f"step {text!r} names no word of 2+ letters; give it a noun or verb")
    return Step(text=text, caption=caption, concepts=concepts, action_id=action_id)


@dataclass(frozen=True)
class Variant:
    """One real video's step list with its timings as fractions of its duration (YouCook2)."""

    steps: tuple[Step, ...]
    spans: tuple[tuple[float, float], ...]  # (start, end) / duration, per step
    duration: float


@dataclass(frozen=True)
class Task:
    """A task made of ordered steps. ``variants`` (YouCook2 only) are real videos' step lists;
    ``eval_variants`` are the held-out (validation) ones used for the benchmark."""

    task_id: int
    name: str
    domain: str
    steps: tuple[Step, ...]
    source: str  # "procedural", "crosstask", "crosstask-related", "coin", "youcook2", "open"
    ext_id: str = ""  # the id in its benchmark (CrossTask task id, COIN target id, YouCook2 type)
    variants: tuple[Variant, ...] = ()
    eval_variants: tuple[Variant, ...] = ()


@dataclass
class Taxonomy:
    """Everything the simulator draws text and concepts from."""

    grounded: bool
    sources: dict[str, str]  # what each part was built from (file names or "procedural")
    domain_of_category: dict[str, str]  # domain → HowTo100M category_1
    tasks: list[Task]  # the pre-training task pool (benchmark tasks included, videos disjoint)
    youcook: list[Task]
    coin: list[Task]
    crosstask_primary: list[Task]
    crosstask_related: list[Task]
    open_sentences: list[str]  # open-domain events for pre-training "vlog" videos
    msrvtt: list[tuple[str, str, str]]  # (video_id, caption, a second caption of the same clip)
    msrvtt_distractors: list[str]  # MC wrong answers
    didemo: list[tuple[str, int, list[tuple[str, list[list[int]]]]]]  # (video, num_segments, queries)
    filler: list[str]

    def concept_names(self) -> list[str]:
        """Every concept any text or step can name, sorted (the rows of the projection)."""
        names: set[str] = set()
        for task in [*self.tasks, *self.youcook, *self.coin, *self.crosstask_primary]:
            for step in task.steps:
                names.update(step.concepts)
            for variant in (*task.variants, *task.eval_variants):
                for step in variant.steps:
                    names.update(step.concepts)
        for text in [*self.open_sentences, *self.msrvtt_distractors, *self.filler]:
            names.update(text_concepts(text))
        for _, caption, second in self.msrvtt:
            names.update(text_concepts(caption))
            names.update(text_concepts(second))
        for _, _, queries in self.didemo:
            for description, _ in queries:
                names.update(text_concepts(description))
        return sorted(names)

    def annotation_texts(self) -> set[str]:
        """Every annotation text a benchmark of this taxonomy can show — step names, captions
        (YouCook2's training and validation sentences included), MSR-VTT and DiDeMo sentences —
        and the open-domain sentences: the texts world v2 never speaks (design §13.1)."""
        texts: set[str] = {*self.open_sentences, *self.msrvtt_distractors}
        for task in [*self.tasks, *self.youcook, *self.coin, *self.crosstask_primary]:
            texts.update(t for step in task.steps for t in (step.text, step.caption))
            texts.update(step.caption for variant in (*task.variants, *task.eval_variants)
                         for step in variant.steps)
        texts.update(t for _, caption, second in self.msrvtt for t in (caption, second))
        texts.update(description for _, _, queries in self.didemo for description, _ in queries)
        return texts


# --------------------------------------------------------------------------- procedural

_DOMAINS: dict[str, dict[str, list[str]]] = {
    "cooking": {
        "actions": _w("add pour cut chop stir mix whisk bake fry boil peel slice spread season grate"
        " knead roll"),
        "objects": _w("flour sugar butter egg milk onion garlic tomato potato carrot cheese bread dough"
        " rice chicken pepper salt oil sauce lemon bowl pan pot oven knife"),
        "dishes": _w("soup salad pie stew pasta cake pancakes curry"),
        "category": "Food and Entertaining",
    },
    "home repair": {
        "actions": _w("measure mark drill screw sand paint cut attach remove install tighten level glue"
        " hammer"),
        "objects": _w("wall shelf board nail bracket pipe tile door hinge wire brush tape plank faucet"
        " cabinet drawer"),
        "dishes": _w("shelf cabinet door faucet floor fence"),
        "category": "Home and Garden",
    },
    "car": {
        "actions": _w("loosen remove jack lift replace tighten check drain fill clean inspect unscrew"
        " install"),
        "objects": _w("tire wheel nut bolt oil filter battery hood engine brake wrench cable wiper"
        " headlight radiator"),
        "dishes": _w("tire battery brakes oil wipers headlight"),
        "category": "Cars & Other Vehicles",
    },
    "crafts": {
        "actions": _w("fold cut glue draw paint sew thread wrap tie knit stick trim"),
        "objects": _w("paper scissors ribbon fabric needle yarn bead card marker glitter string box"
        " button felt"),
        "dishes": _w("card bracelet scarf lantern wreath puppet"),
        "category": "Hobbies and Crafts",
    },
    "beauty": {
        "actions": _w("apply wash rinse brush comb dry blend curl trim rub massage wipe"),
        "objects": _w("hair face shampoo cream lotion foundation lipstick mascara towel nail polish"
        " eyeliner sponge"),
        "dishes": _w("braid manicure makeup curls facial bun"),
        "category": "Personal Care and Style",
    },
    "garden": {
        "actions": _w("dig plant water prune rake trim fertilize mow weed harvest fill cover"),
        "objects": _w("soil seed pot hose shovel rake leaf branch grass flower compost root mulch"
        " tomato"),
        "dishes": _w("roses tomatoes herbs lawn hedge seedlings"),
        "category": "Home and Garden",
    },
}
_OPEN = {
    "subjects": _w("man woman girl boy child dog cat crowd player chef singer band"),
    "verbs": _w("dance sing run talk play drive jump swim walk cook ride throw laugh climb"),
    "objects": _w("ball guitar bike horse camera microphone car kite"),
    "places": _w("stage street beach field pool room kitchen snow park"),
}
_FILLER = [
    "hey guys welcome back to my channel",
    "so today i wanted to show you something",
    "make sure you like and subscribe",
    "this is one of my favorite things to do",
    "it is really easy you will see",
    "i got all of this at the store",
    "you can find the link down below",
    "let me know in the comments what you think",
    "so yeah that is pretty much it",
    "i have been doing this for years",
    "thank you so much for watching",
    "and that is why i love this",
    "okay so let me just move this out of the way",
    "as you can see it is not that hard",
    "my mom used to do it this way",
    "hope you guys enjoyed this video",
]


def _ing(verb: str) -> str:
    if verb.endswith("e") and not verb.endswith("ee"):
        return verb[:-1] + "ing"
    if len(verb) <= 4 and re.fullmatch(r"[^aeiou]*[aeiou][^aeiouwxy]", verb):
        return verb + verb[-1] + "ing"
    return verb + "ing"


def _open_sentence(rng: np.random.Generator) -> str:
    subj = rng.choice(_OPEN["subjects"])
    words = ["a", str(subj), "is", _ing(str(rng.choice(_OPEN["verbs"])))]
    if rng.random() < 0.5:
        words += ["with", "a", str(rng.choice(_OPEN["objects"]))]
    if rng.random() < 0.7:
        words += ["in" if rng.random() < 0.5 else "on", "the", str(rng.choice(_OPEN["places"]))]
    return " ".join(words)


def _procedural_task(rng: np.random.Generator, domain: str, task_id: int, source: str) -> Task:
    spec = _DOMAINS[domain]
    theme = [str(x) for x in rng.choice(spec["objects"], size=2, replace=False)]
    dish = str(rng.choice(spec["dishes"]))
    name = f"Make {theme[0].title()} {dish.title()}" if domain == "cooking" else (
        f"{dish.title()} with {theme[0].title()}"
    )
    num_steps = int(rng.integers(4, 9))
    steps: list[Step] = []
    while len(steps) < num_steps:
        action = str(rng.choice(spec["actions"]))
        obj = theme[int(rng.integers(2))] if rng.random() < 0.5 else str(rng.choice(spec["objects"]))
        if rng.random() < 0.3:
            obj2 = str(rng.choice([o for o in spec["objects"] if o != obj]))
            prep = str(rng.choice(["with", "into", "on"]))
            text, caption = f"{action} {obj} {prep} {obj2}", f"{action} the {obj} {prep} the {obj2}"
        else:
            text, caption = f"{action} {obj}", f"{action} the {obj}"
        if all(s.text != text for s in steps):  # a task's step names are distinct (CrossTask)
            steps.append(make_step(text, caption))
    return Task(task_id, name, domain, tuple(steps), source)


def procedural_taxonomy(
    seed: int, *, tasks_per_domain: int, num_crosstask: int, num_coin: int,
    num_youcook: int, num_open: int, num_msrvtt: int, num_didemo_videos: int,
) -> Taxonomy:
    """A taxonomy from the embedded word lists (no files).

    Benchmark tasks are drawn from the same pool as pre-training tasks (as CrossTask and COIN
    tasks are HowTo100M tasks); only their *videos* are disjoint.
    """
    rng = np.random.default_rng([seed, 101])
    tasks: list[Task] = []
    for domain in _DOMAINS:
        for _ in range(tasks_per_domain):
            tasks.append(_procedural_task(rng, domain, len(tasks), "procedural"))
    cooking = [t for t in tasks if t.domain == "cooking"]
    order = rng.permutation(len(tasks))
    crosstask = [tasks[i] for i in order[:num_crosstask]]
    coin = [tasks[i] for i in order[num_crosstask : num_crosstask + num_coin]]
    if len(coin) < num_coin or len(crosstask) < num_crosstask:
        raise ValueError(f"tasks_per_domain={tasks_per_domain} is too few for the benchmarks")
    youcook = [cooking[i] for i in rng.permutation(len(cooking))[:num_youcook]]
    open_sentences = [_open_sentence(rng) for _ in range(num_open)]
    msrvtt = []
    for i in range(num_msrvtt):
        msrvtt.append((f"video{9770 + i}", _open_sentence(rng), _open_sentence(rng)))
    distractors = [_open_sentence(rng) for _ in range(max(8, 4 * num_msrvtt))]
    didemo = []
    for i in range(num_didemo_videos):
        name = f"{rng.integers(10**7, 10**8)}@N0{rng.integers(10)}_{rng.integers(10**9, 10**10)}_"
        name += f"{rng.integers(16**9, 16**10):010x}.mp4"
        num_segments = 6 if rng.random() < 0.88 else 5  # 3,548 of 4,021 real test queries have 6
        queries = [(_open_sentence(rng) + ".", []) for _ in range(int(rng.integers(2, 5)))]
        didemo.append((name, num_segments, queries))
    return Taxonomy(
        grounded=False,
        sources={"all": "procedural (videoclip/sim/taxonomy.py word lists)"},
        domain_of_category={d: str(s["category"]) for d, s in _DOMAINS.items()} | {"open": "Other"},
        tasks=tasks, youcook=youcook, coin=coin, crosstask_primary=crosstask, crosstask_related=[],
        open_sentences=open_sentences, msrvtt=msrvtt, msrvtt_distractors=distractors,
        didemo=didemo, filler=list(_FILLER),
    )


# --------------------------------------------------------------------------- real files

def _need(path: Path) -> Path:
    if not path.is_file():
        raise FileNotFoundError(
            f"{path.name} is missing from real_data_dir: it must hold the real annotation files "
            "(the data manifest, book/paper_profile.md) "
            "(or pass real_data_dir=None for the procedural taxonomy)"
        )
    return path


def read_crosstask_tasks(path: Path) -> list[tuple[str, str, str, list[str]]]:
    """Task cards of ``tasks_primary.txt``/``tasks_related.txt``: (id, name, url, steps)."""
    cards = []
    lines = _need(path).read_text().split("\n")
    i = 0
    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        if i + 4 >= len(lines) + 1:
            raise ValueError(f"{path}: truncated task card at line {i + 1}")
        task_id, name, url, count, steps = (x.strip() for x in lines[i : i + 5])
        step_list = steps.split(",")
        if int(count) != len(step_list):
            raise ValueError(f"{path}: line {i + 4} says {count} steps, line {i + 5} lists {len(step_list)}")
        cards.append((task_id, name, url, step_list))
        i += 5
    return cards


_CAR = {"tire", "jack", "car", "oil", "wheel", "engine"}
_FURNITURE = {"shelf", "shelve", "shelves", "table", "wood", "plank"}


def _crosstask_domain(name: str, steps: list[str]) -> str:
    words = set(words_of(name + " " + " ".join(steps)))
    if words & _CAR:
        return "Vehicle"
    if words & _FURNITURE:
        return "Furniture and Decoration"
    return "Dish"


def _camel_words(label: str) -> str:
    return " ".join(re.findall(r"[A-Z][a-z]*|[a-z]+|\d+", label))


def real_taxonomy(real_dir: str | Path, seed: int, *, num_open: int) -> Taxonomy:
    """A taxonomy grounded in the real annotation files of ``real_dir`` (read-only)."""
    root = Path(real_dir)
    rng = np.random.default_rng([seed, 202])
    tasks: list[Task] = []

    def add(task: Task) -> Task:
        tasks.append(task)
        return task

    # CrossTask: primary and related task cards.
    primary, related = [], []
    for fname, out, source in (("tasks_primary.txt", primary, "crosstask"),
                               ("tasks_related.txt", related, "crosstask-related")):
        for task_id, name, _url, steps in read_crosstask_tasks(root / "crosstask" / fname):
            domain = _crosstask_domain(name, steps)
            made = tuple(make_step(s) for s in steps)
            out.append(add(Task(len(tasks), name, domain, made, source, ext_id=task_id)))

    # COIN: targets, their ordered steps (action ids) and domains.
    domain_of_target = {}
    with _need(root / "coin" / "coin_taxonomy_domain_target_mapping.csv").open() as fh:
        for row in csv.DictReader(fh):
            domain_of_target[row["Targets"]] = row["Domains"]
    steps_of: dict[tuple[int, str], list[Step]] = {}
    with _need(root / "coin" / "coin_taxonomy_target_action_mapping.csv").open() as fh:
        for row in csv.DictReader(fh):
            key = (int(row["Target Id"]), row["Target Label"])
            steps_of.setdefault(key, []).append(make_step(row["Action Label"], None, int(row["Action Id"])))
    coin = []
    for (target_id, label), steps in sorted(steps_of.items()):
        domain = domain_of_target.get(label)
        if domain is None:
            raise ValueError(f"coin_taxonomy_domain_target_mapping.csv: no domain for target {label}")
        coin.append(add(Task(len(tasks), _camel_words(label), domain, tuple(steps), "coin",
                             ext_id=f"{target_id}:{label}")))

    # YouCook2: recipe types, each with its real videos' step lists and timings.
    names = {}
    with _need(root / "youcook2" / "label_foodtype.csv").open() as fh:
        for row in csv.reader(fh):
            names[row[0]] = row[1]
    database = json.loads(_need(root / "youcook2" / "youcookii_annotations_trainval.json").read_text())
    by_type: dict[str, dict[str, list[Variant]]] = {}
    for vid in sorted(database["database"]):
        entry = database["database"][vid]
        duration = float(entry["duration"])
        steps, spans = [], []
        for ann in entry["annotations"]:
            if not concepts_of(ann["sentence"]):
                continue
            steps.append(make_step(ann["sentence"]))
            start, end = ann["segment"]
            spans.append((start / duration, min(1.0, end / duration)))
        variant = Variant(tuple(steps), tuple(spans), duration)
        by_type.setdefault(entry["recipe_type"], {}).setdefault(entry["subset"], []).append(variant)
    youcook = []
    for recipe_type in sorted(by_type):
        subsets = by_type[recipe_type]
        train, val = subsets.get("training", []), subsets.get("validation", [])
        if not train:
            continue
        canonical = max(train, key=lambda v: len(v.steps)).steps
        youcook.append(add(Task(len(tasks), f"Make {names.get(recipe_type, recipe_type)}", "Dish",
                                canonical, "youcook2", ext_id=recipe_type,
                                variants=tuple(train), eval_variants=tuple(val))))

    # MSR-VTT: JSFusion test sentences; the MC file gives a second caption of the same clip.
    with _need(root / "msrvtt" / "MSRVTT_JSFUSION_test.csv").open() as fh:
        jsfusion = [(r["video_id"], r["sentence"]) for r in csv.DictReader(fh)]
    mc_answer, options_pool = {}, []
    with _need(root / "msrvtt" / "msrvtt_mc_test.jsonl").open() as fh:
        for line in fh:
            item = json.loads(line)
            answer = int(item["answer"])
            mc_answer.setdefault(item["clip_name"], item["options"][answer])
            options_pool += [o for k, o in enumerate(item["options"]) if k != answer]
    msrvtt = [(vid, sentence, mc_answer.get(vid, sentence)) for vid, sentence in jsfusion]
    distractors = sorted(set(options_pool))
    used = {s for _, a, b in msrvtt for s in (a, b)}
    distractors = [d for d in distractors if d not in used and concepts_of(d)]

    # DiDeMo: test queries grouped by video, with their four annotators' 5-s chunk times.
    didemo_rows = json.loads(_need(root / "didemo" / "test_data.json").read_text())
    grouped: dict[str, tuple[int, list[tuple[str, list[list[int]]]]]] = {}
    for row in didemo_rows:
        if not concepts_of(row["description"]):
            continue
        entry = grouped.setdefault(row["video"], (int(row["num_segments"]), []))
        entry[1].append((row["description"], [list(t) for t in row["times"]]))
    didemo = [(video, n, q) for video, (n, q) in grouped.items()]
    val_rows = json.loads(_need(root / "didemo" / "val_data.json").read_text())
    open_pool = sorted({r["description"] for r in val_rows if concepts_of(r["description"])})
    open_pool += distractors[: len(distractors) // 2]
    open_sentences = [open_pool[i] for i in rng.choice(len(open_pool), size=num_open)]
    distractors = distractors[len(distractors) // 2 :]

    # HowTo100M: real (stop-word-filtered) caption lines as filler talk.
    filler = []
    caption_dir = root / "howto100m" / "mil_nce_small_train_captions"
    if not caption_dir.is_dir():
        raise FileNotFoundError(f"{caption_dir} is missing (see MANIFEST.md, HowTo100M section)")
    for path in sorted(caption_dir.glob("*.csv")):
        with path.open() as fh:
            filler += [r["text"] for r in csv.DictReader(fh) if len(words_of(r["text"])) >= 3]
    categories = {d: d for d in {t.domain for t in tasks}} | {"open": "Other"}
    return Taxonomy(
        grounded=True,
        sources={
            "crosstask": "crosstask/tasks_primary.txt, tasks_related.txt",
            "coin": "coin/coin_taxonomy_target_action_mapping.csv, coin_taxonomy_domain_target_mapping.csv",
            "youcook2": "youcook2/youcookii_annotations_trainval.json, label_foodtype.csv",
            "msrvtt": "msrvtt/MSRVTT_JSFUSION_test.csv, msrvtt_mc_test.jsonl",
            "didemo": "didemo/test_data.json, val_data.json",
            "filler": "howto100m/mil_nce_small_train_captions/*.csv",
        },
        domain_of_category=categories, tasks=tasks, youcook=youcook, coin=coin,
        crosstask_primary=primary, crosstask_related=related, open_sentences=open_sentences,
        msrvtt=msrvtt, msrvtt_distractors=distractors, didemo=didemo, filler=filler,
    )
