"""QuRe's hard-negative rule: which corpus images count as a query's hard negatives.

The rule (QuRe, ICML 2025, and its public code ``data/fashionIQ.py:rerank_score``), for one query whose
target is in the corpus:

1. Rank the corpus by the query's score, highest first.
2. Keep only the images ranked below the target.
3. Take the score drops between consecutive images there, ``drop[j] = s(rank j) - s(rank j+1)`` for every
   ``j`` at or after the first image below the target (the drop from the target to the next image does not
   count).
4. Order the drops from largest to smallest and walk the neighbouring pairs of that order: (1st, 2nd),
   (2nd, 3rd), ... The first pair whose positions ``k1, k2`` are more than 1 apart is used.
5. The hard negatives are the images at ranks ``min(k1, k2) + 1`` through ``max(k1, k2)``: the images between
   the two drops, so at least 2 images.

Decisions the paper and its code leave open, fixed here:

- **Ties in scores.** The ranking is a stable sort: images of equal score keep corpus order, and the target
  comes first among the images that tie with it (they count as below it).
- **Ties in drops.** Equal drops are ordered by position, nearer the target first (a stable sort).
- **Fallback ``"below"``**: when no pair of drops qualifies (fewer than 4 images below the target, or
  drops that are monotone in position so every neighbouring pair is adjacent, e.g. evenly spaced or
  all-equal scores), the set is every image ranked below the target (1 to ``n`` images).
- **Fallback ``"corpus"``**: when the target is ranked last (no image below it), the set is the whole
  corpus minus the target, as during the warm-up.

Differences from the public code, all deliberate: the code's corpus is the list of training targets *with*
repeats (an image that is the target of several queries appears several times, creating zero drops), here
the corpus holds each image once; the code sorts with ``np.argsort``/``torch.argsort`` (unstable, so ties
fall in an unspecified order), here ties are ordered as above; the code has no fallback (a query with no
qualifying pair reuses the previous query's bounds, or fails for the first query), here the fallbacks above
apply. The pair walk (neighbouring pairs of the size order, ``consecutive_threshold = 1``) is the code's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

RULE = 0
FALLBACK_BELOW = 1
FALLBACK_CORPUS = 2
OUTCOMES: tuple[str, ...] = ("rule", "below", "corpus")

#: Two drops qualify when their positions differ by more than this (QuRe's ``consecutive_threshold``).
MIN_GAP = 1


@dataclass(frozen=True)
class HardNegatives:
    """Hard-negative sets for a batch of queries over one corpus.

    ``sets[i]`` holds corpus indices (int64, in ranking order for ``"rule"`` and ``"below"``, in corpus order
    for ``"corpus"``); ``outcome[i]`` is ``RULE``, ``FALLBACK_BELOW`` or ``FALLBACK_CORPUS``.
    """

    sets: list[torch.Tensor]
    outcome: torch.Tensor

    def sizes(self) -> torch.Tensor:
        """The size of each set, int64 ``(Q,)``."""
        return torch.tensor([len(s) for s in self.sets], dtype=torch.long)


def rank_with_target_first(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Corpus indices of each row ranked by descending score, ``(Q, N)``.

    Ties keep corpus order, except that the target comes first among the images tied with it.
    """
    q, n = scores.shape
    columns = torch.arange(n, device=scores.device).expand(q, n)
    # Move each row's target to column 0 (others keep their order), then stable-sort by score.
    is_target = columns == targets[:, None]
    pre = torch.argsort((~is_target).to(torch.int8), dim=1, stable=True)
    order = torch.sort(torch.gather(scores, 1, pre), dim=1, descending=True, stable=True).indices
    return torch.gather(pre, 1, order)


def hard_negative_sets(scores: torch.Tensor, targets: torch.Tensor | Sequence[int]) -> HardNegatives:
    """Apply the rule (module docstring) to every row of ``scores``.

    ``scores`` is ``(Q, N)``: query ``i``'s score for each of the ``N`` corpus images (higher = more
    relevant); ``targets[i]`` is the corpus index of query ``i``'s target. Returns the sets and which
    branch produced each. Raises ValueError for a corpus of fewer than 2 images, a target index outside the
    corpus, mismatched lengths, or non-finite scores.
    """
    if scores.dim() != 2:
        raise ValueError(f"scores must be (Q, N), got shape {tuple(scores.shape)}")
    q, n = scores.shape
    targets = torch.as_tensor(targets, dtype=torch.long, device=scores.device).reshape(-1)
    if targets.numel() != q:
        raise ValueError(f"{q} score rows but {targets.numel()} targets")
    if n < 2:
        raise ValueError(f"the corpus needs at least 2 images (the target and a negative), got {n}")
    if q and (int(targets.min()) < 0 or int(targets.max()) >= n):
        raise ValueError(f"target indices must lie in 0..{n - 1}")
    if not torch.isfinite(scores).all():
        raise ValueError("scores contain NaN or infinite values")
    if q == 0:
        return HardNegatives(sets=[], outcome=torch.zeros(0, dtype=torch.long))

    scores = scores.detach().double()
    ranked = rank_with_target_first(scores, targets)
    sorted_scores = torch.gather(scores, 1, ranked)
    target_rank = (ranked == targets[:, None]).long().argmax(dim=1)  # (Q,)

    # drop[j] between ranks j and j+1; valid only for j >= target_rank + 1.
    drops = sorted_scores[:, :-1] - sorted_scores[:, 1:]  # (Q, N-1), >= 0
    positions = torch.arange(n - 1, device=scores.device).expand(q, n - 1)
    valid = positions >= (target_rank + 1)[:, None]
    keyed = torch.where(valid, drops, torch.full_like(drops, -1.0))  # invalid drops sort last
    by_size = torch.sort(keyed, dim=1, descending=True, stable=True).indices  # (Q, N-1)
    n_valid = valid.sum(dim=1)  # (Q,)

    outcome = torch.full((q,), RULE, dtype=torch.long)
    lo = torch.zeros(q, dtype=torch.long)
    hi = torch.zeros(q, dtype=torch.long)
    if n >= 3:
        first, second = by_size[:, :-1], by_size[:, 1:]  # neighbouring pairs in size order
        pair_index = torch.arange(n - 2, device=scores.device).expand(q, n - 2)
        pair_ok = ((first - second).abs() > MIN_GAP) & (pair_index + 1 < n_valid[:, None])
        has_pair = pair_ok.any(dim=1)
        chosen = pair_ok.long().argmax(dim=1)  # first qualifying pair
        k1 = torch.gather(first, 1, chosen[:, None]).squeeze(1)
        k2 = torch.gather(second, 1, chosen[:, None]).squeeze(1)
        lo, hi = torch.minimum(k1, k2).cpu(), torch.maximum(k1, k2).cpu()
    else:
        has_pair = torch.zeros(q, dtype=torch.bool, device=scores.device)
    has_pair = has_pair.cpu()
    below = (n - 1 - target_rank).cpu()
    outcome[~has_pair] = FALLBACK_BELOW
    outcome[below == 0] = FALLBACK_CORPUS

    ranked_cpu = ranked.cpu()
    targets_cpu = targets.cpu()
    everything = torch.arange(n)
    sets: list[torch.Tensor] = []
    for i in range(q):
        kind = int(outcome[i])
        if kind == RULE:
            sets.append(ranked_cpu[i, int(lo[i]) + 1 : int(hi[i]) + 1].clone())
        elif kind == FALLBACK_BELOW:
            sets.append(ranked_cpu[i, n - int(below[i]) :].clone())
        else:
            sets.append(everything[everything != targets_cpu[i]])
    return HardNegatives(sets=sets, outcome=outcome)
