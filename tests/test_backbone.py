"""videoclip.backbone: the offline MiniLM-L6, local directories, and helpful errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from transformers import GPT2Config

from videoclip.backbone import OFFLINE_BACKBONE, load_bert_config, load_tokenizer, resolve_backbone


def test_minilm_resolves_to_the_bundled_files() -> None:
    directory = Path(resolve_backbone("minilm-l6"))
    assert (directory / "model.safetensors").is_file()
    config = json.loads((directory / "config.json").read_text())
    assert (config["model_type"], config["hidden_size"], config["num_hidden_layers"]) == (
        "bert",
        384,
        6,
    )
    assert json.loads((directory / "tokenizer_config.json").read_text())["do_lower_case"] is True


def test_other_names_pass_through(tmp_path: Path) -> None:
    assert resolve_backbone("bert-base-uncased") == "bert-base-uncased"
    assert resolve_backbone(str(tmp_path)) == str(tmp_path.resolve())


def test_missing_backbone_error_names_the_offline_option(tmp_path: Path) -> None:
    with pytest.raises(
        FileNotFoundError, match=f"use the bundled offline backbone '{OFFLINE_BACKBONE}'"
    ):
        load_bert_config(str(tmp_path / "no-such-model"))
    with pytest.raises(OSError, match=OFFLINE_BACKBONE):
        load_tokenizer("./no-such-model")
    with pytest.raises(
        OSError, match=f"(?s)could not load backbone 'bad repo id!'.*{OFFLINE_BACKBONE}"
    ):
        load_tokenizer("bad repo id!")


def test_misspelled_hub_name_offline_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OSError) as error:
        load_bert_config("bert-base-uncasd")
    message = str(error.value)
    assert "Did you mean 'bert-base-uncased'?" in message
    assert "HF_HUB_OFFLINE=1" in message and "misspelled" in message


def test_non_bert_backbone_is_rejected(tmp_path: Path) -> None:
    GPT2Config(n_layer=1, n_embd=8, n_head=2).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="model_type 'gpt2'; expected 'bert'"):
        load_bert_config(str(tmp_path))


OFFLINE_SCRIPT = """
import torch
from videoclip.backbone import load_bert_config
from videoclip.model import VideoCLIP
model = VideoCLIP.from_backbone("minilm-l6", num_video_layers=2, num_text_layers=3)
video = torch.nn.functional.normalize(torch.randn(2, 32, 512), dim=-1)
vmask = torch.ones(2, 32, dtype=torch.bool)
vmask[1, 12:] = False
with torch.no_grad():
    video_emb = model.encode_video(video, vmask)
text_emb = model.encode_texts(["cut the onion into small pieces", "add salt"])
ids, _ = model.tokenize(["cut the onion"])
print("shapes", tuple(video_emb.shape), tuple(text_emb.shape), ids[0].tolist())
try:
    load_bert_config("no-such-org/no-such-model")
except OSError as exc:
    print("offline-error", "minilm-l6" in str(exc))
"""


@pytest.mark.slow
def test_minilm_forward_pass_offline() -> None:
    """The one test that loads the real MiniLM-L6, in a fresh interpreter with HF_HUB_OFFLINE=1."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    result = subprocess.run(
        [sys.executable, "-c", OFFLINE_SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    # [CLS] cut the onion [SEP] in the bert-base-uncased vocabulary.
    assert "shapes (2, 384) (2, 384) [101, 3013, 1996, 20949, 102]" in lines
    assert "offline-error True" in lines
