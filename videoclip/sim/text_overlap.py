"""How much benchmark text does the pre-training corpus contain? N-gram overlap and exact hits.

A zero-shot number means little when the pre-training narration already speaks the benchmark's
own sentences. This module measures that for any data root (simulated or real), reading only
the files the loaders read:

* the corpus: ``howto100m/caption.json``, de-duplicated as the trainer sees it (SPEC §4), one
  word stream per video (:func:`videoclip.text.words_of`: lower-case words);
* each benchmark's texts (:func:`benchmark_texts`): the captions, queries, answers, step names
  or labels a zero-shot evaluation scores, plus YouCook2's training annotations (the paper's
  fine-tuning data, never a pre-training text).

:func:`overlap_table` gives, per benchmark, the share of its distinct word n-grams (n = 1–4)
that occur anywhere in the corpus and its **exact hits**: distinct texts whose whole word
sequence (two words or more: a one-word text is a concept word, not a sentence) occurs
contiguously in one video's stream. Shared unigrams are expected (text and
video share concepts through words); shared whole sentences mean the narration speaks the
benchmark's text. See design §13.1.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from videoclip.data.benchmarks import (
    load_coin,
    load_didemo,
    load_msrvtt_mc,
    load_msrvtt_test,
    load_youcook2_val,
    read_task_info,
)
from videoclip.data.captions import load_captions
from videoclip.text import words_of

__all__ = ["MIN_WORDS", "ORDERS", "benchmark_texts", "corpus_streams", "exact_hits", "ngram_overlap", "overlap_table"]

#: The n-gram orders reported.
ORDERS = (1, 2, 3, 4)

#: The shortest text counted as a sentence by :func:`exact_hits`.
MIN_WORDS = 2

_YOUCOOK_JSON = Path("youcook2") / "youcookii_annotations_trainval.json"


def _youcook_training_sentences(root: Path) -> list[str]:
    database = json.loads((root / _YOUCOOK_JSON).read_text())["database"]
    return [ann["sentence"] for entry in database.values() if entry.get("subset") == "training"
            for ann in entry.get("annotations", [])]


def _crosstask_steps(root: Path) -> list[str]:
    return [step for task in read_task_info(root / "crosstask" / "tasks_primary.txt").values()
            for step in task.steps]


#: benchmark → (the file that must exist, how to read its texts).
_SOURCES = {
    "youcook2": (Path("youcook2") / "validation_youcook.csv",
                 lambda root: [p.text for p in load_youcook2_val(root)]),
    "youcook2 training annotations": (_YOUCOOK_JSON, _youcook_training_sentences),
    "msrvtt": (Path("msrvtt") / "MSRVTT_JSFUSION_test.csv",
               lambda root: [p.text for p in load_msrvtt_test(root)]),
    "msrvtt_mc": (Path("msrvtt") / "msrvtt_mc_test.jsonl",
                  lambda root: [o for q in load_msrvtt_mc(root) for o in q.options]),
    "didemo": (Path("didemo") / "test_data.json",
               lambda root: [q.description for q in load_didemo(root)]),
    "coin": (Path("coin") / "COIN.json",
             lambda root: list(load_coin(root / "coin" / "COIN.json").labels.values())),
    "crosstask": (Path("crosstask") / "tasks_primary.txt", _crosstask_steps),
}


def benchmark_texts(data_root: str | Path) -> dict[str, list[str]]:
    """``{benchmark: its distinct texts, first-seen order}`` for every benchmark file present.

    YouCook2: the MIL-NCE validation clip texts; its training annotations separately; MSR-VTT:
    the JSFusion test sentences; MSR-VTT MC: every option; DiDeMo: the test queries; COIN: the
    testing subset's label texts; CrossTask: the primary tasks' step names.
    """
    root = Path(data_root)
    return {name: list(dict.fromkeys(read(root))) for name, (path, read) in _SOURCES.items()
            if (root / path).is_file()}


def corpus_streams(data_root: str | Path, *, max_videos: int | None = None) -> list[tuple[str, ...]]:
    """One word stream per pre-training video: its de-duplicated caption lines' words, in order
    (the first ``max_videos`` videos of the file; all by default)."""
    path = Path(data_root) / "howto100m" / "caption.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: no pre-training captions to measure")
    videos = list(load_captions(path).videos.values())[:max_videos]
    return [tuple(w for line in caps.text for w in words_of(line)) for caps in videos]


def _ngrams(words: tuple[str, ...], n: int) -> Iterable[tuple[str, ...]]:
    return (words[i:i + n] for i in range(len(words) - n + 1))


def ngram_overlap(texts: list[str], streams: list[tuple[str, ...]], *,
                  orders: tuple[int, ...] = ORDERS) -> dict[int, float]:
    """``{n: percent of the texts' distinct word n-grams found in some stream}`` (NaN: none)."""
    wanted = {n: {g for t in texts for g in _ngrams(tuple(words_of(t)), n)} for n in orders}
    found: dict[int, set] = {n: set() for n in orders}
    for stream in streams:
        for n in orders:
            found[n].update(g for g in _ngrams(stream, n) if g in wanted[n])
    return {n: 100.0 * len(found[n]) / len(wanted[n]) if wanted[n] else float("nan") for n in orders}


def exact_hits(texts: list[str], streams: list[tuple[str, ...]], *, min_words: int = MIN_WORDS) -> list[str]:
    """The texts of ``min_words`` words or more whose whole word sequence occurs contiguously in
    one stream."""
    corpus = "|" + "|".join(" " + " ".join(s) + " " for s in streams) + "|"
    hits = []
    for text in texts:
        words = words_of(text)
        if len(words) >= min_words and f" {' '.join(words)} " in corpus:
            hits.append(text)
    return hits


def overlap_table(data_root: str | Path, *, orders: tuple[int, ...] = ORDERS, examples: int = 3,
                  max_videos: int | None = None) -> pd.DataFrame:
    """Per benchmark: ``texts`` (distinct), ``one_word_texts`` (never counted as hits),
    ``exact_hits``, ``exact_hit_%`` (of the texts of two words or more), ``<n>-gram %`` for each
    order and ``examples`` of hit texts; the corpus is the first ``max_videos`` videos (all by
    default)."""
    streams = corpus_streams(data_root, max_videos=max_videos)
    rows = []
    for name, texts in benchmark_texts(data_root).items():
        hits = exact_hits(texts, streams)
        overlap = ngram_overlap(texts, streams, orders=orders)
        sentences = sum(len(words_of(t)) >= MIN_WORDS for t in texts)
        rows.append({"benchmark": name, "texts": len(texts), "one_word_texts": len(texts) - sentences,
                     "exact_hits": len(hits),
                     "exact_hit_%": 100.0 * len(hits) / sentences if sentences else float("nan"),
                     **{f"{n}-gram %": overlap[n] for n in orders},
                     "examples": "; ".join(hits[:examples])})
    return pd.DataFrame(rows)
