"""videoclip.loss against naive per-row loops."""

from __future__ import annotations

import math

import pytest
import torch

from videoclip.loss import contrastive_loss, mil_nce_loss


def naive_contrastive(video: torch.Tensor, text: torch.Tensor, temperature: float) -> float:
    """Sum of the two cross-entropies, each a mean over rows, written as plain loops."""
    n = video.shape[0]
    v2t = t2v = 0.0
    for i in range(n):
        row = [float(video[i] @ text[j]) / temperature for j in range(n)]
        col = [float(video[j] @ text[i]) / temperature for j in range(n)]
        v2t += -row[i] + math.log(sum(math.exp(x) for x in row))
        t2v += -col[i] + math.log(sum(math.exp(x) for x in col))
    return v2t / n + t2v / n


def naive_mil_nce(video: torch.Tensor, text: torch.Tensor, bag: list[int]) -> float:
    """Miech et al. 2020 Eq. 1 per clip, as loops (positives appear twice in the denominator)."""
    total = 0.0
    for i in range(video.shape[0]):
        positives = [j for j, owner in enumerate(bag) if owner == i]
        pos = sum(math.exp(float(video[i] @ text[j])) for j in positives)
        den = sum(math.exp(float(video[i] @ text[j])) for j in range(text.shape[0]))
        den += sum(
            math.exp(float(video[k] @ text[j])) for k in range(video.shape[0]) for j in positives
        )
        total += -math.log(pos / den)
    return total / video.shape[0]


@pytest.mark.parametrize("temperature", [1.0, 0.3])
def test_contrastive_loss_equals_naive_loop(temperature: float) -> None:
    gen = torch.Generator().manual_seed(0)
    video = torch.randn(7, 5, generator=gen, dtype=torch.float64)
    text = torch.randn(7, 5, generator=gen, dtype=torch.float64)
    got = float(contrastive_loss(video, text, temperature=temperature))
    assert got == pytest.approx(naive_contrastive(video, text, temperature), rel=1e-9)


def test_contrastive_loss_is_symmetric_and_permutation_invariant() -> None:
    gen = torch.Generator().manual_seed(1)
    video = torch.randn(6, 4, generator=gen, dtype=torch.float64)
    text = torch.randn(6, 4, generator=gen, dtype=torch.float64)
    loss = contrastive_loss(video, text)
    assert float(contrastive_loss(text, video)) == pytest.approx(float(loss), rel=1e-12)
    perm = torch.randperm(6, generator=gen)
    assert float(contrastive_loss(video[perm], text[perm])) == pytest.approx(float(loss), rel=1e-12)
    # Breaking the pairing changes the loss (the test can fail).
    assert float(contrastive_loss(video, text[perm])) != pytest.approx(float(loss), rel=1e-6)


def test_contrastive_loss_perfect_diagonal_is_small() -> None:
    eye = torch.eye(8) * 10.0  # positives score 100, negatives 0
    assert float(contrastive_loss(eye, eye)) < 1e-3
    gen = torch.Generator().manual_seed(2)
    random = float(
        contrastive_loss(torch.randn(8, 8, generator=gen), torch.randn(8, 8, generator=gen))
    )
    assert random > 1.0


def test_contrastive_loss_gradients_reach_both_inputs() -> None:
    video = torch.randn(4, 3, requires_grad=True)
    text = torch.randn(4, 3, requires_grad=True)
    contrastive_loss(video, text).backward()
    assert video.grad is not None and video.grad.abs().sum() > 0
    assert text.grad is not None and text.grad.abs().sum() > 0


def test_contrastive_loss_rejects_mismatched_inputs() -> None:
    with pytest.raises(ValueError, match="one text per video"):
        contrastive_loss(torch.randn(4, 3), torch.randn(5, 3))
    with pytest.raises(ValueError, match="embedding size"):
        contrastive_loss(torch.randn(4, 3), torch.randn(4, 2))


def test_mil_nce_equals_naive_loop() -> None:
    gen = torch.Generator().manual_seed(3)
    video = torch.randn(4, 6, generator=gen, dtype=torch.float64)
    text = torch.randn(9, 6, generator=gen, dtype=torch.float64)
    bag = [0, 0, 1, 2, 2, 2, 3, 1, 0]
    got = float(mil_nce_loss(video, text, torch.tensor(bag)))
    assert got == pytest.approx(naive_mil_nce(video, text, bag), rel=1e-9)


def test_mil_nce_rewards_matching_bags() -> None:
    gen = torch.Generator().manual_seed(4)
    video = torch.randn(3, 16, generator=gen)
    bag = torch.tensor([0, 0, 1, 1, 2, 2])
    aligned = video[bag] * 5 + 0.1 * torch.randn(6, 16, generator=gen)
    shuffled = aligned[torch.tensor([2, 3, 4, 5, 0, 1])]
    assert float(mil_nce_loss(video, aligned, bag)) < float(mil_nce_loss(video, shuffled, bag))


def test_mil_nce_rejects_bad_bags() -> None:
    video, text = torch.randn(3, 4), torch.randn(4, 4)
    with pytest.raises(ValueError, match=r"expected \[0, 3\)"):
        mil_nce_loss(video, text, torch.tensor([0, 1, 2, 3]))
    with pytest.raises(ValueError, match=r"video clips \[2\] have no text"):
        mil_nce_loss(video, text, torch.tensor([0, 1, 1, 0]))
    with pytest.raises(ValueError, match="one entry per text"):
        mil_nce_loss(video, text, torch.tensor([0, 1, 2]))


def test_constant_embeddings_score_the_chance_loss():
    # What the trainer logs as chance_loss: every clip and text embedded to one vector.
    assert contrastive_loss(torch.zeros(8, 1), torch.zeros(8, 1)).item() == pytest.approx(2 * math.log(8))
    bag = torch.tensor([0, 0, 1, 2, 2, 2])  # V = 3 clips owning 2, 1 and 3 of N = 6 texts
    want = sum(math.log((6 + 3 * p) / p) for p in (2, 1, 3)) / 3
    assert mil_nce_loss(torch.zeros(3, 1), torch.zeros(6, 1), bag).item() == pytest.approx(want)
