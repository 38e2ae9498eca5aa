"""Reading the released MMPT (fairseq) checkpoint.

The converter is a pure function from the released state dict to ours
(:func:`convert_mmpt_state_dict`); :meth:`videoclip.model.VideoCLIP.from_mmpt_checkpoint`
builds the model around it; ``python -m videoclip convert`` (:mod:`videoclip.cli`) writes it
as a ``save_pretrained`` directory. This module imports nothing from the package.
"""

from __future__ import annotations

import argparse
import os
import pickle
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

MMPT_PREFIX = "mmmodel."

# Released key prefix (design §2) -> our module prefix (videoclip.model.VideoCLIP).
_KEY_MAP = (
    ("mmmodel.video_encoder.videomlp.", "video_mlp."),
    ("mmmodel.video_encoder.bert.embeddings.", "video_encoder.embeddings."),
    ("mmmodel.video_encoder.bert.encoder.", "video_encoder.encoder."),
    # The text tower is a plain BertModel in the original: no `bert.` infix.
    ("mmmodel.text_encoder.embeddings.", "text_encoder.embeddings."),
    ("mmmodel.text_encoder.encoder.", "text_encoder.encoder."),
)
# Dropped on purpose: the unused poolers (design §1) and the position_ids buffers.
_DROPPED = re.compile(
    r"^mmmodel\.(video_encoder\.bert|text_encoder)\.(pooler\..*|embeddings\.position_ids)$"
)
_VIDEO_LAYER = re.compile(r"^mmmodel\.video_encoder\.bert\.encoder\.layer\.(\d+)\.")
_TEXT_LAYER = re.compile(r"^mmmodel\.text_encoder\.encoder\.layer\.(\d+)\.")
_MLP_WEIGHT = "mmmodel.video_encoder.videomlp.linear1.weight"


class CheckpointError(ValueError):
    """A checkpoint that does not hold what the converter expects; the message lists the keys."""


@dataclass(frozen=True)
class MMPTWeights:
    """The released weights renamed to our layout, with the sizes read off them.

    Attributes:
        state_dict: our key -> fp32 tensor (keys of :class:`videoclip.model.VideoCLIP`).
        num_video_layers: layers of the video tower (6 in the release).
        num_text_layers: layers of the text tower (12 in the release).
        video_dim: input size of the video MLP (512, S3D).
        hidden_size: the towers' width (768).
        dropped: released keys dropped on purpose (poolers, ``position_ids``).
    """

    state_dict: dict[str, torch.Tensor]
    num_video_layers: int
    num_text_layers: int
    video_dim: int
    hidden_size: int
    dropped: tuple[str, ...]


def read_mmpt_checkpoint(path: str | os.PathLike, *, trust_pickle: bool = False) -> dict:
    """Load a fairseq checkpoint file (``checkpoint_best.pt``) onto the CPU.

    The file is read with ``torch.load(weights_only=True)``: only tensors, containers and
    ``argparse.Namespace`` (fairseq stores its command-line ``args`` as one; it is allowed
    explicitly) can be unpickled, so a tampered file cannot run code. A checkpoint holding
    other Python objects (e.g. an OmegaConf ``cfg``) then fails with an error naming the
    object; pass ``trust_pickle=True`` only for a file from a source you trust.

    Args:
        path: the checkpoint file.
        trust_pickle: use ``weights_only=False`` (arbitrary unpickling; trusted files only).

    Returns:
        The checkpoint dict (weights under ``"model"``).
    """
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path} is a directory; pass the checkpoint file itself")
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        if trust_pickle:
            return torch.load(path, map_location="cpu", weights_only=False)
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Unsupported global" not in str(exc):
            raise _unreadable(path, exc) from exc
        raise CheckpointError(
            f"{path}: torch.load(weights_only=True) refused an object in the checkpoint "
            f"({str(exc).split('Unsupported global: ')[-1].split('.')[0]}); if you trust the "
            f"file's source, pass trust_pickle=True (--trust-pickle)"
        ) from exc
    except (RuntimeError, OSError, EOFError, KeyError, ValueError) as exc:
        raise _unreadable(path, exc) from exc


def _unreadable(path: Path, exc: BaseException) -> CheckpointError:
    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
    return CheckpointError(
        f"{path}: cannot read it as a PyTorch checkpoint ({path.stat().st_size} bytes; "
        f"{type(exc).__name__}: {reason}): the file is truncated, corrupt or of another kind; "
        f"copy or download it again"
    )


def convert_mmpt_state_dict(
    checkpoint: Mapping[str, Any], *, source: str = "checkpoint"
) -> MMPTWeights:
    """Rename the released VideoCLIP weights to our layout (design §2), strictly.

    Every key under ``checkpoint["model"]`` must map to one of our modules or be one of the
    keys dropped on purpose (the two poolers and the ``position_ids`` buffers); anything
    else is listed by name in the error. Floating tensors are upcast to fp32. Other entries
    of the checkpoint (``args``, optimizer state, ...) are ignored.

    Args:
        checkpoint: the dict returned by :func:`read_mmpt_checkpoint`.
        source: how to name the checkpoint in error messages (its path).

    Raises:
        CheckpointError: not a fairseq checkpoint, another architecture, or unknown keys.
    """
    if not isinstance(checkpoint, Mapping) or "model" not in checkpoint:
        keys = (
            sorted(checkpoint)[:10]
            if isinstance(checkpoint, Mapping)
            else type(checkpoint).__name__
        )
        raise CheckpointError(
            f"{source}: expected a fairseq checkpoint dict with the weights under 'model'; "
            f"got {keys}"
        )
    released = checkpoint["model"]
    if not isinstance(released, Mapping) or not all(
        isinstance(key, str) and isinstance(value, torch.Tensor) for key, value in released.items()
    ):
        raise CheckpointError(
            f"{source}: 'model' holds a {type(released).__name__}, not a mapping of names to "
            f"tensors; this is not a fairseq checkpoint"
        )
    if _MLP_WEIGHT not in released:
        prefixes = sorted({".".join(key.split(".")[:2]) for key in released})
        raise CheckpointError(
            f"{source}: not a VideoCLIP (MMFusionSeparate) checkpoint: expected "
            f"'{_MLP_WEIGHT}' and the keys of design §2; found key prefixes {prefixes[:20]}"
        )
    state_dict: dict[str, torch.Tensor] = {}
    dropped: list[str] = []
    unexpected: list[str] = []
    for key, tensor in released.items():
        if _DROPPED.match(key):
            dropped.append(key)
            continue
        for old, new in _KEY_MAP:
            if key.startswith(old):
                value = tensor.detach()
                state_dict[new + key[len(old) :]] = (
                    value.float() if value.is_floating_point() else value
                )
                break
        else:
            unexpected.append(key)
    if unexpected:
        raise CheckpointError(
            f"{source}: {len(unexpected)} unexpected weight(s) that VideoCLIP has no place for: "
            f"{sorted(unexpected)}"
        )
    num_video_layers = _count_layers(released, _VIDEO_LAYER)
    num_text_layers = _count_layers(released, _TEXT_LAYER)
    if not num_video_layers or not num_text_layers:
        raise CheckpointError(
            f"{source}: found {num_video_layers} video layers "
            f"(mmmodel.video_encoder.bert.encoder.layer.N.*) and {num_text_layers} text layers "
            f"(mmmodel.text_encoder.encoder.layer.N.*); both towers need at least one"
        )
    mlp_weight = released[_MLP_WEIGHT]  # (hidden, video_dim)
    return MMPTWeights(
        state_dict=state_dict,
        num_video_layers=num_video_layers,
        num_text_layers=num_text_layers,
        video_dim=int(mlp_weight.shape[1]),
        hidden_size=int(mlp_weight.shape[0]),
        dropped=tuple(sorted(dropped)),
    )


def _count_layers(keys: Mapping[str, Any], pattern: re.Pattern[str]) -> int:
    indices = {int(match.group(1)) for key in keys if (match := pattern.match(key))}
    return max(indices) + 1 if indices else 0


def check_state_dict(
    expected: Mapping[str, torch.Tensor], given: Mapping[str, torch.Tensor], *, source: str
) -> None:
    """Raise unless ``given`` has exactly the keys and shapes of ``expected``.

    Raises:
        CheckpointError: listing the missing keys, the unexpected keys, and the shape mismatches
            (key: expected shape vs got shape).
    """
    missing = sorted(set(expected) - set(given))
    unexpected = sorted(set(given) - set(expected))
    common = sorted(set(expected) & set(given))
    mismatched = [
        f"{key}: expected {tuple(expected[key].shape)}, got {tuple(given[key].shape)}"
        for key in common
        if expected[key].shape != given[key].shape
    ]
    if missing or unexpected or mismatched:
        raise CheckpointError(
            f"{source} does not match the model: missing {missing}; unexpected {unexpected}; "
            f"shape mismatches {mismatched}"
        )
    # load_state_dict would cast an integer or boolean tensor to float without a word.
    wrong_dtype = [
        f"{key}: {given[key].dtype}"
        for key in common
        if expected[key].is_floating_point() != given[key].is_floating_point()
        or given[key].dtype == torch.bool
    ]
    if wrong_dtype:
        raise CheckpointError(
            f"{source}: weights of the wrong type (expected floating point) {wrong_dtype[:5]}; "
            f"this is not a VideoCLIP model file, convert or save it again"
        )
    nonfinite = [key for key in common if given[key].is_floating_point()
                 and not bool(torch.isfinite(given[key]).all())]
    if nonfinite:
        raise CheckpointError(
            f"{source}: {len(nonfinite)} weight(s) hold NaN or inf, e.g. {nonfinite[:5]}; the "
            f"model diverged or the file is corrupt: load an earlier checkpoint"
        )

