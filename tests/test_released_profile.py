"""The released profile (book/paper_profile.md §4): presets built on the paper's, chapters that
pre-train written as skipped, a given model instead of pre-training, and the released layout
converted by `videoclip convert`."""

from __future__ import annotations

import nbformat
import pytest
import torch

from videoclip.book import chapter, runner
from videoclip.book.runner import find_notebook

SKIPPED = {"03_pretraining", "04_retrieval_batches", "09_ablations", "13_finetuning"}


def test_released_presets_build_on_the_paper_profile():
    for path in runner.list_notebooks():
        reason = runner.skip_reason(path, "released")
        assert (reason is not None) == (path.stem in SKIPPED), path.stem
        parameters = runner.resolve_parameters(path, "released")
        assert "skip" not in parameters and "base" not in parameters
        if path.stem[:2] in ("05", "06", "07", "08", "10"):
            paper = runner.resolve_parameters(path, "paper")
            assert parameters == {**paper, "work_dir": "../artifacts/released",
                                  "model_dir": "$VIDEOCLIP_MODEL"}


def test_a_skipped_chapter_says_so_without_executing(tmp_path):
    output, _ = runner.run_notebook("03", "released", output_dir=tmp_path)
    nb = nbformat.read(output, as_version=4)
    assert [c.cell_type for c in nb.cells] == ["markdown", "markdown"]
    assert "skipped" in nb.cells[1].source and "pre-trains" in nb.cells[1].source
    assert nb.metadata["videoclip_skipped"] and nb.metadata["videoclip_profile"] == "released"
    assert runner.run_notebook("03", "released", output_dir=tmp_path)[0] == output  # reused


def test_base_of_itself_is_an_error(tmp_path, monkeypatch):
    (tmp_path / "paper").mkdir()
    (tmp_path / "paper" / "05_text_video_retrieval.yaml").write_text("base: paper\n")
    monkeypatch.setattr(runner, "PARAMS_DIR", tmp_path)
    with pytest.raises(ValueError, match="names its own profile"):
        runner.load_preset(find_notebook("05"), "paper")


def test_stamp_follows_the_model_the_variable_names(monkeypatch):
    path = find_notebook("05")
    monkeypatch.setenv("VIDEOCLIP_MODEL", "/models/a")
    a = runner.stamp(path, "released", {"model_dir": "$VIDEOCLIP_MODEL"})
    monkeypatch.setenv("VIDEOCLIP_MODEL", "/models/b")
    assert a != runner.stamp(path, "released", {"model_dir": "$VIDEOCLIP_MODEL"})


def test_given_model_is_checked(tmp_path, monkeypatch):
    assert chapter.given_model("") is None
    monkeypatch.delenv("VIDEOCLIP_MODEL", raising=False)
    with pytest.raises(FileNotFoundError, match="MODEL=converted/"):
        chapter.given_model("$VIDEOCLIP_MODEL")
    monkeypatch.setenv("VIDEOCLIP_MODEL", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="videoclip convert"):
        chapter.given_model("$VIDEOCLIP_MODEL")
    (tmp_path / "config.json").write_text("{}")
    assert chapter.given_model("$VIDEOCLIP_MODEL") == tmp_path.resolve()
    assert chapter.model_rows("x")["model"] == "VideoCLIP (given model)"
    assert chapter.model_rows("") == chapter.MODEL_ROWS


@pytest.mark.slow
def test_released_layout_checkpoint_converts_with_the_cli(tmp_path):
    """sim.rehearsal's random checkpoint in the released layout → `videoclip convert` → the same
    weights (fp16 on disk) in our model."""
    from transformers import BertConfig

    from videoclip.backbone import load_tokenizer
    from videoclip.cli import main
    from videoclip.model import VideoCLIP
    from videoclip.sim.rehearsal import write_mmpt_checkpoint

    backbone = tmp_path / "backbone"
    BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
               intermediate_size=64).save_pretrained(backbone)
    load_tokenizer("minilm-l6").save_pretrained(backbone)
    checkpoint = write_mmpt_checkpoint(tmp_path / "checkpoint_best.pt", backbone, num_video_layers=1,
                                       num_text_layers=2)
    assert main(["convert", str(checkpoint), str(tmp_path / "converted"), "--backbone", str(backbone)]) == 0
    model = VideoCLIP.from_pretrained(tmp_path / "converted")
    released = torch.load(checkpoint, weights_only=False)["model"]
    ours = model.state_dict()
    torch.testing.assert_close(ours["video_mlp.linear1.weight"],
                               released["mmmodel.video_encoder.videomlp.linear1.weight"].float())
    torch.testing.assert_close(ours["text_encoder.encoder.layer.1.output.dense.bias"],
                               released["mmmodel.text_encoder.encoder.layer.1.output.dense.bias"].float())
    assert len(model.video_encoder.encoder.layer) == 1 and len(model.text_encoder.encoder.layer) == 2


def test_chance_levels_are_computed_once_per_data_root(tmp_path, monkeypatch):
    from videoclip.sim import levels

    calls = []
    monkeypatch.setattr(levels, "chance_levels", lambda root, seed: calls.append(root) or {"coin": {"x": 1.0}})
    root = tmp_path / "root"
    (root / "coin" / "features").mkdir(parents=True)
    first = chapter.reference_levels(root, cache_dir=tmp_path / "levels")
    assert first == ({"coin": {"x": 1.0}}, None)
    assert chapter.reference_levels(root, cache_dir=tmp_path / "levels") == first and len(calls) == 1
    (root / "coin" / "features" / "v.npy").write_bytes(b"")  # the features changed: computed again
    chapter.reference_levels(root, cache_dir=tmp_path / "levels")
    chapter.reference_levels(root, seed=1, cache_dir=tmp_path / "levels")
    assert len(calls) == 3
