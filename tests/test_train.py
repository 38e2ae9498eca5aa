"""Tests of videoclip.train: config, the loop, checkpoints, kill-and-resume, bad input, DDP.

Everything runs on the session's smoke world and tiny random BERT (``smoke_world``,
``tiny_backbone`` in conftest.py; no MiniLM download or load), with groups of 4 videos x 2 clips.
"""

from __future__ import annotations

import json
import math
import os
import socket
from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
import torch
import torch.multiprocessing as mp
import yaml
from helpers import tiny_config

from videoclip import loss as losses
from videoclip.cli import main
from videoclip.model import VideoCLIP
from videoclip.train import ConfigError, PretrainConfig, RunLog, pretrain, read_log


def final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return safetensors.torch.load_file(run_dir / "final" / "model.safetensors")


# ---------------------------------------------------------------------------------- config


def test_config_flat_and_sectioned_and_paper_defaults():
    cfg = PretrainConfig.from_dict(
        {"lr": 1e-4, "retrieval": {"grouping": "random"}, "adam_betas": [0.8, 0.9]}
    )
    assert (
        cfg.optim.lr == 1e-4
        and cfg.retrieval.grouping == "random"
        and cfg.optim.adam_betas == (0.8, 0.9)
    )
    paper = PretrainConfig()
    # design §6 and §4-5
    assert (
        paper.optim.lr,
        paper.optim.adam_betas,
        paper.optim.adam_eps,
        paper.optim.weight_decay,
    ) == (5e-5, (0.9, 0.98), 1e-8, 0.0)
    assert (paper.optim.warmup_steps, paper.optim.grad_clip, paper.optim.num_epochs) == (
        1000,
        2.0,
        25,
    )
    assert (
        paper.data.clip_per_video,
        paper.data.num_video_per_batch,
        paper.retrieval.num_neighbours,
    ) == (16, 32, 64)
    assert (
        PretrainConfig.from_dict(paper.flat()) == paper == PretrainConfig.from_dict(paper.to_dict())
    )


def test_config_rejects_unknown_keys_and_bad_values(tmp_path):
    with pytest.raises(ConfigError, match=r"\['lrr', 'optim.bogus'\]"):
        PretrainConfig.from_dict({"lrr": 1, "optim": {"bogus": 2}})
    with pytest.raises(ConfigError, match="num_epochs='3': expected int"):
        PretrainConfig.from_dict({"num_epochs": "3"})
    with pytest.raises(ConfigError, match="resume=1: expected bool"):
        PretrainConfig.from_dict({"resume": 1})
    with pytest.raises(ConfigError, match="grouping='clusters'"):
        PretrainConfig.from_dict({"grouping": "clusters"})
    with pytest.raises(ConfigError, match="num_neighbours=4 must be >= num_video_per_batch - 1"):
        PretrainConfig.from_dict({"num_neighbours": 4})
    preset = tmp_path / "p.yaml"
    preset.write_text(yaml.safe_dump({"optim": {"lr": 1e-3}, "sampler": "exact"}))
    cfg = PretrainConfig.from_yaml(preset, {"lr": 2e-3})
    assert cfg.optim.lr == 2e-3 and cfg.data.sampler == "exact"
    preset.write_text(yaml.safe_dump({"learning_rate": 1e-3}))
    with pytest.raises(
        ConfigError, match=r"p.yaml: unknown pre-training parameter\(s\) \['learning_rate'\]"
    ):
        PretrainConfig.from_yaml(preset)


# ---------------------------------------------------------------------------------- the loop


def test_pretrain_logs_every_step_and_retrieval_every_epoch(smoke_world, tiny_backbone, tmp_path):
    run_dir = pretrain(tiny_config(smoke_world, tiny_backbone, tmp_path / "run"))
    log = read_log(run_dir)
    start = log[0]
    assert start["type"] == "start" and start["steps_per_epoch"] == 14 and start["num_videos"] == 59
    steps = [r for r in log if r["type"] == "step"]
    assert [r["global_step"] for r in steps] == list(range(1, 29))
    assert all(np.isfinite(r["loss"]) and r["pairs_per_s"] > 0 for r in steps)
    # constant embeddings score 2 ln B on a batch of B = 8 pairs
    np.testing.assert_allclose([r["chance_loss"] for r in steps], 2 * math.log(8), rtol=1e-6)
    # warm-up then linear decay to 0 (transformers' polynomial schedule, power 1)
    expected_lr = [1e-3 * (s / 3 if s < 3 else (28 - s) / (28 - 3)) for s in range(28)]
    np.testing.assert_allclose([r["lr"] for r in steps], expected_lr, rtol=1e-6, atol=1e-12)
    retrieval = [r for r in log if r["type"] == "retrieval"]
    assert [r["epoch"] for r in retrieval] == [0, 1]  # every epoch, the first included
    for record in retrieval:
        assert record["num_groups"] == 14 and record["mean_group_size"] == 4
        assert 0 <= record["same_task_share"] <= 1 and record["random_groups_same_task_share"] >= 0
    assert log[-1]["type"] == "done"
    model = VideoCLIP.from_pretrained(run_dir / "final")
    assert model.config.num_video_layers == 1
    # the epoch-end checkpoints exist, the older ones pruned to keep_checkpoints=2
    assert sorted(p.name for p in (run_dir / "checkpoints").glob("step-*")) == [
        "step-00000024",
        "step-00000028",
    ]
    assert (run_dir / "checkpoints" / "latest").read_text() == "step-00000028"


def test_kill_mid_epoch_and_resume_gives_bit_identical_weights(smoke_world, tiny_backbone, tmp_path):
    reference = pretrain(tiny_config(smoke_world, tiny_backbone, tmp_path / "ref"))
    # killed after global step 18 (epoch 1, step 4 of 14); the last checkpoint is step 16
    killed = tiny_config(smoke_world, tiny_backbone, tmp_path / "killed", stop_after_steps=18)
    run_dir = pretrain(killed)
    assert not (run_dir / "final").exists()
    assert (run_dir / "checkpoints" / "latest").read_text() == "step-00000016"
    # a save killed after its rename but before `latest` moved leaves an orphan: cleaned up
    (run_dir / "checkpoints" / "step-00000020").mkdir()
    pretrain({**killed, "stop_after_steps": 0, "resume": True})
    expected, got = final_weights(reference), final_weights(run_dir)
    assert expected.keys() == got.keys()
    for key in expected:
        assert torch.equal(expected[key], got[key]), key
    # the log holds each step once, with the uninterrupted run's losses
    ref_steps = [r for r in read_log(reference) if r["type"] == "step"]
    new_steps = [r for r in read_log(run_dir) if r["type"] == "step"]
    assert [r["loss"] for r in new_steps] == [r["loss"] for r in ref_steps]
    assert [r["type"] for r in read_log(run_dir)].count("retrieval") == 2


def test_resume_with_another_config_is_an_error_and_changes_nothing(smoke_world, tiny_backbone, tmp_path):
    values = tiny_config(smoke_world, tiny_backbone, tmp_path / "run", stop_after_steps=5)
    run_dir = pretrain(values)
    before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    with pytest.raises(ConfigError, match=r"lr: checkpoint 0.001 vs now 0.002"):
        pretrain({**values, "lr": 2e-3, "resume": True})
    with pytest.raises(FileExistsError, match="pass resume=True"):
        pretrain(values)
    assert {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()} == before


def test_nan_loss_is_a_clear_error_and_keeps_the_last_checkpoint(
    smoke_world, tiny_backbone, tmp_path, monkeypatch
):
    calls = {"n": 0}
    real_loss = losses.contrastive_loss

    def loss_going_nan(video_emb, text_emb):
        calls["n"] += video_emb.requires_grad  # the training loss, not the logged chance level
        loss = real_loss(video_emb, text_emb)
        return loss * float("nan") if calls["n"] == 6 else loss

    monkeypatch.setattr(losses, "contrastive_loss", loss_going_nan)
    run_dir = tmp_path / "run"
    with pytest.raises(
        FloatingPointError, match=r"loss is nan at epoch 0, step 5 \(global step 6\)"
    ):
        pretrain(tiny_config(smoke_world, tiny_backbone, run_dir))
    assert (run_dir / "checkpoints" / "latest").read_text() == "step-00000004"
    assert not (run_dir / "final").exists()
    assert max(r["global_step"] for r in read_log(run_dir) if r["type"] == "step") == 5


def test_too_few_videos_for_a_group_is_a_clear_error(smoke_world, tiny_backbone, tmp_path):
    with pytest.raises(ValueError, match="3 usable training videos are too few for one group of 4"):
        pretrain(tiny_config(smoke_world, tiny_backbone, tmp_path / "run", max_videos=3))


@pytest.mark.parametrize(
    "overrides",
    [
        {"grouping": "random"},
        {"grouping": "nearest"},
        {"first_32s": True},
        {"sampler": "milnce", "loss": "mil_nce"},
    ],
)
def test_ablation_variants_run(smoke_world, tiny_backbone, tmp_path, overrides):
    run_dir = pretrain(
        tiny_config(smoke_world, tiny_backbone, tmp_path / "run", stop_after_steps=2, **overrides)
    )
    log = read_log(run_dir)
    retrieval = next(r for r in log if r["type"] == "retrieval")
    assert retrieval["grouping"] == overrides.get("grouping", "retrieval")
    assert retrieval["first_32s"] == overrides.get("first_32s", False)
    steps = [r for r in log if r["type"] == "step"]
    assert all(np.isfinite(r["loss"]) and np.isfinite(r["chance_loss"]) for r in steps)
    if overrides.get("sampler") != "milnce":
        assert steps[0]["chance_loss"] == pytest.approx(2 * math.log(8))


def test_the_loss_is_named_and_must_match_the_sampler():
    assert PretrainConfig.from_dict({}).optim.loss == "contrastive"
    for bad in ({"sampler": "milnce"}, {"loss": "mil_nce"}):
        with pytest.raises(ConfigError, match="MIL-NCE loss scores the bags"):
            PretrainConfig.from_dict(bad)
    with pytest.raises(ConfigError, match="loss"):
        PretrainConfig.from_dict({"loss": "hinge"})


def test_clustered_groups_share_tasks_more_than_random_groups(smoke_world, tiny_backbone, tmp_path):
    """The retrieval stage runs on the untrained model here; even so the groups come out harder
    than random ones on the simulated world (videos of one task share scenes and objects)."""
    run_dir = pretrain(
        tiny_config(
            smoke_world, tiny_backbone, tmp_path / "run", stop_after_steps=1, num_epochs=1, retrieval_clips=4
        )
    )
    stats = next(r for r in read_log(run_dir) if r["type"] == "retrieval")
    assert stats["same_task_share"] > stats["random_groups_same_task_share"]


def test_command_line(smoke_world, tiny_backbone, tmp_path, capsys):
    preset = tmp_path / "tiny.yaml"
    preset.write_text(yaml.safe_dump(tiny_config(smoke_world, tiny_backbone, tmp_path / "run")))
    assert main(["pretrain", "--preset", str(preset), "--num_epochs", "1", "--stop_after_steps=3"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "run")
    assert main(["pretrain", "--preset", str(preset), "--num_epochs", "1", "--resume"]) == 0
    assert (tmp_path / "run" / "final" / "model.safetensors").is_file()
    assert main(["pretrain", "--preset", str(preset), "--bogus", "1"]) == 2
    assert "bogus" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="bogus"):
        main(["--debug", "pretrain", "--preset", str(preset), "--bogus", "1"])


# ---------------------------------------------------------------------------------- DDP


def _ddp_worker(rank: int, world_size: int, port: int, values: dict) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(world_size),
        LOCAL_RANK=str(rank),
    )
    torch.set_num_threads(1)
    pretrain(values)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_ddp_two_processes_on_cpu_with_gloo(smoke_world, tiny_backbone, tmp_path):
    values = tiny_config(smoke_world, tiny_backbone, tmp_path / "run", num_epochs=1, checkpoint_every=0)
    mp.spawn(_ddp_worker, args=(2, _free_port(), values), nprocs=2, join=True)
    log = read_log(tmp_path / "run")
    assert log[0]["world_size"] == 2 and log[0]["steps_per_epoch"] == 7
    steps = [r for r in log if r["type"] == "step"]
    assert len(steps) == 7 and all(r["pairs_per_s"] > 0 for r in steps)
    retrieval = next(r for r in log if r["type"] == "retrieval")
    assert retrieval["num_groups"] == 14  # one global index over both ranks' videos
    state = torch.load(
        tmp_path / "run" / "checkpoints" / "step-00000007" / "trainer_state.pt", weights_only=True
    )
    assert state["world_size"] == 2 and len(state["rng"]) == 2
    VideoCLIP.from_pretrained(tmp_path / "run" / "final")


def test_run_log_splits_the_records_by_type(tmp_path):
    records = [{"type": "start", "world_size": 2, "config": {"data": {"num_video_per_batch": 4,
                                                                      "clip_per_video": 3}}},
               {"type": "retrieval", "epoch": 0}, {"type": "step", "loss": 1.0},
               {"type": "step", "loss": 0.5}, {"type": "done"}]
    (tmp_path / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    log = RunLog.read(tmp_path)
    assert log.start is log.records[0] and log.pairs_per_step == 24
    assert [r["loss"] for r in log.steps] == [1.0, 0.5] and log.retrieval == [records[1]]
    (tmp_path / "log.jsonl").write_text(json.dumps({"type": "step"}) + "\n")
    with pytest.raises(ValueError, match="no start record"):
        _ = RunLog.read(tmp_path).start
