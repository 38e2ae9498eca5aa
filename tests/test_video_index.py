"""The moment index (32-s windows, exact inner product) and the MIL-NCE scorer in the evaluators."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from videoclip.cli import main
from videoclip.data.features import NpyFeatureStore, write_features
from videoclip.evaluation.registry import BENCHMARKS
from videoclip.video import MilNCEScorer, MomentIndex, MomentIndexError
from videoclip.video.index import mean_embedding


def unit_rows(rng, n):
    rows = rng.normal(size=(n, 512)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


@pytest.fixture
def store(tmp_path):
    rng = np.random.default_rng(0)
    write_features(tmp_path / "features", "long", unit_rows(rng, 40))
    write_features(tmp_path / "features", "short", unit_rows(rng, 10))
    return NpyFeatureStore(tmp_path / "features")


def test_windows_scores_and_round_trip(store, tmp_path):
    index = MomentIndex.build(store, mean_embedding, model="milnce", batch_size=2)
    assert [tuple(m[:3]) for m in index.moments] == [("long", 0, 32), ("long", 16, 40),
                                                     ("short", 0, 10)]
    query = np.random.default_rng(1).normal(size=512).astype(np.float32)
    hits = index.search(query, k=5)
    expected = sorted(((m.video, m.start, m.end,
                        float(store.load(m.video)[m.start:m.end].mean(0) @ query))
                       for m in index.moments), key=lambda x: -x[3])
    assert [tuple(h[:3]) for h in hits] == [e[:3] for e in expected]  # k > moments: all three
    np.testing.assert_allclose([h.score for h in hits], [e[3] for e in expected], rtol=1e-5)
    index.save(tmp_path / "index")
    again = MomentIndex.load(tmp_path / "index")
    assert again.moments == index.moments and again.model == "milnce"
    assert again.search(query, k=1)[0][:3] == hits[0][:3]
    with pytest.raises(FileExistsError, match="--overwrite"):
        index.save(tmp_path / "index")
    index.save(tmp_path / "index", overwrite=True)
    with pytest.raises(MomentIndexError, match="dimension 3"):
        index.search(np.zeros(3), k=1)
    (tmp_path / "index" / "moments.tsv").write_text("long\t0\n")
    with pytest.raises(MomentIndexError, match="moments.tsv line 1"):
        MomentIndex.load(tmp_path / "index")


@pytest.fixture
def tiny_model_dir(tmp_path):
    from transformers import BertConfig, BertModel

    from videoclip.backbone import load_tokenizer
    from videoclip.model import VideoCLIP

    path = tmp_path / "tiny-bert"
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64)
    torch.manual_seed(0)
    BertModel(config).save_pretrained(path)
    load_tokenizer("minilm-l6").save_pretrained(path)
    model = VideoCLIP.from_backbone(str(path), num_video_layers=1)
    model.save_pretrained(tmp_path / "model")
    return tmp_path / "model"


@pytest.mark.slow
def test_videoclip_index_and_search_from_the_command_line(store, tiny_model_dir, tmp_path,
                                                         capsys):
    from videoclip.model import VideoCLIP

    assert main(["index", str(store.path), "--model", str(tiny_model_dir), "--out",
                 str(tmp_path / "index")]) == 0
    capsys.readouterr()
    assert main(["search", str(tmp_path / "index"), "pour water", "-k", "2", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    model = VideoCLIP.from_pretrained(tiny_model_dir).eval()
    with torch.inference_mode():
        text = model.encode_texts(["pour water"])[0]
        best = max(((m, float(model.encode_video(*_clip(store, m))[0] @ text))
                    for m in MomentIndex.load(tmp_path / "index").moments), key=lambda x: x[1])
    assert (hits[0]["video"], hits[0]["start"], hits[0]["end"]) == best[0][:3]
    assert hits[0]["score"] == pytest.approx(best[1], rel=1e-4, abs=1e-4)
    assert main(["search", str(tmp_path / "index"), "pour water"]) == 0
    assert "rank" in capsys.readouterr().out


def _clip(store, moment):
    features = torch.from_numpy(store.load(moment.video)[moment.start:moment.end])[None]
    return features, torch.ones(features.shape[:2], dtype=torch.bool)


def test_milnce_scorer_is_text_dot_mean_of_seconds(s3d_files):
    scorer = MilNCEScorer.from_milnce_checkpoint(s3d_files[0], dict_path=s3d_files[1])
    video = torch.randn(2, 4, 512)
    vmask = torch.tensor([[True, True, False, False], [True, True, True, True]])
    pooled = scorer.encode_video(video, vmask)
    torch.testing.assert_close(pooled[0], video[0, :2].mean(0))
    torch.testing.assert_close(pooled[1], video[1].mean(0))
    states = scorer.video_token_states(video, vmask, mask_cls=True)
    assert states[0, 2:].abs().sum() == 0 and torch.equal(states[1], video[1])
    assert scorer.encode_texts(["cut the tomato"]).shape == (1, 512)


@pytest.mark.slow
def test_every_evaluator_runs_with_the_milnce_scorer(s3d_files, smoke_world):
    scorer = MilNCEScorer.from_milnce_checkpoint(s3d_files[0], dict_path=s3d_files[1])
    for row in BENCHMARKS.values():
        results, _ = row.evaluate(scorer, smoke_world, device="cpu", progress=False)
        assert np.isfinite(results[row.headline]), row.id


@pytest.mark.slow
def test_evaluate_command_takes_milnce(s3d_files, smoke_world, tmp_path, capsys):
    assert main(["evaluate", "youcook2", "--model", "milnce", "--s3d", str(s3d_files[0]),
                 "--s3d-dict", str(s3d_files[1]), "--data-dir", str(smoke_world)]) == 0
    results = json.loads(capsys.readouterr().out)
    assert 0 <= results["R@1"] <= results["R@10"] <= 100
    assert main(["evaluate", "youcook2", "--model", "milnce", "--data-dir", str(tmp_path)]) == 2
    assert "--s3d" in capsys.readouterr().err
