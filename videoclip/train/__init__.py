"""VideoCLIP pre-training with retrieval-augmented batches: config, loop, checkpoints, DDP.

Paper: §3 (Algorithm 1); design §4–6. One epoch is:

1. the retrieval stage (every epoch, the first included; :mod:`videoclip.train.retrieval_stage`):
   embed every training video, index the vectors, cut the corpus into groups of
   ``num_video_per_batch`` similar videos (or random groups / the nearest ones for the ablations);
2. one optimisation step per group (:mod:`videoclip.train.loop`): ``clip_per_video`` pairs from
   each video of the group (``videoclip.data.samplers``), the summed two-way contrastive loss
   (``videoclip.loss``), Adam, warm-up then polynomial decay, gradient clipping.

Use it from a notebook (``pretrain({...flat parameters...})``) or the command line::

    python -m videoclip pretrain --preset params/pretrain/toy.yaml [--key value ...] [--resume]
    torchrun --nproc_per_node 8 -m videoclip pretrain --preset ... # DDP, one group per rank and step

A run directory holds ``log.jsonl`` (one JSON line per step, per epoch's retrieval stage and per
start/resume; :mod:`videoclip.train.log`), ``checkpoints/step-NNNNNNNN/`` (``model.safetensors``,
``trainer_state.pt``: optimizer, scheduler, RNG, data position and the epoch's groups) with
``checkpoints/latest`` naming the newest (:mod:`videoclip.train.checkpointing`), and ``final/``
(``VideoCLIP.save_pretrained``) once the run completes.

Determinism: every random draw of the data derives from ``(seed, epoch, step, rank)``, the
epoch's groups are stored in each checkpoint, and the torch RNG (dropout) is saved, so on CPU a
run killed mid-epoch and resumed ends with the same weights as one that ran through.

Modules: ``config`` (the settings), ``distributed``, ``data`` (the corpus), ``retrieval_stage``,
``checkpointing``, ``log``, ``loop``. Deviations from the original: design §11.
"""

from videoclip.train.config import (
    ConfigError,
    DataCfg,
    ModelCfg,
    OptimCfg,
    PretrainConfig,
    RetrievalCfg,
    RunCfg,
)
from videoclip.train.data import read_task_labels
from videoclip.train.log import RunLog, read_log
from videoclip.train.loop import build_model, pretrain

__all__ = [
    "ConfigError",
    "DataCfg",
    "ModelCfg",
    "OptimCfg",
    "PretrainConfig",
    "RetrievalCfg",
    "RunCfg",
    "RunLog",
    "build_model",
    "pretrain",
    "read_log",
    "read_task_labels",
]
