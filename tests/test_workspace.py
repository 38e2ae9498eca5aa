"""Notebook artefacts: worlds cached by settings, real-data paths explicit."""

from __future__ import annotations

from pathlib import Path

import pytest

from videoclip.book import workspace


def test_real_data_dir_expands_and_rejects_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("VIDEOCLIP_DATA_DIR", str(tmp_path))
    assert workspace.real_data_dir("$VIDEOCLIP_DATA_DIR") == tmp_path.resolve()
    monkeypatch.delenv("VIDEOCLIP_DATA_DIR")
    assert workspace.real_data_dir("$VIDEOCLIP_DATA_DIR") is None  # unset → procedural taxonomy
    assert workspace.real_data_dir("") is None
    with pytest.raises(FileNotFoundError, match="not a directory"):
        workspace.real_data_dir(str(tmp_path / "missing"))


def test_settings_key_is_stable_and_sensitive():
    assert workspace.settings_key({"a": 1, "b": 2}) == workspace.settings_key({"b": 2, "a": 1})
    assert workspace.settings_key({"a": 1}) != workspace.settings_key({"a": 2})


def test_ensure_world_is_written_once_and_reused(tmp_path):
    first = workspace.ensure_world(tmp_path, preset="smoke", seed=3)
    stamp = (first / "world.json").stat().st_mtime_ns
    again = workspace.ensure_world(tmp_path, preset="smoke", seed=3)
    assert again == first and (again / "world.json").stat().st_mtime_ns == stamp
    other = workspace.ensure_world(tmp_path, preset="smoke", seed=4)
    assert other != first
    assert workspace.world_info(other)["seed"] == 4
    assert not list(tmp_path.glob("worlds/*.tmp"))


def test_resolve_data_root_prefers_an_explicit_root(tmp_path):
    assert workspace.resolve_data_root(str(tmp_path), work_dir=tmp_path, world_preset="smoke") == tmp_path
    with pytest.raises(FileNotFoundError, match="paper_profile"):
        workspace.resolve_data_root(str(tmp_path / "nope"), work_dir=tmp_path, world_preset="smoke")


def test_pretrain_run_dir_ignores_run_only_keys_and_rejects_typos(tmp_path):
    from videoclip.train import ConfigError

    preset = tmp_path / "preset.yaml"
    preset.write_text("backbone: minilm-l6\nnum_epochs: 2\n")
    base = workspace.pretrain_run_dir(tmp_path, tmp_path, preset=preset)
    assert base == workspace.pretrain_run_dir(tmp_path, tmp_path, preset=preset, progress=False)
    assert base != workspace.pretrain_run_dir(tmp_path, tmp_path, preset=preset, seed=1)
    assert base.parent == (tmp_path / "runs").resolve() and base.name.startswith("pretrain-")
    with pytest.raises(ConfigError, match="num_epoch"):
        workspace.pretrain_run_dir(tmp_path, tmp_path, preset=preset, num_epoch=3)


@pytest.mark.slow
def test_ensure_pretrained_trains_once_and_keeps_only_the_final_model(tmp_path):
    from videoclip.model import VideoCLIP

    world = workspace.ensure_world(tmp_path, preset="smoke", seed=0)
    preset = Path(__file__).resolve().parent.parent / "params/pretrain/smoke.yaml"
    settings = {"max_videos": 16, "warmup_steps": 1, "progress": False}
    run = workspace.ensure_pretrained(tmp_path, world, preset=preset, prune_when_done=False, **settings)
    assert list((run / "checkpoints").glob("step-*"))  # written while training, for a resume
    weights = run / "final" / "model.safetensors"
    trained = weights.stat().st_mtime_ns
    again = workspace.ensure_pretrained(tmp_path, world, preset=preset, **settings)
    assert again == run and weights.stat().st_mtime_ns == trained  # reused, not retrained
    assert not (run / "checkpoints").exists()  # pruned once the run is done
    VideoCLIP.from_pretrained(run / "final")


def test_run_costs_add_up_the_logged_steps_and_retrieval_stages(tmp_path):
    import json

    run = tmp_path / "runs" / "ablation-0123456789"
    run.mkdir(parents=True)
    start = {"type": "start", "world_size": 2,
             "config": {"data": {"num_video_per_batch": 4, "clip_per_video": 2}}}
    records = [start, {"type": "retrieval", "seconds": 3.0}, {"type": "step", "pairs_per_s": 8.0},
               {"type": "step", "pairs_per_s": 4.0}, {"type": "retrieval", "seconds": 1.5}]
    (run / "log.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    [cost] = workspace.run_costs(tmp_path)
    # 16 pairs a step (4 videos x 2 clips x 2 processes): 2 s + 4 s of steps
    assert cost == {"run": "ablation-0123456789", "kind": "ablation", "steps": 2, "train_s": 6.0,
                    "retrieval_s": 4.5}
    finetuned = tmp_path / "runs" / "finetune-coin-0123456789"
    finetuned.mkdir()
    (finetuned / "log.jsonl").write_text(json.dumps({"type": "start", "config": {"task": "coin"}}) + "\n")
    assert len(workspace.run_costs(tmp_path)) == 1  # unfinished: left out
    (finetuned / "results.json").write_text(json.dumps(
        {"results": {"cost": {"steps": 7, "train_seconds": 2.5, "eval_seconds": 9.0}}}))
    assert workspace.run_costs(tmp_path)[1] == {"run": "finetune-coin-0123456789", "kind": "finetune",
                                                "steps": 7, "train_s": 2.5, "retrieval_s": 0.0}
    (run / "log.jsonl").write_text(json.dumps({"type": "step", "pairs_per_s": 1.0}) + "\n")
    with pytest.raises(ValueError, match="no start record"):
        workspace.run_costs(tmp_path)


def test_presets_are_named():
    assert workspace.preset_path("toy") == workspace.PRESET_DIR / "toy.yaml"
    with pytest.raises(FileNotFoundError, match="name one of .*toy"):
        workspace.preset_path("tyo")
