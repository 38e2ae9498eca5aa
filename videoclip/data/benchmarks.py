"""Loaders of the benchmarks' official annotation files (design §7; the files are the interface).

Every loader reads the format its benchmark released, validates each row and raises
:class:`AnnotationError` naming the file, the row and the fix. Nothing here touches video
features; the evaluators (``videoclip.evaluation``) pair these items with a feature store and
count the items a protocol drops (e.g. a clip whose video has no features).

Layout under a data root (same relative paths as the real files, see book/paper_profile.md):

=============  ==============================================================================
YouCook2       ``youcook2/youcookii_annotations_trainval.json``, ``youcook2/validation_youcook.csv``
MSR-VTT        ``msrvtt/MSRVTT_JSFUSION_test.csv``, ``msrvtt/msrvtt_mc_test.jsonl``
DiDeMo         ``didemo/test_data.json`` (LocalizingMoments)
COIN           ``coin/COIN.json``
CrossTask      ``crosstask/{tasks_primary.txt, videos.csv, videos_val.csv, annotations/*.csv}``
=============  ==============================================================================
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = [
    "DIDEMO_MOMENTS",
    "AnnotationError",
    "CoinData",
    "CoinSegment",
    "CoinVideo",
    "CrossTaskData",
    "CrossTaskTask",
    "MomentQuery",
    "MultipleChoiceQuestion",
    "TextVideoPair",
    "crosstask_split",
    "didemo_feature_id",
    "load_coin",
    "load_crosstask",
    "load_didemo",
    "load_msrvtt_mc",
    "load_msrvtt_test",
    "load_youcook2_val",
    "read_step_annotation",
    "read_task_info",
    "read_video_list",
]

#: DiDeMo's 21 candidate moments over six 5-s chunks, ``(first chunk, last chunk)`` inclusive,
#: in LocalizingMoments' order: the six single chunks, then ``itertools.combinations(range(6), 2)``.
DIDEMO_MOMENTS: tuple[tuple[int, int], ...] = tuple(
    [(i, i) for i in range(6)] + list(itertools.combinations(range(6), 2))
)


class AnnotationError(ValueError):
    """A benchmark file that does not follow its official format; names the file, row and fix."""


# ----------------------------------------------------------------------------- items


@dataclass(frozen=True)
class TextVideoPair:
    """One text→video retrieval query and its matching clip.

    ``start``/``end`` are whole seconds of the video's feature array (``None``: the whole video).
    """

    item_id: str
    video_id: str
    text: str
    start: int | None = None
    end: int | None = None


@dataclass(frozen=True)
class MultipleChoiceQuestion:
    """MSR-VTT multiple choice: pick the caption (of ``options``) that belongs to the video."""

    qid: str
    video_id: str
    options: tuple[str, ...]
    answer: int


@dataclass(frozen=True)
class MomentQuery:
    """One DiDeMo query: a description and the annotators' moments ``(first, last)`` chunk."""

    annotation_id: int
    video: str
    video_id: str  # the feature id, see :func:`didemo_feature_id`
    description: str
    times: tuple[tuple[int, int], ...]
    num_segments: int


@dataclass(frozen=True)
class CoinSegment:
    start: float
    end: float
    label_id: int
    label: str


@dataclass(frozen=True)
class CoinVideo:
    video_id: str
    class_name: str
    recipe_type: int
    subset: str
    duration: float
    segments: tuple[CoinSegment, ...]


@dataclass(frozen=True)
class CoinData:
    """The videos of one COIN subset and the step label set (``{label id: label text}``)."""

    videos: list[CoinVideo]
    labels: dict[int, str]
    path: Path


@dataclass(frozen=True)
class CrossTaskTask:
    task_id: str
    title: str
    url: str
    steps: tuple[str, ...]


@dataclass
class CrossTaskData:
    """The official ``crosstask_release``: primary tasks, their videos and the validation list.

    ``videos`` and ``val_videos`` map a primary task id to its video ids in file order (the
    order the official random split draws from); ``dropped`` counts rows of ``videos.csv`` that
    are not primary-task videos (related tasks, which the zero-shot protocol does not test).
    """

    root: Path
    tasks: dict[str, CrossTaskTask]
    videos: dict[str, list[str]]
    val_videos: dict[str, list[str]]
    dropped: dict[str, int] = field(default_factory=dict)

    def annotation_path(self, task: str, vid: str) -> Path:
        return self.root / "annotations" / f"{task}_{vid}.csv"


# ----------------------------------------------------------------------------- helpers


def read_utf8(path: Path, fix: str) -> str:
    """The text of an annotation file: UTF-8, a leading byte-order mark ignored.

    Raises:
        AnnotationError: the file is missing or is not UTF-8 (named with its line).
    """
    if not path.is_file():
        raise AnnotationError(f"{path}: file not found; {fix}")
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise AnnotationError(
            f"{path}, line {line}: not UTF-8 text (byte {data[exc.start]:#04x}); save it as "
            f"UTF-8; {fix}"
        ) from None


def _unique(seen: dict[object, str], key: object, path: Path, at: str, what: str) -> None:
    """Raise if ``key`` was seen before: a repeated row would count twice in the metric (design §14)."""
    if key in seen:
        raise AnnotationError(
            f"{path}, {at}: {what} repeats {seen[key]}; remove the duplicate row"
        )
    seen[key] = at


def _no_rows(path: Path, fix: str) -> AnnotationError:
    return AnnotationError(f"{path}: no rows; a required file must not be empty; {fix}")


def _read_json(path: Path, fix: str) -> object:
    def unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
        keys = [key for key, _ in pairs]
        if len(set(keys)) < len(keys):
            repeated = sorted({key for key in keys if keys.count(key) > 1})
            raise AnnotationError(
                f"{path}: duplicate key {repeated[0]!r} in one JSON object (a record listed "
                f"twice); remove the duplicate; {fix}"
            )
        return dict(pairs)

    try:
        return json.loads(read_utf8(path, fix), object_pairs_hook=unique_keys)
    except json.JSONDecodeError as exc:
        raise AnnotationError(f"{path}: not valid JSON ({exc}); {fix}") from exc


def _read_csv_rows(path: Path, columns: Iterable[str], fix: str) -> list[tuple[int, dict[str, str]]]:
    """``(line number, row)`` of a headed CSV whose header must hold ``columns`` (>= 1 row)."""
    reader = csv.DictReader(io.StringIO(read_utf8(path, fix), newline=""))
    missing = [c for c in columns if c not in (reader.fieldnames or [])]
    if missing:
        raise AnnotationError(
            f"{path}: header {reader.fieldnames} lacks column(s) {missing}; {fix}"
        )
    rows = []
    for row in reader:
        if None in row or any(row[c] is None for c in columns):
            raise AnnotationError(
                f"{path}, line {reader.line_num}: expected {len(reader.fieldnames)} "
                f"comma-separated fields, got {list(row.values())}; {fix}"
            )
        rows.append((reader.line_num, row))
    if not rows:
        raise _no_rows(path, fix)
    return rows


def _whole_second(value: object, where: str, fix: str) -> int:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise AnnotationError(f"{where}: {value!r} is not a number of seconds; {fix}") from None
    if not math.isfinite(number) or number < 0 or number != int(number):
        raise AnnotationError(f"{where}: {value!r} is not a whole, non-negative second; {fix}")
    return int(number)


# ----------------------------------------------------------------------------- YouCook2

_YC_JSON = "youcook2/youcookii_annotations_trainval.json"
_YC_CSV = "youcook2/validation_youcook.csv"
_YC_FIX = "use the official YouCook2 file (youcookii_annotations_trainval.json)"
_YC_CSV_FIX = "use MIL-NCE's csv/validation_youcook.csv (columns end,start,task,text,video_id)"


def load_youcook2_val(data_dir: str | Path, *, clip_list: str = "milnce") -> list[TextVideoPair]:
    """YouCook2 validation clips for zero-shot text→video retrieval (design §7).

    Args:
        data_dir: the data root.
        clip_list: ``"milnce"`` (default): MIL-NCE's ``validation_youcook.csv``, the 3,350 clips
            of the zero-shot protocol that the paper's 3,305 were filtered from (clips whose
            video has features); ``"annotations"``: every segment of the ``validation`` subset
            of ``youcookii_annotations_trainval.json`` (3,492).

    Returns:
        One :class:`TextVideoPair` per clip, in file order; ``start``/``end`` in seconds.
    """
    data_dir = Path(data_dir)
    if clip_list == "milnce":
        path = data_dir / _YC_CSV
        pairs = []
        seen: dict[object, str] = {}
        for line, row in _read_csv_rows(path, ("end", "start", "text", "video_id"), _YC_CSV_FIX):
            where = f"{path}, line {line}"
            start = _whole_second(row["start"], f"{where}, start", _YC_CSV_FIX)
            end = _whole_second(row["end"], f"{where}, end", _YC_CSV_FIX)
            if end <= start:
                raise AnnotationError(f"{where}: end {end} <= start {start}; {_YC_CSV_FIX}")
            if not row["video_id"].strip() or not row["text"].strip():
                raise AnnotationError(f"{where}: empty video_id or text; {_YC_CSV_FIX}")
            # The same clip with another sentence is a real second query (the file has one).
            _unique(seen, (row["video_id"], start, end, row["text"]), path, f"line {line}",
                    "this clip and text")
            pairs.append(TextVideoPair(f"{row['video_id']}_{start}_{end}_{line}", row["video_id"],
                                       row["text"], start, end))
        return pairs
    if clip_list == "annotations":
        path = data_dir / _YC_JSON
        data = _read_json(path, _YC_FIX)
        if not isinstance(data, dict) or not isinstance(data.get("database"), dict):
            raise AnnotationError(f'{path}: no "database" object at the top level; {_YC_FIX}')
        pairs = []
        for vid, rec in data["database"].items():
            if not isinstance(rec, dict) or "subset" not in rec:
                raise AnnotationError(f'{path}: database["{vid}"] has no "subset"; {_YC_FIX}')
            if rec["subset"] != "validation":
                continue
            seen = {}
            for i, ann in enumerate(rec.get("annotations") or []):
                where = f'{path}: database["{vid}"].annotations[{i}]'
                try:
                    seg, sentence, seg_id = ann["segment"], ann["sentence"], ann["id"]
                except (KeyError, TypeError):
                    raise AnnotationError(f"{where}: needs segment, sentence and id; {_YC_FIX}") from None
                if not isinstance(seg, list) or len(seg) != 2:
                    raise AnnotationError(f"{where}: segment {seg!r} is not [start, end]; {_YC_FIX}")
                start = _whole_second(seg[0], f"{where}.segment", _YC_FIX)
                end = _whole_second(seg[1], f"{where}.segment", _YC_FIX)
                if end <= start or not isinstance(sentence, str) or not sentence.strip():
                    raise AnnotationError(
                        f"{where}: segment {seg} is empty or the sentence is blank; {_YC_FIX}")
                _unique(seen, seg_id, path, f'database["{vid}"].annotations[{i}]', f"id {seg_id!r}")
                pairs.append(TextVideoPair(f"{vid}_{seg_id}", vid, sentence, start, end))
        if not pairs:
            raise AnnotationError(f"{path}: no validation segments; {_YC_FIX}")
        return pairs
    raise ValueError(f"clip_list={clip_list!r}; use 'milnce' or 'annotations'")


# ----------------------------------------------------------------------------- MSR-VTT

_MSR_FIX = "use the JSFusion 1k-A test file MSRVTT_JSFUSION_test.csv (key,vid_key,video_id,sentence)"
_MC_FIX = ('use the JSFusion multiple-choice test as JSON lines '
           '{"qid", "clip_name", "answer": "0".."4", "options": [5 captions]}')


def load_msrvtt_test(data_dir: str | Path) -> list[TextVideoPair]:
    """MSR-VTT 1k-A test (JSFusion): 1,000 clips with one sentence each (whole videos)."""
    path = Path(data_dir) / "msrvtt/MSRVTT_JSFUSION_test.csv"
    pairs = []
    keys: dict[object, str] = {}
    videos: dict[object, str] = {}
    for line, row in _read_csv_rows(path, ("key", "video_id", "sentence"), _MSR_FIX):
        if not row["video_id"].strip() or not row["sentence"].strip():
            raise AnnotationError(f"{path}, line {line}: empty video_id or sentence; {_MSR_FIX}")
        _unique(keys, row["key"], path, f"line {line}", f"key {row['key']!r}")
        # 1k-A pairs each video with one sentence; a second one would tie with the first.
        _unique(videos, row["video_id"], path, f"line {line}", f"video_id {row['video_id']!r}")
        pairs.append(TextVideoPair(row["key"], row["video_id"], row["sentence"]))
    return pairs


def load_msrvtt_mc(data_dir: str | Path) -> list[MultipleChoiceQuestion]:
    """MSR-VTT multiple-choice test (JSFusion; 2,990 questions, 5 candidate captions each)."""
    path = Path(data_dir) / "msrvtt/msrvtt_mc_test.jsonl"
    questions = []
    seen: dict[object, str] = {}
    for line_no, line in enumerate(read_utf8(path, _MC_FIX).split("\n"), start=1):
        if not line.strip():
            continue
        where = f"{path}, line {line_no}"
        try:
            rec = json.loads(line)
            qid, video_id, options = str(rec["qid"]), rec["clip_name"], rec["options"]
            answer = int(rec["answer"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise AnnotationError(f"{where}: malformed question ({exc}); {_MC_FIX}") from exc
        if (not isinstance(options, list) or len(options) < 2
                or not all(isinstance(o, str) and o.strip() for o in options)):
            raise AnnotationError(f"{where}: options must be >= 2 non-empty strings; {_MC_FIX}")
        if not 0 <= answer < len(options):
            raise AnnotationError(
                f"{where}: answer {answer} is not an index into {len(options)} options; {_MC_FIX}")
        if not isinstance(video_id, str) or not video_id.strip():
            raise AnnotationError(f"{where}: empty clip_name; {_MC_FIX}")
        _unique(seen, qid, path, f"line {line_no}", f"qid {qid!r}")
        questions.append(MultipleChoiceQuestion(qid, video_id, tuple(options), answer))
    if not questions:
        raise _no_rows(path, _MC_FIX)
    return questions


# ----------------------------------------------------------------------------- DiDeMo

_DIDEMO_FIX = ("use LocalizingMoments' data/test_data.json (a list of {description, times: "
               "[[first, last] chunk in 0..5], video, annotation_id, num_segments})")


def didemo_feature_id(video: str) -> str:
    """The feature-store id of a DiDeMo video: its file name without the extension.

    The test set holds 27 pairs of names that differ only in the container (``.mov``/``.mp4``
    of the same Flickr id); both map to one feature array.
    """
    return Path(video).stem


def load_didemo(data_dir: str | Path, *, split: str = "test") -> list[MomentQuery]:
    """DiDeMo queries from LocalizingMoments' ``<split>_data.json`` (test: 4,021 queries)."""
    path = Path(data_dir) / f"didemo/{split}_data.json"
    data = _read_json(path, _DIDEMO_FIX)
    if not isinstance(data, list):
        raise AnnotationError(f"{path}: expected a JSON list of queries; {_DIDEMO_FIX}")
    if not data:
        raise _no_rows(path, _DIDEMO_FIX)
    queries = []
    seen: dict[object, str] = {}
    for i, rec in enumerate(data):
        where = f"{path}: item {i}"
        try:
            video, description, times = rec["video"], rec["description"], rec["times"]
            annotation_id, num_segments = int(rec["annotation_id"]), int(rec["num_segments"])
        except (KeyError, TypeError, ValueError) as exc:
            raise AnnotationError(f"{where}: malformed query ({exc!r}); {_DIDEMO_FIX}") from exc
        if not isinstance(video, str) or not video or not isinstance(description, str):
            raise AnnotationError(f"{where}: video/description must be strings; {_DIDEMO_FIX}")
        if not isinstance(times, list) or not times:
            raise AnnotationError(f"{where}: no annotated times; {_DIDEMO_FIX}")
        moments = []
        for t in times:
            if (not isinstance(t, list) or len(t) != 2 or not all(type(x) is int for x in t)
                    or tuple(t) not in DIDEMO_MOMENTS):
                raise AnnotationError(
                    f"{where}: time {t!r} is not one of the 21 moments [first, last] with "
                    f"0 <= first <= last <= 5; {_DIDEMO_FIX}")
            moments.append((t[0], t[1]))
        _unique(seen, annotation_id, path, f"item {i}", f"annotation_id {annotation_id}")
        queries.append(MomentQuery(annotation_id, video, didemo_feature_id(video), description,
                                   tuple(moments), num_segments))
    return queries


# ----------------------------------------------------------------------------- COIN

_COIN_FIX = ('use COIN.json from coin-dataset/annotations ({"database": {vid: {annotation: '
             '[{id, segment: [start, end], label}], class, recipe_type, subset, duration}}})')


def load_coin(path: str | Path, *, subset: str = "testing") -> CoinData:
    """The videos of one COIN subset and the label set of the ``testing`` subset.

    The label set (``{step id: step text}``) always comes from the testing subset, as the
    original zero-shot code builds it; a step id with two different texts is an error.

    Args:
        path: the ``COIN.json`` file (``<data root>/coin/COIN.json`` in the standard layout).
        subset: ``"testing"`` (the zero-shot protocol) or ``"training"``.
    """
    path = Path(path)
    data = _read_json(path, _COIN_FIX)
    if not isinstance(data, dict) or not isinstance(data.get("database"), dict):
        raise AnnotationError(f'{path}: no "database" object at the top level; {_COIN_FIX}')
    videos: list[CoinVideo] = []
    labels: dict[int, str] = {}
    for vid, rec in data["database"].items():
        where = f'{path}: database["{vid}"]'
        try:
            rec_subset, anns = rec["subset"], rec["annotation"]
            class_name, recipe_type = rec["class"], int(rec["recipe_type"])
            duration = float(rec["duration"])
        except (KeyError, TypeError, ValueError) as exc:
            raise AnnotationError(f"{where}: malformed video record ({exc!r}); {_COIN_FIX}") from exc
        segments = []
        for j, ann in enumerate(anns):
            seg_where = f"{where}.annotation[{j}]"
            try:
                label_id, label, (start, end) = int(ann["id"]), ann["label"], ann["segment"]
                start, end = float(start), float(end)
            except (KeyError, TypeError, ValueError) as exc:
                raise AnnotationError(f"{seg_where}: malformed segment ({exc!r}); {_COIN_FIX}") from exc
            if label_id < 1 or not isinstance(label, str) or not label.strip():
                raise AnnotationError(
                    f"{seg_where}: step id {label_id} must be >= 1 (0 is Outside) with a "
                    f"non-empty label; {_COIN_FIX}")
            if not (0 <= start <= end) or not math.isfinite(end):
                raise AnnotationError(f"{seg_where}: segment [{start}, {end}] is invalid; {_COIN_FIX}")
            if rec_subset == "testing" and labels.setdefault(label_id, label) != label:
                raise AnnotationError(
                    f"{seg_where}: step id {label_id} is {label!r} here but "
                    f"{labels[label_id]!r} elsewhere; {_COIN_FIX}")
            segments.append(CoinSegment(start, end, label_id, label))
        if rec_subset == subset:
            videos.append(CoinVideo(vid, class_name, recipe_type, rec_subset, duration,
                                    tuple(segments)))
    if not labels:
        raise AnnotationError(f"{path}: no step labels in the testing subset; {_COIN_FIX}")
    return CoinData(videos, dict(sorted(labels.items())), path)


# ----------------------------------------------------------------------------- CrossTask

_CT_FIX = "use the official crosstask_release files (see its readme.txt)"


def read_task_info(path: str | Path) -> dict[str, CrossTaskTask]:
    """Task cards of ``tasks_primary.txt`` (id, title, URL, number of steps, comma-separated steps).

    Cards are separated by blank lines; the step count must equal the number of steps listed.
    """
    path = Path(path)
    lines = read_utf8(path, _CT_FIX).splitlines()
    tasks: dict[str, CrossTaskTask] = {}
    card: list[tuple[int, str]] = []
    for line_no, line in enumerate(lines + [""], start=1):
        if line.strip():
            card.append((line_no, line.strip()))
            continue
        if not card:
            continue
        first = card[0][0]
        if len(card) != 5:
            raise AnnotationError(
                f"{path}, line {first}: a task card has {len(card)} lines, expected 5 (id, title, "
                f"URL, number of steps, steps) followed by a blank line; {_CT_FIX}")
        task_id, title, url, num_steps, steps = (text for _, text in card)
        step_list = tuple(s.strip() for s in steps.split(","))
        if not num_steps.isdigit() or int(num_steps) != len(step_list) or not all(step_list):
            raise AnnotationError(
                f"{path}, line {card[3][0]}: task {task_id} says {num_steps!r} steps but lists "
                f"{len(step_list)} ({steps!r}); {_CT_FIX}")
        if task_id in tasks:
            raise AnnotationError(f"{path}, line {first}: task {task_id} appears twice; {_CT_FIX}")
        tasks[task_id] = CrossTaskTask(task_id, title, url, step_list)
        card = []
    if not tasks:
        raise AnnotationError(f"{path}: no task cards; {_CT_FIX}")
    return tasks


def read_video_list(path: str | Path) -> dict[str, list[str]]:
    """``<task id>,<YouTube id>,<URL>`` rows → ``{task: [video ids in file order]}``."""
    path = Path(path)
    task_vids: dict[str, list[str]] = {}
    seen: dict[object, str] = {}
    for line_no, line in enumerate(read_utf8(path, _CT_FIX).split("\n"), start=1):
        if not line.strip():
            continue
        fields = line.strip().split(",")
        if len(fields) != 3 or not fields[0] or not fields[1]:
            raise AnnotationError(
                f"{path}, line {line_no}: expected <task id>,<video id>,<URL>, got {line.strip()!r}; "
                f"{_CT_FIX}")
        # One video may serve two tasks (the release has 93 such); the same pair twice is an error.
        _unique(seen, (fields[0], fields[1]), path, f"line {line_no}",
                f"task {fields[0]} video {fields[1]}")
        task_vids.setdefault(fields[0], []).append(fields[1])
    if not task_vids:
        raise _no_rows(path, _CT_FIX)
    return task_vids


def read_step_annotation(path: str | Path, num_seconds: int, num_steps: int) -> np.ndarray:
    """One video's ground truth as a ``(num_seconds, num_steps)`` 0/1 array (official reader).

    Row ``<step (1-based)>,<start s>,<end s>`` marks seconds ``floor(start) .. ceil(end) - 1``
    of that step; seconds past ``num_seconds`` are cut off, as the official ``read_assignment``
    does when the features are shorter than the annotation.
    """
    path = Path(path)
    if not path.is_file():
        raise AnnotationError(f"{path}: annotation file not found; {_CT_FIX}")
    y = np.zeros((num_seconds, num_steps), dtype=np.uint8)
    for line_no, line in enumerate(read_utf8(path, _CT_FIX).split("\n"), start=1):
        if not line.strip():
            continue
        where = f"{path}, line {line_no}"
        try:
            step_s, start_s, end_s = line.strip().split(",")
            step, start, end = int(step_s), float(start_s), float(end_s)
        except ValueError:
            raise AnnotationError(
                f"{where}: expected <step>,<start>,<end>, got {line.strip()!r}; {_CT_FIX}") from None
        if not 1 <= step <= num_steps:
            raise AnnotationError(f"{where}: step {step} outside 1..{num_steps}; {_CT_FIX}")
        if not (math.isfinite(start) and math.isfinite(end) and 0 <= start <= end):
            raise AnnotationError(f"{where}: interval [{start}, {end}] is invalid; {_CT_FIX}")
        y[math.floor(start):math.ceil(end), step - 1] = 1
    return y


def load_crosstask(data_dir: str | Path) -> CrossTaskData:
    """The primary tasks, their videos (``videos.csv``) and the validation list (``videos_val.csv``)."""
    root = Path(data_dir) / "crosstask"
    tasks = read_task_info(root / "tasks_primary.txt")
    all_vids = read_video_list(root / "videos.csv")
    val_all = read_video_list(root / "videos_val.csv")
    videos = {t: v for t, v in all_vids.items() if t in tasks}
    val_videos = {t: v for t, v in val_all.items() if t in tasks}
    missing = [t for t in tasks if t not in videos]
    if missing:
        raise AnnotationError(f"{root / 'videos.csv'}: primary task(s) {missing} have no videos; {_CT_FIX}")
    dropped = {"related_task_videos": sum(len(v) for t, v in all_vids.items() if t not in tasks)}
    return CrossTaskData(root, tasks, videos, val_videos, dropped)


def crosstask_split(
    task_vids: Mapping[str, list[str]],
    val_vids: Mapping[str, list[str]],
    *,
    num_train: int = 30,
    seed: int | None = 0,
) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """The official CrossTask split: ``(train, test)`` videos per primary task.

    As DmZhukov/CrossTask ``train.py``: the validation videos are removed, then for each task
    (in the order of ``task_vids``) with more than ``num_train`` videos, ``num_train`` are drawn
    without replacement with NumPy's legacy ``np.random.choice`` and the rest are the test
    set. The official code leaves the generator unseeded; the VideoCLIP code seeds it with 0,
    which ``seed=0`` reproduces (a ``RandomState(0)`` draws what ``np.random.seed(0)`` does).
    Tasks with ``num_train`` videos or fewer get no test videos.
    """
    rng = np.random.RandomState(seed)
    train: dict[str, list[str]] = {}
    test: dict[str, list[str]] = {}
    for task, vids in task_vids.items():
        held_out = set(val_vids.get(task, ()))
        vids = [v for v in vids if v not in held_out]
        if len(vids) > num_train:
            train[task] = rng.choice(vids, num_train, replace=False).tolist()
            chosen = set(train[task])
            test[task] = [v for v in vids if v not in chosen]
        else:
            train[task] = vids
    return train, test
