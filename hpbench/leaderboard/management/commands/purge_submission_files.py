"""``python manage.py purge_submission_files [--days N] [--dry-run]``."""

from __future__ import annotations

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandParser

from hpbench.leaderboard.retention import submission_files_purge


class Command(BaseCommand):
    help = ("Delete the checkpoints (and cached embeddings) of submissions that failed or were cancelled more "
            "than HPBENCH_FAILED_SUBMISSION_RETENTION_DAYS ago. Celery beat runs the same every hour.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=float, help="Retention in days (default: the setting).")
        parser.add_argument("--dry-run", action="store_true", help="Only say what would be deleted.")

    def handle(self, *args, **options) -> None:
        older_than = timedelta(days=options["days"]) if options["days"] is not None else None
        report = submission_files_purge(older_than=older_than, dry_run=options["dry_run"])
        verb = "would delete" if options["dry_run"] else "deleted"
        which = ": " + ", ".join(map(str, report.submissions)) if report.submissions else ""
        self.stdout.write(f"{verb} {report.files} file(s), {report.bytes} bytes, of {len(report.submissions)} "
                          f"submission(s){which}")
