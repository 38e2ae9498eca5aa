"""The fine-tuning losses (design §10.1–10.5) against naive per-row loops."""

from __future__ import annotations

import math

import pytest
import torch

from videoclip.loss import (
    contrastive_loss,
    one_way_contrastive_loss,
    step_bce_loss,
    token_classification_loss,
)


def naive_one_way(video_emb, text_emb, direction):
    """Row by row: -log softmax of the positive among the row's B candidates."""
    queries, keys = (text_emb, video_emb) if direction == "t2v" else (video_emb, text_emb)
    total = 0.0
    for i in range(len(queries)):
        scores = [float(queries[i] @ keys[j]) for j in range(len(keys))]
        top = max(scores)
        log_z = top + math.log(sum(math.exp(s - top) for s in scores))
        total += log_z - scores[i]
    return total / len(queries)


@pytest.mark.parametrize("direction", ["t2v", "v2t"])
def test_one_way_contrastive_loss_matches_a_naive_loop(direction):
    gen = torch.Generator().manual_seed(0)
    video_emb, text_emb = torch.randn(6, 5, generator=gen), torch.randn(6, 5, generator=gen)
    got = one_way_contrastive_loss(video_emb, text_emb, direction=direction)
    assert got.item() == pytest.approx(naive_one_way(video_emb, text_emb, direction), rel=1e-5)


def test_the_two_directions_differ_and_sum_to_the_pretraining_loss():
    gen = torch.Generator().manual_seed(1)
    video_emb, text_emb = torch.randn(4, 3, generator=gen), torch.randn(4, 3, generator=gen)
    t2v = one_way_contrastive_loss(video_emb, text_emb, direction="t2v")
    v2t = one_way_contrastive_loss(video_emb, text_emb, direction="v2t")
    assert t2v.item() != pytest.approx(v2t.item())
    assert (t2v + v2t).item() == pytest.approx(contrastive_loss(video_emb, text_emb).item(), rel=1e-6)


def test_one_way_loss_rejects_bad_input():
    with pytest.raises(ValueError, match="direction"):
        one_way_contrastive_loss(torch.zeros(2, 3), torch.zeros(2, 3), direction="both")
    with pytest.raises(ValueError, match="one text per video"):
        one_way_contrastive_loss(torch.zeros(2, 3), torch.zeros(3, 3), direction="t2v")


def test_token_classification_loss_matches_a_naive_loop_and_ignores_padding():
    gen = torch.Generator().manual_seed(2)
    logits = torch.randn(2, 4, 5, generator=gen)  # (W, T, C)
    targets = torch.tensor([[0, 3, -100, -100], [4, 4, 1, -100]])
    losses = []
    for w in range(2):
        for t in range(4):
            if targets[w, t] == -100:
                continue
            row = logits[w, t]
            losses.append(float(torch.logsumexp(row, 0) - row[targets[w, t]]))
    got = token_classification_loss(logits, targets)
    assert got.item() == pytest.approx(sum(losses) / len(losses), rel=1e-6)
    with pytest.raises(ValueError, match=r"\(W, T, C\)"):
        token_classification_loss(logits[0], targets[0])


def test_step_bce_loss_matches_a_naive_loop():
    gen = torch.Generator().manual_seed(3)
    logits = torch.randn(5, 3, generator=gen)
    targets = torch.tensor([[1, 0, 0], [0, 0, 0], [0, 1, 1], [0, 0, 0], [1, 0, 0]])
    total = 0.0
    for n in range(5):
        for k in range(3):
            p = 1 / (1 + math.exp(-float(logits[n, k])))
            total -= math.log(p) if targets[n, k] else math.log(1 - p)
    assert step_bce_loss(logits, targets).item() == pytest.approx(total / 15, rel=1e-5)
    with pytest.raises(ValueError, match="one shape"):
        step_bce_loss(logits, targets[:, :2])
