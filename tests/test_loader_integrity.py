"""Loaders refuse what would silently change a metric: duplicated rows, empty required files,
text that is not UTF-8 (reliability review §3). Each error names the file, the line and the fix."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from videoclip.data.benchmarks import (
    AnnotationError,
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
from videoclip.data.idlist import read_id_list

YC_HEADER = "end,start,task,text,video_id\n"


def _write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- duplicates


def test_youcook2_csv_duplicate_row_is_refused_but_same_clip_other_text_is_kept(tmp_path):
    path = tmp_path / "youcook2/validation_youcook.csv"
    _write(path, YC_HEADER + "10,2,1,cut,a\n10,2,1,mix,a\n")  # the real file has such a pair
    assert len(load_youcook2_val(tmp_path)) == 2
    _write(path, YC_HEADER + "10,2,1,cut,a\n20,12,1,mix,a\n10,2,1,cut,a\n")
    with pytest.raises(AnnotationError, match=r"validation_youcook.csv, line 4: .*repeats line 2"):
        load_youcook2_val(tmp_path)


def test_youcook2_json_duplicate_video_key_is_refused(tmp_path):
    rec = {"subset": "validation", "annotations": [{"segment": [1, 4], "id": 0, "sentence": "cut"}]}
    text = f'{{"database": {{"v1": {json.dumps(rec)}, "v1": {json.dumps(rec)}}}}}'
    _write(tmp_path / "youcook2/youcookii_annotations_trainval.json", text)
    with pytest.raises(AnnotationError, match=r"trainval.json: duplicate key 'v1'"):
        load_youcook2_val(tmp_path, clip_list="annotations")


def test_msrvtt_duplicate_key_or_video_is_refused(tmp_path):
    path = tmp_path / "msrvtt/MSRVTT_JSFUSION_test.csv"
    head = "key,vid_key,video_id,sentence\n"
    _write(path, head + "ret0,m0,video0,a\nret1,m1,video1,b\nret0,m0,video0,a\n")
    with pytest.raises(AnnotationError, match=r"MSRVTT_JSFUSION_test.csv, line 4: key 'ret0' repeats line 2"):
        load_msrvtt_test(tmp_path)
    _write(path, head + "ret0,m0,video0,a\nret1,m1,video0,b\n")
    with pytest.raises(AnnotationError, match=r"line 3: video_id 'video0' repeats line 2"):
        load_msrvtt_test(tmp_path)


def test_msrvtt_mc_duplicate_qid_is_refused(tmp_path):
    q = {"qid": "mc0", "clip_name": "video1", "answer": "1", "options": ["a", "b", "c"]}
    _write(tmp_path / "msrvtt/msrvtt_mc_test.jsonl", (json.dumps(q) + "\n") * 2)
    with pytest.raises(AnnotationError, match=r"msrvtt_mc_test.jsonl, line 2: qid 'mc0' repeats line 1"):
        load_msrvtt_mc(tmp_path)


def test_didemo_duplicate_annotation_id_and_bool_times_are_refused(tmp_path):
    q = {"num_segments": 6, "description": "a dog", "times": [[1, 2]], "video": "x.mp4",
         "annotation_id": 7}
    path = _write(tmp_path / "didemo/test_data.json", json.dumps([q, q]))
    with pytest.raises(AnnotationError, match=r"item 1: annotation_id 7 repeats item 0"):
        load_didemo(tmp_path)
    _write(path, json.dumps([dict(q, times=[[True, True]])]))
    with pytest.raises(AnnotationError, match=r"item 0: time \[True, True\]"):
        load_didemo(tmp_path)


def test_crosstask_duplicate_video_row_is_refused(tmp_path):
    path = _write(tmp_path / "videos.csv", "1,v1,u\n2,v1,u\n1,v2,u\n1,v1,u\n")
    with pytest.raises(AnnotationError, match=r"videos.csv, line 4: task 1 video v1 repeats line 1"):
        read_video_list(path)


def test_coin_duplicate_video_key_is_refused(tmp_path):
    video = {"recipe_type": 1, "class": "C", "subset": "testing", "duration": 20.0,
             "annotation": [{"id": "3", "segment": [1.0, 4.0], "label": "cut"}]}
    record = json.dumps(video)
    path = _write(tmp_path / "COIN.json", f'{{"database": {{"a": {record}, "a": {record}}}}}')
    with pytest.raises(AnnotationError, match="duplicate key 'a'"):
        load_coin(path)


def test_training_list_duplicates_and_empty_list_are_refused(tmp_path):
    path = _write(tmp_path / "train.lst", "v1\nv2\n\nv1\n")
    with pytest.raises(ValueError, match=r"train.lst, line 4: v1 repeats line 1; remove"):
        read_id_list(path, what="the training video list", key="train_list")
    _write(path, "\n")
    with pytest.raises(ValueError, match=r"train.lst: no video ids"):
        read_id_list(path, what="the training video list", key="train_list")
    _write(path, "v1\r\nv2\n")
    assert read_id_list(path, what="the training video list", key="train_list") == ["v1", "v2"]


# ----------------------------------------------------------------------------- empty files


@pytest.mark.parametrize("relative, text, loader", [
    ("youcook2/validation_youcook.csv", YC_HEADER, load_youcook2_val),
    ("msrvtt/MSRVTT_JSFUSION_test.csv", "key,vid_key,video_id,sentence\n", load_msrvtt_test),
    ("msrvtt/msrvtt_mc_test.jsonl", "\n", load_msrvtt_mc),
    ("didemo/test_data.json", "[]", load_didemo),
])
def test_a_required_file_without_rows_is_refused(tmp_path, relative, text, loader):
    _write(tmp_path / relative, text)
    with pytest.raises(AnnotationError, match=f"{Path(relative).name}: no .*rows|{Path(relative).name}: no "):
        loader(tmp_path)


def _crosstask(root: Path, val: str) -> Path:
    _write(root / "crosstask/tasks_primary.txt", "1\nTask\nurl\n2\na,b\n\n")
    _write(root / "crosstask/videos.csv", "1,v1,u\n1,v2,u\n")
    _write(root / "crosstask/videos_val.csv", val)
    return root


def test_crosstask_empty_validation_list_is_refused(tmp_path):
    assert load_crosstask(_crosstask(tmp_path, "1,v1,u\n")).val_videos == {"1": ["v1"]}
    with pytest.raises(AnnotationError, match=r"videos_val.csv: no rows"):
        load_crosstask(_crosstask(tmp_path, ""))


# ----------------------------------------------------------------------------- encodings


def test_utf8_bom_is_read_as_utf8(tmp_path):
    path = tmp_path / "youcook2/validation_youcook.csv"
    _write(path, ("\ufeff" + YC_HEADER + "10,2,1,cut,a\n").encode("utf-8"))
    assert load_youcook2_val(tmp_path)[0].end == 10
    root = _crosstask(tmp_path, "1,v1,u\n")
    _write(root / "crosstask/videos.csv", "\ufeff1,v1,u\n1,v2,u\n1,v3,u\n")
    _write(root / "crosstask/tasks_primary.txt", "\ufeff1\nTask\nurl\n2\na,b\n\n")
    assert load_crosstask(root).videos == {"1": ["v1", "v2", "v3"]}


def test_utf16_and_latin1_name_the_file_and_line(tmp_path):
    path = tmp_path / "youcook2/validation_youcook.csv"
    _write(path, (YC_HEADER + "10,2,1,cut,a\n").encode("utf-16"))
    with pytest.raises(AnnotationError, match=r"validation_youcook.csv, line 1: not UTF-8 .*save it as UTF-8"):
        load_youcook2_val(tmp_path)
    _write(path, (YC_HEADER + "10,2,1,cut,a\n10,2,1,caf\xe9,b\n").encode("latin-1"))
    with pytest.raises(AnnotationError, match=r"validation_youcook.csv, line 3: not UTF-8"):
        load_youcook2_val(tmp_path)
    ann = _write(tmp_path / "1_v1.csv", "1,0.5,2.0\n".encode("utf-16"))
    with pytest.raises(AnnotationError, match=r"1_v1.csv, line 1: not UTF-8"):
        read_step_annotation(ann, 10, 2)
    tasks = _write(tmp_path / "tasks.txt", "1\nTask\nurl\n2\na,b\n".encode("utf-16"))
    with pytest.raises(AnnotationError, match=r"tasks.txt, line 1: not UTF-8"):
        read_task_info(tasks)


@pytest.mark.realdata
def test_real_files_pass_every_check(real_data_dir, tmp_path):
    """The released files hold no duplicate the checks refuse (counts as MANIFEST.md)."""
    assert len(load_youcook2_val(real_data_dir)) == 3350
    assert len(load_youcook2_val(real_data_dir, clip_list="annotations")) == 3492
    assert len(load_msrvtt_test(real_data_dir)) == 1000
    assert len(load_msrvtt_mc(real_data_dir)) == 2990
    assert len(load_didemo(real_data_dir)) == 4021
    assert len(load_didemo(real_data_dir, split="val")) > 0
    assert sum(map(len, load_crosstask(real_data_dir).videos.values())) == 2750
    copy = tmp_path / "youcook2"
    shutil.copytree(Path(real_data_dir) / "youcook2", copy, ignore=shutil.ignore_patterns("*.pdf"))
    doubled = (copy / "validation_youcook.csv").read_text(encoding="utf-8")
    (copy / "validation_youcook.csv").write_text(doubled + doubled.split("\n", 1)[1], encoding="utf-8")
    with pytest.raises(AnnotationError, match="repeats line 2"):
        load_youcook2_val(tmp_path)


def test_a_video_listed_twice_in_caption_json_is_refused(tmp_path):
    from videoclip.data.captions import CaptionError, load_captions

    path = tmp_path / "caption.json"
    entry = '{"start": [0], "end": [2], "text": ["crack an egg"]}'
    path.write_text(f'{{"v1": {entry}, "v2": {entry}}}')
    assert set(load_captions(path).videos) == {"v1", "v2"}
    path.write_text(f'{{"v1": {entry}, "v1": {entry}}}')
    with pytest.raises(CaptionError, match="'v1' appears twice"):
        load_captions(path)
