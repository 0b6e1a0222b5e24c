"""``python manage.py reproduce_qure_table --manifest qure-table.json [--wait]``: register the seven models of the
QuRe paper's HP-FashionIQ table from the files at hand and print the paper's preference ratios beside the
platform's.

The manifest (paths relative to it)::

    {"benchmark": "hp-fashioniq",
     "models": {"QuRe": {"family": "blip2_cir", "variant": "qure", "checkpoint": "qure/model.pth"},
                "CLIP4CIR": {"family": "clip4cir", "checkpoint": "clip4cir/"},
                "MGUR": {"scores": "mgur.jsonl"}, ...}}

Checkpoints are scored by the worker like any registered model; score files (relevance per (question, image)
for the benchmark's request file) are validated and scored from the file. Rows the manifest leaves out are
printed with the paper's figure only.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from hpbench.leaderboard import selectors
from hpbench.leaderboard.models import ModelScore
from hpbench.leaderboard.paper import QURE_BENCHMARK, load_manifest, paper_table, paper_table_register


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


class Command(BaseCommand):
    help = "Register the QuRe paper's HP-FashionIQ models (checkpoints or score files) and compare with the paper."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--manifest", required=True, help="JSON file naming each paper row's checkpoint or scores")
        parser.add_argument("--benchmark", default="",
                            help=f"benchmark name (default: the manifest's, or {QURE_BENCHMARK})")
        parser.add_argument("--wait", action="store_true", help="wait for the scores before printing")
        parser.add_argument("--timeout", type=float, default=3600)
        parser.add_argument("--json", action="store_true", help="print the table as JSON")
        parser.add_argument("--rescore", action="store_true",
                            help="score again even when a model's files are unchanged since the last run")

    def handle(self, *args, **options) -> None:
        from hpbench.leaderboard.services.submissions import SubmissionError

        path = Path(options["manifest"])
        try:
            manifest = load_manifest(path)
            name = options["benchmark"] or manifest.get("benchmark") or QURE_BENCHMARK
            try:
                benchmark = selectors.benchmark_get(name)
            except selectors.NotFound:
                raise CommandError(f"benchmark {name!r}: not here; import it first (manage.py import_hpfiq)") from None
            registered = paper_table_register(manifest=manifest, base=path.parent, benchmark=benchmark,
                                              rescore=options["rescore"])
        except (ValueError, SubmissionError) as exc:
            raise CommandError(str(exc)) from None
        for item in registered:
            self.stderr.write(f"{item.label}: model {item.name} ({item.how}) registered for {benchmark.label}")
        if options["wait"]:
            ids = [item.model.pk for item in registered]
            deadline = time.monotonic() + options["timeout"]
            while ModelScore.objects.filter(model_id__in=ids, benchmark=benchmark,
                                            status__in=["queued", "running"]).exists():
                if time.monotonic() > deadline:
                    raise CommandError(f"scores not finished within {options['timeout']} s")
                time.sleep(0.5)
        rows = paper_table(benchmark=benchmark)
        if options["json"]:
            self.stdout.write(json.dumps({"benchmark": benchmark.label, "rows": rows}, indent=2))
            return
        self.stdout.write(f"Preference ratio (%) on {benchmark.label}: the QuRe paper vs this platform\n")
        header = f"{'model':<12} {'paper':>7} {'platform':>9} {'diff':>7}  how / status"
        self.stdout.write(header + "\n" + "-" * len(header))
        for row in rows:
            diff = "–" if row["difference"] is None else f"{row['difference']:+.2f}"
            how = "no checkpoint or scores given"
            if row["model"]:
                how = f"{row['how']} as {row['model']} ({row['status']})"
            if row["error"]:
                how += f": {row['error']}"
            self.stdout.write(f"{row['label']:<12} {_pct(row['paper']):>7} {_pct(row['platform']):>9} {diff:>7}  {how}")
