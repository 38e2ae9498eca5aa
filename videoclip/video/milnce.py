"""The MIL-NCE baseline on stored features: S3D's own text tower against its per-second vectors.

The stored features *are* S3D's joint-space ``video_embedding`` per second, L2-normalised
(SPEC §3), so MIL-NCE scores a clip as ``text_emb · mean(per-second vectors)``. This is the
feature-based MIL-NCE row; MIL-NCE's own evaluation pools a clip's frames in one S3D pass,
which is a different number (design §12).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from videoclip.video.s3d import S3D, SentenceEmbedding

__all__ = ["MilNCEScorer", "masked_mean"]


def masked_mean(video: torch.Tensor, vmask: torch.Tensor) -> torch.Tensor:
    """``(B, T, D)``, ``(B, T)`` bool → ``(B, D)``: the mean over the valid seconds."""
    weights = vmask.to(video.dtype)[:, :, None]
    return (video * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1)


class MilNCEScorer(nn.Module):
    """The zero-shot evaluators' model (``ZeroShotModel``) for MIL-NCE on S3D features.

    ``encode_video``: the mean of the valid per-second vectors ``(B, 512)``; ``encode_texts``:
    MIL-NCE's sentence tower ``(N, 512)``; ``video_token_states``: the per-second vectors
    themselves (padded seconds zero), so COIN, CrossTask and DiDeMo score each second with
    the same dot product. ``mask_cls`` has no meaning here (no ``[CLS]``) and is ignored.
    """

    def __init__(self, text_module: SentenceEmbedding) -> None:
        super().__init__()
        self.text_module = text_module

    @classmethod
    def from_milnce_checkpoint(cls, weights_path: str | Path, *, dict_path: str | Path
                               ) -> MilNCEScorer:
        return cls(S3D.from_milnce_checkpoint(weights_path, dict_path=dict_path).text_module)

    def encode_texts(self, texts: list[str]) -> torch.Tensor:
        return self.text_module(list(texts))

    def encode_video(self, video: torch.Tensor, vmask: torch.Tensor) -> torch.Tensor:
        return masked_mean(video.float(), vmask)

    def video_token_states(self, video: torch.Tensor, vmask: torch.Tensor, *,
                           mask_cls: bool = False) -> torch.Tensor:
        return video.float() * vmask[:, :, None]
