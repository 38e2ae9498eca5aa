"""Helpers the tests share (not a test module): a tiny model and tokenizer, an independent
plain-torch reference of design §1, a tiny backbone for a world, a tiny pre-training config.

The reference (``reference_bert`` and friends) re-implements design §1 the way the original
code lays it out (video always padded to 32 slots, ``[SEP]`` at position 33) from a flat dict
of weights; ``tests/test_model.py`` checks the model against it, ``tests/test_checkpoint.py``
reuses it on the released key layout.
"""

from __future__ import annotations

import argparse
import json
import math
import re
from collections import Counter
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import BertConfig, BertModel, BertTokenizerFast

from videoclip.model import ModelConfig, VideoCLIP

WORDS = [
    "the",
    "a",
    "cut",
    "onion",
    "into",
    "small",
    "pieces",
    "add",
    "salt",
    "to",
    "pan",
    "heat",
    "oil",
    "stir",
    "fry",
    "chop",
    "garlic",
]
TINY_BERT = {
    "vocab_size": 5 + len(WORDS),
    "hidden_size": 16,
    "num_hidden_layers": 3,
    "num_attention_heads": 2,
    "hidden_act": "gelu",
    "intermediate_size": 32,
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
    "max_position_embeddings": 80,
    "type_vocab_size": 2,
    "initializer_range": 0.5,
    "layer_norm_eps": 1e-12,
    "pad_token_id": 0,
    "position_embedding_type": "absolute",
}
VIDEO_DIM = 24


def make_tokenizer(directory: Path) -> BertTokenizerFast:
    """A tiny uncased WordPiece tokenizer; [CLS]=2 and [SEP]=3 (not BERT's 101/102)."""
    directory.mkdir(parents=True, exist_ok=True)
    vocab = directory / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    return BertTokenizerFast(vocab_file=str(vocab), do_lower_case=True)


def make_model(directory: Path, **overrides) -> VideoCLIP:
    """A random tiny VideoCLIP (3 text layers, 2 video layers, 16-d, 24-d video input)."""
    tokenizer = make_tokenizer(directory)
    values = {
        "bert": TINY_BERT,
        "backbone": "tiny",
        "num_video_layers": 2,
        "num_text_layers": 3,
        "video_dim": VIDEO_DIM,
        "cls_token_id": tokenizer.cls_token_id,
        "sep_token_id": tokenizer.sep_token_id,
        "pad_token_id": tokenizer.pad_token_id,
        **overrides,
    }
    torch.manual_seed(0)
    model = VideoCLIP(ModelConfig(**values), tokenizer).eval()
    with torch.no_grad():  # LayerNorms start at 1/0: randomise them too
        for param in model.parameters():
            param.add_(0.1 * torch.randn_like(param))
    return model


def unit_features(*shape: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(*shape, VIDEO_DIM, generator=gen), dim=-1)


# ---------------------------------------------------------------- independent reference


def _layer_norm(x: torch.Tensor, weights: dict, name: str, eps: float) -> torch.Tensor:
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * weights[name + ".weight"] + weights[name + ".bias"]


def _linear(x: torch.Tensor, weights: dict, name: str) -> torch.Tensor:
    return x @ weights[name + ".weight"].T + weights[name + ".bias"]


def reference_bert(
    weights: dict,
    prefix: str,
    inputs: torch.Tensor,
    positions: torch.Tensor,
    mask: torch.Tensor,
    *,
    num_layers: int,
    num_heads: int,
    eps: float = 1e-12,
) -> torch.Tensor:
    """Post-LN BERT encoder written out by hand: (B, L, D) word vectors -> (B, L, D)."""
    emb = weights[prefix + "embeddings.position_embeddings.weight"][positions]
    emb = inputs + emb + weights[prefix + "embeddings.token_type_embeddings.weight"][0]
    h = _layer_norm(emb, weights, prefix + "embeddings.LayerNorm", eps)
    batch, length, dim = h.shape
    head = dim // num_heads
    bias = (1.0 - mask[:, None, None, :].to(h.dtype)) * -1e9
    for i in range(num_layers):
        p = f"{prefix}encoder.layer.{i}."

        def split(x: torch.Tensor) -> torch.Tensor:
            return x.view(batch, length, num_heads, head).transpose(1, 2)

        q = split(_linear(h, weights, p + "attention.self.query"))
        k = split(_linear(h, weights, p + "attention.self.key"))
        v = split(_linear(h, weights, p + "attention.self.value"))
        probs = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(head) + bias, dim=-1)
        ctx = (probs @ v).transpose(1, 2).reshape(batch, length, dim)
        h1 = _layer_norm(
            _linear(ctx, weights, p + "attention.output.dense") + h,
            weights,
            p + "attention.output.LayerNorm",
            eps,
        )
        inner = F.gelu(_linear(h1, weights, p + "intermediate.dense"))
        h = _layer_norm(
            _linear(inner, weights, p + "output.dense") + h1, weights, p + "output.LayerNorm", eps
        )
    return h


def reference_video_hidden(
    weights: dict,
    mlp_prefix: str,
    bert_prefix: str,
    video: torch.Tensor,
    vmask: torch.Tensor,
    *,
    cls_id: int,
    sep_id: int,
    num_layers: int,
    mask_cls: bool = False,
) -> torch.Tensor:
    """The original's layout: pad to 32 slots, [CLS] v1..v32 [SEP] at positions 0..33.

    Returns (B, 34, D).
    """
    batch, num_slots, _ = video.shape
    padded = torch.zeros(batch, 32, video.shape[2], dtype=video.dtype)
    padded[:, :num_slots] = video * vmask[..., None]
    mask32 = torch.zeros(batch, 32, dtype=torch.bool)
    mask32[:, :num_slots] = vmask
    x = _linear(padded, weights, mlp_prefix + "linear1")
    x = 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))
    x = _layer_norm(x, weights, mlp_prefix + "LayerNorm", 1e-5)
    tokens = _linear(x, weights, mlp_prefix + "linear2")
    table = weights[bert_prefix + "embeddings.word_embeddings.weight"]
    inputs = torch.cat(
        [table[cls_id].expand(batch, 1, -1), tokens, table[sep_id].expand(batch, 1, -1)], dim=1
    )
    mask = torch.cat(
        [torch.full((batch, 1), not mask_cls), mask32, torch.ones(batch, 1, dtype=torch.bool)], 1
    )
    return reference_bert(
        weights,
        bert_prefix,
        inputs,
        torch.arange(34).expand(batch, -1),
        mask,
        num_layers=num_layers,
        num_heads=TINY_BERT["num_attention_heads"],
    )


def reference_video_pooled(hidden: torch.Tensor, vmask: torch.Tensor) -> torch.Tensor:
    """Mean over the valid slots + [SEP] (slots 1..32 and 33 of the 34), one row at a time."""
    rows = []
    for b in range(hidden.shape[0]):
        valid = [1 + t for t in range(vmask.shape[1]) if vmask[b, t]] + [33]
        rows.append(hidden[b, valid].mean(0))
    return torch.stack(rows)


def reference_text_pooled(
    weights: dict,
    prefix: str,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    *,
    num_layers: int,
) -> torch.Tensor:
    table = weights[prefix + "embeddings.word_embeddings.weight"]
    batch, length = input_ids.shape
    hidden = reference_bert(
        weights,
        prefix,
        table[input_ids],
        torch.arange(length).expand(batch, -1),
        attention_mask,
        num_layers=num_layers,
        num_heads=TINY_BERT["num_attention_heads"],
    )
    rows = []
    for b in range(batch):
        kept = [i for i in range(1, length) if attention_mask[b, i]]  # tokens + final [SEP]
        rows.append(hidden[b, kept].mean(0))
    return torch.stack(rows)


# ---------------------------------------------------------------- pre-training


def write_tiny_backbone(directory: Path, captions_path: Path) -> Path:
    """A random 2-layer, 16-d BERT whose vocabulary is the world's caption words."""
    captions = json.loads(captions_path.read_text())
    words = Counter(
        w
        for video in captions.values()
        for text in video["text"]
        for w in re.findall(r"\w+|[^\w\s]", text.lower())
    )
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted(words)]
    directory.mkdir(parents=True)
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n")
    BertTokenizerFast(vocab_file=str(directory / "vocab.txt"), do_lower_case=True).save_pretrained(
        directory
    )
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=80,
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
    )
    torch.manual_seed(0)
    BertModel(config, add_pooling_layer=False).save_pretrained(directory)
    return directory


def tiny_config(world: Path, backbone: Path, run_dir: Path, **overrides) -> dict:
    """59 train videos -> 14 groups of 4 per epoch (8 pairs a step)."""
    values = {
        "backbone": str(backbone),
        "num_video_layers": 1,
        "data_dir": str(world),
        "num_video_per_batch": 4,
        "clip_per_video": 2,
        "num_epochs": 2,
        "warmup_steps": 3,
        "total_steps": 0,
        "lr": 1e-3,
        "num_neighbours": 8,
        "retrieval_clips": 2,
        "embed_batch_size": 16,
        "checkpoint_every": 4,
        "run_dir": str(run_dir),
        "progress": False,
    }
    values.update(overrides)
    return values


# ----------------------------------------------------------------------------- released checkpoint

NUM_VIDEO_LAYERS, NUM_TEXT_LAYERS = 2, 3


def released_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """Random fp16 weights under the released key names (poolers and position_ids included)."""
    torch.manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    for prefix, layers in (
        ("mmmodel.video_encoder.bert.", NUM_VIDEO_LAYERS),
        ("mmmodel.text_encoder.", NUM_TEXT_LAYERS),
    ):
        tower = BertModel(BertConfig(**dict(TINY_BERT, num_hidden_layers=layers)))  # with pooler
        for key, value in tower.state_dict().items():
            state[prefix + key] = value
        state[prefix + "embeddings.position_ids"] = torch.arange(
            TINY_BERT["max_position_embeddings"]
        )[None]
    hidden = TINY_BERT["hidden_size"]
    for name, shape in (
        ("linear1.weight", (hidden, VIDEO_DIM)),
        ("linear1.bias", (hidden,)),
        ("LayerNorm.weight", (hidden,)),
        ("LayerNorm.bias", (hidden,)),
        ("linear2.weight", (hidden, hidden)),
        ("linear2.bias", (hidden,)),
    ):
        state["mmmodel.video_encoder.videomlp." + name] = torch.zeros(shape)
    return {
        key: (value + 0.3 * torch.randn_like(value)).half() if value.is_floating_point() else value
        for key, value in state.items()
    }


def write_checkpoint(path: Path, model_state: dict[str, torch.Tensor]) -> Path:
    first = next(iter(model_state.values()))
    torch.save(
        {
            "args": argparse.Namespace(arch="mmfusionseparate", fp16=True),
            "model": model_state,
            "optimizer_history": [{"criterion_name": "MMCriterion", "num_updates": 10}],
            "last_optimizer_state": {
                "state": {0: {"exp_avg": torch.zeros_like(first).float()}},
                "param_groups": [{"lr": 5e-5, "params": [0]}],
            },
            "extra_state": {"epoch": 25},
        },
        path,
    )
    return path
