"""videoclip.model on a tiny random BERT, checked against an independent plain-torch reference.

The reference (``reference_bert`` and friends) lives in ``tests/helpers.py``.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from helpers import (
    TINY_BERT,
    VIDEO_DIM,
    WORDS,
    make_model,
    make_tokenizer,
    reference_text_pooled,
    reference_video_hidden,
    reference_video_pooled,
    unit_features,
)

from videoclip.model import FeatureNormWarning, ModelConfig, VideoCLIP, VideoMLP

# ---------------------------------------------------------------- tests


@pytest.fixture()
def model(tmp_path: Path) -> VideoCLIP:
    return make_model(tmp_path / "tok")


def _vmask(lengths: list[int], num_slots: int) -> torch.Tensor:
    return torch.arange(num_slots)[None, :] < torch.tensor(lengths)[:, None]


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_video_embedding_matches_hand_computation(tmp_path: Path, attn: str) -> None:
    model = make_model(tmp_path / "tok", attn_implementation=attn)
    video, vmask = unit_features(3, 10, seed=1), _vmask([10, 4, 1], 10)
    weights = model.state_dict()
    hidden = reference_video_hidden(
        weights, "video_mlp.", "video_encoder.", video, vmask, cls_id=2, sep_id=3, num_layers=2
    )
    with torch.no_grad():
        got = model.encode_video(video, vmask)
    torch.testing.assert_close(got, reference_video_pooled(hidden, vmask), atol=2e-5, rtol=1e-4)
    # The pooling excludes [CLS] and includes [SEP]: the alternatives differ clearly.
    with_cls = torch.stack(
        [
            hidden[b, [0] + [1 + t for t in range(int(vmask[b].sum()))] + [33]].mean(0)
            for b in range(3)
        ]
    )
    without_sep = torch.stack(
        [hidden[b, [1 + t for t in range(int(vmask[b].sum()))]].mean(0) for b in range(3)]
    )
    assert (got - with_cls).abs().max() > 1e-2
    assert (got - without_sep).abs().max() > 1e-2


def test_token_states_and_mask_cls_match_hand_computation(model: VideoCLIP) -> None:
    video, vmask = unit_features(2, 6, seed=2), _vmask([6, 3], 6)
    weights = model.state_dict()
    for mask_cls in (False, True):
        hidden = reference_video_hidden(
            weights,
            "video_mlp.",
            "video_encoder.",
            video,
            vmask,
            cls_id=2,
            sep_id=3,
            num_layers=2,
            mask_cls=mask_cls,
        )
        with torch.no_grad():
            got = model.video_token_states(video, vmask, mask_cls=mask_cls)
        assert got.shape == (2, 6, 16)
        expected = hidden[:, 1:7]  # padded slots included: the original's states
        torch.testing.assert_close(got, expected, atol=2e-5, rtol=1e-4)
    with torch.no_grad():
        open_cls = model.video_token_states(video, vmask, mask_cls=False)
        masked_cls = model.video_token_states(video, vmask, mask_cls=True)
    assert (open_cls - masked_cls).abs().max() > 1e-3


def test_text_embedding_matches_hand_computation(model: VideoCLIP) -> None:
    input_ids, attention_mask = model.tokenize(
        ["cut the onion into small pieces", "add salt", "heat"]
    )
    assert input_ids[:, 0].tolist() == [2, 2, 2]
    assert input_ids[1].tolist()[:4] == [2, 5 + WORDS.index("add"), 5 + WORDS.index("salt"), 3]
    expected = reference_text_pooled(
        model.state_dict(), "text_encoder.", input_ids, attention_mask, num_layers=3
    )
    with torch.no_grad():
        got = model.encode_text(input_ids, attention_mask)
    torch.testing.assert_close(got, expected, atol=2e-5, rtol=1e-4)


def test_cls_pooling_returns_cls_state(tmp_path: Path) -> None:
    model = make_model(tmp_path / "tok", pooling="cls")
    video, vmask = unit_features(2, 5, seed=3), _vmask([5, 2], 5)
    hidden = reference_video_hidden(
        model.state_dict(),
        "video_mlp.",
        "video_encoder.",
        video,
        vmask,
        cls_id=2,
        sep_id=3,
        num_layers=2,
    )
    with torch.no_grad():
        torch.testing.assert_close(
            model.encode_video(video, vmask), hidden[:, 0], atol=2e-5, rtol=1e-4
        )


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_video_padding_invariance(tmp_path: Path, attn: str) -> None:
    model = make_model(tmp_path / "tok", attn_implementation=attn)
    video, vmask = unit_features(3, 7, seed=4), _vmask([7, 5, 2], 7)
    with torch.no_grad():
        base = model.encode_video(video, vmask)
        states = model.video_token_states(video, vmask, mask_cls=True)
        # Padded to 32 slots with zeros (the original's layout).
        padded = torch.cat([video, torch.zeros(3, 25, VIDEO_DIM)], dim=1)
        padded_mask = torch.cat([vmask, torch.zeros(3, 25, dtype=torch.bool)], dim=1)
        torch.testing.assert_close(
            model.encode_video(padded, padded_mask), base, atol=1e-5, rtol=1e-5
        )
        torch.testing.assert_close(
            model.video_token_states(padded, padded_mask, mask_cls=True)[:, :7],
            states,
            atol=1e-5,
            rtol=1e-5,
        )
        # Garbage (even NaN) in masked slots changes nothing.
        garbage = video.clone()
        garbage[~vmask] = float("nan")
        torch.testing.assert_close(model.encode_video(garbage, vmask), base, atol=1e-5, rtol=1e-5)
        # A row does not depend on the other rows of the batch.
        torch.testing.assert_close(
            model.encode_video(video[2:], vmask[2:]), base[2:], atol=1e-5, rtol=1e-5
        )
        # Cutting the clip to its valid part (T = 2) gives the same embedding.
        torch.testing.assert_close(
            model.encode_video(video[2:, :2], vmask[2:, :2]), base[2:], atol=1e-5, rtol=1e-5
        )
        # The test can fail: unmasking a padded slot changes the embedding.
        unmasked = vmask.clone()
        unmasked[2, 3] = True
        assert (model.encode_video(video, unmasked)[2] - base[2]).abs().max() > 1e-4


def test_text_padding_invariance(model: VideoCLIP) -> None:
    input_ids, attention_mask = model.tokenize(["cut the onion", "add salt to the pan and stir"])
    pad = torch.zeros(2, 9, dtype=torch.long)
    with torch.no_grad():
        base = model.encode_text(input_ids, attention_mask)
        longer = model.encode_text(
            torch.cat([input_ids, pad], 1), torch.cat([attention_mask, pad], 1)
        )
        alone = model.encode_text(*model.tokenize(["cut the onion"]))
    torch.testing.assert_close(longer, base, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(alone, base[:1], atol=1e-5, rtol=1e-5)


def test_tokenize_truncates_to_61_tokens(model: VideoCLIP) -> None:
    input_ids, attention_mask = model.tokenize([" ".join(WORDS * 10), "salt"])
    assert input_ids.shape == (2, 63)
    assert input_ids[0, 0] == 2 and input_ids[0, 62] == 3
    assert input_ids[1, :3].tolist() == [2, 5 + WORDS.index("salt"), 3]
    assert attention_mask[1].sum() == 3 and input_ids[1, 3:].eq(0).all()
    with pytest.raises(TypeError, match="list of strings"):
        model.tokenize("salt")


def test_encode_texts_batches_equal_one_pass(model: VideoCLIP) -> None:
    texts = ["cut the onion", "add salt", "heat oil in a pan", "stir fry the garlic", "chop"]
    one_pass = model.encode_texts(texts)
    batched = model.encode_texts(texts, batch_size=2)
    assert one_pass.shape == (5, 16) and one_pass.dtype == torch.float32
    torch.testing.assert_close(batched, one_pass, atol=1e-5, rtol=1e-5)


def test_forward_on_a_batch(model: VideoCLIP) -> None:
    input_ids, attention_mask = model.tokenize(["cut the onion", "add salt"])
    batch = SimpleNamespace(
        video=unit_features(2, 32, seed=5),
        vmask=_vmask([32, 10], 32),
        input_ids=input_ids,
        attention_mask=attention_mask,
    )
    with torch.no_grad():
        video_emb, text_emb = model(batch)
    assert video_emb.shape == text_emb.shape == (2, 16)


def test_video_mlp_is_linear_gelu_layernorm_linear() -> None:
    torch.manual_seed(0)
    mlp = VideoMLP(8, 6)
    x = torch.randn(3, 8)
    hidden = F.gelu(x @ mlp.linear1.weight.T + mlp.linear1.bias, approximate="none")
    hidden = F.layer_norm(hidden, (6,), mlp.LayerNorm.weight, mlp.LayerNorm.bias, eps=1e-5)
    torch.testing.assert_close(mlp(x), hidden @ mlp.linear2.weight.T + mlp.linear2.bias)
    assert mlp.LayerNorm.eps == 1e-5


def test_shared_towers_use_one_module(tmp_path: Path) -> None:
    shared = make_model(tmp_path / "tok", shared_towers=True, num_video_layers=3)
    assert shared.video_tower is shared.text_encoder
    assert not any(key.startswith("video_encoder.") for key in shared.state_dict())
    video, vmask = unit_features(2, 4, seed=6), _vmask([4, 2], 4)
    hidden = reference_video_hidden(
        shared.state_dict(),
        "video_mlp.",
        "text_encoder.",
        video,
        vmask,
        cls_id=2,
        sep_id=3,
        num_layers=3,
    )
    with torch.no_grad():
        torch.testing.assert_close(
            shared.encode_video(video, vmask),
            reference_video_pooled(hidden, vmask),
            atol=2e-5,
            rtol=1e-4,
        )
    with pytest.raises(ValueError, match="must equal num_text_layers"):
        make_model(tmp_path / "tok2", shared_towers=True, num_video_layers=2)


def test_from_backbone_copies_the_first_layers(tmp_path: Path) -> None:
    from transformers import BertConfig, BertModel

    torch.manual_seed(1)
    backbone = BertModel(BertConfig(**dict(TINY_BERT, num_hidden_layers=4)))
    backbone.save_pretrained(tmp_path / "backbone")
    make_tokenizer(tmp_path / "backbone").save_pretrained(tmp_path / "backbone")
    model = VideoCLIP.from_backbone(
        str(tmp_path / "backbone"), num_video_layers=2, num_text_layers=3, video_dim=VIDEO_DIM
    )
    assert not model.training
    assert (model.config.num_video_layers, model.config.num_text_layers) == (2, 3)
    source = backbone.state_dict()
    for tower, layers in ((model.video_encoder, 2), (model.text_encoder, 3)):
        assert len(tower.encoder.layer) == layers
        for key, value in tower.state_dict().items():
            torch.testing.assert_close(value, source[key], atol=0, rtol=0)
    assert model.video_mlp.linear1.weight.shape == (16, VIDEO_DIM)
    with pytest.raises(ValueError, match="has 4 layers"):
        VideoCLIP.from_backbone(str(tmp_path / "backbone"), num_video_layers=5)


def test_bad_video_inputs_name_expected_and_got(model: VideoCLIP) -> None:
    with pytest.raises(ValueError, match=r"24 dims per second.*got 512"):
        model.encode_video(torch.zeros(1, 4, 512), torch.ones(1, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"at most 32 seconds.*got T=33"):
        model.encode_video(unit_features(1, 33), torch.ones(1, 33, dtype=torch.bool))
    with pytest.raises(
        ValueError, match=r"vmask must have shape \(B, T\) = \(2, 4\).*got \(2, 5\)"
    ):
        model.encode_video(unit_features(2, 4), torch.ones(2, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="float tensor"):
        model.encode_video(unit_features(4), torch.ones(4, dtype=torch.bool))
    with pytest.raises(ValueError, match="vmask must be bool"):
        model.encode_video(unit_features(1, 4), torch.ones(1, 4))


def test_bad_text_inputs(model: VideoCLIP) -> None:
    input_ids, attention_mask = model.tokenize(["cut the onion"])
    with pytest.raises(ValueError, match=r"start with \[CLS\]"):
        model.encode_text(input_ids[:, 1:], attention_mask[:, 1:])
    with pytest.raises(ValueError, match="shape of input_ids"):
        model.encode_text(input_ids, attention_mask[:, :-1])


def test_non_unit_norm_features_warn_with_the_fix(model: VideoCLIP) -> None:
    video, vmask = unit_features(2, 4), _vmask([4, 2], 4)
    with torch.no_grad():
        with pytest.warns(FeatureNormWarning, match=r"L2-normalised per second.*np\.linalg\.norm"):
            model.encode_video(video * 3.0, vmask)
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("error")
            model.encode_video(video, vmask)  # unit rows: silent
            scaled_padding = video.clone()
            scaled_padding[1, 2:] *= 7.0  # masked rows are not checked
            model.encode_video(scaled_padding, vmask)


def test_model_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="pooling"):
        ModelConfig(bert=TINY_BERT, pooling="max")
    with pytest.raises(ValueError, match="attn_implementation"):
        ModelConfig(bert=TINY_BERT, attn_implementation="flash")
    with pytest.raises(ValueError, match="unknown ModelConfig keys"):
        ModelConfig.from_json('{"bert": {}, "num_vidoe_layers": 6}')
