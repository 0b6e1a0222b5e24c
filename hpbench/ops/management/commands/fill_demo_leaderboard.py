"""``python manage.py fill_demo_leaderboard [--campaign SLUG ...] [--hpfiq FILE --dataset NAME] [--wait]``.

Fills the leaderboard from what the demo already has: freezes each named campaign into a benchmark (after
``simulate_annotators`` voted), optionally imports HP-FashionIQ, then queues scoring of every visible model
on every active benchmark (a worker on the ``gpu`` queue computes them).
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError

from hpbench.catalog.models import Dataset, ModelEntry
from hpbench.leaderboard.models import ModelScore, PreferenceBenchmark
from hpbench.leaderboard.services.benchmarks import benchmark_freeze, benchmark_import_hpfiq
from hpbench.leaderboard.services.scores import model_scores_request


class Command(BaseCommand):
    help = "Freeze demo campaigns into benchmarks and queue scoring of every model on them."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--campaign", action="append", default=[], help="Campaign slug to freeze (repeatable)")
        parser.add_argument("--tie-policy", default=PreferenceBenchmark.TiePolicy.KEEP,
                            choices=PreferenceBenchmark.TiePolicy.values)
        parser.add_argument("--hpfiq", default="", help="hpfiq.json to import (needs --dataset)")
        parser.add_argument("--dataset", default="", help="FashionIQ dataset for --hpfiq")
        parser.add_argument("--wait", action="store_true", help="Wait for the scores")
        parser.add_argument("--timeout", type=float, default=3600)

    def handle(self, *args, **options) -> None:
        from annotate.models import Campaign

        for slug in options["campaign"]:
            campaign = Campaign.objects.filter(slug=slug).first()
            if campaign is None:
                raise CommandError(f"--campaign {slug!r}: no such campaign")
            result = benchmark_freeze(campaign=campaign, tie_policy=options["tie_policy"])
            b = result.benchmark
            self.stdout.write(f"froze {slug} -> {b.label} ({b.n_pairs} pairs, human agreement "
                              f"{b.human_agreement if b.human_agreement is None else round(b.human_agreement, 3)})")
        if options["hpfiq"]:
            dataset = Dataset.objects.filter(name=options["dataset"]).first()
            if dataset is None:
                raise CommandError(f"--dataset {options['dataset']!r}: no such dataset")
            result = benchmark_import_hpfiq(path=options["hpfiq"], dataset=dataset)
            self.stdout.write(f"imported {result.benchmark.label}: {result.report['pairs']} pairs, "
                              f"{len(result.report['missing_images'])} images missing")
        ids = []
        for model in ModelEntry.objects.filter(is_hidden=False):
            ids += [s.pk for s in model_scores_request(model=model)]
        self.stdout.write(f"queued {len(ids)} score(s)")
        if options["wait"] and ids:
            deadline = time.monotonic() + options["timeout"]
            while ModelScore.objects.filter(pk__in=ids, status__in=["queued", "running"]).exists():
                if time.monotonic() > deadline:
                    raise CommandError("scores still running; is a worker consuming the gpu queue?")
                time.sleep(1)
            for s in ModelScore.objects.filter(pk__in=ids).select_related("model", "benchmark"):
                self.stdout.write(f"  {s.model.name} on {s.benchmark.label}: {s.status}"
                                  + (f" agreement {s.agreement:.3f}" if s.agreement is not None else ""))
