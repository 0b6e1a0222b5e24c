"""Quality control: per-annotator and per-campaign figures, and flagging annotators who fail gold tasks or
whose votes favour one model beyond what the other annotators' votes predict (steering).

The reliability statistics (pairwise agreement, nominal Krippendorff's alpha) take ``{unit: [label, ...]}``
and are computed by :mod:`hpbench.metrics.reliability`, the same code the leaderboard's human ceiling uses.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from django.db import transaction
from django.db.models import Q, Sum

from annotate.models import Annotator, Campaign, Comparison, Vote
from hpbench.metrics import reliability, steering

#: Family-wise error bounds of the steering test (:mod:`hpbench.metrics.steering`, Bonferroni over the campaign's
#: (annotator, model) tests): under the first an annotator is flagged on the monitoring page, under the second
#: their votes are also excluded (unless staff approved them).
STEERING_FLAG_P = 0.05
STEERING_EXCLUDE_P = 0.01


def pairwise_agreement(units: Mapping[Any, Sequence[str]]) -> float | None:
    """Share of agreeing pairs among all pairs of labels given to the same unit; None without any pair."""
    return reliability.pairwise_agreement(units.values())


def krippendorff_alpha_nominal(units: Mapping[Any, Sequence[str]]) -> float | None:
    """Krippendorff's alpha for nominal labels over units with 2+ labels.

    Returns None when undefined: no pairable labels, or every label the same (no expected disagreement).
    """
    return reliability.krippendorff_alpha_nominal(units.values())


@dataclass(frozen=True)
class AnnotatorFigures:
    annotator_id: int
    pseudonym: str
    votes: int
    gold_votes: int
    gold_correct: int
    gold_accuracy: float | None
    agreement_with_majority: float | None
    median_time_ms: float | None
    flagged: bool
    too_fast_votes: int = 0  # given faster than the campaign's min_vote_ms

    def as_dict(self) -> dict:
        return asdict(self)


def _votes(campaign: Campaign) -> list[dict]:
    return [
        dict(row)
        for row in Vote.objects.filter(comparison__campaign=campaign).values(
            "annotator_id",
            "comparison_id",
            "choice",
            "first_choice",
            "time_ms",
            "too_fast",
            "irrelevant",
            "excluded",
            "comparison__is_gold",
            "comparison__gold_answer",
        )
    ]


def annotator_figures(*, campaign: Campaign, votes: list[dict] | None = None) -> list[AnnotatorFigures]:
    """Per annotator: votes, gold accuracy, agreement with the majority of the others, median time, and how many
    votes were flagged too fast.

    Agreement counts the annotator's non-gold votes on comparisons where the other annotators' votes
    have a strict majority choice (ties among the others are left out).
    """
    votes = _votes(campaign) if votes is None else votes
    by_comparison: dict[int, list[dict]] = defaultdict(list)
    for vote in votes:
        by_comparison[vote["comparison_id"]].append(vote)
    per: dict[int, dict] = defaultdict(
        lambda: {"votes": 0, "gold": 0, "correct": 0, "agree": 0, "agree_n": 0, "times": [], "fast": 0}
    )
    for vote in votes:
        row = per[vote["annotator_id"]]
        row["votes"] += 1
        row["fast"] += bool(vote.get("too_fast"))
        if vote["time_ms"] is not None:
            row["times"].append(vote["time_ms"])
        if vote["comparison__is_gold"]:
            row["gold"] += 1
            # The answer first given: changing it after the gold feedback corrects nothing.
            row["correct"] += (vote.get("first_choice") or vote["choice"]) == vote["comparison__gold_answer"]
            continue
        others = Counter(
            o["choice"] for o in by_comparison[vote["comparison_id"]] if o["annotator_id"] != vote["annotator_id"]
        )
        if others:
            (top, n_top), *rest = others.most_common()
            if not rest or rest[0][1] < n_top:
                row["agree_n"] += 1
                row["agree"] += top == vote["choice"]
    annotators = Annotator.objects.filter(campaign=campaign).values_list("pk", "pseudonym", "flagged")
    out = []
    for pk, pseudonym, flagged in annotators:
        counts = per.get(pk)
        if counts is None:
            out.append(AnnotatorFigures(pk, pseudonym, 0, 0, 0, None, None, None, flagged))
            continue
        out.append(
            AnnotatorFigures(
                annotator_id=pk,
                pseudonym=pseudonym,
                votes=counts["votes"],
                gold_votes=counts["gold"],
                gold_correct=counts["correct"],
                gold_accuracy=counts["correct"] / counts["gold"] if counts["gold"] else None,
                agreement_with_majority=counts["agree"] / counts["agree_n"] if counts["agree_n"] else None,
                median_time_ms=statistics.median(counts["times"]) if counts["times"] else None,
                flagged=flagged,
                too_fast_votes=counts["fast"],
            )
        )
    return out


def steering_figures(*, campaign: Campaign) -> dict[int, steering.SteeringTest]:
    """Each annotator's most significant steering test (:func:`hpbench.metrics.steering.steering_tests` over every
    vote on the campaign's model comparisons, flagged annotators' included: the test is about how someone votes),
    keyed by annotator id; annotators with no informative vote are absent."""
    rows = Vote.objects.filter(comparison__campaign=campaign, comparison__is_gold=False).values_list(
        "annotator_id", "comparison_id", "comparison__set_a_model_id", "comparison__set_b_model_id", "choice"
    )
    votes = [
        steering.SteeringVote(annotator=a, comparison=c, model_a=ma, model_b=mb, choice=choice)
        for a, c, ma, mb, choice in rows
        if ma is not None and mb is not None
    ]
    return steering.worst_per_annotator(steering.steering_tests(votes))


def quality_refresh(*, campaign: Campaign) -> list[int]:
    """Flag annotators whose gold accuracy is under ``campaign.gold_min_accuracy`` (once they have at
    least ``gold_min_votes`` gold votes), or whose votes favour a model past :data:`STEERING_EXCLUDE_P`
    (:func:`steering_figures`), and mark their votes excluded; unflag the others. Staff's review
    (``Annotator.review``) wins: approved annotators are never flagged, excluded ones always. Returns the
    flagged annotator ids. Votes are kept either way; only rows whose state changes are written.
    """
    figures = annotator_figures(campaign=campaign)
    steered = {a for a, t in steering_figures(campaign=campaign).items() if t.p_adjusted < STEERING_EXCLUDE_P}
    reviews = dict(Annotator.objects.filter(campaign=campaign).exclude(review="").values_list("pk", "review"))
    flagged = [
        f.annotator_id
        for f in figures
        if reviews.get(f.annotator_id) == Annotator.Review.EXCLUDED
        or (
            f.annotator_id not in reviews
            and (
                f.annotator_id in steered
                or (
                    f.gold_votes >= max(1, campaign.gold_min_votes)
                    and f.gold_accuracy is not None
                    and f.gold_accuracy < campaign.gold_min_accuracy
                )
            )
        )
    ]
    with transaction.atomic():
        annotators = Annotator.objects.filter(campaign=campaign)
        annotators.exclude(pk__in=flagged).filter(flagged=True).update(flagged=False)
        annotators.filter(pk__in=flagged, flagged=False).update(flagged=True)
        votes = Vote.objects.filter(comparison__campaign=campaign)
        votes.exclude(annotator_id__in=flagged).filter(excluded=True).update(excluded=False)
        votes.filter(annotator_id__in=flagged, excluded=False).update(excluded=True)
    return flagged


def campaign_figures(*, campaign: Campaign) -> dict:
    """Progress and reliability of a campaign (non-gold, non-excluded votes for the reliability figures)."""
    votes = _votes(campaign)
    comparisons = Comparison.objects.filter(campaign=campaign)
    total = comparisons.count()
    gold = comparisons.filter(is_gold=True).count()
    # Adaptive overlap: a comparison is complete once it stopped asking; the votes wanted are the current targets.
    complete = comparisons.filter(Q(stop_reason__gt="") | Q(votes_count__gte=campaign.votes_per_pair)).count()
    per_comparison = Counter(comparisons.values_list("votes_count", flat=True))
    adaptive = {}
    if campaign.adaptive_overlap:
        adaptive = {
            "votes_wanted": comparisons.aggregate(n=Sum("target_votes"))["n"] or 0,
            "stopped_decided": comparisons.filter(stop_reason="decided").count(),
            "stopped_max_votes": comparisons.filter(stop_reason="max_votes").count(),
        }
    counted = [v for v in votes if not v["excluded"]]
    units: dict[int, list[str]] = defaultdict(list)
    for vote in counted:
        if not vote["comparison__is_gold"]:
            units[vote["comparison_id"]].append(vote["choice"])
    n = len(votes)
    figures = {
        "comparisons": total,
        "gold_comparisons": gold,
        "complete_comparisons": complete,
        "votes": n,
        "votes_wanted": total * campaign.votes_per_pair,
        "progress": (
            sum(min(k, campaign.votes_per_pair) * c for k, c in per_comparison.items())
            / (total * campaign.votes_per_pair)
        )
        if total
        else 0.0,
        "votes_per_comparison": {str(k): c for k, c in sorted(per_comparison.items())},
        "excluded_votes": n - len(counted),
        "too_fast_votes": sum(bool(v["too_fast"]) for v in votes),
        "comparisons_showing_reference": comparisons.filter(shows_reference=True).count(),
        "annotators": Annotator.objects.filter(campaign=campaign).count(),
        "flagged_annotators": Annotator.objects.filter(campaign=campaign, flagged=True).count(),
        "tie_share": sum(v["choice"] == "tie" for v in votes) / n if n else None,
        "irrelevant_share": sum(v["irrelevant"] for v in votes) / n if n else None,
        "pairwise_agreement": pairwise_agreement(units),
        "krippendorff_alpha": krippendorff_alpha_nominal(units),
        "units_with_2plus_votes": sum(1 for labels in units.values() if len(labels) >= 2),
    }
    if adaptive:
        figures.update(adaptive)
        figures["progress"] = n / adaptive["votes_wanted"] if adaptive["votes_wanted"] else 0.0
    return figures
