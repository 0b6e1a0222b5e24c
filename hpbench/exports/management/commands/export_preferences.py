"""``manage.py export_preferences``: write the preference dataset (votes, comparisons or a benchmark) to a file."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError, CommandParser

from hpbench.exports import services
from hpbench.exports.selectors.lookups import DEFAULT_CHUNK
from hpbench.exports.selectors.params import LEVELS, ExportError, params_parse


class Command(BaseCommand):
    help = (
        "Export human preferences as parquet, jsonl, csv, a Hugging Face dataset folder (hf) or the "
        "HP-FashionIQ layout (hpfiq). Annotators appear only as pseudonyms."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--format", required=True, choices=services.FORMATS)
        parser.add_argument("--out", required=True, help="Output file (a folder for --format hf).")
        parser.add_argument(
            "--campaign",
            action="append",
            default=[],
            metavar="SLUG",
            help="Only this campaign (repeat for several); default: every campaign.",
        )
        parser.add_argument(
            "--benchmark",
            metavar="NAME[:VERSION]",
            help="Export a frozen benchmark version, one row per pair (default: the active one).",
        )
        parser.add_argument("--since", metavar="DATE", help="Votes from this day on (YYYY-MM-DD).")
        parser.add_argument("--until", metavar="DATE", help="Votes up to this day, inclusive (YYYY-MM-DD).")
        parser.add_argument(
            "--include-excluded",
            action="store_true",
            help="Keep votes excluded by quality control (marked excluded=true).",
        )
        parser.add_argument("--no-gold", action="store_true", help="Leave out gold comparisons.")
        parser.add_argument("--level", choices=LEVELS, default="votes")
        parser.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK)
        parser.add_argument("--json", action="store_true", help="Print the summary as JSON.")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args, **options) -> None:
        from tqdm import tqdm

        if options["chunk_size"] < 1:
            raise CommandError("--chunk-size must be at least 1")
        try:
            params = params_parse(
                campaigns=options["campaign"],
                benchmark=options["benchmark"],
                since=options["since"],
                until=options["until"],
                include_excluded=options["include_excluded"],
                include_gold=not options["no_gold"],
                level=options["level"],
            )
        except ExportError as exc:
            raise CommandError(str(exc)) from None
        bar = tqdm(total=0, unit="row", disable=options["no_progress"], file=self.stderr._out)

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        try:
            summary = services.export_write(
                params=params,
                fmt=options["format"],
                out=options["out"],
                chunk_size=options["chunk_size"],
                progress=progress,
            )
        except ExportError as exc:
            raise CommandError(str(exc)) from None
        finally:
            bar.close()
        data = summary.as_dict()
        if options["json"]:
            self.stdout.write(json.dumps(data, default=str))
            return
        self.stdout.write(
            f"Wrote {summary.rows} {summary.level} rows as {summary.format} to {summary.path} "
            f"in {summary.seconds:.1f} s"
        )
        for key in ("questions", "skipped_ties"):
            if key in data:
                self.stdout.write(f"  {key}: {data[key]}")
        for key, value in data.get("figures", {}).items():
            self.stdout.write(f"  {key}: {value}")
