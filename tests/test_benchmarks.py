"""Loaders of the benchmarks' official files: counts on the real files (MANIFEST.md), bad rows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from videoclip.data.benchmarks import (
    DIDEMO_MOMENTS,
    AnnotationError,
    crosstask_split,
    load_coin,
    load_crosstask,
    load_didemo,
    load_msrvtt_mc,
    load_msrvtt_test,
    load_youcook2_val,
    read_step_annotation,
    read_task_info,
    read_video_list,
)

realdata = pytest.mark.realdata


def test_didemo_moments_are_the_21_of_localizing_moments():
    assert len(DIDEMO_MOMENTS) == 21 and len(set(DIDEMO_MOMENTS)) == 21
    assert DIDEMO_MOMENTS[:6] == tuple((i, i) for i in range(6))
    assert DIDEMO_MOMENTS[6:8] == ((0, 1), (0, 2)) and DIDEMO_MOMENTS[-1] == (4, 5)


# ----------------------------------------------------------------------------- real files


@realdata
def test_youcook2_counts(real_data_dir):
    milnce = load_youcook2_val(real_data_dir)
    assert len(milnce) == 3350 and len({p.video_id for p in milnce}) == 436
    first = milnce[0]
    assert (first.video_id, first.start, first.end) == ("xHr8X2Wpmno", 47, 60)
    assert first.text == "pick the ends off the verdalago"
    official = load_youcook2_val(real_data_dir, clip_list="annotations")
    assert len(official) == 3492 and len({p.video_id for p in official}) == 457
    assert len({p.item_id for p in official}) == 3492
    assert all(p.end > p.start for p in official)
    # every MIL-NCE clip is a validation segment of the official file
    segments = {(p.video_id, p.start, p.end) for p in official}
    assert all((p.video_id, p.start, p.end) in segments for p in milnce)
    with pytest.raises(ValueError, match="clip_list"):
        load_youcook2_val(real_data_dir, clip_list="test")


@realdata
def test_msrvtt_counts(real_data_dir):
    pairs = load_msrvtt_test(real_data_dir)
    assert len(pairs) == 1000 and len({p.video_id for p in pairs}) == 1000
    assert (pairs[0].item_id, pairs[0].video_id) == ("ret0", "video9770")
    assert pairs[0].start is None and pairs[0].end is None
    questions = load_msrvtt_mc(real_data_dir)
    assert len(questions) == 2990
    assert {len(q.options) for q in questions} == {5}
    assert {q.answer for q in questions} == {0, 1, 2, 3, 4}
    mc_videos = {q.video_id for q in questions}
    assert len(mc_videos) == 2990 and mc_videos >= {p.video_id for p in pairs}  # covers 1k-A
    assert questions[0].qid == "mc0" and questions[0].answer == 0


@realdata
def test_didemo_counts(real_data_dir):
    queries = load_didemo(real_data_dir)
    assert len(queries) == 4021
    assert len({q.video for q in queries}) == 1037
    assert len({q.video_id for q in queries}) == 1010  # 27 names differ only in the container
    q = queries[0]
    assert q.video_id == "26292851@N04_4253489686_265c3c8051" and q.times[0] == (4, 4)
    assert all(t in DIDEMO_MOMENTS for q in queries for t in q.times)


@realdata
def test_coin_excerpt(real_data_dir):
    coin = load_coin(real_data_dir / "coin/COIN_excerpt_first12.json")
    assert len(coin.videos) == 6 and all(v.subset == "testing" for v in coin.videos)
    assert len(coin.labels) == 19 and coin.labels[325].startswith("pull up the hair")
    first = coin.videos[0]
    assert first.video_id == "xZecGPPhbHE" and first.class_name == "PutOnHairExtensions"
    assert [s.label_id for s in first.segments] == [325, 326, 327]
    training = load_coin(real_data_dir / "coin/COIN_excerpt_first12.json", subset="training")
    assert len(training.videos) == 6 and training.labels == coin.labels  # labels: testing subset


@realdata
def test_crosstask_counts_and_official_split(real_data_dir):
    data = load_crosstask(real_data_dir)
    assert len(data.tasks) == 18
    assert sum(len(v) for v in data.videos.values()) == 2750
    assert sum(len(v) for v in data.val_videos.values()) == 360
    assert {len(v) for v in data.val_videos.values()} == {20}
    assert data.dropped == {"related_task_videos": 4700 - 2750}
    assert data.tasks["23521"].title == "Make Jello Shots" and len(data.tasks["23521"].steps) == 6
    assert all(data.annotation_path(t, v).is_file() for t, vids in data.videos.items() for v in vids)

    train, test = crosstask_split(data.videos, data.val_videos)
    assert {len(v) for v in train.values()} == {30}
    assert sum(len(v) for v in test.values()) == 2750 - 360 - 18 * 30
    for task, vids in data.videos.items():
        val = set(data.val_videos[task])
        assert set(train[task]) | set(test[task]) == set(vids) - val
        assert not set(train[task]) & set(test[task]) and not val & set(test[task])

    # the official code with the global generator seeded as the VideoCLIP code seeds it
    np.random.seed(0)
    want = {}
    for task, vids in data.videos.items():
        vids = [v for v in vids if v not in data.val_videos[task]]
        want[task] = np.random.choice(vids, 30, replace=False).tolist()
    assert train == want
    assert crosstask_split(data.videos, data.val_videos, seed=1)[0] != train
    # tasks are drawn in the order they first appear in videos.csv
    order = list(dict.fromkeys(line.split(",")[0] for line in
                               (real_data_dir / "crosstask/videos.csv").read_text().splitlines()))
    assert list(train) == [t for t in order if t in data.tasks]


@realdata
def test_crosstask_step_annotation_reader(real_data_dir):
    path = real_data_dir / "crosstask/annotations/113766__uAZw6L_R5g.csv"
    first = path.read_text().splitlines()[0]
    assert first == "1,33.54,39.94"
    y = read_step_annotation(path, 600, 11)
    assert y[33:40, 0].all() and not y[32, 0] and not y[40, 0]  # floor(start) .. ceil(end) - 1
    cut = read_step_annotation(path, 36, 11)  # features shorter than the annotation
    assert cut.shape == (36, 11) and cut[33:36, 0].all()


# ----------------------------------------------------------------------------- bad rows


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_youcook2_csv_bad_rows(tmp_path):
    path = _write(tmp_path / "youcook2/validation_youcook.csv",
                  "end,start,task,text,video_id\n10,2,1,cut,a\n3,5,1,stir,b\n")
    with pytest.raises(AnnotationError, match=r"validation_youcook.csv, line 3: end 3 <= start 5"):
        load_youcook2_val(tmp_path)
    _write(path, "end,start,task,text,video_id\n10,2.5,1,cut,a\n")
    with pytest.raises(AnnotationError, match="line 2, start: '2.5' is not a whole"):
        load_youcook2_val(tmp_path)
    _write(path, "end,start,task,text\n10,2,1,cut\n")
    with pytest.raises(AnnotationError, match="lacks column"):
        load_youcook2_val(tmp_path)
    _write(path, "end,start,task,text,video_id\n10,2,1,cut\n")
    with pytest.raises(AnnotationError, match="line 2: expected 5"):
        load_youcook2_val(tmp_path)
    with pytest.raises(AnnotationError, match="file not found"):
        load_youcook2_val(tmp_path, clip_list="annotations")


def test_youcook2_json_bad_rows(tmp_path):
    db = {"database": {"v1": {"subset": "validation", "duration": 50,
                              "annotations": [{"segment": [5, 9], "id": 0, "sentence": "cut"},
                                              {"segment": [9], "id": 1, "sentence": "mix"}]}}}
    _write(tmp_path / "youcook2/youcookii_annotations_trainval.json", json.dumps(db))
    with pytest.raises(AnnotationError, match=r'database\["v1"\].annotations\[1\]: segment \[9\]'):
        load_youcook2_val(tmp_path, clip_list="annotations")


def test_msrvtt_bad_rows(tmp_path):
    _write(tmp_path / "msrvtt/MSRVTT_JSFUSION_test.csv", "key,vid_key,video_id,sentence\nret0,m,,hi\n")
    with pytest.raises(AnnotationError, match="line 2: empty video_id"):
        load_msrvtt_test(tmp_path)
    good = {"qid": "mc0", "clip_name": "video1", "answer": "1", "options": ["a", "b", "c"]}
    bad = dict(good, answer="3")
    _write(tmp_path / "msrvtt/msrvtt_mc_test.jsonl", json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(AnnotationError, match="line 2: answer 3 is not an index into 3 options"):
        load_msrvtt_mc(tmp_path)
    _write(tmp_path / "msrvtt/msrvtt_mc_test.jsonl", "{not json\n")
    with pytest.raises(AnnotationError, match="line 1: malformed question"):
        load_msrvtt_mc(tmp_path)


def test_didemo_bad_rows(tmp_path):
    good = {"num_segments": 6, "description": "a dog", "times": [[1, 2]] * 4, "video": "x.mp4",
            "annotation_id": 1}
    _write(tmp_path / "didemo/test_data.json", json.dumps([good, dict(good, times=[[2, 6]])]))
    with pytest.raises(AnnotationError, match=r"item 1: time \[2, 6\] is not one of the 21"):
        load_didemo(tmp_path)
    _write(tmp_path / "didemo/test_data.json", json.dumps([dict(good, times=[])]))
    with pytest.raises(AnnotationError, match="item 0: no annotated times"):
        load_didemo(tmp_path)
    _write(tmp_path / "didemo/test_data.json", json.dumps({"oops": 1}))
    with pytest.raises(AnnotationError, match="JSON list"):
        load_didemo(tmp_path)


def test_coin_bad_rows(tmp_path):
    video = {"recipe_type": 1, "class": "C", "subset": "testing", "duration": 20.0,
             "annotation": [{"id": "3", "segment": [1.0, 4.0], "label": "cut"}]}
    other = dict(video, annotation=[{"id": "3", "segment": [5.0, 6.0], "label": "stir"}])
    path = _write(tmp_path / "COIN.json", json.dumps({"database": {"a": video, "b": other}}))
    with pytest.raises(AnnotationError, match=r"database\[\"b\"\].annotation\[0\]: step id 3 is 'stir'"):
        load_coin(path)
    broken = dict(video, annotation=[{"id": "3", "label": "cut"}])
    _write(path, json.dumps({"database": {"a": broken}}))
    with pytest.raises(AnnotationError, match="malformed segment"):
        load_coin(path)
    outside = dict(video, annotation=[{"id": "0", "segment": [1, 2], "label": "bg"}])
    _write(path, json.dumps({"database": {"a": outside}}))
    with pytest.raises(AnnotationError, match="0 is Outside"):
        load_coin(path)


def test_crosstask_bad_rows(tmp_path):
    tasks = _write(tmp_path / "tasks.txt", "1\nTask\nurl\n2\na,b\n\n2\nOther\nurl\n3\na,b\n\n")
    with pytest.raises(AnnotationError, match=r"tasks.txt, line 10: task 2 says '3' steps but lists 2"):
        read_task_info(tasks)
    _write(tasks, "1\nTask\nurl\n0\n\n")
    with pytest.raises(AnnotationError, match="line 1: a task card has 4 lines"):
        read_task_info(tasks)  # an empty step list is malformed, never silently a 0-step task
    no_blank = read_task_info(_write(tasks, "1\nTask\nurl\n2\na, b"))
    assert no_blank["1"].steps == ("a", "b")
    videos = _write(tmp_path / "videos.csv", "1,v1,u\n1,v2\n")
    with pytest.raises(AnnotationError, match="videos.csv, line 2: expected <task id>,<video id>,<URL>"):
        read_video_list(videos)
    ann = _write(tmp_path / "1_v1.csv", "1,0.5,2.0\n3,4,5\n")
    with pytest.raises(AnnotationError, match=r"1_v1.csv, line 2: step 3 outside 1..2"):
        read_step_annotation(ann, 10, 2)
    _write(ann, "1,5,2\n")
    with pytest.raises(AnnotationError, match=r"line 1: interval \[5.0, 2.0\] is invalid"):
        read_step_annotation(ann, 10, 2)
    with pytest.raises(AnnotationError, match="annotation file not found"):
        read_step_annotation(tmp_path / "nope.csv", 10, 2)


def test_crosstask_split_small_tasks_get_no_test_videos():
    task_vids = {"a": [f"a{i}" for i in range(5)], "b": [f"b{i}" for i in range(3)]}
    train, test = crosstask_split(task_vids, {"a": ["a0"]}, num_train=3)
    assert len(train["a"]) == 3 and len(test["a"]) == 1 and "a0" not in train["a"] + test["a"]
    assert train["b"] == task_vids["b"] and "b" not in test
