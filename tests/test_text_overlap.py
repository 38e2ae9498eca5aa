"""Text overlap between the pre-training captions and the benchmarks (videoclip.sim.text_overlap)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from videoclip.sim.text_overlap import (
    benchmark_texts,
    corpus_streams,
    exact_hits,
    ngram_overlap,
    overlap_table,
)


def _root(tmp_path: Path) -> Path:
    """A data root with captions of two videos and a CrossTask task card (no other benchmark)."""
    (tmp_path / "howto100m").mkdir()
    captions = {
        "vidA": {"start": [0.0, 2.0], "end": [2.0, 4.0], "text": ["so now pour the", "water into a cup"]},
        "vidB": {"start": [0.0], "end": [1.0], "text": ["stir it well"]},
    }
    (tmp_path / "howto100m" / "caption.json").write_text(json.dumps(captions))
    (tmp_path / "crosstask").mkdir()
    card = "23521\nMake Jello Shots\nhttp://x\n3\npour water,stir mixture,pour\n\n"
    (tmp_path / "crosstask" / "tasks_primary.txt").write_text(card)
    return tmp_path


def test_exact_hits_need_contiguous_words_within_one_video():
    streams = [("so", "now", "pour", "the", "water"), ("mixture", "stir")]
    texts = ["pour the water", "Pour the WATER!", "pour water", "water mixture", "stir", "stir mixture"]
    assert exact_hits(texts, streams) == ["pour the water", "Pour the WATER!"]
    assert exact_hits(["stir"], streams, min_words=1) == ["stir"]


def test_ngram_overlap_matches_a_naive_count():
    streams = [("a", "b", "c", "d"), ("b", "x")]
    texts = ["a b x", "b c d e"]
    got = ngram_overlap(texts, streams, orders=(1, 2, 3))
    # unigrams {a,b,x,c,d,e}: 5 found; bigrams {ab,bx,bc,cd,de}: ab,bx,bc,cd found; trigrams {abx,bcd,cde}: bcd
    assert got == pytest.approx({1: 500 / 6, 2: 80.0, 3: 100 / 3})
    assert math.isnan(ngram_overlap([], streams, orders=(1,))[1])


def test_table_on_a_hand_made_root(tmp_path):
    root = _root(tmp_path)
    assert benchmark_texts(root) == {"crosstask": ["pour water", "stir mixture", "pour"]}
    assert corpus_streams(root)[1] == ("stir", "it", "well")
    assert corpus_streams(root, max_videos=1) == [("so", "now", "pour", "the", "water", "into", "a", "cup")]
    table = overlap_table(root).set_index("benchmark")
    row = table.loc["crosstask"]
    assert (row.texts, row.one_word_texts, row.exact_hits) == (3, 1, 0)  # "pour the water" ≠ "pour water"
    assert row["1-gram %"] == pytest.approx(100 * 3 / 4)  # pour, water, stir found; mixture not
    assert row["2-gram %"] == 0.0


def test_a_missing_caption_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="caption.json"):
        corpus_streams(tmp_path)
