"""Fine-tuning end to end on the simulator's smoke world with a tiny random BERT: each task
lowers its training loss, kill-and-resume gives identical weights, the command line writes
results with provenance, both selection rules, COIN's head evaluator, bad configurations."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
import torch
import torch.multiprocessing as mp
import yaml
from helpers import free_port

from videoclip.cli import main
from videoclip.data.benchmarks import load_coin
from videoclip.data.features import open_feature_store
from videoclip.evaluation.common import open_store
from videoclip.finetune.evaluate import evaluate_coin_head
from videoclip.finetune.examples import load_training_set
from videoclip.finetune.heads import HEAD_FILE, LOSSES, CoinHead, FinetuneModule, load_head
from videoclip.finetune.loop import BENCHMARK_DIR, FinetuneConfig, finetune, load_preset
from videoclip.finetune.selection import select_epoch, selections
from videoclip.model import VideoCLIP
from videoclip.train import ConfigError


@pytest.fixture(scope="module")
def world(smoke_world) -> Path:
    return smoke_world


@pytest.fixture(scope="module")
def init(tiny_backbone, tmp_path_factory) -> Path:
    """A 'pre-trained' model: the tiny BERT's towers (1 video layer), saved."""
    path = tmp_path_factory.mktemp("init") / "model"
    VideoCLIP.from_backbone(str(tiny_backbone), num_video_layers=1).save_pretrained(path)
    return path


def config(world: Path, init: Path, run_dir: Path, task: str, **overrides) -> dict:
    values = {"task": task, "init": str(init), "data_dir": str(world), "batch_size": 8, "dup": 2,
              "max_items": 6, "num_epochs": 3, "warmup_steps": 1, "lr": 1e-3, "seed": 0,
              "run_dir": str(run_dir), "progress": False, "eval_every_epoch": False,
              "eval_batch_size": 16}
    values.update(overrides)
    return values


def training_loss(module: FinetuneModule, world: Path, task: str) -> float:
    """The mean loss over every training batch, dropout off, captions drawn the same way."""
    store = open_store(world, BENCHMARK_DIR[task], None)
    data = load_training_set(task, world, store, module.model.tokenize, batch_size=8, dup=2,
                             max_items=6)
    module.eval()
    with torch.no_grad():
        losses = [float(module(data.collate(b, np.random.default_rng(0)))) for b in data.batches]
    return sum(losses) / len(losses)


@pytest.mark.slow
@pytest.mark.parametrize("task", ["youcook2", "msrvtt", "msrvtt-qa", "coin", "crosstask"])
def test_finetuning_lowers_the_training_loss(world, init, tmp_path, task):
    run_dir = finetune(config(world, init, tmp_path / "run", task))
    torch.manual_seed(0)  # the loop's seed: the same fresh head
    before_head = CoinHead(16) if task == "coin" else None
    before = FinetuneModule(VideoCLIP.from_pretrained(init), LOSSES[task], before_head)
    after_head = load_head(run_dir / "final") if task == "coin" else None
    after = FinetuneModule(VideoCLIP.from_pretrained(run_dir / "final"), LOSSES[task], after_head)
    assert training_loss(after, world, task) < training_loss(before, world, task)
    results = json.loads((run_dir / "results.json").read_text())
    assert results["results"]["task"] == task and "provenance" in results
    assert results["results"]["cost"]["steps"] > 0


def test_kill_and_resume_gives_identical_weights(world, init, tmp_path):
    values = config(world, init, tmp_path / "ref", "coin", checkpoint_every=2)
    reference = finetune(values)
    killed = {**values, "run_dir": str(tmp_path / "killed"), "stop_after_steps": 5}
    run_dir = finetune(killed)
    assert not (run_dir / "final").exists()
    assert (run_dir / "checkpoints" / "latest").read_text() == "step-00000004"
    finetune({**killed, "stop_after_steps": 0, "resume": True})
    for name in ("model.safetensors", HEAD_FILE):
        expected = safetensors.torch.load_file(reference / "final" / name)
        got = safetensors.torch.load_file(run_dir / "final" / name)
        assert expected.keys() == got.keys()
        assert all(torch.equal(expected[k], got[k]) for k in expected), name

    def losses(path):
        lines = (path / "log.jsonl").read_text().splitlines()
        return [r["loss"] for r in map(json.loads, lines) if r["type"] == "step"]

    assert losses(run_dir) == losses(reference)
    with pytest.raises(ConfigError, match="another configuration"):
        finetune({**killed, "lr": 1e-4, "resume": True})


def test_every_epoch_is_scored_and_both_rules_are_reported(world, init, tmp_path):
    run_dir = finetune(config(world, init, tmp_path / "run", "coin", num_epochs=2,
                              eval_every_epoch=True))
    results = json.loads((run_dir / "results.json").read_text())["results"]
    assert [e["epoch"] for e in results["epochs"]] == [1, 2]
    assert all(e["test_loss"] > 0 for e in results["epochs"])
    chosen = results["selection"]
    assert chosen["test_selection"]["rule"] == "lowest_test_loss"
    assert chosen["last_epoch"]["epoch"] == 2
    assert "test-set selection" in chosen["test_selection"]["label"]
    metrics = results["epochs"][-1]["metrics"]
    assert 0 <= metrics["frame_accuracy"] <= 100 and 0 <= metrics["background_baseline"] <= 100
    assert results["paper"] == {"frame_accuracy": 68.7}


def test_command_line_with_a_per_task_preset(world, init, tmp_path, capsys):
    preset = tmp_path / "preset.yaml"
    preset.write_text(yaml.safe_dump({
        "init": str(init), "data_dir": str(world), "warmup_steps": 1, "progress": False,
        "eval_batch_size": 16, "tasks": {"youcook2": {"batch_size": 8, "num_epochs": 1}}}))
    run_dir = tmp_path / "cli"
    assert main(["finetune", "youcook2", "--preset", str(preset), "--run_dir", str(run_dir)]) == 0
    assert capsys.readouterr().out.strip() == str(run_dir)
    results = json.loads((run_dir / "results.json").read_text())
    assert set(results) == {"results", "config", "provenance"}
    assert results["results"]["selection"]["test_selection"]["rule"] == "best_test_metric"
    assert results["config"]["optim"]["loss"] == "t2v"
    assert main(["finetune", "coin", "--preset", str(preset), "--run_dir", str(tmp_path / "x")]) == 2
    assert "no section for task 'coin'" in capsys.readouterr().err  # one line, no traceback


def test_parallel_runs_equal_the_runs_made_in_process(world, init, tmp_path):
    """The book's fine-tuning runs in worker processes of one thread (ensure_finetuned_runs):
    the same weights as the same runs made one by one here at one thread, then reused."""
    from videoclip.book.finetuning import ensure_finetuned_runs

    preset = tmp_path / "preset.yaml"
    preset.write_text(yaml.safe_dump({"warmup_steps": 1, "progress": False, "eval_batch_size": 16,
                                      "tasks": {"msrvtt": {"batch_size": 8, "num_epochs": 1, "max_items": 8, "dup": 2}}}))
    common = {"init": init, "data_root": world, "preset": preset}
    parallel = ensure_finetuned_runs(tmp_path / "a", ["msrvtt"], [0, 1], workers=2, **common)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        in_process = ensure_finetuned_runs(tmp_path / "b", ["msrvtt"], [0, 1], workers=0, **common)
    finally:
        torch.set_num_threads(threads)
    assert [d.name for d in parallel["msrvtt"]] == [d.name for d in in_process["msrvtt"]]
    weights = [safetensors.torch.load_file(d / "final" / "model.safetensors") for d in parallel["msrvtt"]]
    assert any(not torch.equal(weights[0][k], weights[1][k]) for k in weights[0])  # the seeds differ
    for a, b in zip(parallel["msrvtt"], in_process["msrvtt"]):
        wa = safetensors.torch.load_file(a / "final" / "model.safetensors")
        wb = safetensors.torch.load_file(b / "final" / "model.safetensors")
        assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    made = [(d / "results.json").stat().st_mtime_ns for d in parallel["msrvtt"]]
    assert ensure_finetuned_runs(tmp_path / "a", ["msrvtt"], [0, 1], workers=2, **common) == parallel
    assert [(d / "results.json").stat().st_mtime_ns for d in parallel["msrvtt"]] == made


@pytest.mark.parametrize("profile", ["smoke", "toy", "paper"])
def test_shipped_presets_parse_for_every_task(profile):
    path = Path(__file__).resolve().parent.parent / "params" / "finetune" / f"{profile}.yaml"
    for task, loss in LOSSES.items():
        cfg = load_preset(path, {"task": task})
        assert (cfg.task.task, cfg.optim.loss) == (task, loss)
    if profile == "paper":
        cfg = load_preset(path, {"task": "msrvtt"})
        assert (cfg.task.batch_size, cfg.optim.num_epochs, cfg.optim.warmup_steps) == (224, 10, 122)


def test_bad_configurations_are_clear_errors(world, init, tmp_path):
    with pytest.raises(ConfigError, match="does not fit task coin"):
        FinetuneConfig.from_dict({"task": "coin", "loss": "t2v"})
    with pytest.raises(ConfigError, match="unknown fine-tuning parameter"):
        FinetuneConfig.from_dict({"task": "coin", "grouping": "random"})
    with pytest.raises(ConfigError, match="task='didemo'"):
        FinetuneConfig.from_dict({"task": "didemo"})
    with pytest.raises(ConfigError, match="does not fit num_classes=2"):
        finetune(config(world, init, tmp_path / "c", "coin", num_classes=2))
    with pytest.raises(ConfigError, match="init is empty"):
        finetune({"task": "coin", "run_dir": str(tmp_path / "r"), "data_dir": str(tmp_path)})
    cfg = FinetuneConfig.from_dict({"task": "msrvtt-qa"})
    assert (cfg.optim.loss, cfg.optim.warmup_steps, cfg.optim.lr, cfg.optim.adam_betas) == (
        "v2t", 122, 5e-5, (0.9, 0.98))


def test_selection_rules_on_hand_made_epochs():
    records = [{"epoch": 1, "metrics": {"R@1": 10.0}, "test_loss": 2.0},
               {"epoch": 2, "metrics": {"R@1": 12.0}, "test_loss": 1.5},
               {"epoch": 3, "metrics": {"R@1": 12.0}, "test_loss": 1.5},
               {"epoch": 4, "metrics": {"R@1": 11.0}, "test_loss": 1.7}]
    assert select_epoch(records, "best_test_metric", metric="R@1")["epoch"] == 2  # ties: earliest
    assert select_epoch(records, "lowest_test_loss")["epoch"] == 2
    assert select_epoch(records, "last_epoch")["epoch"] == 4
    both = selections("youcook2", records)
    assert (both["test_selection"]["epoch"], both["last_epoch"]["epoch"]) == (2, 4)
    with pytest.raises(ValueError, match="no epoch"):
        select_epoch([], "last_epoch")


class FeaturesAsStates(torch.nn.Module):
    """A stub whose token states are the input features (D = 512)."""

    def video_token_states(self, video, vmask, *, mask_cls):
        return video


def test_coin_head_evaluator_is_the_argmax_of_the_head_over_all_classes(world):
    torch.manual_seed(0)
    head = CoinHead(512, 779)
    torch.nn.init.normal_(head.classifier.weight, std=1.0)
    torch.nn.init.normal_(head.classifier.bias, std=0.5)
    results, predictions = evaluate_coin_head(FeaturesAsStates(), head, world, progress=False)
    store = open_feature_store(world / "coin" / "features")
    coin = load_coin(world / "coin" / "COIN.json")
    expected = []
    for video in coin.videos:
        logits = torch.from_numpy(store.load(video.video_id)).float() @ head.classifier.weight.T
        expected.append((logits + head.classifier.bias).argmax(dim=1).detach().numpy())
    assert np.array_equal(predictions["pred"].to_numpy(), np.concatenate(expected))
    assert results["num_classes"] == 779 and results["paper"] == {"frame_accuracy": 68.7}
    true = predictions["true"].to_numpy()
    assert results["background_baseline"] == pytest.approx(100 * np.mean(true == 0))


def _ddp_worker(rank: int, world_size: int, port: int, values: dict) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    finetune(values)


@pytest.mark.slow
def test_ddp_two_processes_on_cpu_with_gloo(world, init, tmp_path):
    """COIN (its text tower gets no gradient: DDP must allow unused parameters), 2 processes."""
    values = config(world, init, tmp_path / "run", "coin", num_epochs=1, eval_every_epoch=True)
    mp.spawn(_ddp_worker, args=(2, free_port(), values), nprocs=2, join=True)
    lines = (tmp_path / "run" / "log.jsonl").read_text().splitlines()
    log = [json.loads(line) for line in lines]
    assert log[0]["world_size"] == 2 and log[0]["steps_per_epoch"] == 1  # 3 videos, 2 processes
    assert [r["type"] for r in log].count("epoch_eval") == 1  # rank 0 scores
    state = torch.load(tmp_path / "run" / "checkpoints" / "step-00000001" / "trainer_state.pt",
                       weights_only=True)
    assert state["world_size"] == 2 and len(state["rng"]) == 2
    assert (tmp_path / "run" / "final" / HEAD_FILE).is_file()


@pytest.mark.parametrize("task", ["coin", "crosstask"])
def test_batched_test_loss_is_the_mean_of_per_video_losses(world, init, task):
    from videoclip.finetune.loop import _test_loss

    model = VideoCLIP.from_pretrained(init)
    torch.manual_seed(0)
    module = FinetuneModule(model, LOSSES[task], CoinHead(16) if task == "coin" else None).eval()
    store = open_store(world, BENCHMARK_DIR[task], None)
    test = load_training_set(task, world, store, model.tokenize, batch_size=1, split="test")
    with torch.no_grad():
        naive = [float(module(test.collate(b, None))) for b in test.batches]
    got = _test_loss(module, test, torch.device("cpu"), False, max_windows=5)
    assert got == pytest.approx(sum(naive) / len(naive), rel=1e-5)
