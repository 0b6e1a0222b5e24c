"""``python manage.py import_dataset fashioniq|cirr ROOT --name NAME [--splits …] [--categories …] [--json]``."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from hpbench.catalog.importers import (
    CIRR_SPLITS,
    FASHIONIQ_CATEGORIES,
    FASHIONIQ_SPLITS,
    DatasetImportError,
    import_cirr,
    import_fashioniq,
)


class Command(BaseCommand):
    help = "Import a FashionIQ- or CIRR-layout dataset folder (one transaction; re-running updates in place)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("format", choices=["fashioniq", "cirr"])
        parser.add_argument("root", help="The dataset folder.")
        parser.add_argument("--name", required=True, help="Dataset name (a slug).")
        parser.add_argument("--splits", nargs="+", help="Default: all of the format's splits.")
        parser.add_argument("--categories", nargs="+", choices=FASHIONIQ_CATEGORIES,
                            help="FashionIQ only. Default: dress shirt toptee.")
        parser.add_argument("--json", action="store_true", help="Print the summary as JSON.")

    def handle(self, *args, **options) -> None:
        quiet = options["json"] or options["verbosity"] == 0

        def progress(items, desc, total):
            return tqdm(items, desc=desc, total=total, disable=quiet, leave=False, unit="img")

        try:
            if options["format"] == "fashioniq":
                report = import_fashioniq(
                    options["root"], name=options["name"], progress=progress,
                    splits=options["splits"] or FASHIONIQ_SPLITS,
                    categories=options["categories"] or FASHIONIQ_CATEGORIES,
                )
            else:
                if options["categories"]:
                    raise CommandError("--categories applies to FashionIQ only")
                report = import_cirr(
                    options["root"], name=options["name"], progress=progress,
                    splits=options["splits"] or CIRR_SPLITS,
                )
        except DatasetImportError as exc:
            raise CommandError(f"import failed, nothing was written: {exc}") from None

        summary = report.as_dict()
        if options["json"]:
            self.stdout.write(json.dumps(summary, indent=2))
            return
        self.stdout.write(
            f"Imported {summary['dataset']} ({summary['kind']}): {summary['images']} images "
            f"({summary['images_created']} new), {summary['queries']} queries ({summary['queries_created']} new)."
        )
        for part, counts in summary["per_split"].items():
            self.stdout.write(
                f"  {part:<16} {counts['images']:>7} images {counts['queries']:>7} queries"
                f" {counts['skipped_queries']:>5} skipped"
            )
        if summary["missing_images"]:
            shown = ", ".join(summary["missing_image_names"][:10])
            more = summary["missing_images"] - 10
            self.stdout.write(self.style.WARNING(
                f"{summary['missing_images']} image files missing (their queries were skipped): {shown}"
                + (f" and {more} more (use --json for the full list)" if more > 0 else "")
            ))
