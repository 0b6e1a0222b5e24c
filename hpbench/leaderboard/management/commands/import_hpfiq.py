"""``python manage.py import_hpfiq FILE --dataset NAME [--name hp-fashioniq] [--json]``, or
``import_hpfiq --download --dataset NAME [--url URL] [--sha256 HASH]`` to fetch the released file first."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from hpbench.catalog.models import Dataset
from hpbench.leaderboard.hpfiq import HpfiqFormatError
from hpbench.leaderboard.hpfiq_download import HPFIQ_SHA256, HPFIQ_URL, HpfiqDownloadError, hpfiq_download
from hpbench.leaderboard.services import benchmark_import_hpfiq


class Command(BaseCommand):
    help = "Import the released HP-FashionIQ preference file (hpfiq.json) as a preference benchmark."

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", nargs="?", help="Path to hpfiq.json (leave out with --download)")
        parser.add_argument(
            "--download", action="store_true", help="Fetch the released hpfiq.json and check its SHA-256 first"
        )
        parser.add_argument("--url", default=HPFIQ_URL, help=f"Where --download fetches it (default: {HPFIQ_URL})")
        parser.add_argument("--sha256", default=HPFIQ_SHA256, help="The SHA-256 --download expects (the release's)")
        parser.add_argument("--dataset", required=True, help="Name of the FashionIQ dataset whose images it names")
        parser.add_argument("--name", default="hp-fashioniq", help="Benchmark name (default: hp-fashioniq)")
        parser.add_argument("--json", action="store_true", help="Print the summary as JSON")
        parser.add_argument("--show-missing", type=int, default=20, help="How many missing names to list")

    def handle(self, *args, **options) -> None:
        if bool(options["file"]) == options["download"]:
            raise CommandError("give the path of hpfiq.json, or --download to fetch the released file (not both)")
        try:
            dataset = Dataset.objects.get(name=options["dataset"])
        except Dataset.DoesNotExist:
            raise CommandError(f"--dataset {options['dataset']!r}: no such dataset") from None
        if not options["download"]:
            self._import(options["file"], dataset, options)
            return
        try:
            path = hpfiq_download(url=options["url"], sha256=options["sha256"])
        except HpfiqDownloadError as exc:
            raise CommandError(str(exc)) from None
        try:
            if not options["json"]:
                self.stdout.write(f"Downloaded {options['url']} (SHA-256 checked).")
            self._import(str(path), dataset, options)
        finally:
            path.unlink(missing_ok=True)

    def _import(self, file: str, dataset: Dataset, options: dict) -> None:
        bar = None if options["json"] else tqdm(total=0, unit="question", desc="mapping", file=self.stderr)

        def progress(done: int, total: int) -> None:
            if bar is not None:
                bar.total = total
                bar.update(done - bar.n)

        try:
            result = benchmark_import_hpfiq(path=file, dataset=dataset, name=options["name"], progress=progress)
        except (HpfiqFormatError, ValueError) as exc:
            raise CommandError(str(exc)) from None
        finally:
            if bar is not None:
                bar.close()
        benchmark, report = result.benchmark, result.report
        summary = {
            "benchmark": benchmark.name,
            "version": benchmark.version,
            "created": result.created,
            "questions": report["questions"],
            "pairs": report["pairs"],
            "linked_queries": report["linked_queries"],
            "skipped_questions": len(report["skipped_questions"]),
            "missing_images": len(report["missing_images"]),
            "missing_image_names": report["missing_images"],
        }
        if options["json"]:
            self.stdout.write(json.dumps(summary))
            return
        state = "created" if result.created else "unchanged (same content)"
        self.stdout.write(
            f"{benchmark.name} v{benchmark.version} {state}: {report['pairs']} of {report['questions']} questions "
            f"imported, {report['linked_queries']} linked to dataset queries."
        )
        if report["missing_images"]:
            shown = report["missing_images"][: options["show_missing"]]
            more = len(report["missing_images"]) - len(shown)
            self.stdout.write(
                f"{len(report['missing_images'])} image name(s) not in dataset {dataset.name}; "
                f"{len(report['skipped_questions'])} question(s) skipped: {', '.join(shown)}"
                + (f" (+{more} more; use --json for all)" if more > 0 else "")
            )
