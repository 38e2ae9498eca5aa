"""The training loop: :func:`pretrain` runs (or resumes) a run; one optimisation step per group."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm
from transformers import get_polynomial_decay_schedule_with_warmup

from videoclip.data.samplers import ClipSampler, Prefetcher, make_batch
from videoclip.loss import LOSSES
from videoclip.model import VideoCLIP
from videoclip.train.checkpointing import prepare_run_dir, save_checkpoint
from videoclip.train.config import ConfigError, ModelCfg, OptimCfg, PretrainConfig
from videoclip.train.data import load_data
from videoclip.train.distributed import Dist, distributed
from videoclip.train.log import LogWriter
from videoclip.train.retrieval_stage import STEP_STREAM, ReusedVectors, derived_rng, retrieval_stage
from videoclip.train.step import TrainState, train_step


def build_model(cfg: ModelCfg) -> VideoCLIP:
    """The untrained model of a model config (both towers from its backbone, design §1)."""
    model = VideoCLIP.from_backbone(
        cfg.backbone,
        num_video_layers=cfg.num_video_layers,
        shared_towers=cfg.shared_towers,
        pooling=cfg.pooling,
        num_text_layers=cfg.num_text_layers,
        attn_implementation=cfg.attn_implementation,
    )
    model.length_buckets = cfg.length_buckets
    return model


def build_optimizer(
    model: torch.nn.Module, cfg: OptimCfg, total_steps: int
) -> tuple[torch.optim.Adam, Any]:
    """Adam and its schedule (design §6, §10.0): linear warm-up over ``warmup_steps``, then
    polynomial (power 1) decay to ``lr_end`` at ``total_steps``, as fairseq's ``polynomial_decay``."""
    if total_steps <= cfg.warmup_steps:
        raise ConfigError(
            f"warmup_steps={cfg.warmup_steps} must be below the run's {total_steps} total "
            f"steps; lower warmup_steps or train longer (num_epochs, total_steps)"
        )
    optimizer = torch.optim.Adam(
        model.parameters(),
        lr=cfg.lr,
        betas=cfg.adam_betas,
        eps=cfg.adam_eps,
        weight_decay=cfg.weight_decay,
        fused=cfg.fused_optimizer,
    )
    scheduler = get_polynomial_decay_schedule_with_warmup(
        optimizer, num_warmup_steps=cfg.warmup_steps, num_training_steps=total_steps,
        lr_end=cfg.lr_end, power=1.0)
    return optimizer, scheduler


def wants_bf16(precision: str, device: torch.device) -> bool:
    """Whether to autocast to bf16: ``"auto"`` does on CUDA only (on a CPU without AMX bf16
    matrix products measured slower than fp32, bench/RESULTS.md)."""
    return precision == "bf16" or (precision == "auto" and device.type == "cuda")


def _loss(video_emb: torch.Tensor, text_emb: torch.Tensor, batch: Any, name: str) -> torch.Tensor:
    return LOSSES[name](video_emb.float(), text_emb.float(), batch)


def pretrain(config: PretrainConfig | Mapping[str, Any]) -> Path:
    """Run (or resume) VideoCLIP pre-training. Paper: §3, Algorithm 1; design §4–6.

    Args:
        config: a :class:`PretrainConfig` or flat notebook parameters (see
            :meth:`PretrainConfig.from_dict`). Under ``torchrun`` every process calls this.

    Returns:
        The run directory: ``log.jsonl``, ``checkpoints/``, and ``final/`` (the trained model,
        ``VideoCLIP.from_pretrained`` reads it) once all epochs are done.

    Raises:
        ConfigError: unknown keys, or a resume with another configuration.
        FileExistsError: ``run_dir`` holds a run and ``resume`` is off.
        ValueError: too few training videos for one group per process.
        FloatingPointError: a NaN/inf loss (the last checkpoint is left as it was).
    """
    cfg = config if isinstance(config, PretrainConfig) else PretrainConfig.from_dict(config)
    with distributed(cfg.run.device) as ddp:
        return _run(cfg, ddp)


def _model_and_data(cfg: PretrainConfig, ddp: Dist) -> tuple[VideoCLIP, Any, int]:
    """The model (on the device, compiled when asked), the training corpus, steps per epoch."""
    torch.manual_seed(cfg.run.seed)  # the video MLP's initial weights: the same on every rank
    model = build_model(cfg.model)
    data = load_data(cfg.data, model.tokenizer, ddp)
    group_size = cfg.data.num_video_per_batch
    steps_per_epoch = len(data.video_ids) // group_size // ddp.world_size
    if steps_per_epoch < 1:
        raise ValueError(
            f"{len(data.video_ids)} usable training videos are too few for one group of "
            f"{group_size} (num_video_per_batch) per process ({ddp.world_size} processes); add "
            f"videos or lower num_video_per_batch (data report: {data.report})"
        )
    model.to(ddp.device)
    if cfg.run.compile:  # in place: the state dict keeps its names
        for tower in {model.text_encoder, model.video_tower}:  # one module when shared
            tower.compile(dynamic=True)
    return model, data, steps_per_epoch


def _run(cfg: PretrainConfig, ddp: Dist) -> Path:
    run_dir, ckpt, saved = prepare_run_dir(cfg, ddp)
    log = LogWriter(run_dir / "log.jsonl", ddp.is_main)

    model, data, steps_per_epoch = _model_and_data(cfg, ddp)
    total_steps = cfg.optim.total_steps or cfg.optim.num_epochs * steps_per_epoch
    state = TrainState(model, *build_optimizer(model, cfg.optim, total_steps))
    torch.manual_seed(cfg.run.seed * 7919 + ddp.rank + 1)  # dropout: a stream per rank

    groups = None
    use_bf16 = wants_bf16(cfg.run.precision, ddp.device)
    reuse = ReusedVectors(data.video_ids, enabled=cfg.retrieval.retrieval_source == "reuse")
    if ckpt is not None and saved is not None:
        groups = state.restore(ckpt, saved, ddp)["groups"]
        reuse.load_state(saved.get("reuse"), ddp.rank)
        log.write({"type": "resume", "from": ckpt.name, "epoch": state.epoch,
                   "step": state.step_in_epoch, "global_step": state.global_step})
    else:
        log.write({"type": "start", "config": cfg.to_dict(), "world_size": ddp.world_size,
                   "device": str(ddp.device), "num_videos": len(data.video_ids),
                   "steps_per_epoch": steps_per_epoch, "total_steps": total_steps,
                   "data": data.report})

    train_model: torch.nn.Module = DistributedDataParallel(model) if ddp.enabled else model
    sampler = ClipSampler(kind=cfg.data.sampler)
    pairs_per_step = cfg.data.num_video_per_batch * cfg.data.clip_per_video * ddp.world_size
    every = cfg.run.checkpoint_every
    bar = tqdm(total=cfg.optim.num_epochs * steps_per_epoch, initial=state.global_step,
               desc="pretrain", disable=not (cfg.run.progress and ddp.is_main), dynamic_ncols=True)

    def loss_of(output: tuple[torch.Tensor, ...], batch: Any) -> tuple[torch.Tensor, dict]:
        video_emb, text_emb = output
        loss = _loss(video_emb, text_emb, batch, cfg.optim.loss)
        # The loss if every clip and text embedded to one vector: a collapsed run sits here.
        zeros = video_emb.new_zeros(len(video_emb), 1), text_emb.new_zeros(len(text_emb), 1)
        chance_loss = float(_loss(*zeros, batch, cfg.optim.loss))
        reuse.add(batch.video_ids, video_emb, text_emb)
        return loss, {"chance_loss": chance_loss}

    def save() -> None:
        position = {**state.position(), "groups": groups}
        save_checkpoint(run_dir, model, state.optimizer, state.scheduler, position, cfg, ddp,
                        log.lines, reuse)

    try:
        while state.epoch < cfg.optim.num_epochs:
            if groups is None:
                groups, stats = retrieval_stage(model, data, cfg, state.epoch, ddp, reuse, use_bf16)
                log.write({"type": "retrieval", "epoch": state.epoch,
                           "global_step": state.global_step, **stats})
            my_groups = groups[ddp.rank :: ddp.world_size][:steps_per_epoch]
            model.train()

            def build(step: int, epoch: int = state.epoch, my_groups: list = my_groups) -> Any:
                rng = derived_rng(cfg.run.seed, epoch, STEP_STREAM, step, ddp.rank)
                return make_batch(my_groups[step], data.store, data.token_cache,
                                  clip_per_video=cfg.data.clip_per_video, sampler=sampler, rng=rng)

            steps = range(state.step_in_epoch, steps_per_epoch)
            loader = (Prefetcher(build, steps, pin_memory=ddp.device.type == "cuda")
                      if cfg.run.prefetch else None)
            try:
                started = time.perf_counter()
                for batch in loader if loader is not None else map(build, steps):
                    batch = batch.to(ddp.device, non_blocking=loader is not None)
                    record = train_step(state, train_model, batch, loss_of,
                                        grad_clip=cfg.optim.grad_clip, use_bf16=use_bf16,
                                        ddp=ddp, run_dir=run_dir)
                    now = time.perf_counter()
                    record["pairs_per_s"] = pairs_per_step / (now - started)
                    started = now
                    log.write(record)
                    bar.update(1)
                    bar.set_postfix(loss=f"{record['loss']:.3f}", lr=f"{record['lr']:.2e}",
                                    pairs_s=f"{record['pairs_per_s']:.0f}")
                    if state.step_in_epoch == steps_per_epoch:
                        state.epoch, state.step_in_epoch, groups = state.epoch + 1, 0, None
                        save()
                    elif every and state.global_step % every == 0:
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
        log.write({"type": "done", "global_step": state.global_step})
    ddp.barrier()
    return run_dir
