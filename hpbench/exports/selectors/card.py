"""Figures for the dataset card: counts, pairwise agreement and Krippendorff's alpha."""

from __future__ import annotations

from dataclasses import asdict

from django.db.models import Count, Q

from annotate.models import counted_votes_q
from hpbench.exports.selectors.comparisons import comparisons_queryset
from hpbench.exports.selectors.pairs import benchmark_of
from hpbench.exports.selectors.params import ExportParams
from hpbench.exports.selectors.votes import votes_queryset
from hpbench.leaderboard.models import BenchmarkPair


class AgreementAccumulator:
    """Pairwise agreement and nominal Krippendorff's alpha over units added one at a time as label counts;
    equal to :func:`annotate.quality.pairwise_agreement` / ``krippendorff_alpha_nominal`` on the same units,
    in constant memory."""

    def __init__(self) -> None:
        self.agree = 0
        self.pairs = 0
        self.coincidence: dict[tuple[str, str], float] = {}

    def add(self, counts: dict[str, int]) -> None:
        counts = {k: n for k, n in counts.items() if n}
        m = sum(counts.values())
        if m < 2:
            return
        self.pairs += m * (m - 1) // 2
        self.agree += sum(n * (n - 1) // 2 for n in counts.values())
        for c, n_c in counts.items():
            for k, n_k in counts.items():
                pairs = n_c * (n_k - 1) if c == k else n_c * n_k
                self.coincidence[(c, k)] = self.coincidence.get((c, k), 0.0) + pairs / (m - 1)

    @property
    def pairwise_agreement(self) -> float | None:
        return self.agree / self.pairs if self.pairs else None

    @property
    def alpha(self) -> float | None:
        totals: dict[str, float] = {}
        for (c, _k), value in self.coincidence.items():
            totals[c] = totals.get(c, 0.0) + value
        n = sum(totals.values())
        if n <= 1:
            return None
        observed = sum(v for (c, k), v in self.coincidence.items() if c != k)
        expected = sum(totals[c] * totals[k] for c in totals for k in totals if c != k)
        if expected == 0:
            return None
        return 1.0 - (n - 1) * observed / expected


def card_figures(params: ExportParams) -> dict:
    """Counts and agreement for the dataset card.

    Votes and comparisons: over the exported votes; agreement over non-gold comparisons, counting only
    non-excluded votes (as quality control and the benchmark freeze do). Benchmarks: the stored figures.
    """
    if params.benchmark_id is not None:
        b = benchmark_of(params)
        assert b is not None
        pairs = BenchmarkPair.objects.filter(benchmark=b)
        return {
            "pairs": b.n_pairs,
            "set1_preferred": pairs.filter(preference=1).count(),
            "set2_preferred": pairs.filter(preference=2).count(),
            "ties": pairs.filter(preference=0).count(),
            "votes_per_pair": b.votes_per_pair,
            "pairwise_agreement": b.human_agreement,
            "krippendorff_alpha": b.human_alpha,
            "tie_policy": b.tie_policy,
            "source": b.source,
        }
    votes = votes_queryset(params)
    counts = votes.aggregate(
        votes=Count("pk"),
        comparisons=Count("comparison", distinct=True),
        annotators=Count("annotator", distinct=True),
        ties=Count("pk", filter=Q(choice="tie")),
        irrelevant=Count("pk", filter=Q(irrelevant=True)),
        gold=Count("pk", filter=Q(comparison__is_gold=True)),
        excluded=Count("pk", filter=~counted_votes_q()),
    )
    strict = ExportParams(**{**asdict(params), "include_excluded": False, "include_gold": False})
    acc = AgreementAccumulator()
    kept = comparisons_queryset(strict).order_by("pk")
    for _pk, n_a, n_b, n_tie in kept.values_list("pk", "n_a", "n_b", "n_tie").iterator(  # type: ignore[misc]
        chunk_size=5000
    ):
        acc.add({"a": n_a, "b": n_b, "tie": n_tie})
    counts["campaigns"] = sorted(votes.order_by().values_list("comparison__campaign__slug", flat=True).distinct())
    counts["pairwise_agreement"] = acc.pairwise_agreement
    counts["krippendorff_alpha"] = acc.alpha
    return counts
