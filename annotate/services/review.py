"""Staff's review of an annotator (the monitoring page): approve or exclude their votes."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from annotate.models import Annotator, Vote


def annotator_review(*, annotator: Annotator, decision: str) -> Annotator:
    """Record staff's decision on ``annotator`` and apply it at once: ``"excluded"`` flags the annotator and
    marks all their votes excluded (later votes too, as for any flagged annotator); ``"approved"`` unflags
    them and counts their votes again; ``""`` hands the decision back to the gold check
    (:func:`annotate.quality.quality_refresh`). Raises ``ValueError`` for any other decision.
    """
    if decision not in Annotator.Review.values:
        raise ValueError(f"decision must be one of 'approved', 'excluded' or '', got {decision!r}")
    with transaction.atomic():
        annotator = Annotator.objects.select_for_update().get(pk=annotator.pk)
        annotator.review = decision
        annotator.reviewed_at = timezone.now() if decision else None
        fields = ["review", "reviewed_at"]
        if decision:
            annotator.flagged = decision == Annotator.Review.EXCLUDED
            fields.append("flagged")
            Vote.objects.filter(annotator=annotator).update(excluded=annotator.flagged)
        annotator.save(update_fields=fields)
    if not decision:
        from annotate.quality import quality_refresh

        quality_refresh(campaign=annotator.campaign)
        annotator.refresh_from_db()
    return annotator
