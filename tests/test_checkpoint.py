"""The released-checkpoint converter (design §2), save/load round trips and atomic writes.

The fake checkpoint has exactly the released key layout: ``mmmodel.video_encoder.videomlp.*``,
``mmmodel.video_encoder.bert.{embeddings,encoder,pooler}.*``, ``mmmodel.text_encoder.*`` with
no ``bert.`` infix, fp16 tensors, ``position_ids`` buffers, and optimizer state beside
``model``.
"""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
import torch
from helpers import (
    NUM_TEXT_LAYERS,
    NUM_VIDEO_LAYERS,
    TINY_BERT,
    VIDEO_DIM,
    make_model,
    make_tokenizer,
    reference_text_pooled,
    reference_video_hidden,
    reference_video_pooled,
    released_state_dict,
    unit_features,
    write_checkpoint,
)
from transformers import BertConfig

from videoclip._io import atomic_torch_save, atomic_write, atomic_write_bytes
from videoclip.checkpoint import CheckpointError, convert_mmpt_state_dict
from videoclip.model import VideoCLIP


def test_converter_puts_every_tensor_in_place(tmp_path: Path, backbone_dir: Path) -> None:
    released = released_state_dict()
    path = write_checkpoint(tmp_path / "checkpoint_best.pt", released)
    model = VideoCLIP.from_mmpt_checkpoint(path, backbone=str(backbone_dir))
    assert (model.config.num_video_layers, model.config.num_text_layers) == (2, 3)
    assert model.config.video_dim == VIDEO_DIM and not model.training
    ours = model.state_dict()
    renames = {
        "mmmodel.video_encoder.videomlp.": "video_mlp.",
        "mmmodel.video_encoder.bert.": "video_encoder.",
        "mmmodel.text_encoder.": "text_encoder.",
    }
    placed = 0
    for key, value in released.items():
        if ".pooler." in key or key.endswith("position_ids"):
            continue
        prefix = next(p for p in renames if key.startswith(p))
        target = ours[renames[prefix] + key[len(prefix) :]]
        assert target.dtype == torch.float32
        torch.testing.assert_close(target, value.float(), atol=0, rtol=0)
        placed += 1
    assert placed == len(ours)  # every weight of the model came from the checkpoint

    # Outputs equal an independent computation straight from the released tensors.
    weights = {key: value.float() for key, value in released.items()}
    video = unit_features(3, 9, seed=7)
    vmask = torch.arange(9)[None, :] < torch.tensor([9, 5, 1])[:, None]
    hidden = reference_video_hidden(
        weights,
        "mmmodel.video_encoder.videomlp.",
        "mmmodel.video_encoder.bert.",
        video,
        vmask,
        cls_id=2,
        sep_id=3,
        num_layers=NUM_VIDEO_LAYERS,
    )
    input_ids, attention_mask = model.tokenize(["cut the onion into small pieces", "add salt"])
    with torch.no_grad():
        torch.testing.assert_close(
            model.encode_video(video, vmask),
            reference_video_pooled(hidden, vmask),
            atol=2e-5,
            rtol=1e-4,
        )
        torch.testing.assert_close(
            model.encode_text(input_ids, attention_mask),
            reference_text_pooled(
                weights,
                "mmmodel.text_encoder.",
                input_ids,
                attention_mask,
                num_layers=NUM_TEXT_LAYERS,
            ),
            atol=2e-5,
            rtol=1e-4,
        )


def test_converter_lists_unexpected_and_missing_keys(tmp_path: Path, backbone_dir: Path) -> None:
    extra = released_state_dict()
    extra["mmmodel.video_encoder.bert.embeddings.seg_embeddings.weight"] = torch.zeros(4, 16).half()
    with pytest.raises(
        CheckpointError, match=r"unexpected \[.video_encoder\.embeddings\.seg_embeddings\.weight.\]"
    ):
        VideoCLIP.from_mmpt_checkpoint(
            write_checkpoint(tmp_path / "extra.pt", extra), backbone=str(backbone_dir)
        )
    projected = released_state_dict()
    projected["mmmodel.video_projection.weight"] = torch.zeros(16, 16).half()
    with pytest.raises(
        CheckpointError, match=r"has no place for: \['mmmodel\.video_projection\.weight'\]"
    ):
        VideoCLIP.from_mmpt_checkpoint(
            write_checkpoint(tmp_path / "projected.pt", projected), backbone=str(backbone_dir)
        )
    missing = released_state_dict()
    del missing["mmmodel.text_encoder.encoder.layer.1.output.dense.bias"]
    with pytest.raises(
        CheckpointError, match=r"missing \['text_encoder\.encoder\.layer\.1\.output\.dense\.bias'\]"
    ):
        VideoCLIP.from_mmpt_checkpoint(
            write_checkpoint(tmp_path / "missing.pt", missing), backbone=str(backbone_dir)
        )


def test_converter_rejects_other_architectures(tmp_path: Path, backbone_dir: Path) -> None:
    joint = {
        key.replace("mmmodel.text_encoder.", "mmmodel.mm_encoder.bert."): value
        for key, value in released_state_dict().items()
        if "video_encoder" not in key
    }
    with pytest.raises(CheckpointError, match=r"not a VideoCLIP.*videomlp.*mmmodel\.mm_encoder"):
        VideoCLIP.from_mmpt_checkpoint(
            write_checkpoint(tmp_path / "vlm.pt", joint), backbone=str(backbone_dir)
        )
    with pytest.raises(CheckpointError, match="weights under 'model'"):
        convert_mmpt_state_dict({"state_dict": {}})
    # A backbone of another width than the checkpoint's towers.
    wide = tmp_path / "wide"
    BertConfig(**dict(TINY_BERT, hidden_size=32)).save_pretrained(wide)
    make_tokenizer(wide).save_pretrained(wide)
    with pytest.raises(CheckpointError, match="16-d but backbone .* is 32-d"):
        VideoCLIP.from_mmpt_checkpoint(
            write_checkpoint(tmp_path / "ok.pt", released_state_dict()), backbone=str(wide)
        )


def test_untrusted_objects_need_trust_pickle(tmp_path: Path, backbone_dir: Path) -> None:
    path = tmp_path / "odd.pt"
    torch.save({"model": released_state_dict(), "when": datetime.date(2021, 9, 28)}, path)
    with pytest.raises(CheckpointError, match="trust_pickle=True"):
        VideoCLIP.from_mmpt_checkpoint(path, backbone=str(backbone_dir))
    model = VideoCLIP.from_mmpt_checkpoint(path, backbone=str(backbone_dir), trust_pickle=True)
    assert model.config.num_video_layers == NUM_VIDEO_LAYERS


@pytest.mark.parametrize("shared", [False, True])
def test_save_and_load_pretrained_round_trip(tmp_path: Path, shared: bool) -> None:
    model = make_model(
        tmp_path / "tok",
        shared_towers=shared,
        num_video_layers=3 if shared else 2,
        pooling="cls" if shared else "mean",
    )
    out = model.save_pretrained(tmp_path / "saved")
    assert sorted(p.name for p in out.iterdir()) == [
        "config.json",
        "model.safetensors",
        "tokenizer",
    ]
    loaded = VideoCLIP.from_pretrained(out, attn_implementation="eager")
    assert loaded.config.attn_implementation == "eager"
    assert loaded.config.shared_towers is shared and loaded.config.video_dim == VIDEO_DIM
    video = unit_features(2, 5, seed=8)
    vmask = torch.ones(2, 5, dtype=torch.bool)
    with torch.no_grad():
        torch.testing.assert_close(
            loaded.encode_video(video, vmask),
            model.encode_video(video, vmask),
            atol=1e-5,
            rtol=1e-5,
        )
    assert loaded.encode_texts(["cut the onion"]).allclose(
        model.encode_texts(["cut the onion"]), atol=1e-5
    )
    (out / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match="config.json is missing"):
        VideoCLIP.from_pretrained(out)


def test_atomic_writes(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "file.bin"
    atomic_write_bytes(target, b"first")
    assert target.read_bytes() == b"first"

    def failing_writer(tmp: Path) -> None:
        tmp.write_bytes(b"partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(target, failing_writer)
    assert target.read_bytes() == b"first"  # the old file survives
    assert [p.name for p in target.parent.iterdir()] == ["file.bin"]  # no temporary left
    atomic_torch_save({"step": 3, "w": torch.ones(2)}, tmp_path / "ckpt.pt")
    loaded = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    assert loaded["step"] == 3 and loaded["w"].tolist() == [1.0, 1.0]
