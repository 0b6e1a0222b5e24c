"""The two training objectives: QuRe's reward-model (Bradley-Terry) loss and the contrastive baseline.

Both divide the family's score by a learned temperature ``tau`` (initialised at 0.07, as QuRe's
``self.temp``). It is parametrised as ``log tau`` (so tau stays positive without clamping; QuRe's code learns
tau itself): ``Temperature().tau == exp(log_tau)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from models_zoo.base import CIRModel

INITIAL_TAU = 0.07


class Temperature(nn.Module):
    """A learned temperature, stored as ``log_tau``."""

    def __init__(self, initial: float = INITIAL_TAU) -> None:
        super().__init__()
        if initial <= 0:
            raise ValueError(f"the temperature must be positive, got {initial}")
        self.log_tau = nn.Parameter(torch.tensor(math.log(initial), dtype=torch.float32))

    @property
    def tau(self) -> torch.Tensor:
        return self.log_tau.exp()

    def forward(self, scores: torch.Tensor) -> torch.Tensor:
        """``scores / tau``."""
        return scores / self.tau.to(scores.dtype)


def pair_scores(model: CIRModel, queries: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """``s(q_i, image_i)`` for aligned rows, ``(B,)``, through the family's own ``score``.

    Uses ``model.score_pairs`` when a family defines it; otherwise the diagonal of ``model.score`` on the
    batch (``B x B``, cheap at training batch sizes), so any family with the scoring interface works.
    """
    if queries.shape[0] != images.shape[0]:
        raise ValueError(f"{queries.shape[0]} queries but {images.shape[0]} images")
    score_pairs = getattr(model, "score_pairs", None)
    if callable(score_pairs):
        return score_pairs(queries, images)
    return torch.diagonal(model.score(queries, images))


def bradley_terry_loss(
    target_scores: torch.Tensor, negative_scores: torch.Tensor, tau: torch.Tensor | float
) -> torch.Tensor:
    """Mean of ``-log sigmoid((s(q, t) - s(q, n)) / tau)`` over the batch.

    This equals QuRe's KL divergence between the one-hot preference (target first) and
    ``softmax([s_t, s_n] / tau)`` (``F.kl_div(..., reduction="batchmean")``).
    """
    if target_scores.shape != negative_scores.shape:
        raise ValueError(f"shape mismatch: {tuple(target_scores.shape)} vs {tuple(negative_scores.shape)}")
    margin = (target_scores.float() - negative_scores.float()) / torch.as_tensor(tau, dtype=torch.float32)
    return F.softplus(-margin).mean()  # softplus(-x) == -log sigmoid(x), stably


def info_nce_loss(
    scores: torch.Tensor, tau: torch.Tensor | float, *, target_ids: torch.Tensor | None = None
) -> torch.Tensor:
    """InfoNCE with in-batch negatives: ``scores`` is ``(B, B)``, row ``i`` = query ``i`` against the batch's
    targets, the positive on the diagonal; mean cross-entropy of ``softmax(row / tau)``.

    With ``target_ids`` (``(B,)`` image ids), a column holding the same image as the row's own target is not
    used as a negative (a batch can hold one image as the target of several queries).
    """
    if scores.dim() != 2 or scores.shape[0] != scores.shape[1]:
        raise ValueError(f"scores must be square (B, B), got {tuple(scores.shape)}")
    logits = scores.float() / torch.as_tensor(tau, dtype=torch.float32)
    if target_ids is not None:
        same = target_ids[:, None] == target_ids[None, :]
        same.fill_diagonal_(False)
        logits = logits.masked_fill(same, float("-inf"))
    labels = torch.arange(scores.shape[0], device=scores.device)
    return F.cross_entropy(logits, labels)
