"""COIN's γ and duplicate labels (videoclip.book.coin_gamma)."""

from __future__ import annotations

import json
import math
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
import torch

from videoclip.book.coin_gamma import (
    duplicate_labels,
    frame_accuracy_at,
    gamma_diagnosis,
    read_taxonomy_labels,
    step_logit_summary,
)


def test_duplicates_are_found_with_their_ids_and_targets():
    labels = {3: "remove the tire", 1: "remove the tire", 2: "peel", 4: "peel", 5: "peel", 6: "cut"}
    targets = {1: "ChangeCarTire", 2: "CutMango", 3: "ChangeBikeTires", 4: "CutCantaloupe", 5: "X", 6: "Y"}
    table = duplicate_labels(labels, targets)
    assert table.label.tolist() == ["peel", "remove the tire"]
    assert table.ids.tolist() == [[2, 4, 5], [1, 3]]
    assert table.targets.iloc[1] == ["ChangeCarTire", "ChangeBikeTires"]
    assert duplicate_labels({1: "a", 2: "b"}).empty


def test_a_duplicate_sets_gamma_to_its_squared_norm():
    # ids 7 and 9 share a text (same embedding, norm 2); 8 is close to 7 but less than ‖z‖² = 4.
    emb = np.array([[2.0, 0.0], [1.5, 1.0], [2.0, 0.0]])
    out = gamma_diagnosis(emb, [7, 8, 9], ["remove the tire", "remove the wheel", "remove the tire"])
    assert out["gamma"] == pytest.approx(4.0) and out["pair_identical"]
    assert out["pair"][:2] == (7, 9)
    assert out["duplicate_floor"] == pytest.approx(4.0)
    assert out["gamma_distinct"] == pytest.approx(3.0)  # 7·8 = 2·1.5
    assert (out["num_labels"], out["num_distinct"]) == (3, 2)
    plain = gamma_diagnosis(emb[:2], [7, 8], ["a", "b"])
    assert not plain["pair_identical"] and math.isnan(plain["duplicate_floor"])


def test_step_logits_against_gamma():
    predictions = pd.DataFrame({"true": [0, 0, 5, 5, 6, 6], "max_logit": [0.2, 0.9, 0.5, 0.6, 0.7, 0.8]})
    out = step_logit_summary(predictions, 0.65)
    assert out["step_max"] == pytest.approx(0.8) and out["step_median"] == pytest.approx(0.65)
    assert out["step_above_gamma_%"] == pytest.approx(50.0)
    assert out["background_above_gamma_%"] == pytest.approx(50.0)
    with pytest.raises(ValueError, match="no step second"):
        step_logit_summary(predictions.assign(true=0), 0.5)


def test_a_taxonomy_without_its_columns_names_the_file_and_line(tmp_path):
    path = tmp_path / "taxonomy.csv"
    path.write_text("Target Id,Target Label,Action\n0,A,b\n")
    with pytest.raises(ValueError, match=r"taxonomy.csv, line 1: missing columns \['Action Id', 'Action Label'\]"):
        read_taxonomy_labels(path)


@pytest.mark.realdata
def test_the_real_coin_taxonomy_repeats_25_label_texts(real_data_dir):
    steps = read_taxonomy_labels(real_data_dir / "coin" / "coin_taxonomy_target_action_mapping.csv")
    assert len(steps) == 778 and steps.label.nunique() == 749
    table = duplicate_labels(dict(zip(steps.action_id, steps.label)), dict(zip(steps.action_id, steps.target)))
    assert (len(table), int(table["count"].sum())) == (25, 54)
    tire = table.set_index("label").loc["remove the tire"]
    assert tire.ids == [234, 261] and set(tire.targets) == {"ChangeCarTire", "ChangeBikeTires"}
    # Any encoder embeds the duplicates identically: with unit-norm rows γ is exactly 1.
    rng = np.random.default_rng(0)
    vectors = {text: rng.standard_normal(16) for text in steps.label.unique()}
    emb = np.stack([vectors[t] / np.linalg.norm(vectors[t]) for t in steps.label])
    out = gamma_diagnosis(emb, steps.action_id.tolist(), steps.label.tolist())
    assert out["gamma"] == pytest.approx(1.0) and out["pair_identical"]
    assert out["gamma_distinct"] < 1.0



class _TwoDimModel:
    """Texts embed by a fixed table; a second's token state is its feature's first two dims."""

    TABLE: ClassVar[dict[str, list[float]]] = {"remove the tire": [2.0, 0.0], "pour water": [0.0, 1.5],
                                               "pour juice": [0.5, 0.6]}

    def encode_texts(self, texts):
        return torch.tensor([self.TABLE[t] for t in texts])

    def video_token_states(self, video, vmask, *, mask_cls):
        return video[..., :2] * vmask[..., None]


def test_rescoring_at_gamma_over_distinct_texts(tmp_path):
    from videoclip.data.features import write_features
    from videoclip.evaluation import evaluate_segmentation

    segments = [(1, "remove the tire", [0, 5]), (2, "remove the tire", [6, 9]), (3, "pour water", [12, 16]),
                (4, "pour juice", [16, 18])]
    video = {"recipe_type": 0, "annotation": [{"id": str(i), "segment": s, "label": t} for i, t, s in segments],
             "video_url": "", "start": 0, "end": 20, "duration": 20.0, "class": "X", "subset": "testing"}
    (tmp_path / "coin").mkdir()
    (tmp_path / "coin" / "COIN.json").write_text(json.dumps({"database": {"vidC": video}}))
    features = np.zeros((20, 512), np.float32)
    features[:, 1] = 1.0  # every second scores 1.5 on "pour water", 0.6 on "pour juice", 0 on the tire
    write_features(tmp_path / "coin" / "features", "vidC", features)
    model = _TwoDimModel()
    results, predictions = evaluate_segmentation(model, tmp_path, progress=False)
    assert results["gamma"] == pytest.approx(4.0)  # ids 1 and 2 share a text: ‖z‖² = 4
    assert results["frame_accuracy"] == results["background_baseline"]  # 1.5 <= 4: all Outside
    assert (predictions["best"] == 3).all() and (predictions["pred"] == 0).all()
    texts = list(model.TABLE) + ["remove the tire"]
    distinct = gamma_diagnosis(model.encode_texts(texts), [1, 3, 4, 2], texts)["gamma_distinct"]
    assert distinct == pytest.approx(1.0)  # tire·juice
    assert frame_accuracy_at(predictions, distinct) == pytest.approx(100 * 4 / 20)  # seconds 12-15 right
    assert frame_accuracy_at(predictions, results["gamma"]) == results["frame_accuracy"]
