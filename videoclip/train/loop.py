"""The training loop: :func:`pretrain` runs (or resumes) a run; one optimisation step per group."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import safetensors.torch
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm
from transformers import get_polynomial_decay_schedule_with_warmup

from videoclip.data.samplers import ClipSampler, Prefetcher, make_batch
from videoclip.loss import LOSSES
from videoclip.model import VideoCLIP
from videoclip.train.checkpointing import checkpoint_dir, prepare_run_dir, save_checkpoint
from videoclip.train.config import ConfigError, ModelCfg, PretrainConfig
from videoclip.train.data import load_data
from videoclip.train.distributed import Dist, setup_distributed
from videoclip.train.log import LogWriter
from videoclip.train.retrieval_stage import STEP_STREAM, ReusedVectors, derived_rng, retrieval_stage


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


def _use_bf16(precision: str, device: torch.device) -> bool:
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
    ddp = setup_distributed(cfg.run.device)
    try:
        return _run(cfg, ddp)
    finally:
        if ddp.owns_group:
            dist.destroy_process_group()


def _run(cfg: PretrainConfig, ddp: Dist) -> Path:
    run_dir, ckpt, state = prepare_run_dir(cfg, ddp)
    log = LogWriter(run_dir / "log.jsonl", ddp.is_main)

    torch.manual_seed(cfg.run.seed)  # the video MLP's initial weights: the same on every rank
    model = build_model(cfg.model)
    data = load_data(cfg.data, model.tokenizer, ddp)
    group_size = cfg.data.num_video_per_batch
    num_groups = len(data.video_ids) // group_size
    steps_per_epoch = num_groups // ddp.world_size
    if steps_per_epoch < 1:
        raise ValueError(
            f"{len(data.video_ids)} usable training videos are too few for one group of "
            f"{group_size} (num_video_per_batch) per process ({ddp.world_size} processes); add "
            f"videos or lower num_video_per_batch (data report: {data.report})"
        )
    total_steps = cfg.optim.total_steps or cfg.optim.num_epochs * steps_per_epoch
    model.to(ddp.device)
    if cfg.run.compile:  # in place: the state dict keeps its names
        for tower in {model.text_encoder, model.video_tower}:  # one module when shared
            tower.compile(dynamic=True)
    optimizer = torch.optim.Adam(
        model.parameters(),
        lr=cfg.optim.lr,
        betas=cfg.optim.adam_betas,
        eps=cfg.optim.adam_eps,
        weight_decay=cfg.optim.weight_decay,
        fused=cfg.optim.fused_optimizer,
    )
    if total_steps <= cfg.optim.warmup_steps:
        raise ConfigError(
            f"warmup_steps={cfg.optim.warmup_steps} must be below the run's {total_steps} total "
            f"steps; lower warmup_steps or train longer (num_epochs, total_steps)"
        )
    scheduler = get_polynomial_decay_schedule_with_warmup(
        optimizer,
        num_warmup_steps=cfg.optim.warmup_steps,
        num_training_steps=total_steps,
        lr_end=cfg.optim.lr_end,
        power=1.0,
    )
    torch.manual_seed(cfg.run.seed * 7919 + ddp.rank + 1)  # dropout: a stream per rank

    epoch, step_in_epoch, global_step, groups = 0, 0, 0, None
    use_bf16 = _use_bf16(cfg.run.precision, ddp.device)
    reuse = ReusedVectors(data.video_ids, enabled=cfg.retrieval.retrieval_source == "reuse")
    if ckpt is not None and state is not None:
        model.load_state_dict(
            safetensors.torch.load_file(ckpt / "model.safetensors", device=str(ddp.device))
        )
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        rng = state["rng"][ddp.rank]
        torch.set_rng_state(rng["torch"])
        if rng["cuda"] is not None:
            torch.cuda.set_rng_state(rng["cuda"], ddp.device)
        position = state["position"]
        epoch, step_in_epoch, global_step = (
            position["epoch"],
            position["step_in_epoch"],
            position["global_step"],
        )
        groups = position["groups"]
        reuse.load_state(state.get("reuse"), ddp.rank)
        log.write(
            {
                "type": "resume",
                "from": ckpt.name,
                "epoch": epoch,
                "step": step_in_epoch,
                "global_step": global_step,
            }
        )
    else:
        log.write(
            {
                "type": "start",
                "config": cfg.to_dict(),
                "world_size": ddp.world_size,
                "device": str(ddp.device),
                "num_videos": len(data.video_ids),
                "steps_per_epoch": steps_per_epoch,
                "total_steps": total_steps,
                "data": data.report,
            }
        )

    train_model: torch.nn.Module = DistributedDataParallel(model) if ddp.enabled else model
    sampler = ClipSampler(kind=cfg.data.sampler)
    pairs_per_step = group_size * cfg.data.clip_per_video * ddp.world_size
    bar = tqdm(
        total=cfg.optim.num_epochs * steps_per_epoch,
        initial=global_step,
        desc="pretrain",
        disable=not (cfg.run.progress and ddp.is_main),
        dynamic_ncols=True,
    )

    def save(position: dict[str, Any]) -> None:
        save_checkpoint(run_dir, model, optimizer, scheduler, position, cfg, ddp, log.lines, reuse)

    try:
        while epoch < cfg.optim.num_epochs:
            if groups is None:
                groups, stats = retrieval_stage(model, data, cfg, epoch, ddp, reuse, use_bf16)
                log.write(
                    {"type": "retrieval", "epoch": epoch, "global_step": global_step, **stats}
                )
            my_groups = groups[ddp.rank :: ddp.world_size][:steps_per_epoch]
            model.train()

            def build(step: int, epoch: int = epoch, my_groups: list = my_groups) -> Any:
                return make_batch(
                    my_groups[step],
                    data.store,
                    data.token_cache,
                    clip_per_video=cfg.data.clip_per_video,
                    sampler=sampler,
                    rng=derived_rng(cfg.run.seed, epoch, STEP_STREAM, step, ddp.rank),
                )

            steps = range(step_in_epoch, steps_per_epoch)
            loader = (
                Prefetcher(build, steps, pin_memory=ddp.device.type == "cuda")
                if cfg.run.prefetch
                else None
            )
            try:
                started = time.perf_counter()
                for batch in loader if loader is not None else map(build, steps):
                    batch = batch.to(ddp.device, non_blocking=loader is not None)
                    with torch.autocast(ddp.device.type, dtype=torch.bfloat16, enabled=use_bf16):
                        video_emb, text_emb = train_model(batch)
                    loss = _loss(video_emb, text_emb, batch, cfg.optim.loss)
                    loss_value = float(loss.item())
                    # The loss if every clip and text embedded to one vector: a collapsed run sits here.
                    chance_loss = float(
                        _loss(
                            video_emb.new_zeros(len(video_emb), 1),
                            text_emb.new_zeros(len(text_emb), 1),
                            batch,
                            cfg.optim.loss,
                        )
                    )
                    if ddp.any_true(not math.isfinite(loss_value)):
                        raise FloatingPointError(
                            f"the loss is {loss_value} at epoch {epoch}, step {step_in_epoch} "
                            f"(global step {global_step + 1}) on rank {ddp.rank}; nothing was saved "
                            f"after the last checkpoint in {checkpoint_dir(run_dir)}. Lower lr, "
                            f"check the features for bad values, or resume from that checkpoint"
                        )
                    reuse.add(batch.video_ids, video_emb, text_emb)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    grad_norm = torch.nn.utils.clip_grad_norm_(
                        model.parameters(), cfg.optim.grad_clip
                    )
                    lr = scheduler.get_last_lr()[0]
                    optimizer.step()
                    scheduler.step()
                    step_in_epoch += 1
                    global_step += 1
                    now = time.perf_counter()
                    pairs_per_s = pairs_per_step / (now - started)
                    started = now
                    log.write(
                        {
                            "type": "step",
                            "epoch": epoch,
                            "step": step_in_epoch,
                            "global_step": global_step,
                            "loss": loss_value,
                            "chance_loss": chance_loss,
                            "lr": lr,
                            "grad_norm": float(grad_norm),
                            "pairs_per_s": pairs_per_s,
                        }
                    )
                    bar.update(1)
                    bar.set_postfix(
                        loss=f"{loss_value:.3f}", lr=f"{lr:.2e}", pairs_s=f"{pairs_per_s:.0f}"
                    )
                    if step_in_epoch == steps_per_epoch:
                        epoch, step_in_epoch, groups = epoch + 1, 0, None
                        save(
                            {
                                "epoch": epoch,
                                "step_in_epoch": 0,
                                "global_step": global_step,
                                "groups": None,
                            }
                        )
                    elif cfg.run.checkpoint_every and global_step % cfg.run.checkpoint_every == 0:
                        save(
                            {
                                "epoch": epoch,
                                "step_in_epoch": step_in_epoch,
                                "global_step": global_step,
                                "groups": groups,
                            }
                        )
                    if cfg.run.stop_after_steps and global_step >= cfg.run.stop_after_steps:
                        return run_dir  # as if killed here: nothing more is written
            finally:
                if loader is not None:
                    loader.close()
    finally:
        bar.close()
    if ddp.is_main:
        model.save_pretrained(run_dir / "final")
        log.write({"type": "done", "global_step": global_step})
    ddp.barrier()
    return run_dir
