"""HowTo100M captions: loading, rolling-caption de-duplication, the pre-tokenisation cache.

design §4: captions are ``{video_id: {"start": [...], "end": [...], "text": [...]}}`` (raw ASR,
``caption.json``) or one ``start,end,text`` CSV per video (MIL-NCE's layout). Rolling-caption
overlap is removed first (:func:`dedup_captions`, the rule of MMPT's ``CaptionDedupProcessor``);
each caption is then cut to 96 characters, tokenised without special tokens and cut to 32
tokens (:class:`TokenCache`, saved as a pickle-free ``.npz`` per tokenizer next to the captions).

Dropped items are never silent: captions with empty text and videos left without any caption
are counted in ``CaptionSet.report``; malformed rows raise :class:`CaptionError` naming the
file and the row. :func:`reconcile` counts caption ids without features and the reverse.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from videoclip._io import atomic_write

__all__ = [
    "CaptionError",
    "CaptionSet",
    "TokenCache",
    "VideoCaptions",
    "build_token_cache",
    "dedup_captions",
    "load_captions",
    "reconcile",
    "tokenizer_fingerprint",
]

MAX_CAPTION_CHARS = 96  # MMPT PKLJSONStrTextProcessor(max_clip_text_len=96)
MAX_CAPTION_TOKENS = 32  # MMPT pretokenization.numpify(max_cap_len=32)
CACHE_FORMAT = "videoclip-token-cache"
CACHE_VERSION = 1


class CaptionError(ValueError):
    """A caption file that cannot be used; the message names the file, the row and the fix."""


@dataclass
class VideoCaptions:
    """One video's captions, in file order. ``start``/``end`` are seconds, ``(C,)`` float64."""

    start: np.ndarray
    end: np.ndarray
    text: list[str]

    def __len__(self) -> int:
        return len(self.text)


@dataclass
class CaptionSet:
    """All videos' captions plus the counts of what loading dropped or merged.

    ``report`` keys: ``num_videos``, ``num_captions`` (kept), ``skipped_empty_text`` (captions
    whose text is missing or blank), ``skipped_videos_without_text`` (videos left with no
    caption; not in ``videos``), and with de-duplication ``dedup_merged`` (a caption contained
    in its neighbour, merged) and ``dedup_trimmed`` (a partial overlap cut from one side).
    """

    source: Path
    videos: dict[str, VideoCaptions]
    report: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.videos)

    def __contains__(self, vid: object) -> bool:
        return vid in self.videos

    def ids(self) -> list[str]:
        return list(self.videos)


def _clean_text(text: object) -> str:
    """MMPT's normalisation: non-strings count as empty; newlines become spaces; strip."""
    if not isinstance(text, str):
        return ""
    return text.replace("\n", " ").strip()


def _float(value: object, where: str, column: str) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise CaptionError(f"{where}: {column}={value!r} is not a number; fix or delete the row") from None
    if not np.isfinite(number):
        raise CaptionError(f"{where}: {column}={value!r} is not finite; fix or delete the row")
    return number


def _video_from_rows(rows: Iterable[tuple[object, object, object, str]],
                     counts: dict[str, int]) -> VideoCaptions:
    """Build one video's captions from ``(start, end, text, where)`` rows, skipping empty text."""
    starts, ends, texts = [], [], []
    for start, end, text, where in rows:
        s, e = _float(start, where, "start"), _float(end, where, "end")
        if e + 1e-3 < s:
            raise CaptionError(f"{where}: end {e} before start {s}; fix or delete the row")
        cleaned = _clean_text(text)
        if not cleaned:
            counts["skipped_empty_text"] += 1
            continue
        starts.append(s)
        ends.append(e)
        texts.append(cleaned)
    return VideoCaptions(np.asarray(starts, dtype=np.float64), np.asarray(ends, dtype=np.float64), texts)


def _read_json(path: Path, counts: dict[str, int]) -> Iterable[tuple[str, VideoCaptions]]:
    def unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
        keys = [key for key, _ in pairs]
        if len(set(keys)) < len(keys):  # json keeps the last silently: one video's captions lost
            repeated = sorted({key for key in keys if keys.count(key) > 1})
            raise CaptionError(f"{path}: key {repeated[0]!r} appears twice in one JSON object (a video "
                               "listed twice); merge or remove the duplicate (design §14)")
        return dict(pairs)

    try:
        data = json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=unique_keys)
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CaptionError(f"{path}: cannot parse caption JSON ({exc}); "
                           'expected {vid: {"start": [...], "end": [...], "text": [...]}}') from exc
    if not isinstance(data, dict):
        raise CaptionError(f"{path}: top level is {type(data).__name__}, expected an object keyed by video id")
    for vid, entry in data.items():
        if not isinstance(entry, dict) or not all(k in entry for k in ("start", "end", "text")):
            raise CaptionError(f'{path}: video {vid!r} lacks "start"/"end"/"text" lists; fix the entry')
        lengths = {len(entry["start"]), len(entry["end"]), len(entry["text"])}
        if len(lengths) != 1:
            raise CaptionError(f"{path}: video {vid!r} has start/end/text lists of different lengths "
                               f"({len(entry['start'])}/{len(entry['end'])}/{len(entry['text'])}); fix the entry")
        rows = ((s, e, t, f"{path}: video {vid!r} caption {i}")
                for i, (s, e, t) in enumerate(zip(entry["start"], entry["end"], entry["text"])))
        yield vid, _video_from_rows(rows, counts)


def _read_csv(path: Path, counts: dict[str, int]) -> VideoCaptions:
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if reader.fieldnames is None or not {"start", "end", "text"} <= set(reader.fieldnames):
                raise CaptionError(f"{path}: header {reader.fieldnames}, expected start,end,text")
            # line 1 is the header, so data row i sits on line i + 2
            rows = [(r["start"], r["end"], r["text"], f"{path}:{i + 2}") for i, r in enumerate(reader)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise CaptionError(f"{path}: cannot read caption CSV ({exc}); fix or delete the file") from exc
    return _video_from_rows(rows, counts)


def load_captions(path: str | Path, *, dedup: bool = True, seed: int = 0,
                  whole_words: bool = False) -> CaptionSet:
    """Load HowTo100M captions from ``caption.json`` or a directory of ``<vid>.csv``.

    Args:
        path: a JSON file ``{vid: {start, end, text}}`` or a directory of CSVs ``start,end,text``.
        dedup: remove rolling-caption overlap (design §4) with :func:`dedup_captions`.
        seed: seeds the de-duplication's coin flips (which side keeps a partial overlap).
        whole_words: passed to :func:`dedup_captions`.

    Returns:
        A :class:`CaptionSet`; videos left without captions are counted, not kept.
    """
    path = Path(path)
    counts = {"skipped_empty_text": 0, "skipped_videos_without_text": 0,
              "dedup_merged": 0, "dedup_trimmed": 0}
    if path.is_dir():
        files = sorted(path.glob("*.csv"))
        if not files:
            raise CaptionError(f"{path}: no <vid>.csv caption files; point at caption.json or a CSV folder")
        items: Iterable[tuple[str, VideoCaptions]] = ((f.stem, _read_csv(f, counts)) for f in files)
    elif path.is_file():
        items = _read_json(path, counts)
    else:
        raise CaptionError(f"{path}: not found; pass caption.json or a folder of <vid>.csv")
    rng = np.random.default_rng(seed)
    videos: dict[str, VideoCaptions] = {}
    for vid, caps in items:
        if dedup:
            caps = dedup_captions(caps, rng, counts=counts, whole_words=whole_words)
        if len(caps) == 0:
            counts["skipped_videos_without_text"] += 1
            continue
        videos[vid] = caps
    if not dedup:
        for key in ("dedup_merged", "dedup_trimmed"):
            del counts[key]
    report = {"num_videos": len(videos), "num_captions": sum(len(c) for c in videos.values()), **counts}
    return CaptionSet(path, videos, report)


def _overlap_len(prev: str, text: str, whole_words: bool) -> int:
    """Length of the shortest prefix of ``text`` that ``prev`` ends with (0 when none).

    MMPT matches characters (a one-letter overlap counts); ``whole_words`` requires the
    prefix to end at a word boundary of ``text`` and start at one in ``prev``.
    """
    for end_idx in range(1, len(text) + 1):
        if not prev.endswith(text[:end_idx]):
            continue
        if whole_words:
            at_text_word_end = end_idx == len(text) or text[end_idx] == " "
            at_prev_word_start = len(prev) == end_idx or prev[-end_idx - 1] == " "
            if not (at_text_word_end and at_prev_word_start):
                continue
        return end_idx
    return 0


def dedup_captions(caps: VideoCaptions, rng: np.random.Generator, *,
                   counts: dict[str, int] | None = None, whole_words: bool = False) -> VideoCaptions:
    """Remove rolling-caption overlap (design §4), the rule of MMPT's ``CaptionDedupProcessor``.

    Walking the captions in order, against the last kept caption ``prev``:

    * ``prev`` ends with the caption → merged into ``prev`` (its end time extended);
    * the caption starts with ``prev`` → it replaces ``prev`` (times united);
    * else the shortest prefix of the caption that ``prev`` ends with is the overlap; a fair
      coin gives it either to ``prev`` (the caption keeps only its rest, starting no earlier
      than ``prev`` ends) or to the caption (``prev`` loses it and ends no later than the
      caption starts);
    * no overlap → kept as is.

    Args:
        caps: one video's captions (texts already stripped and non-empty).
        rng: the coin flips; a seeded generator makes the result reproducible.
        counts: incremented in place (``dedup_merged``, ``dedup_trimmed``).
        whole_words: only accept overlaps made of whole words (MMPT accepts any characters,
            so a shared letter such as "…sauce" / "easy…" is cut; off by default to match it).
    """
    counts = counts if counts is not None else {}
    for key in ("dedup_merged", "dedup_trimmed"):
        counts.setdefault(key, 0)
    starts: list[float] = []
    ends: list[float] = []
    texts: list[str] = []
    for start, end, text in zip(caps.start.tolist(), caps.end.tolist(), caps.text):
        text = _clean_text(text)
        if not text:
            continue
        if not texts:
            starts.append(start)
            ends.append(end)
            texts.append(text)
            continue
        prev = texts[-1]
        if prev.endswith(text):
            ends[-1] = max(ends[-1], end)
            counts["dedup_merged"] += 1
        elif text.startswith(prev):
            texts[-1] = text
            starts[-1] = min(starts[-1], start)
            ends[-1] = max(ends[-1], end)
            counts["dedup_merged"] += 1
        elif (end_idx := _overlap_len(prev, text, whole_words)) > 0:
            counts["dedup_trimmed"] += 1
            if rng.random() > 0.5:  # the overlap stays at the end of prev
                ends[-1] = max(ends[-1], start)
                rest = text[end_idx:].strip()
                if rest:
                    starts.append(max(ends[-1], start))
                    ends.append(max(end, starts[-1]))
                    texts.append(rest)
            else:  # the overlap moves to the start of the current caption
                # prev cannot be all overlap: it would be a prefix of text, merged above
                ends[-1] = min(ends[-1], start)
                texts[-1] = prev[:-end_idx].strip()
                starts.append(start)
                ends.append(end)
                texts.append(text)
        else:
            starts.append(start)
            ends.append(end)
            texts.append(text)
    return VideoCaptions(np.asarray(starts, dtype=np.float64), np.asarray(ends, dtype=np.float64), texts)


class Tokenizer(Protocol):
    """The part of a Hugging Face tokenizer the cache uses."""

    name_or_path: str
    cls_token_id: int
    sep_token_id: int
    pad_token_id: int

    def __call__(self, text: list[str], *, add_special_tokens: bool) -> Mapping[str, Any]: ...
    def get_vocab(self) -> dict[str, int]: ...


def tokenizer_fingerprint(tokenizer: Tokenizer) -> str:
    """16 hex digits identifying a tokenizer: its class, vocabulary and normalisation flags."""
    flags = {k: getattr(tokenizer, "init_kwargs", {}).get(k)
             for k in ("do_lower_case", "strip_accents", "tokenize_chinese_chars")}
    payload = json.dumps([type(tokenizer).__name__, sorted(tokenizer.get_vocab().items()), flags],
                         default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _tokenizer_name(tokenizer: Tokenizer) -> str:
    name = Path(str(tokenizer.name_or_path).rstrip("/")).name or "tokenizer"
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


@dataclass
class TokenCache:
    """Pre-tokenised captions of many videos in flat arrays (design §4 truncations applied).

    Captions of one video are contiguous, so the joined tokens of captions ``[c0, c1)`` are
    the single slice ``tokens[token_offsets[c0]:token_offsets[c1]]``.

    Attributes:
        video_ids: ``V`` ids; ``video_offsets`` ``(V + 1,)`` int64 caption ranges per video.
        starts, ends: ``(C,)`` float64 caption times in seconds.
        token_offsets: ``(C + 1,)`` int64; ``tokens`` ``(T,)`` int32 token ids (no specials).
        meta: tokenizer name and fingerprint, special-token ids, truncations, source, report.
    """

    video_ids: list[str]
    video_offsets: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    token_offsets: np.ndarray
    tokens: np.ndarray
    meta: dict[str, Any]
    _index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._index = {vid: i for i, vid in enumerate(self.video_ids)}

    @property
    def cls_token_id(self) -> int:
        return int(self.meta["cls_token_id"])

    @property
    def sep_token_id(self) -> int:
        return int(self.meta["sep_token_id"])

    @property
    def pad_token_id(self) -> int:
        return int(self.meta["pad_token_id"])

    @property
    def report(self) -> dict[str, int]:
        return self.meta["report"]

    def __len__(self) -> int:
        return len(self.video_ids)

    def __contains__(self, vid: object) -> bool:
        return vid in self._index

    def ids(self) -> list[str]:
        return list(self.video_ids)

    def index(self, vid: str) -> int:
        """Row of ``vid`` in ``video_ids``."""
        try:
            return self._index[vid]
        except KeyError:
            raise KeyError(f"video {vid!r} has no captions in the token cache") from None

    def caption_range(self, vid: str) -> tuple[int, int]:
        """Global caption indices ``[c0, c1)`` of one video."""
        i = self.index(vid)
        return int(self.video_offsets[i]), int(self.video_offsets[i + 1])

    def caption_tokens(self, vid: str) -> list[np.ndarray]:
        """Token ids of each caption of one video."""
        c0, c1 = self.caption_range(vid)
        return [self.tokens[self.token_offsets[c]:self.token_offsets[c + 1]] for c in range(c0, c1)]

    @classmethod
    def from_captions(cls, captions: CaptionSet, tokenizer: Tokenizer, *,
                      max_chars: int = MAX_CAPTION_CHARS, max_tokens: int = MAX_CAPTION_TOKENS,
                      chunk_size: int = 8192) -> TokenCache:
        """Tokenise every caption: text cut to ``max_chars``, no special tokens, ``max_tokens`` kept."""
        video_ids = list(captions.videos)
        texts = [t[:max_chars] for vid in video_ids for t in captions.videos[vid].text]
        lengths = np.empty(len(texts), dtype=np.int64)
        pieces: list[np.ndarray] = []
        for first in range(0, len(texts), chunk_size):
            encoded = tokenizer(texts[first:first + chunk_size], add_special_tokens=False)["input_ids"]
            kept = [ids[:max_tokens] for ids in encoded]
            chunk_lengths = np.fromiter(map(len, kept), dtype=np.int64, count=len(kept))
            lengths[first:first + len(kept)] = chunk_lengths
            # one array per chunk, not per caption (HowTo100M has ~90M captions)
            pieces.append(np.fromiter(itertools.chain.from_iterable(kept), dtype=np.int32,
                                      count=int(chunk_lengths.sum())))
        per_video = np.array([len(captions.videos[v]) for v in video_ids], dtype=np.int64)
        report = dict(captions.report)
        report["captions_without_tokens"] = int((lengths == 0).sum())
        meta = {
            "format": CACHE_FORMAT, "version": CACHE_VERSION,
            "tokenizer": _tokenizer_name(tokenizer), "fingerprint": tokenizer_fingerprint(tokenizer),
            "cls_token_id": int(tokenizer.cls_token_id), "sep_token_id": int(tokenizer.sep_token_id),
            "pad_token_id": int(tokenizer.pad_token_id),
            "max_chars": max_chars, "max_tokens": max_tokens, "source": str(captions.source),
            "report": report,
        }
        return cls(
            video_ids=video_ids,
            video_offsets=np.concatenate([[0], np.cumsum(per_video)]).astype(np.int64),
            starts=np.concatenate([captions.videos[v].start for v in video_ids] or [np.zeros(0)]),
            ends=np.concatenate([captions.videos[v].end for v in video_ids] or [np.zeros(0)]),
            token_offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
            tokens=np.concatenate(pieces or [np.zeros(0, np.int32)]).astype(np.int32),
            meta=meta,
        )

    def save(self, path: str | Path) -> Path:
        """Write the cache atomically as an ``.npz`` (no pickles: strings are unicode arrays)."""
        def write(tmp: Path) -> None:
            with open(tmp, "wb") as fh:
                np.savez(fh, video_ids=np.asarray(self.video_ids, dtype=str),
                         video_offsets=self.video_offsets, starts=self.starts, ends=self.ends,
                         token_offsets=self.token_offsets, tokens=self.tokens,
                         meta=np.asarray(json.dumps(self.meta)))

        path = atomic_write(path, write)
        return path

    @classmethod
    def load(cls, path: str | Path) -> TokenCache:
        """Read a cache written by :meth:`save`."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                cache = cls(video_ids=z["video_ids"].tolist(), video_offsets=z["video_offsets"],
                            starts=z["starts"], ends=z["ends"], token_offsets=z["token_offsets"],
                            tokens=z["tokens"], meta=meta)
        except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
            raise CaptionError(f"{path}: unreadable token cache ({exc}); delete it to rebuild") from exc
        if meta.get("format") != CACHE_FORMAT or meta.get("version") != CACHE_VERSION:
            raise CaptionError(f"{path}: not a v{CACHE_VERSION} {CACHE_FORMAT}; delete it to rebuild")
        return cache


def _source_stamp(path: Path) -> str:
    """Size and modification time of a caption file or folder (what invalidates a cache)."""
    files = sorted(path.glob("*.csv")) if path.is_dir() else [path]
    stats = [(f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files]
    return hashlib.sha256(json.dumps(stats).encode()).hexdigest()[:16]


def build_token_cache(captions_path: str | Path, tokenizer: Tokenizer, *,
                      cache_dir: str | Path | None = None, dedup: bool = True, seed: int = 0,
                      whole_words: bool = False, rebuild: bool = False) -> TokenCache:
    """Load the token cache of a caption file for one tokenizer, building and saving it if needed.

    The cache file, ``<captions name>.<tokenizer>-<fingerprint>.tokens.npz``, lives in
    ``cache_dir`` (default: beside the captions). It is rebuilt when the captions' size or
    modification time, the de-duplication settings, or the tokenizer's vocabulary change.

    Args:
        captions_path: ``caption.json`` or a folder of ``<vid>.csv`` (see :func:`load_captions`).
        tokenizer: a Hugging Face tokenizer (e.g. ``videoclip.backbone.load_tokenizer(name)``).
        cache_dir: where to keep the cache; pass a writable folder when the captions are read-only.
        rebuild: ignore an existing cache file.
    """
    captions_path = Path(captions_path)
    key = {"source_stamp": _source_stamp(captions_path), "dedup": dedup, "seed": seed,
           "whole_words": whole_words, "max_chars": MAX_CAPTION_CHARS, "max_tokens": MAX_CAPTION_TOKENS}
    name = f"{captions_path.name}.{_tokenizer_name(tokenizer)}-{tokenizer_fingerprint(tokenizer)}.tokens.npz"
    cache_path = Path(cache_dir or captions_path.parent) / name
    if cache_path.is_file() and not rebuild:
        cache = TokenCache.load(cache_path)
        if cache.meta.get("key") == key:
            return cache
    captions = load_captions(captions_path, dedup=dedup, seed=seed, whole_words=whole_words)
    cache = TokenCache.from_captions(captions, tokenizer)
    cache.meta["key"] = key
    try:
        cache.save(cache_path)
    except OSError as exc:
        raise CaptionError(f"{cache_path}: cannot write the token cache ({exc}); "
                           "pass cache_dir= a writable folder (--token_cache_dir for pretrain)") from exc
    return cache


def reconcile(captions: CaptionSet | TokenCache, store: Any, *, min_seconds: int = 3,
              num_examples: int = 5) -> dict[str, Any]:
    """Match caption ids against a feature store and count what cannot be used.

    Args:
        captions: a :class:`CaptionSet` or :class:`TokenCache`.
        store: a feature store (``ids()``, ``num_seconds(vid)``).
        min_seconds: videos with fewer feature rows are counted as too short (design §4: the
            video clip is 3..32 s).

    Returns:
        ``{"usable_ids": [...], "num_usable", "num_captions_without_features",
        "num_features_without_captions", "num_too_short"}`` plus ``examples_*`` lists of up to
        ``num_examples`` ids of each dropped kind.
    """
    caption_ids = captions.ids()
    feature_ids = set(store.ids())
    caption_set = set(caption_ids)
    no_features = [v for v in caption_ids if v not in feature_ids]
    no_captions = sorted(feature_ids - caption_set)
    too_short = [v for v in caption_ids if v in feature_ids and store.num_seconds(v) < min_seconds]
    short_set = set(too_short)
    usable = [v for v in caption_ids if v in feature_ids and v not in short_set]
    return {
        "usable_ids": usable,
        "num_usable": len(usable),
        "num_captions_without_features": len(no_features),
        "num_features_without_captions": len(no_captions),
        "num_too_short": len(too_short),
        "min_seconds": min_seconds,
        "examples_captions_without_features": no_features[:num_examples],
        "examples_features_without_captions": no_captions[:num_examples],
        "examples_too_short": too_short[:num_examples],
    }
