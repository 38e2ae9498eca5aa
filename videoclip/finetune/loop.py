"""Fine-tuning on the five downstream tasks (design §10): config, loop, per-epoch test scores.

Built on the pre-training machinery of :mod:`videoclip.train`: the same config parsing
(:class:`~videoclip.train.SectionedConfig`), torchrun setup, Adam and schedule, the update step
(:func:`~videoclip.train.step.train_step`), run directory,
atomic checkpoints (``checkpoints/step-N``, ``latest``), resume with the configuration check, and
JSON-lines log. What differs is the data (:mod:`videoclip.finetune.examples`), the loss
(:class:`~videoclip.finetune.heads.FinetuneModule`), and the end of every epoch: the model is
scored on the task's test set (and, for COIN and CrossTask, the loss on the test videos is
computed), so that both selection rules (:mod:`videoclip.finetune.selection`) can be reported.

Use it from a notebook (``finetune({...})``) or the command line::

    python -m videoclip finetune youcook2 --preset params/finetune/toy.yaml --init DIR --data_dir ROOT
    torchrun --nproc_per_node 2 -m videoclip finetune coin --preset params/finetune/paper.yaml ...

A run directory holds ``log.jsonl`` (``start``/``resume``, one ``step`` per update, one
``epoch_eval`` per epoch, ``done``), ``checkpoints/``, ``final/`` (the last epoch's model, plus
``coin_head.safetensors`` for COIN) and ``results.json`` (every epoch's test metrics, both
selections, the paper's numbers, the cost; with provenance).

Deviations (design §11.11): bf16 autocast on CUDA instead of fp16 with loss scaling;
the last partial batch of an epoch's shuffled batch order waits under DDP (each process gets
``len(batches) // world_size``); YouCook2 trains on the official JSON's training segments
(``youcook_train.pkl`` is not public).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from videoclip._yaml import load_yaml
from videoclip.data.samplers import Prefetcher
from videoclip.evaluation.common import open_store
from videoclip.evaluation.registry import BENCHMARKS
from videoclip.finetune.evaluate import evaluate_finetuned
from videoclip.finetune.examples import (
    TASKS,
    TEST_BENCHMARK,
    TrainingSet,
    WindowBatch,
    epoch_batches,
    load_training_set,
)
from videoclip.finetune.heads import COIN_CLASSES, LOSSES, CoinHead, FinetuneModule, save_head
from videoclip.finetune.selection import selections
from videoclip.model import VideoCLIP
from videoclip.paper import FINETUNED
from videoclip.provenance import write_results
from videoclip.train import (
    ConfigError,
    OptimCfg,
    RunCfg,
    SectionedConfig,
    build_optimizer,
    read_log,
    wants_bf16,
)
from videoclip.train.checkpointing import prepare_run_dir, save_checkpoint
from videoclip.train.distributed import Dist, distributed
from videoclip.train.log import LogWriter
from videoclip.train.retrieval_stage import STEP_STREAM, ReusedVectors, derived_rng
from videoclip.train.step import TrainState, train_step

__all__ = ["FinetuneConfig", "TaskCfg", "finetune", "load_preset"]

#: Where each task's files and features live under a data root.
BENCHMARK_DIR = {task: BENCHMARKS[bench].features for task, bench in TEST_BENCHMARK.items()}


@dataclass
class TaskCfg:
    """What is fine-tuned on what (design §10.1–10.5). Defaults are the original's."""

    task: str = "youcook2"  # youcook2 | msrvtt | msrvtt-qa | coin | crosstask
    init: str = ""  # the pre-trained model: a save_pretrained directory (`videoclip convert` output)
    data_dir: str = ""  # the data root (official formats; `python -m videoclip.sim simulate` writes one)
    features: str = ""  # "" = <data_dir>/<benchmark>/features
    batch_size: int = 128  # pairs per process and step (retrieval; 224 for MSR-VTT); COIN/CrossTask: 1 video
    dup: int = 20  # MSR-VTT: the video list repeated per epoch (design §10.2)
    max_items: int = 0  # keep the first N training items (before dup); 0 = all
    num_classes: int = COIN_CLASSES  # COIN's head: 778 steps + background
    crosstask_num_train: int = 30  # training videos per CrossTask task (the official split)
    eval_every_epoch: bool = True  # score the test set after every epoch (both selection rules)
    eval_batch_size: int = 64  # clips, texts or windows per forward pass when scoring
    length_buckets: int = 4  # encode retrieval batches in length buckets (issue 9); 0 = off


@dataclass
class FinetuneOptimCfg(OptimCfg):
    """design §10.0: as pre-training's Adam, 122 warm-up updates, 10 epochs (per-task presets)."""

    num_epochs: int = 10
    warmup_steps: int = 122
    loss: str = ""  # "" = the task's: t2v | v2t | token_ce | step_bce (design §10 summary)


@dataclass
class FinetuneRunCfg(RunCfg):
    run_dir: str = "runs/finetune"
    seed: int = 1  # fairseq's default seed (design §10.0)


@dataclass
class FinetuneConfig(SectionedConfig):
    """All settings of a fine-tuning run: ``task``, ``optim`` and ``run`` sections (flat keys work)."""

    WHAT = "fine-tuning"
    task: TaskCfg = field(default_factory=TaskCfg)
    optim: FinetuneOptimCfg = field(default_factory=FinetuneOptimCfg)
    run: FinetuneRunCfg = field(default_factory=FinetuneRunCfg)

    def __post_init__(self) -> None:
        tc = self.task
        if tc.task not in TASKS:
            raise ConfigError(f"task={tc.task!r}: choose one of {TASKS}")
        self.optim.loss = self.optim.loss or LOSSES[tc.task]
        allowed = {"coin": ("token_ce",), "crosstask": ("step_bce",)}.get(tc.task, ("t2v", "v2t"))
        if self.optim.loss not in allowed:
            raise ConfigError(f"loss={self.optim.loss!r} does not fit task {tc.task}: choose one "
                              f"of {allowed}")
        for key in ("batch_size", "dup", "num_classes", "crosstask_num_train", "eval_batch_size"):
            if getattr(tc, key) < 1:
                raise ConfigError(f"{key}={getattr(tc, key)} must be >= 1")
        for key in ("max_items", "length_buckets"):
            if getattr(tc, key) < 0:
                raise ConfigError(f"{key}={getattr(tc, key)} must be >= 0")
        if self.optim.num_epochs < 1 or self.run.keep_checkpoints < 1:
            raise ConfigError("num_epochs and keep_checkpoints must be >= 1")
        if self.run.precision not in ("auto", "bf16", "fp32"):
            raise ConfigError(f"precision={self.run.precision!r}: choose auto, bf16 or fp32")


def finetune(config: FinetuneConfig | Mapping[str, Any]) -> Path:
    """Fine-tune (or resume fine-tuning) a pre-trained VideoCLIP on one task. design §10.

    Args:
        config: a :class:`FinetuneConfig` or flat parameters. Under torchrun every process calls this.

    Returns:
        The run directory (``final/`` and ``results.json`` once every epoch is done).

    Raises:
        ConfigError: unknown keys, a resume with another configuration, a loss that does not fit.
        FileExistsError: ``run_dir`` holds a run and ``resume`` is off.
        FileNotFoundError: ``init`` is not a model directory.
        ValueError: too few training items for one batch per process.
        FloatingPointError: a NaN/inf loss (the last checkpoint is left as it was).
    """
    cfg = config if isinstance(config, FinetuneConfig) else FinetuneConfig.from_dict(config)
    with distributed(cfg.run.device) as ddp:
        return _run(cfg, ddp)


def _load_init(path: str) -> VideoCLIP:
    if not path:
        raise ConfigError("init is empty: point it at a pre-trained model directory "
                          "(a pre-training run's final/, or `videoclip convert` output)")
    if not (Path(path).expanduser() / "config.json").is_file():
        raise FileNotFoundError(f"{path} holds no config.json: not a save_pretrained model directory; "
                                f"use a pre-training run's final/ or `videoclip convert` output")
    return VideoCLIP.from_pretrained(Path(path).expanduser())


def _test_loss(module: FinetuneModule, test: TrainingSet, device: torch.device, use_bf16: bool,
               *, max_windows: int = 64) -> float:
    """The training loss on the test videos, in eval mode (the original's validation loss,
    design §10.0): the mean over videos of each video's loss. The windows of several videos
    share a forward pass of up to ``max_windows`` (states do not depend on the batch in eval
    mode); each video's loss is then taken from its own windows."""
    losses: list[float] = []
    pending: list[WindowBatch] = []

    def flush() -> None:
        video = torch.cat([b.video for b in pending]).to(device)
        vmask = torch.cat([b.vmask for b in pending]).to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
            states = module.model.video_token_states(video, vmask, mask_cls=True)  # (ΣW, T, D)
            for batch, part in zip(pending, states.split([len(b.video) for b in pending])):
                losses.append(float(module.window_loss(part, batch.to(device))))
        pending.clear()

    with torch.no_grad():
        for indices in test.batches:
            pending.append(test.collate(indices, rng=None))
            if sum(len(b.video) for b in pending) >= max_windows:
                flush()
        if pending:
            flush()
    return sum(losses) / len(losses)


def _epoch_eval(module: FinetuneModule, cfg: FinetuneConfig, test: TrainingSet | None,
                device: torch.device, use_bf16: bool) -> dict[str, Any]:
    """The epoch's test metrics (and test loss), without touching the training RNG streams."""
    tc = cfg.task
    started = time.perf_counter()
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        module.eval()
        results = evaluate_finetuned(tc.task, module.model, tc.data_dir, head=module.head,
                                     batch_size=tc.eval_batch_size, device=device)
        test_loss = (_test_loss(module, test, device, use_bf16, max_windows=tc.eval_batch_size)
                     if test is not None else None)
        module.train()
    metrics = {k: float(v) for k, v in results.items()
               if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return {"metrics": metrics, "test_loss": test_loss, "seconds": time.perf_counter() - started}


def _run(cfg: FinetuneConfig, ddp: Dist) -> Path:
    run_dir, ckpt, saved = prepare_run_dir(cfg, ddp)
    log = LogWriter(run_dir / "log.jsonl", ddp.is_main)
    tc = cfg.task
    model = _load_init(tc.init)
    model.length_buckets = tc.length_buckets
    torch.manual_seed(cfg.run.seed)  # COIN's new head: the same on every rank
    hidden_size = model.config.bert["hidden_size"]
    head = CoinHead(hidden_size, tc.num_classes) if cfg.optim.loss == "token_ce" else None
    module = FinetuneModule(model, cfg.optim.loss, head)
    store = open_store(tc.data_dir, BENCHMARK_DIR[tc.task], tc.features or None)
    options = {"batch_size": tc.batch_size, "dup": tc.dup, "max_items": tc.max_items,
               "crosstask_num_train": tc.crosstask_num_train}
    data = load_training_set(tc.task, tc.data_dir, store, model.tokenize, **options)
    test = (load_training_set(tc.task, tc.data_dir, store, model.tokenize, split="test",
                              **{**options, "max_items": 0})
            if tc.task in ("coin", "crosstask") and tc.eval_every_epoch and ddp.is_main else None)
    if tc.task == "coin":
        top = max((seg.label_id for item in data.items for seg in item.video.segments), default=0)
        if top >= tc.num_classes:
            raise ConfigError(f"COIN step id {top} does not fit num_classes={tc.num_classes} "
                              f"(ids 1..{tc.num_classes - 1}, 0 = background); raise num_classes")
    steps_per_epoch = len(data.batches) // ddp.world_size
    if steps_per_epoch < 1:
        raise ValueError(f"{len(data.items)} {tc.task} training items make {len(data.batches)} "
                         f"batches, too few for one per process ({ddp.world_size}); lower "
                         f"batch_size or use fewer processes")
    total_steps = cfg.optim.total_steps or cfg.optim.num_epochs * steps_per_epoch
    module.to(ddp.device)
    if cfg.run.compile:  # in place: the state dict keeps its names
        for tower in {model.text_encoder, model.video_tower}:
            tower.compile(dynamic=True)
    state = TrainState(module, *build_optimizer(module, cfg.optim, total_steps))
    torch.manual_seed(cfg.run.seed * 7919 + ddp.rank + 1)  # dropout: a stream per rank
    use_bf16 = wants_bf16(cfg.run.precision, ddp.device)

    if ckpt is not None and saved is not None:
        state.restore(ckpt, saved, ddp)
        log.write({"type": "resume", "from": ckpt.name, "epoch": state.epoch,
                   "step": state.step_in_epoch, "global_step": state.global_step})
    else:
        log.write({"type": "start", "config": cfg.to_dict(), "world_size": ddp.world_size,
                   "device": str(ddp.device), "num_items": len(data.items),
                   "num_batches": len(data.batches), "steps_per_epoch": steps_per_epoch,
                   "total_steps": total_steps, "skipped": data.skipped})

    # COIN leaves the text tower without gradients (design §10.4): DDP must be told.
    unused = cfg.optim.loss == "token_ce"
    train_module = (DistributedDataParallel(module, find_unused_parameters=unused)
                    if ddp.enabled else module)
    no_reuse = ReusedVectors([], enabled=False)  # pre-training's retrieval vectors: none here
    bar = tqdm(total=cfg.optim.num_epochs * steps_per_epoch, initial=state.global_step,
               desc=f"finetune {tc.task}", disable=not (cfg.run.progress and ddp.is_main),
               dynamic_ncols=True)

    def save() -> None:
        save_checkpoint(run_dir, module, state.optimizer, state.scheduler, state.position(), cfg,
                        ddp, log.lines, no_reuse)

    try:
        while state.epoch < cfg.optim.num_epochs:
            my_batches = epoch_batches(data.batches, seed=cfg.run.seed, epoch=state.epoch,
                                       rank=ddp.rank, world_size=ddp.world_size)
            module.train()

            def build(step: int, epoch: int = state.epoch, my_batches: list = my_batches) -> Any:
                rng = derived_rng(cfg.run.seed, epoch, STEP_STREAM, step, ddp.rank)
                return data.collate(my_batches[step], rng)

            steps = range(state.step_in_epoch, steps_per_epoch)
            loader = Prefetcher(build, steps) if cfg.run.prefetch else None
            try:
                started = time.perf_counter()
                for batch in loader if loader is not None else map(build, steps):
                    record = train_step(state, train_module, _to(batch, ddp.device),
                                        lambda loss, _: (loss, {}), grad_clip=cfg.optim.grad_clip,
                                        use_bf16=use_bf16, ddp=ddp, run_dir=run_dir)
                    now = time.perf_counter()
                    record["seconds"] = now - started
                    log.write(record)
                    started = now
                    bar.update(1)
                    bar.set_postfix(loss=f"{record['loss']:.3f}", lr=f"{record['lr']:.2e}")
                    if state.step_in_epoch == steps_per_epoch:
                        if tc.eval_every_epoch and ddp.is_main:
                            scores = _epoch_eval(module, cfg, test, ddp.device, use_bf16)
                            log.write({"type": "epoch_eval", "epoch": state.epoch + 1,
                                       "global_step": state.global_step, **scores})
                        state.epoch, state.step_in_epoch = state.epoch + 1, 0
                        save()
                        started = time.perf_counter()
                    elif (cfg.run.checkpoint_every
                          and state.global_step % cfg.run.checkpoint_every == 0):
                        save()
                    if cfg.run.stop_after_steps and state.global_step >= cfg.run.stop_after_steps:
                        return run_dir  # as if killed here: nothing more is written
            finally:
                if loader is not None:
                    loader.close()
    finally:
        bar.close()
    if ddp.is_main:
        model.save_pretrained(run_dir / "final")
        if head is not None:
            save_head(head, run_dir / "final")
        write_results(run_dir / "results.json", _results(cfg, run_dir, data), config=cfg.to_dict())
        log.write({"type": "done", "global_step": state.global_step})
    ddp.barrier()
    return run_dir


def _to(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, dict):
        return {k: v.to(device) for k, v in batch.items()}
    return batch.to(device)


def _results(cfg: FinetuneConfig, run_dir: Path, data: TrainingSet) -> dict[str, Any]:
    """Every epoch's test scores, both selections, the paper's numbers and the run's cost."""
    records = read_log(run_dir)
    epochs = [{k: r[k] for k in ("epoch", "metrics", "test_loss")}
              for r in records if r["type"] == "epoch_eval"]
    steps = [r for r in records if r["type"] == "step"]
    tc = cfg.task
    return {
        "task": tc.task,
        "loss": cfg.optim.loss,
        "epochs": epochs,
        "selection": selections(tc.task, epochs) if epochs else None,
        "paper": FINETUNED[tc.task],
        "cost": {"steps": len(steps), "train_seconds": sum(r["seconds"] for r in steps),
                 "eval_seconds": sum(r["seconds"] for r in records if r["type"] == "epoch_eval"),
                 "num_items": len(data.items), "batches_per_epoch": len(data.batches)},
        "first_loss": steps[0]["loss"] if steps else None,
        "last_epoch_mean_loss": (sum(r["loss"] for r in steps if r["epoch"] == steps[-1]["epoch"])
                                 / sum(1 for r in steps if r["epoch"] == steps[-1]["epoch"])
                                 if steps else None),
        "skipped": data.skipped,
    }


def load_preset(path: str | Path, overrides: Mapping[str, Any]) -> FinetuneConfig:
    """A fine-tuning preset: shared keys at the top, per-task keys under ``tasks: {task: {...}}``;
    the task's section, then ``overrides`` (flat, including ``task``), go on top."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"preset {path} not found")
    values = load_yaml(path.read_text(encoding="utf-8")) or {}
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: a preset must be a mapping of parameters")
    per_task = values.pop("tasks", {}) or {}
    task = overrides.get("task", values.get("task", TaskCfg.task))
    if task not in per_task and per_task:
        raise ConfigError(f"{path}: no section for task {task!r} under tasks: (has {sorted(per_task)})")
    section = {**values, **per_task.get(task, {}), "task": task}  # the task first: it sets the loss
    flat = FinetuneConfig.from_dict(section, source=str(path)).flat()
    return FinetuneConfig.from_dict({**flat, **overrides}, source=f"{path} + overrides")
