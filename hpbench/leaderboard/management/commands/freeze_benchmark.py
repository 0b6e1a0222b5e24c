"""``python manage.py freeze_benchmark CAMPAIGN [--tie-policy keep-as-tie|drop] [--name NAME] [--hidden-share S]
[--json]``."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from hpbench.leaderboard.models import PreferenceBenchmark
from hpbench.leaderboard.services.benchmarks import benchmark_freeze


class Command(BaseCommand):
    help = "Freeze a campaign's votes (majority per comparison) into a versioned preference benchmark."

    def add_arguments(self, parser) -> None:
        parser.add_argument("campaign", help="Campaign slug")
        parser.add_argument("--tie-policy", default=PreferenceBenchmark.TiePolicy.KEEP,
                            choices=PreferenceBenchmark.TiePolicy.values)
        parser.add_argument("--name", default=None, help="Benchmark name (default: campaign-<slug>)")
        parser.add_argument("--hidden-share", type=float, default=0.0,
                            help="Share of pairs kept apart as the hidden split NAME-hidden (labels never exported).")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options) -> None:
        from annotate.models import Campaign

        try:
            campaign = Campaign.objects.get(slug=options["campaign"])
        except Campaign.DoesNotExist:
            raise CommandError(f"campaign {options['campaign']!r}: no such campaign") from None
        try:
            result = benchmark_freeze(campaign=campaign, tie_policy=options["tie_policy"], name=options["name"],
                                      hidden_share=options["hidden_share"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        b = result.benchmark
        summary = {"benchmark": b.name, "version": b.version, "created": result.created, "pairs": b.n_pairs,
                   "tie_policy": b.tie_policy, "human_agreement": b.human_agreement, "human_alpha": b.human_alpha,
                   **result.report}
        if options["json"]:
            self.stdout.write(json.dumps(summary))
        else:
            state = "created" if result.created else "unchanged (same votes)"
            self.stdout.write(f"{b.name} v{b.version} {state}: {b.n_pairs} pairs; dropped {result.report['dropped']}")
