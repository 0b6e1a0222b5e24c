"""``python manage.py score_model MODEL [--benchmark NAME ...] [--force] [--wait] [--json]``."""

from __future__ import annotations

import json
import time

from django.core.management.base import BaseCommand, CommandError

from hpbench.catalog.models import ModelEntry
from hpbench.leaderboard.models import ModelScore, PreferenceBenchmark
from hpbench.leaderboard.services.scores import model_scores_request


class Command(BaseCommand):
    help = "Queue preference scoring of a model on active benchmarks (a worker on the gpu queue runs it)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("model", help="Model name (use 'all' for every model)")
        parser.add_argument("--benchmark", action="append", default=[], help="Benchmark name (default: all active)")
        parser.add_argument("--force", action="store_true", help="Recompute finished scores")
        parser.add_argument("--wait", action="store_true", help="Wait until the scores end")
        parser.add_argument("--timeout", type=float, default=3600)
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options) -> None:
        models = ModelEntry.objects.all() if options["model"] == "all" else ModelEntry.objects.filter(
            name=options["model"])
        if not models.exists():
            raise CommandError(f"model {options['model']!r}: no such model")
        benchmarks = PreferenceBenchmark.objects.filter(is_active=True)
        if options["benchmark"]:
            benchmarks = benchmarks.filter(name__in=options["benchmark"])
            if benchmarks.count() != len(set(options["benchmark"])):
                raise CommandError(f"--benchmark: no active benchmark among {options['benchmark']}")
        ids = []
        for model in models:
            ids += [s.pk for s in model_scores_request(model=model, benchmarks=list(benchmarks),
                                                         force=options["force"])]
        if options["wait"]:
            deadline = time.monotonic() + options["timeout"]
            while ModelScore.objects.filter(pk__in=ids, status__in=["queued", "running"]).exists():
                if time.monotonic() > deadline:
                    raise CommandError(f"scores {ids} still running after {options['timeout']} s")
                time.sleep(0.5)
        rows = list(ModelScore.objects.filter(pk__in=ids).values(
            "id", "model__name", "benchmark__name", "status", "agreement", "preference_ratio", "error"))
        if options["json"]:
            self.stdout.write(json.dumps(rows))
            return
        for r in rows:
            figures = (f" agreement {r['agreement']:.4f}, preference ratio {r['preference_ratio']:.4f}"
                       if r["agreement"] is not None else "")
            self.stdout.write(f"{r['model__name']} on {r['benchmark__name']}: {r['status']}{figures}"
                              + (f"\n  {r['error'].splitlines()[0]}" if r["error"] else ""))
        if not rows:
            self.stdout.write("Nothing queued (already finished; use --force to recompute).")
