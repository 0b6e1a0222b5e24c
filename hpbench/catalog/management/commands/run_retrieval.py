"""``python manage.py run_retrieval MODEL DATASET [--split val] [--topk 50] [--wait] [--json]``."""

from __future__ import annotations

import json
import time

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from tqdm import tqdm

from hpbench.catalog.models import Dataset, ModelEntry, RetrievalRun
from hpbench.catalog.services import retrieval_run_create

TERMINAL = {RetrievalRun.Status.FINISHED, RetrievalRun.Status.FAILED, RetrievalRun.Status.CANCELLED}


class Command(BaseCommand):
    help = "Queue a retrieval run on the gpu queue; with --wait, follow its progress and print its metrics."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("model", help="Model name.")
        parser.add_argument("dataset", help="Dataset name.")
        parser.add_argument("--split", default="val")
        parser.add_argument("--topk", type=int, default=None)
        parser.add_argument("--wait", action="store_true", help="Wait for the worker and print the metrics.")
        parser.add_argument("--timeout", type=float, default=3600, help="Seconds to wait (with --wait).")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options) -> None:
        try:
            model = ModelEntry.objects.get(name=options["model"])
        except ModelEntry.DoesNotExist:
            raise CommandError(f"no model named {options['model']!r} (see register_model)") from None
        try:
            dataset = Dataset.objects.get(name=options["dataset"])
        except Dataset.DoesNotExist:
            raise CommandError(f"no dataset named {options['dataset']!r} (see import_dataset)") from None
        try:
            with transaction.atomic():
                run = retrieval_run_create(model=model, dataset=dataset, split=options["split"], topk=options["topk"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if not options["wait"]:
            self._emit(run, options["json"], queued=True)
            return
        deadline = time.monotonic() + options["timeout"]
        with tqdm(total=100, desc=f"run {run.pk}", disable=options["json"], unit="%") as bar:
            while True:
                run.refresh_from_db()
                bar.update(round(run.progress * 100) - bar.n)
                if run.status in TERMINAL:
                    break
                if time.monotonic() > deadline:
                    raise CommandError(f"run {run.pk} still {run.status} after {options['timeout']} s "
                                       "(is a worker consuming the gpu queue?)")
                time.sleep(0.5)
        self._emit(run, options["json"])
        if run.status != RetrievalRun.Status.FINISHED:
            raise CommandError(f"run {run.pk} {run.status}: {run.error}")

    def _emit(self, run: RetrievalRun, as_json: bool, queued: bool = False) -> None:
        summary = {"run": run.pk, "status": run.status, "metrics": run.metrics, "timings": run.timings}
        if as_json:
            self.stdout.write(json.dumps(summary, indent=2))
        elif queued:
            self.stdout.write(f"Queued run {run.pk}; follow it with --wait or in the admin.")
        else:
            self.stdout.write(f"Run {run.pk} {run.status}.")
            for key, value in run.metrics.items():
                self.stdout.write(f"  {key}: {value}")
