"""S3D-G with MIL-NCE's sentence tower: the network behind ``s3d_howto100m.pth`` (SPEC §3).

The module paths equal those of MIL-NCE's release (``s3dg.py`` of S3D_HowTo100M), so its
state dict loads strictly: ``conv1.conv1.weight``, ``mixed_3b.conv_b1_b.conv1.weight``, …,
``gating.fc.weight``, ``fc.weight``, ``text_module.word_embd.weight``. The code is ours.

Video: ``(B, 3, T, H, W)`` floats in [0, 1] (T, H, W even: the 2×2×2 space-to-depth) →
``{"video_embedding": (B, 512), "mixed_5c": (B, 1024)}``. Text: ``encode_text(list[str]) -> (B, 512)``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["S3D", "S3DError", "SentenceEmbedding"]

EMBED_DIM = 512
#: MIL-NCE's text tower: vocabulary rows (index 0 is padding), word vectors, words per sentence.
NUM_WORDS = 66250
WORD_DIM = 300
MAX_WORDS = 16
_WORD = re.compile(r"[\w']+")


class S3DError(ValueError):
    """Weights or a vocabulary that do not fit MIL-NCE's S3D; the message names the file."""


class STConv3D(nn.Module):
    """Conv3d → BN → ReLU; ``separable`` splits a k×k×k kernel into 1×k×k then k×1×1 (S3D)."""

    def __init__(self, in_dim: int, out_dim: int, kernel: tuple[int, int, int], *,
                 stride: int = 1, padding: int | tuple[int, int, int] = 0,
                 separable: bool = False) -> None:
        super().__init__()
        self.separable = separable
        if separable:
            k, p = kernel[0], padding
            self.conv1 = nn.Conv3d(in_dim, out_dim, (1, k, k), stride=(1, stride, stride),
                                   padding=(0, p, p), bias=False)
            self.bn1 = nn.BatchNorm3d(out_dim)
            self.conv2 = nn.Conv3d(out_dim, out_dim, (k, 1, 1), stride=(stride, 1, 1),
                                   padding=(p, 0, 0), bias=False)
            self.bn2 = nn.BatchNorm3d(out_dim)
        else:
            self.conv1 = nn.Conv3d(in_dim, out_dim, kernel, stride=stride, padding=padding,
                                   bias=False)
            self.bn1 = nn.BatchNorm3d(out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        if self.separable:
            x = F.relu(self.bn2(self.conv2(x)))
        return x


class SelfGating(nn.Module):
    """S3D-G's feature gating: channels scaled by sigmoid(fc(spatio-temporal mean))."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.fc = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T, H, W)
        weights = torch.sigmoid(self.fc(x.mean(dim=(2, 3, 4))))
        return x * weights[:, :, None, None, None]


class TFSamePool(nn.Module):
    """Max-pool with TensorFlow 'SAME' padding: zeros after (and before), then ``ceil_mode``.

    Zero padding is safe for a max: the inputs follow a ReLU.
    """

    def __init__(self, kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> None:
        super().__init__()
        pads = [max(k - s, 0) for k, s in zip(kernel, stride)]  # (T, H, W) total padding
        # F.pad wants (W_before, W_after, H_before, H_after, T_before, T_after)
        self.padding = tuple(x for p in reversed(pads) for x in (p // 2, p - p // 2))
        self.pool = nn.MaxPool3d(kernel, stride, ceil_mode=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(F.pad(x, self.padding))


class InceptionBlock(nn.Module):
    """Four gated branches: 1×1; 1×1 → sep 3×3×3; 1×1 → sep 3×3×3; max-pool 3×3×3 → 1×1."""

    def __init__(self, in_dim: int, b0: int, b1a: int, b1b: int, b2a: int, b2b: int, b3: int
                 ) -> None:
        super().__init__()
        self.conv_b0 = STConv3D(in_dim, b0, (1, 1, 1))
        self.conv_b1_a = STConv3D(in_dim, b1a, (1, 1, 1))
        self.conv_b1_b = STConv3D(b1a, b1b, (3, 3, 3), padding=1, separable=True)
        self.conv_b2_a = STConv3D(in_dim, b2a, (1, 1, 1))
        self.conv_b2_b = STConv3D(b2a, b2b, (3, 3, 3), padding=1, separable=True)
        self.maxpool_b3 = nn.MaxPool3d(3, stride=1, padding=1)
        self.conv_b3_b = STConv3D(in_dim, b3, (1, 1, 1))
        self.gating_b0 = SelfGating(b0)
        self.gating_b1 = SelfGating(b1b)
        self.gating_b2 = SelfGating(b2b)
        self.gating_b3 = SelfGating(b3)
        self.output_dim = b0 + b1b + b2b + b3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b0 = self.gating_b0(self.conv_b0(x))
        b1 = self.gating_b1(self.conv_b1_b(self.conv_b1_a(x)))
        b2 = self.gating_b2(self.conv_b2_b(self.conv_b2_a(x)))
        b3 = self.gating_b3(self.conv_b3_b(self.maxpool_b3(x)))
        return torch.cat((b0, b1, b2, b3), dim=1)


def load_vocabulary(dict_path: str | Path) -> dict[str, int]:
    """``s3d_dict.npy`` (an array of words) → ``{word: row}``; row 0 is padding, so words start at 1."""
    fix = "download s3d_dict.npy again (README: 'Use it on your own videos')"
    try:
        words = np.load(dict_path, allow_pickle=False)
    except ValueError:  # an object array of str (older numpy saved word lists so)
        try:
            words = np.load(dict_path, allow_pickle=True)
        except Exception as exc:  # a corrupt pickle raises many types
            raise S3DError(f"{dict_path}: cannot read the S3D vocabulary ({exc}); {fix}") from exc
    except OSError as exc:
        raise S3DError(f"{dict_path}: cannot read the S3D vocabulary ({exc}); {fix}") from exc
    if (words.ndim != 1 or len(words) >= NUM_WORDS
            or not all(isinstance(w, str) for w in words.tolist())):
        raise S3DError(f"{dict_path}: {words.dtype} {words.shape} is not MIL-NCE's vocabulary "
                       f"(a 1-D array of fewer than {NUM_WORDS} words); {fix}")
    return {word: row for row, word in enumerate(words.tolist(), start=1)}


class SentenceEmbedding(nn.Module):
    """MIL-NCE's text tower: words → 300-d → Linear 2048 → ReLU → max over 16 slots → Linear 512.

    Tokens: lower-case, ``[\\w']+`` words, unknown words dropped, the first 16 known words,
    zero-padded. The max runs over all 16 slots, padding included (row 0 is an ordinary row).
    """

    def __init__(self, vocabulary: dict[str, int], *, embed_dim: int = EMBED_DIM) -> None:
        super().__init__()
        self.vocabulary = vocabulary
        self.word_embd = nn.Embedding(NUM_WORDS, WORD_DIM)
        self.fc1 = nn.Linear(WORD_DIM, 2048)
        self.fc2 = nn.Linear(2048, embed_dim)

    def token_ids(self, texts: list[str]) -> torch.Tensor:
        """``(B, 16)`` long: each text's first 16 known words, zero-padded."""
        ids = torch.zeros(len(texts), MAX_WORDS, dtype=torch.long)
        for row, text in enumerate(texts):
            known = [self.vocabulary[w] for w in _WORD.findall(str(text).lower())
                     if w in self.vocabulary][:MAX_WORDS]
            ids[row, :len(known)] = torch.tensor(known, dtype=torch.long)
        return ids

    def forward(self, texts: list[str]) -> torch.Tensor:  # → (B, 512)
        ids = self.token_ids(texts).to(self.word_embd.weight.device)
        hidden = F.relu(self.fc1(self.word_embd(ids)))  # (B, 16, 2048)
        return self.fc2(hidden.max(dim=1).values)


def _some(keys: list[str]) -> str:
    return str(keys[:5])[:-1] + (", …]" if len(keys) > 5 else "]")


class S3D(nn.Module):
    """MIL-NCE's S3D-G (space-to-depth input, self-gating) and its sentence tower.

    Build it with :meth:`from_milnce_checkpoint`; ``module(video)`` takes ``(B, 3, T, H, W)``
    floats in [0, 1] with T, H, W even and returns ``{"video_embedding": (B, 512), "mixed_5c":
    (B, 1024)}``; :meth:`encode_text` gives the matching ``(B, 512)`` text embeddings.
    """

    def __init__(self, vocabulary: dict[str, int]) -> None:
        super().__init__()
        # 2×2×2 space-to-depth turns 3 channels into 24 (TPU layout of the original training)
        self.conv1 = STConv3D(24, 64, (2, 4, 4), padding=(1, 2, 2))
        self.conv_2b = STConv3D(64, 64, (1, 1, 1))
        self.conv_2c = STConv3D(64, 192, (3, 3, 3), padding=1, separable=True)
        self.gating = SelfGating(192)
        self.maxpool_2a = TFSamePool((1, 3, 3), (1, 2, 2))
        self.maxpool_3a = TFSamePool((1, 3, 3), (1, 2, 2))
        self.mixed_3b = InceptionBlock(192, 64, 96, 128, 16, 32, 32)
        self.mixed_3c = InceptionBlock(256, 128, 128, 192, 32, 96, 64)
        self.maxpool_4a = TFSamePool((3, 3, 3), (2, 2, 2))
        self.mixed_4b = InceptionBlock(480, 192, 96, 208, 16, 48, 64)
        self.mixed_4c = InceptionBlock(512, 160, 112, 224, 24, 64, 64)
        self.mixed_4d = InceptionBlock(512, 128, 128, 256, 24, 64, 64)
        self.mixed_4e = InceptionBlock(512, 112, 144, 288, 32, 64, 64)
        self.mixed_4f = InceptionBlock(528, 256, 160, 320, 32, 128, 128)
        self.maxpool_5a = TFSamePool((2, 2, 2), (2, 2, 2))
        self.mixed_5b = InceptionBlock(832, 256, 160, 320, 32, 128, 128)
        self.mixed_5c = InceptionBlock(832, 384, 192, 384, 48, 128, 128)
        self.fc = nn.Linear(1024, EMBED_DIM)
        self.text_module = SentenceEmbedding(vocabulary)

    @classmethod
    def from_milnce_checkpoint(cls, weights_path: str | Path, *, dict_path: str | Path) -> S3D:
        """``s3d_howto100m.pth`` + ``s3d_dict.npy`` → the module in eval mode, loaded strictly."""
        vocabulary = load_vocabulary(dict_path)
        try:
            state = torch.load(weights_path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises several types for a file that is not a checkpoint
            raise S3DError(f"{weights_path}: cannot read the S3D weights ({exc}); download "
                           "s3d_howto100m.pth again") from exc
        if not isinstance(state, dict):
            raise S3DError(f"{weights_path}: holds a {type(state).__name__}, not a state dict; "
                           "pass MIL-NCE's s3d_howto100m.pth")
        with torch.device("meta"):  # no random init: every tensor comes from the file
            model = cls(vocabulary)
        state = dict(state)
        for key, value in model.state_dict().items():
            # BatchNorm counters are not weights (a file saved without them is still complete)
            if key.endswith("num_batches_tracked") and key not in state:
                state[key] = torch.zeros((), dtype=value.dtype)
        missing = sorted(set(model.state_dict()) - set(state))
        unexpected = sorted(set(state) - set(model.state_dict()))
        if missing or unexpected:
            raise S3DError(
                f"{weights_path}: not MIL-NCE's S3D state dict (missing {_some(missing)}, "
                f"unexpected {_some(unexpected)}); pass s3d_howto100m.pth")
        try:
            model.load_state_dict(state, strict=True, assign=True)
        except RuntimeError as exc:  # shape mismatches
            raise S3DError(f"{weights_path}: {exc}; pass s3d_howto100m.pth") from exc
        model.float()  # the release is float32; a half-precision copy is made float32 too
        return model.eval()

    @property
    def device(self) -> torch.device:
        return self.fc.weight.device

    @staticmethod
    def space_to_depth(video: torch.Tensor) -> torch.Tensor:
        """``(B, C, T, H, W)`` → ``(B, 8C, T/2, H/2, W/2)``; channel = (dt, dh, dw, c)."""
        b, c, t, h, w = video.shape
        x = video.reshape(b, c, t // 2, 2, h // 2, 2, w // 2, 2)
        x = x.permute(0, 3, 5, 7, 1, 2, 4, 6)
        return x.reshape(b, 8 * c, t // 2, h // 2, w // 2)

    def forward(self, video: torch.Tensor) -> dict[str, torch.Tensor]:
        if video.ndim != 5 or video.shape[1] != 3 or any(n % 2 for n in video.shape[2:]):
            raise ValueError(f"video of shape {tuple(video.shape)}; S3D takes (B, 3, T, H, W) "
                             "with T, H and W even")
        x = self.conv1(self.space_to_depth(video))
        x = x[:, :, 1:, 1:, 1:]  # with padding (1, 2, 2) this equals TF's 'SAME' output
        x = self.maxpool_2a(x)
        x = self.gating(self.conv_2c(self.conv_2b(x)))
        x = self.maxpool_3a(x)
        x = self.mixed_3c(self.mixed_3b(x))
        x = self.maxpool_4a(x)
        for block in (self.mixed_4b, self.mixed_4c, self.mixed_4d, self.mixed_4e, self.mixed_4f):
            x = block(x)
        x = self.maxpool_5a(x)
        x = self.mixed_5c(self.mixed_5b(x))
        pooled = x.mean(dim=(2, 3, 4))  # (B, 1024)
        return {"video_embedding": self.fc(pooled), "mixed_5c": pooled}

    def encode_text(self, texts: list[str]) -> torch.Tensor:
        """MIL-NCE's text embeddings ``(B, 512)`` in the joint space of ``video_embedding``."""
        return self.text_module(list(texts))
