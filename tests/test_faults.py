"""Fault injection: truncated and corrupt files of every kind the package reads.

Each case ends in a clear error that names the file (reliability review §2-§4), never a raw
library error without a path, and never a silently different result.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import make_model, released_state_dict, tiny_config, write_checkpoint

from videoclip.checkpoint import CheckpointError
from videoclip.data.benchmarks import AnnotationError, load_didemo
from videoclip.data.captions import CaptionError, load_captions
from videoclip.data.features import FeatureError, open_feature_store, write_features
from videoclip.model import VideoCLIP


def _truncate(path: Path, keep: float) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)] if isinstance(keep, float) else data[:keep])
    return path


# ----------------------------------------------------------------------------- MMPT checkpoint


@pytest.mark.parametrize("damage", ["half", "minus100", "empty", "random", "text"])
@pytest.mark.parametrize("trust_pickle", [False, True])
def test_damaged_mmpt_checkpoint_is_named(tmp_path: Path, backbone_dir: Path, damage: str,
                                          trust_pickle: bool) -> None:
    path = write_checkpoint(tmp_path / "ckpt.pt", released_state_dict())
    data = path.read_bytes()
    path.write_bytes({"half": data[: len(data) // 2], "minus100": data[:-100], "empty": b"",
                      "random": np.random.default_rng(0).bytes(4096),
                      "text": b"hello\nworld\n"}[damage])
    with pytest.raises(CheckpointError, match=r"ckpt.pt: cannot read it as a PyTorch checkpoint"):
        VideoCLIP.from_mmpt_checkpoint(path, backbone=str(backbone_dir), trust_pickle=trust_pickle)


def test_checkpoint_path_that_is_a_directory_is_named(tmp_path: Path, backbone_dir: Path) -> None:
    with pytest.raises(CheckpointError, match="is a directory; pass the checkpoint file"):
        VideoCLIP.from_mmpt_checkpoint(tmp_path, backbone=str(backbone_dir))


# ----------------------------------------------------------------------------- saved model


@pytest.fixture()
def saved(tmp_path: Path) -> Path:
    return make_model(tmp_path / "tok").save_pretrained(tmp_path / "saved")


@pytest.mark.parametrize("damage", ["config_truncated", "config_empty", "weights_truncated",
                                    "weights_empty", "tokenizer_empty", "tokenizer_config_only"])
def test_half_written_model_dir_is_named(saved: Path, damage: str) -> None:
    if damage.startswith("config"):
        _truncate(saved / "config.json", 0.5 if damage == "config_truncated" else 0)
        where = "config.json: cannot read it"
    elif damage.startswith("weights"):
        _truncate(saved / "model.safetensors", 0.5 if damage == "weights_truncated" else 0)
        where = "model.safetensors: cannot read it"
    else:
        keep = {"tokenizer_config.json"} if damage == "tokenizer_config_only" else set()
        for file in (saved / "tokenizer").iterdir():
            if file.name not in keep:
                file.unlink()
        where = "tokenizer: incomplete tokenizer folder"
    with pytest.raises(CheckpointError, match=rf"{where}.*save or convert the model again"):
        VideoCLIP.from_pretrained(saved)


# ----------------------------------------------------------------------------- data files


def test_truncated_feature_file_is_named(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    array = rng.standard_normal((40, 512)).astype(np.float32)
    array /= np.linalg.norm(array, axis=1, keepdims=True)
    _truncate(write_features(tmp_path, "vid", array), 0.5)
    with pytest.raises(FeatureError, match="vid"):
        open_feature_store(tmp_path).load("vid")


def test_truncated_caption_and_annotation_files_are_named(tmp_path: Path) -> None:
    captions = tmp_path / "caption.json"
    captions.write_text(json.dumps({"v": {"start": [0], "end": [2], "text": ["hi"]}}))
    _truncate(captions, 0.5)
    with pytest.raises(CaptionError, match="caption.json"):
        load_captions(captions)
    didemo = tmp_path / "didemo/test_data.json"
    didemo.parent.mkdir()
    didemo.write_text(json.dumps([{"video": "a.mp4", "description": "d", "times": [[0, 0]],
                                   "annotation_id": 1, "num_segments": 6}]))
    _truncate(didemo, 0.5)
    with pytest.raises(AnnotationError, match="test_data.json: not valid JSON"):
        load_didemo(tmp_path)


def test_full_disk_during_an_atomic_write_keeps_the_old_file(tmp_path: Path, monkeypatch) -> None:
    """ENOSPC in the middle of a write: the error names the file, the old contents survive."""
    from videoclip._io import atomic_torch_save

    target = atomic_torch_save({"step": 1}, tmp_path / "state.pt")
    real_save = torch.save

    def full_disk(obj, f, *args, **kwargs):
        real_save(obj, f, *args, **kwargs)
        raise OSError(28, os.strerror(28))

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(OSError, match="No space left"):
        atomic_torch_save({"step": 2}, target)
    assert torch.load(target, weights_only=True) == {"step": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["state.pt"]


# ----------------------------------------------------------------------------- training runs
# The tiny run of tests/test_train.py: 14 steps an epoch, 2 epochs, a checkpoint every 4 steps
# and at each epoch end (steps 4 8 12 14 16 20 24 28), two kept.

KILL_POINTS = """
import json, os, signal, sys
import torch
from pathlib import Path
from videoclip.train import checkpointing, log, pretrain

point, values = sys.argv[1], json.loads(sys.argv[2])
die = lambda: os.kill(os.getpid(), signal.SIGKILL)
if point == "after_step_6":
    write = log.LogWriter.write
    def logged(self, record):
        write(self, record)
        if record.get("global_step") == 6 and record["type"] == "step":
            die()
    log.LogWriter.write = logged
elif point == "mid_checkpoint_8":  # half of trainer_state.pt of step 8 is on disk
    save = torch.save
    def half_save(obj, f, *args, **kwargs):
        if isinstance(obj, dict) and obj.get("position", {}).get("global_step") == 8:
            save(obj, f, *args, **kwargs)
            Path(f).write_bytes(Path(f).read_bytes()[: Path(f).stat().st_size // 2])
            die()
        return save(obj, f, *args, **kwargs)
    torch.save = half_save
elif point == "before_pointer_12":  # step-12 renamed into place, `latest` still says step-8
    write_text = checkpointing.atomic_write_text
    def pointer(path, text):
        if text == "step-00000012":
            die()
        return write_text(path, text)
    checkpointing.atomic_write_text = pointer
elif point == "mid_final":  # half of final/model.safetensors is on disk
    write_bytes = Path.write_bytes
    def half_write(self, data):
        if self.parent.name == "final" and ".model.safetensors" in self.name:
            write_bytes(self, data[: len(data) // 2])
            die()
        return write_bytes(self, data)
    Path.write_bytes = half_write
pretrain(values)
"""


@pytest.fixture(scope="module")
def tiny(smoke_world: Path, tiny_backbone: Path) -> tuple[Path, Path]:
    """The smoke world and a tiny random BERT over its caption words."""
    return smoke_world, tiny_backbone


@pytest.fixture(scope="module")
def reference(tiny, tmp_path_factory) -> Path:
    """An uninterrupted run: what every interrupted one must end equal to."""
    from videoclip.train import pretrain

    return pretrain(tiny_config(*tiny, tmp_path_factory.mktemp("ref") / "run"))


def _config(tiny, run_dir: Path, **overrides) -> dict:
    return tiny_config(*tiny, run_dir, **overrides)


def _steps(run_dir: Path) -> list[tuple[int, float]]:
    records = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    return [(r["global_step"], r["loss"]) for r in records if r["type"] == "step"]


def _assert_same_run(run_dir: Path, reference: Path) -> None:
    import safetensors.torch

    expected = safetensors.torch.load_file(reference / "final" / "model.safetensors")
    got = safetensors.torch.load_file(run_dir / "final" / "model.safetensors")
    assert expected.keys() == got.keys()
    assert all(torch.equal(expected[k], got[k]) for k in expected)
    assert _steps(run_dir) == _steps(reference)


def _files(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes()
            for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_sigkill_at_four_points_then_resume_equals_the_uninterrupted_run(tiny, reference,
                                                                          tmp_path):
    import signal
    import subprocess
    import sys

    run_dir = tmp_path / "run"
    values = _config(tiny, run_dir)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
           "OMP_NUM_THREADS": str(torch.get_num_threads())}  # as the reference run
    left = {  # what each kill leaves: the pointer, and a file that proves where it struck
        "after_step_6": ("step-00000004", "checkpoints/step-00000004/trainer_state.pt"),
        "mid_checkpoint_8": ("step-00000004", "checkpoints/.step-00000008.*.tmp"),
        "before_pointer_12": ("step-00000008", "checkpoints/step-00000012/trainer_state.pt"),
        "mid_final": ("step-00000028", "final/.model.safetensors.*.tmp"),
    }
    for point, (latest, evidence) in left.items():
        before = _files(run_dir / "checkpoints") if run_dir.exists() else {}
        proc = subprocess.run([sys.executable, "-c", KILL_POINTS, point, json.dumps(values)],
                              env=env, capture_output=True, text=True, timeout=600, check=False)
        assert proc.returncode == -signal.SIGKILL, (point, proc.stderr[-2000:])
        assert (run_dir / "checkpoints" / "latest").read_text() == latest, point
        assert list(run_dir.glob(evidence)), (point, evidence)
        # nothing written before is lost: each earlier checkpoint file is intact, unless the
        # run's own keep_checkpoints pruned it
        after = _files(run_dir / "checkpoints")
        assert all(after[k] == v for k, v in before.items() if k in after and "latest" not in k)
        values = {**values, "resume": True}
    from videoclip.train import pretrain

    pretrain(values)
    _assert_same_run(run_dir, reference)
    assert not list(run_dir.rglob(".*.tmp"))  # the killed writes' temporaries are gone


def test_resume_without_the_latest_pointer_keeps_every_checkpoint(tiny, reference, tmp_path):
    from videoclip.train import pretrain

    run_dir = pretrain(_config(tiny, tmp_path / "run", stop_after_steps=10))
    (run_dir / "checkpoints" / "latest").unlink()  # e.g. a copy without the small pointer file
    saved = _files(run_dir / "checkpoints")
    assert sorted({k.split("/")[0] for k in saved}) == ["step-00000004", "step-00000008"]
    pretrain(_config(tiny, run_dir, stop_after_steps=11, resume=True))
    assert {k: v for k, v in _files(run_dir / "checkpoints").items() if k in saved} == saved
    records = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    assert [r["from"] for r in records if r["type"] == "resume"] == ["step-00000008"]
    assert _steps(run_dir) == _steps(reference)[:11]


def test_resume_of_a_finished_run_without_checkpoints_is_refused(tiny, reference, tmp_path):
    import shutil

    from videoclip.train import pretrain

    run_dir = tmp_path / "run"
    shutil.copytree(reference, run_dir)
    shutil.rmtree(run_dir / "checkpoints")  # the book prunes a finished run's checkpoints
    before = _files(run_dir)
    with pytest.raises(FileExistsError, match=r"holds a finished run \(final/\) and no checkpoint"):
        pretrain(_config(tiny, run_dir, resume=True))
    assert _files(run_dir) == before


def test_failed_first_start_does_not_block_the_retry(tiny, reference, tmp_path):
    from videoclip.data.features import FeatureError
    from videoclip.train import pretrain

    run_dir = tmp_path / "run"
    with pytest.raises(FeatureError, match="feature directory not found"):
        pretrain(_config(tiny, run_dir, data_dir=str(tmp_path / "nowhere")))
    pretrain(_config(tiny, run_dir, stop_after_steps=2))  # the same command, fixed: it runs
    assert _steps(run_dir) == _steps(reference)[:2]


def test_fresh_start_refuses_a_directory_it_did_not_create(tiny, tmp_path):
    from videoclip.train import pretrain

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("my notes")
    with pytest.raises(FileExistsError, match=r"mine already holds notes.txt; pass resume=True"):
        pretrain(_config(tiny, mine))
    assert _files(mine) == {"notes.txt": b"my notes"}
    with pytest.raises(FileExistsError, match="notes.txt is a file; choose a directory"):
        pretrain(_config(tiny, mine / "notes.txt"))


@pytest.mark.parametrize("error", [OSError(28, os.strerror(28)), RuntimeError(
    "[enforce fail at inline_container.cc:672] . unexpected pos 2781696 vs 2781588")])
def test_full_disk_at_a_checkpoint_is_one_clear_error_and_keeps_the_last(tiny, tmp_path,
                                                                       monkeypatch, error):
    from videoclip import train

    run_dir = train.pretrain(_config(tiny, tmp_path / "run", stop_after_steps=4))
    saved = _files(run_dir / "checkpoints")
    real_save = torch.save

    def full(obj, f, *args, **kwargs):
        real_save(obj, f, *args, **kwargs)
        raise error

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(OSError, match=r"cannot write checkpoint .*step-00000008 .*disk full"):
        train.pretrain(_config(tiny, run_dir, resume=True))
    assert _files(run_dir / "checkpoints") == saved  # no temporary left, step-4 intact


def test_truncated_trainer_state_is_named_on_resume(tiny, tmp_path):
    from videoclip.train import pretrain

    run_dir = pretrain(_config(tiny, tmp_path / "run", stop_after_steps=4))
    _truncate(run_dir / "checkpoints" / "step-00000004" / "trainer_state.pt", 0.5)
    with pytest.raises(ValueError, match=r"step-00000004/trainer_state.pt: cannot read it .*"
                                         r"point .*latest at an earlier step"):
        pretrain(_config(tiny, run_dir, resume=True))


# ----------------------------------------------------------------------------- outputs
# Never write over what a user made: a non-empty output the command did not create is refused
# before any work, unless --overwrite (a usage error: exit 2); an unwritable --out is found
# before the evaluation (a failure: exit 1).


def _data_root(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    (root / "msrvtt").mkdir(parents=True)
    (root / "msrvtt" / "MSRVTT_JSFUSION_test.csv").write_text("key,vid_key,video_id,sentence\n")
    return root


def test_simulate_refuses_a_data_root_and_a_file(tmp_path: Path, capsys) -> None:
    from videoclip.sim.cli import main

    root = _data_root(tmp_path)
    before = _files(root)
    assert main(["simulate", "--out", str(root), "--preset", "smoke"]) == 2
    assert "is not empty (msrvtt); nothing was written" in capsys.readouterr().err
    assert _files(root) == before
    assert main(["simulate", "--out", str(root / "msrvtt" / "MSRVTT_JSFUSION_test.csv")]) == 2
    assert "is a file; name a directory" in capsys.readouterr().err
    assert main(["simulate", "--out", str(tmp_path / "new"), "--real-data",
                 str(tmp_path / "nowhere")]) == 1
    assert not (tmp_path / "new").exists()  # a failed start leaves no empty root behind


def test_convert_refuses_an_existing_model_before_reading_the_checkpoint(tmp_path, capsys):
    from videoclip.cli import main

    final = make_model(tmp_path / "tok").save_pretrained(tmp_path / "runs" / "final")
    before = _files(final)
    assert main(["convert", str(tmp_path / "none.pt"), str(final)]) == 2
    assert "out_dir" in capsys.readouterr().err and _files(final) == before


def test_evaluate_checks_out_before_the_work(tmp_path: Path, capsys, monkeypatch) -> None:
    from videoclip.cli import main

    args = ["evaluate", "msrvtt", "--model", str(tmp_path / "none"), "--data-dir", str(tmp_path)]
    (tmp_path / "outdir").mkdir()
    assert main([*args, "--out", str(tmp_path / "outdir")]) == 2
    assert "is a directory; name a file" in capsys.readouterr().err
    (tmp_path / "old.json").write_text("{}")
    assert main([*args, "--out", str(tmp_path / "old.json")]) == 2
    assert "exists; nothing was run" in capsys.readouterr().err
    assert (tmp_path / "old.json").read_text() == "{}"

    def read_only(self, data):
        raise OSError(30, os.strerror(30), str(self))

    monkeypatch.setattr(Path, "write_bytes", read_only)
    assert main([*args, "--out", str(tmp_path / "ro" / "r.json")]) == 1
    assert "cannot be written (Read-only file system); nothing was run" in capsys.readouterr().err


def test_pretrain_on_a_read_only_disk_is_one_line(tiny, tmp_path: Path, monkeypatch, capsys):
    from videoclip.cli import main

    def read_only(self, *args, **kwargs):
        raise OSError(30, os.strerror(30), str(self))

    monkeypatch.setattr(Path, "mkdir", read_only)
    world, backbone = tiny
    assert main(["pretrain", "--data_dir", str(world), "--backbone", str(backbone),
                 "--run_dir", str(tmp_path / "run")]) == 1
    line = capsys.readouterr().err
    assert line.startswith("error: [Errno 30] Read-only file system") and line.count("\n") == 1


def test_resume_may_change_where_checkpoints_fall(tiny, reference, tmp_path):
    from videoclip.train import pretrain

    run_dir = pretrain(_config(tiny, tmp_path / "run", stop_after_steps=4))
    pretrain(_config(tiny, run_dir, stop_after_steps=7, resume=True, checkpoint_every=3,
                     keep_checkpoints=3))
    assert (run_dir / "checkpoints" / "latest").read_text() == "step-00000006"
    assert _steps(run_dir) == _steps(reference)[:7]
