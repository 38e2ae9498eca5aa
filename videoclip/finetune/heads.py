"""COIN's classifier head and the module that turns one fine-tuning batch into its loss.

COIN fine-tuning (design §10.4; MMPT ``MMBertForTokenClassification``) puts a **new**
``Linear(768, 779)`` on the video tower's last-layer slot states: 778 COIN steps plus
background (class 0). Its ``dropout`` is defined but never applied in the original, so there is
none here. The other tasks add no parameters.
"""

from __future__ import annotations

from pathlib import Path

import safetensors.torch
import torch
from torch import nn

from videoclip._io import atomic_write_bytes
from videoclip.finetune.examples import WindowBatch
from videoclip.loss import one_way_contrastive_loss, step_bce_loss, token_classification_loss
from videoclip.model import VideoCLIP

__all__ = ["COIN_CLASSES", "HEAD_FILE", "LOSSES", "CoinHead", "FinetuneModule", "load_head",
           "save_head"]

#: 778 COIN step ids (1..778) plus background 0.
COIN_CLASSES = 779
#: The head's weights beside a ``save_pretrained`` directory.
HEAD_FILE = "coin_head.safetensors"
#: Each task's loss, as the original's configs name it (design §10 summary).
LOSSES = {"youcook2": "t2v", "msrvtt": "t2v", "msrvtt-qa": "v2t", "coin": "token_ce",
          "crosstask": "step_bce"}


class CoinHead(nn.Module):
    """``Linear(hidden, num_classes)`` over slot states ``(W, T, D)`` → logits ``(W, T, C)``;
    BERT's initialisation for new weights: N(0, 0.02), zero bias."""

    def __init__(self, hidden_size: int, num_classes: int = COIN_CLASSES, *,
                 init_std: float = 0.02) -> None:
        super().__init__()
        self.classifier = nn.Linear(hidden_size, num_classes)
        nn.init.normal_(self.classifier.weight, mean=0.0, std=init_std)
        nn.init.zeros_(self.classifier.bias)

    def forward(self, video_states: torch.Tensor) -> torch.Tensor:
        return self.classifier(video_states)


def save_head(head: CoinHead, directory: str | Path) -> Path:
    """Write the head (atomically) as ``<directory>/coin_head.safetensors``."""
    path = Path(directory) / HEAD_FILE
    state = {k: v.detach().cpu().contiguous() for k, v in head.state_dict().items()}
    atomic_write_bytes(path, safetensors.torch.save(state, {"format": "pt"}))
    return path


def load_head(directory: str | Path) -> CoinHead:
    """The head written by :func:`save_head` (its size read from the weights)."""
    path = Path(directory) / HEAD_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: not a fine-tuned COIN model directory")
    state = safetensors.torch.load_file(path)
    num_classes, hidden_size = state["classifier.weight"].shape
    head = CoinHead(hidden_size, num_classes)
    head.load_state_dict(state)
    return head


class FinetuneModule(nn.Module):
    """The model (and COIN's head) with the task's loss: ``forward(batch) -> scalar loss``.

    One module, so that DDP wraps one thing and a checkpoint holds model and head together.

    Args:
        model: the pre-trained :class:`VideoCLIP`; every weight is trained (design §10.0).
        loss: a :data:`LOSSES` value. ``"t2v"``/``"v2t"``: pooled embeddings of a batch of
            pairs, one-way in-batch contrastive loss. ``"token_ce"``: slot states (``[CLS]`` key
            masked) through ``head``, cross-entropy per valid slot. ``"step_bce"``: slot states
            (``[CLS]`` masked) of the valid slots · the pooled step texts, BCE per (second, step).
        head: COIN's :class:`CoinHead` (``"token_ce"`` only).
    """

    def __init__(self, model: VideoCLIP, loss: str, head: CoinHead | None = None) -> None:
        super().__init__()
        if loss not in set(LOSSES.values()):
            raise ValueError(f"loss={loss!r}; choose one of {sorted(set(LOSSES.values()))}")
        if (loss == "token_ce") != (head is not None):
            raise ValueError("the token_ce loss needs COIN's head, and only it has one")
        self.model = model
        self.loss = loss
        self.head = head

    def forward(self, batch: dict[str, torch.Tensor] | WindowBatch) -> torch.Tensor:
        if self.loss in ("t2v", "v2t"):
            video_emb = self.model.encode_video(batch["video"], batch["vmask"])  # (B, D)
            text_emb = self.model.encode_text(batch["input_ids"], batch["attention_mask"])  # (B, D)
            return one_way_contrastive_loss(video_emb.float(), text_emb.float(), direction=self.loss)
        states = self.model.video_token_states(batch.video, batch.vmask, mask_cls=True)  # (W, T, D)
        return self.window_loss(states, batch)

    def window_loss(self, states: torch.Tensor, batch: WindowBatch) -> torch.Tensor:
        """The COIN or CrossTask loss of one video from its windows' slot states ``(W, T, D)``."""
        if self.loss == "token_ce":
            return token_classification_loss(self.head(states).float(), batch.targets)
        step_emb = self.model.encode_text(batch.step_ids, batch.step_mask)  # (K, D)
        logits = states[batch.vmask] @ step_emb.T  # (N valid seconds, K), window by window
        return step_bce_loss(logits.float(), batch.targets)
