"""Training losses: VideoCLIP's symmetric contrastive loss and the MIL-NCE ablation.

Both are small pure functions of the pooled embeddings; ``tests/test_loss.py`` checks them
against naive per-row loops. A pre-training config chooses one by name (:data:`LOSSES`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _check_pair(video_emb: torch.Tensor, text_emb: torch.Tensor) -> None:
    if video_emb.dim() != 2 or text_emb.dim() != 2:
        raise ValueError(
            f"expected 2-D embeddings (B, D); got video_emb {tuple(video_emb.shape)}, "
            f"text_emb {tuple(text_emb.shape)}"
        )
    if video_emb.shape[1] != text_emb.shape[1]:
        raise ValueError(
            f"video_emb and text_emb must share the embedding size D; got "
            f"{video_emb.shape[1]} and {text_emb.shape[1]}"
        )


def contrastive_loss(
    video_emb: torch.Tensor, text_emb: torch.Tensor, *, temperature: float = 1.0
) -> torch.Tensor:
    """Symmetric InfoNCE over the in-batch video-text logit matrix (design §1, Paper: §3.2).

    ``logits_v2t = video_emb @ text_emb.T / temperature``; pair ``i`` is the positive of row
    ``i`` and the other ``B - 1`` pairs of the batch are its negatives. The loss is the
    **sum** of the video→text and text→video cross-entropies, each the mean over the ``B``
    rows (as the original's ``MMContraLoss``: two ``nn.CrossEntropyLoss`` added); τ = 1 there.

    Args:
        video_emb: ``(B, D)`` pooled video embeddings (no normalisation).
        text_emb: ``(B, D)`` pooled text embeddings; row ``i`` pairs with ``video_emb[i]``.
        temperature: divides the logits.

    Returns:
        A scalar tensor.
    """
    _check_pair(video_emb, text_emb)
    if video_emb.shape[0] != text_emb.shape[0]:
        raise ValueError(
            f"contrastive_loss needs one text per video clip; got {video_emb.shape[0]} videos "
            f"and {text_emb.shape[0]} texts (for bags of texts use mil_nce_loss)"
        )
    logits_v2t = video_emb @ text_emb.T / temperature  # (B, B)
    targets = torch.arange(video_emb.shape[0], device=video_emb.device)
    return F.cross_entropy(logits_v2t, targets) + F.cross_entropy(logits_v2t.T, targets)


def mil_nce_loss(
    video_emb: torch.Tensor,
    text_emb: torch.Tensor,
    bag: torch.Tensor,
    *,
    temperature: float = 1.0,
) -> torch.Tensor:
    """MIL-NCE (Miech et al., CVPR 2020, Eq. 1) with a bag of positive texts per video clip.

    VideoCLIP's "MIL-NCE clips and loss" ablation (Paper: Table 7; design §4). With scores
    ``s[i, j] = video_emb[i] · text_emb[j] / temperature`` and the bag of clip ``i``,
    ``P_i = {j : bag[j] == i}``, the loss of clip ``i`` is::

        -log( Σ_{j∈P_i} exp s[i,j]  /  ( Σ_j exp s[i,j]  +  Σ_k Σ_{j∈P_i} exp s[k,j] ) )

    i.e. log of the sum of exp over the positives, minus log of the sum over positives plus
    negatives, where the denominator holds clip ``i`` against every text of the batch and
    every clip of the batch against the texts of ``P_i`` (positives therefore count twice,
    as in Miech et al.'s released implementation). The result is the mean over clips.

    Args:
        video_emb: ``(V, D)`` pooled embeddings of the video clips.
        text_emb: ``(N, D)`` pooled embeddings of the texts.
        bag: ``(N,)`` long; ``bag[j]`` is the index in ``[0, V)`` of the clip text ``j`` belongs
            to. Every clip must own at least one text.
        temperature: divides the scores.

    Returns:
        A scalar tensor.
    """
    _check_pair(video_emb, text_emb)
    num_videos, num_texts = video_emb.shape[0], text_emb.shape[0]
    if bag.shape != (num_texts,):
        raise ValueError(
            f"bag must have shape ({num_texts},) (one entry per text); got {tuple(bag.shape)}"
        )
    if bag.dtype.is_floating_point:
        raise ValueError(f"bag must hold integer clip indices; got dtype {bag.dtype}")
    if num_texts and (int(bag.min()) < 0 or int(bag.max()) >= num_videos):
        raise ValueError(
            f"bag holds clip indices in [{int(bag.min())}, {int(bag.max())}]; "
            f"expected [0, {num_videos})"
        )
    bag = bag.to(video_emb.device)
    positives = F.one_hot(bag, num_videos).T.bool()  # (V, N): positives[i, j] = bag[j] == i
    empty = (~positives.any(dim=1)).nonzero().flatten().tolist()
    if empty:
        raise ValueError(
            f"video clips {empty[:10]} have no text in their bag; every clip needs one"
        )
    scores = video_emb @ text_emb.T / temperature  # (V, N)
    very_negative = torch.finfo(scores.dtype).min
    log_pos = torch.logsumexp(scores.masked_fill(~positives, very_negative), dim=1)  # (V,)
    log_row = torch.logsumexp(scores, dim=1)  # clip i against all texts
    log_col = torch.logsumexp(scores, dim=0)  # (N,) all clips against text j
    log_cols_of_bag = torch.logsumexp(
        log_col.unsqueeze(0).masked_fill(~positives, very_negative), dim=1
    )  # all clips against the texts of P_i
    return (torch.logaddexp(log_row, log_cols_of_bag) - log_pos).mean()


#: The losses a pre-training config names (its ``loss`` key): name -> ``loss(video_emb, text_emb,
#: batch)``. ``mil_nce`` reads the batch's bags, so it needs the ``milnce`` clip sampler.
LOSSES = {
    "contrastive": lambda video_emb, text_emb, batch: contrastive_loss(video_emb, text_emb),
    "mil_nce": lambda video_emb, text_emb, batch: mil_nce_loss(video_emb, text_emb, batch.bag),
}
