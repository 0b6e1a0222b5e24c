"""Add comparisons to a campaign with informative pair selection, chosen with the evidence gathered so far."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from annotate.errors import BuildError
from annotate.models import Campaign
from annotate.services.campaign_build import campaign_refresh


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser) -> None:
        parser.add_argument("campaign", help="The campaign's slug.")
        parser.add_argument("--count", type=int, required=True, help="How many comparisons to add.")

    def handle(self, *args, campaign: str, count: int, **options) -> None:
        found = Campaign.objects.filter(slug=campaign).first()
        if found is None:
            raise CommandError(f"no campaign {campaign!r}")
        try:
            added = campaign_refresh(campaign=found, count=count)
        except (ValueError, BuildError) as exc:
            raise CommandError(f"campaign {campaign!r}: {exc}") from exc
        self.stdout.write(f"{found.slug}: {added} comparison(s) added")
