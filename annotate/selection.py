"""Informative pair selection: which (query, model pair) comparisons a campaign asks about.

Used by :func:`annotate.services.campaign_build.campaign_build` and
:func:`annotate.services.campaign_build.campaign_refresh` when the campaign's ``pair_selection`` is
``"informative"``; the rule itself is :mod:`hpbench.metrics.adaptive` (and
``bench/fewer_votes.py`` simulates exactly it). Inputs, all available without torch:

- candidates: every (query, pair of the campaign's models) on queries each model's latest finished run covers,
  whose two top-``set_size`` sets differ, that the campaign does not compare yet (in either orientation);
- each model's relevance scores from its run's stored top-K (``hpbench.catalog.results``): a scored model's
  score of a set is the mean of its scores of the set's images, an image outside its top-K counting as its
  K-th score (an upper bound); the campaign's models are the scored models. They give each candidate's
  standardised score gap and the scorer disagreement;
- Bradley-Terry strengths of the set makers from this campaign's finished comparisons (votes for a / b; zero
  before any vote), and the predicted-preference fit on their majority verdicts;
- where a preference model was trained on a benchmark frozen from this campaign (the leaderboard then stores its
  cross-predicted probabilities as the campaign's :class:`~annotate.models.SelectionPredictor`), its probability
  for each candidate it predicted (:func:`campaign_learned_preferences`) replaces the fit's: pairs are then chosen
  where the learned predictor is least certain. The round records which predictor it used and for how many
  candidates (``predictor``, ``predicted``).

Each round (the build, then each refresh) draws by the Poisson design of :mod:`hpbench.metrics.adaptive`: each
comparison stores its round and ``π`` in it (``selection_round``, ``selection_pi``), the campaign the rounds'
plan (``Campaign.selection_rounds``), and :func:`selection_weights_update` sets every drawn comparison's
``selection_weight`` from them (:func:`hpbench.metrics.adaptive.sequential_weights`), which the frozen
benchmark's estimates use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from django.db.models import Count, F, Q

from hpbench.metrics.adaptive import (
    bt_strengths,
    informative_draw,
    predicted_preference,
    score_evidence,
    scorer_disagreement,
)


@dataclass(frozen=True)
class Drawn:
    query_id: int
    model_a: int  # model pks, lower pk first; the build draws the a/b orientation
    model_b: int
    pi: float  # its inclusion probability in this round


class TopkSetScores:
    """A scored model's set scores from its stored top-K (lookups cached per query): the mean of its scores of the
    set's images, an image outside its top-K counting as its K-th score. Also the preference model's
    (``worker/preference.py``), so that selection and prediction score a set alike."""

    def __init__(self, ranked: dict[int, tuple[list[int], list[float]]]) -> None:
        self._ranked = ranked
        self._cache: dict[int, tuple[dict[int, float], float]] = {}

    def set_score(self, query_id: int, images: list[int]) -> float:
        hit = self._cache.get(query_id)
        if hit is None:
            ids, scores = self._ranked[query_id]
            hit = self._cache[query_id] = (dict(zip(ids, scores, strict=True)), scores[-1] if scores else 0.0)
        lookup, floor = hit
        return sum(lookup.get(i, floor) for i in images) / max(1, len(images))


def informative_candidates(
    *, model_pks: list[int], query_ids: list[int], topks: dict[int, dict[int, list[int]]], set_size: int,
    existing: set[tuple[int, int, int]],
) -> list[tuple[int, int, int]]:
    """``(query_id, model i, model j)`` with ``i < j`` (pks) whose sets differ and that are not in ``existing``."""
    out = []
    for q in query_ids:
        for x, i in enumerate(model_pks):
            for j in model_pks[x + 1 :]:
                if (q, i, j) in existing or set(topks[i][q][:set_size]) == set(topks[j][q][:set_size]):
                    continue
                out.append((q, i, j))
    return out


def campaign_evidence(*, campaign, model_pks: list[int]) -> dict:
    """Strengths and the predicted-preference fit from the campaign's finished comparisons (votes so far).

    A comparison is finished once its votes reach its target (adaptive: once it stopped). Returns
    ``{"strength": {model pk: float}, "fit": [(model a pk, model b pk, a won)]}``.
    """
    from annotate.models import Comparison

    rows = list(
        Comparison.objects.filter(campaign=campaign, is_gold=False, target_votes__gt=0)
        .filter(Q(stop_reason__gt="") | Q(votes_count__gte=F("target_votes")))
        .annotate(
            n_a=Count("votes", filter=Q(votes__choice="a", votes__excluded=False)),
            n_b=Count("votes", filter=Q(votes__choice="b", votes__excluded=False)),
        )
        .values_list("query_id", "set_a_model_id", "set_b_model_id", "set_a_images", "set_b_images", "n_a", "n_b")
    )
    index = {pk: n for n, pk in enumerate(model_pks)}
    rows = [r for r in rows if r[1] in index and r[2] in index and r[5] + r[6] > 0]
    strength = bt_strengths(
        [index[r[1]] for r in rows], [index[r[2]] for r in rows], [r[5] for r in rows], [r[5] + r[6] for r in rows],
        len(model_pks),
    )
    decided = [r for r in rows if r[5] != r[6]]
    return {"strength": dict(zip(model_pks, strength.tolist(), strict=True)), "decided": decided}


def campaign_learned_preferences(*, campaign) -> tuple[dict[tuple[int, int, int], float], str]:
    """The campaign's newest learned predictor (:class:`annotate.models.SelectionPredictor`): ``({(query, model i,
    model j): p}, label)`` with ``i < j`` (pks) and ``p`` the probability that people prefer model i's set, for
    each candidate it predicted; ``({}, "")`` when there is none."""
    from annotate.models import SelectionPredictor

    row = SelectionPredictor.objects.filter(campaign=campaign).first()
    if row is None or len(row.keys) != len(row.p) or not row.keys:
        return {}, ""
    learned = {(int(q), int(i), int(j)): float(v) for (q, i, j), v in zip(row.keys, row.p, strict=True)}
    return learned, row.label


def informative_select(
    *, campaign, model_pks: list[int], candidates: list[tuple[int, int, int]], topks_full, set_size: int, take: int,
    rng: np.random.Generator, learned: dict[tuple[int, int, int], float] | None = None,
) -> list[Drawn]:
    """Draw about ``take`` of ``candidates`` (``min(take, len(candidates))`` expected) by
    :func:`hpbench.metrics.adaptive.informative_draw` (see the module doc).

    ``topks_full`` ``{model pk: {query id: (image ids, scores)}}``, the runs' whole stored top-K; ``learned``
    (:func:`campaign_learned_preferences`) the preference model's probabilities, used where it has one.
    """
    if not candidates or take <= 0:
        return []
    evidence = campaign_evidence(campaign=campaign, model_pks=model_pks)
    strength = evidence["strength"]

    scorers = [TopkSetScores(topks_full[pk]) for pk in model_pks]

    def gap_rows(rows):
        diff = np.empty((len(model_pks), len(rows)))
        for c, (q, _i, _j, set_i, set_j) in enumerate(rows):
            for k, scorer in enumerate(scorers):
                diff[k, c] = scorer.set_score(q, set_i) - scorer.set_score(q, set_j)
        return diff

    sets = [(q, i, j, topks_full[i][q][0][:set_size], topks_full[j][q][0][:set_size]) for q, i, j in candidates]
    decided = evidence["decided"]
    # Decided comparisons are scored alongside the candidates so that both share one standardisation.
    fit_rows = [(r[0], r[1], r[2], list(r[3]), list(r[4])) for r in decided]
    gap, prefers = score_evidence(gap_rows(sets + fit_rows))
    n = len(sets)
    fit: dict[str, Any] = {}
    if decided:
        fit = dict(
            fit_gap=gap[n:],
            fit_rating=[strength[r[1]] - strength[r[2]] for r in decided],
            fit_outcome=[float(r[5] > r[6]) for r in decided],
        )
    p_hat = predicted_preference(gap[:n], [strength[i] - strength[j] for _q, i, j in candidates], **fit)
    if learned:
        known = [learned.get(c) for c in candidates]
        p_hat = np.array([p if p is not None else fallback for p, fallback in zip(known, p_hat, strict=True)])
    picks, pis = informative_draw(
        p_hat, scorer_disagreement(prefers[:n]), take=take, random_share=campaign.random_share, rng=rng
    )
    return [
        Drawn(query_id=candidates[p][0], model_a=candidates[p][1], model_b=candidates[p][2], pi=float(pi))
        for p, pi in zip(picks, pis, strict=True)
    ]


def selection_round_record(
    *, campaign, take: int, pool: int, drawn_before: int, predictor: str = "", predicted: int = 0
) -> int:
    """Append a round to ``campaign.selection_rounds`` (saved) and return its number (1 for the build).

    ``take`` the requested count, ``pool`` the candidates it drew from, ``drawn_before`` the comparisons drawn by
    earlier rounds: the population is ``pool + drawn_before`` and the round's expected count ``min(take, pool)``.
    ``predictor``/``predicted``: the preference model whose predictions chose the pairs, and for how many
    candidates (recorded only when one was used). With ``drawn_before`` 0 the round is the first (a build that
    failed before storing its draw left a round that counts for nothing).
    """
    rounds = list(campaign.selection_rounds or []) if drawn_before else []
    record: dict[str, Any] = {"take": int(take), "expected": min(int(take), int(pool)), "pool": int(pool),
                              "population": int(pool) + int(drawn_before)}
    if predictor:  # a learned preference model gave p̂ for ``predicted`` of the pool's candidates
        record.update(predictor=predictor, predicted=int(predicted))
    rounds.append(record)
    campaign.selection_rounds = rounds
    type(campaign).objects.filter(pk=campaign.pk).update(selection_rounds=rounds)
    return len(rounds)


def selection_weights_update(*, campaign) -> int:
    """Set ``selection_weight`` of every comparison the campaign's rounds drew, from the rounds so far.

    The population is the first round's (the candidates do not change while the campaign's runs do not);
    comparisons drawn before rounds were recorded (``selection_round`` 0) keep their weight. Returns how many
    were set.
    """
    from annotate.models import Comparison
    from hpbench.metrics.adaptive import sequential_weights

    rounds = list(campaign.selection_rounds or [])
    rows = list(
        Comparison.objects.filter(campaign=campaign, is_gold=False, selection_round__gt=0, selection_pi__isnull=False)
        .order_by("pk")
        .values_list("pk", "selection_round", "selection_pi")
    )
    if not rows or not rounds:
        return 0
    # A round that drew from an empty pool expects nothing and drew nothing: it changes no weight.
    kept = [n for n, r in enumerate(rounds, start=1) if r["expected"] > 0]
    renumber = {old: new for new, old in enumerate(kept, start=1)}
    weights = sequential_weights(
        population=rounds[0]["population"], round_sizes=[rounds[n - 1]["expected"] for n in kept],
        round_of=[renumber[r] for _pk, r, _pi in rows], pi=[float(pi or 0.0) for _pk, _r, pi in rows],
    )
    Comparison.objects.bulk_update(
        [Comparison(pk=pk, selection_weight=float(w)) for (pk, _r, _pi), w in zip(rows, weights, strict=True)],
        ["selection_weight"], batch_size=2000,
    )
    return len(rows)
