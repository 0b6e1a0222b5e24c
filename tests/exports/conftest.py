"""A small campaign with known votes (built with the ORM), and the real HP-FashionIQ file."""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.utils import timezone

from annotate.models import Annotator, Assignment, Campaign, Comparison, Vote
from hpbench.catalog.models import Dataset, Image, ModelEntry, Query

ROOT = Path(__file__).resolve().parents[2]
HPFIQ = (ROOT / ".." / "shared" / "data" / "hp-fashioniq" / "hpfiq.json").resolve()

# Identities that must never reach an export file.
SECRET_USERNAME = "alice-secret-account"
SECRET_EMAIL = "alice.secret@example.org"
SECRET_HASH = "f" * 10 + "c0ffee" * 8
SECRET_STUDY = "STUDY-SECRET-42"
SECRET_SESSION = "SESSION-SECRET-43"

_n = itertools.count()


@dataclass
class ExportWorld:
    dataset: Dataset
    campaign: Campaign
    other: Campaign
    comparisons: list[Comparison]
    annotators: list[Annotator]
    votes: list[Vote]
    images: dict[int, Image]


def _vote(
    annotator,
    comparison,
    choice,
    *,
    rating_a=None,
    rating_b=None,
    irrelevant=False,
    excluded=False,
    time_ms=1000,
    when=None,
) -> Vote:
    assignment = Assignment.objects.create(
        campaign=comparison.campaign,
        annotator=annotator,
        comparison=comparison,
        left_is_a=True,
        state=Assignment.State.SUBMITTED,
        expires_at=timezone.now(),
    )
    vote = Vote.objects.create(
        assignment=assignment,
        comparison=comparison,
        annotator=annotator,
        choice=choice,
        rating_a=rating_a,
        rating_b=rating_b,
        irrelevant=irrelevant,
        excluded=excluded,
        time_ms=time_ms,
        idempotency_key=f"k-{next(_n)}",
    )
    if when is not None:
        Vote.objects.filter(pk=vote.pk).update(created_at=when)
        vote.refresh_from_db()
    return vote


def make_export_world(django_user_model) -> ExportWorld:
    n = next(_n)
    dataset = Dataset.objects.create(name=f"exp-ds-{n}", kind=Dataset.Kind.FASHIONIQ, image_root="/tmp")
    images = {
        i: Image.objects.create(
            dataset=dataset,
            name=f"B00IMG{i:04d}",
            category=("shirt", "dress")[i % 2],
            split="val",
            file_path=f"img{i}.jpg",
        )
        for i in range(24)
    }
    models = [ModelEntry.objects.create(name=f"model-{m}-{n}", family=ModelEntry.Family.DEMO) for m in "xy"]
    campaign = Campaign.objects.create(
        slug=f"exp-camp-{n}",
        name="Export campaign",
        dataset=dataset,
        allow_tie=True,
        ask_ratings=True,
        ask_irrelevant=True,
    )
    other = Campaign.objects.create(slug=f"exp-other-{n}", name="Other", dataset=dataset)
    comparisons = []
    for q in range(4):
        ref, target = images[2 * q], images[2 * q + 1]
        query = Query.objects.create(
            dataset=dataset,
            key=f"q{q}",
            split="val",
            category=ref.category,
            reference=ref,
            target=target,
            captions=[f"is red {q}", f"has sleeves {q}"],
        )
        gold = q == 3
        comparisons.append(
            Comparison.objects.create(
                campaign=campaign,
                query=query,
                reference_image=ref,
                text=f"is red {q} and has sleeves {q}",
                position=q,
                set_a_images=[images[8 + q].pk, images[12 + q].pk, images[9].pk],
                set_b_images=[images[16 + q].pk, images[20 + q].pk, images[10].pk],
                set_a_model=None if gold else models[0],
                set_b_model=None if gold else models[1],
                is_gold=gold,
                gold_answer="a" if gold else "",
                open_slots=0,
            )
        )
    other_cmp = Comparison.objects.create(
        campaign=other,
        query=comparisons[0].query,
        reference_image=images[0],
        text="other",
        position=0,
        set_a_images=[images[9].pk],
        set_b_images=[images[10].pk],
        set_a_model=models[0],
        set_b_model=models[1],
        open_slots=0,
    )
    account = django_user_model.objects.create_user(
        username=SECRET_USERNAME, email=SECRET_EMAIL, password="pw-123456789"
    )
    annotators = [
        Annotator.objects.create(campaign=campaign, source=Annotator.Source.ACCOUNT, user=account),
        Annotator.objects.create(
            campaign=campaign,
            source=Annotator.Source.PROLIFIC,
            external_id_hash=SECRET_HASH,
            study_id=SECRET_STUDY,
            session_id=SECRET_SESSION,
        ),
        Annotator.objects.create(
            campaign=campaign, source=Annotator.Source.MTURK, external_id_hash="e" * 64, flagged=True
        ),
    ]
    crowd_other = Annotator.objects.create(campaign=other, source=Annotator.Source.PROLIFIC, external_id_hash="d" * 64)
    day = dt.datetime(2026, 3, 10, 12, tzinfo=dt.UTC)
    a0, a1, a2 = annotators
    c0, c1, c2, c3 = comparisons
    votes = [
        _vote(a0, c0, "a", rating_a=4, rating_b=2, when=day),
        _vote(a1, c0, "a", rating_a=5, rating_b=3, time_ms=2500, when=day),
        _vote(a2, c0, "b", rating_a=1, rating_b=5, excluded=True, when=day),
        _vote(a0, c1, "tie", rating_a=3, rating_b=3, when=day + dt.timedelta(days=1)),
        _vote(a1, c1, "b", rating_a=2, rating_b=4, irrelevant=True, when=day + dt.timedelta(days=1)),
        _vote(a0, c2, "b", irrelevant=True, when=day + dt.timedelta(days=2)),
        _vote(a0, c3, "a", when=day + dt.timedelta(days=2)),
        _vote(a1, c3, "b", when=day + dt.timedelta(days=3)),
        _vote(crowd_other, other_cmp, "a", when=day),
    ]
    return ExportWorld(
        dataset=dataset,
        campaign=campaign,
        other=other,
        comparisons=comparisons,
        annotators=annotators,
        votes=votes,
        images={img.pk: img for img in images.values()},
    )


@pytest.fixture
def export_world(db, django_user_model) -> ExportWorld:
    return make_export_world(django_user_model)


@pytest.fixture
def annotator_user(django_user_model):
    """A logged-in annotator account (not staff)."""
    return django_user_model.objects.create_user(username="annotator-acct", password="annotator-pass-123")


@pytest.fixture(scope="session")
def hpfiq_path() -> Path:
    if not HPFIQ.exists():
        pytest.skip(f"the released HP-FashionIQ file is not at {HPFIQ} (see shared/data/hp-fashioniq/SOURCE.md)")
    return HPFIQ
