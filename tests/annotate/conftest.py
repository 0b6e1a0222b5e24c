"""A tiny catalogue with finished retrieval runs, and campaigns built on it."""

from __future__ import annotations

import itertools
import json
import uuid
from dataclasses import dataclass, field

import pytest
from django.conf import settings
from django.test import Client

from annotate.models import Campaign
from annotate.services.campaign_build import campaign_build
from annotate.services.campaigns import campaign_create, campaign_set_status
from hpbench.catalog.models import Dataset, Image, ModelEntry, Query, RetrievalRun
from hpbench.catalog.results import write_topk

SECRET_MODEL_NAMES = ("secret-model-alpha", "secret-model-bravo", "secret-model-charlie")
_counter = itertools.count()

COLOURS = ("red", "blue", "green", "black")


@dataclass
class World:
    dataset: Dataset
    images: list[Image]
    queries: list[Query]
    models: list[ModelEntry]
    topk: dict[int, dict[int, list[int]]] = field(default_factory=dict)


def make_world(
    *,
    n_queries: int = 6,
    n_images: int = 40,
    n_models: int = 2,
    k: int = 5,
    identical_for: tuple[int, ...] = (),
    kind: str = Dataset.Kind.DEMO,
) -> World:
    """``n_queries`` queries over ``n_images`` dresses; each model ranks a different rotation of the gallery,
    except for the query indexes in ``identical_for`` where every model returns the same images."""
    n = next(_counter)
    dataset = Dataset.objects.create(name=f"ds-{n}", kind=kind, image_root="/tmp")
    images = Image.objects.bulk_create(
        [
            Image(
                dataset=dataset,
                name=f"img{i}",
                category="dress",
                split="val",
                file_path=f"img{i}.png",
                attributes={
                    "category": "dress",
                    "colour": COLOURS[i % 4],
                    "pattern": "plain",
                    "sleeves": ("short", "long")[(i // 4) % 2],
                    "neckline": "round",
                    "length": "knee",
                },
            )
            for i in range(n_images)
        ]
    )
    queries = []
    for q in range(n_queries):
        reference, target = images[(2 * q) % n_images], images[(2 * q + 1) % n_images]
        queries.append(
            Query.objects.create(
                dataset=dataset,
                key=f"q{q}",
                split="val",
                category="dress",
                reference=reference,
                target=target,
                captions=[f"is {target.attributes['colour']}", f"has {target.attributes['sleeves']} sleeves"],
            )
        )
    models = [
        ModelEntry.objects.create(name=f"{SECRET_MODEL_NAMES[m]}-{n}", family=ModelEntry.Family.DEMO)
        for m in range(n_models)
    ]
    world = World(dataset=dataset, images=images, queries=queries, models=models)
    ids = [img.pk for img in images]
    for m, model in enumerate(models):
        rows = []
        for q, _query in enumerate(queries):
            shift = 0 if q in identical_for else 7 * m
            rows.append([ids[(q + shift + j) % n_images] for j in range(k)])
        world.topk[model.pk] = {query.pk: row for query, row in zip(queries, rows, strict=True)}
        path = settings.MEDIA_ROOT / "runs" / f"run-{n}-{m}.npz"
        write_topk(path, query_ids=[q.pk for q in queries], image_ids=rows, scores=[[1.0] * k for _ in rows])
        RetrievalRun.objects.create(
            model=model,
            dataset=dataset,
            split="val",
            status=RetrievalRun.Status.FINISHED,
            topk=k,
            results_path=str(path),
        )
    return world


def make_campaign(world: World, *, build: bool = True, status: str = Campaign.Status.OPEN, **options) -> Campaign:
    options.setdefault("gold_share", 0.0)
    options.setdefault("num_queries", len(world.queries))
    campaign = campaign_create(
        slug=f"camp-{next(_counter)}",
        name="Campaign naming secret-model-alpha",
        dataset=world.dataset,
        models=world.models,
        **options,
    )
    if build:
        campaign_build(campaign=campaign)
        if status != Campaign.Status.DRAFT:
            campaign_set_status(campaign=campaign, status=status)
    return campaign


@pytest.fixture
def world(db) -> World:
    return make_world()


@pytest.fixture
def csrf_client() -> Client:
    """A browser whose writes must carry the CSRF token, as a real one's do."""
    return Client(enforce_csrf_checks=True)


def next_task(client, campaign: Campaign, token: str):
    return client.post(f"/api/annotate/campaigns/{campaign.slug}/next", HTTP_X_CSRFTOKEN=token)


def post_vote(client, token: str, **body):
    body.setdefault("choice", "left")
    body.setdefault("idempotency_key", str(uuid.uuid4()))
    return client.post("/api/annotate/votes", json.dumps(body), content_type="application/json", HTTP_X_CSRFTOKEN=token)


def enter(client, campaign: Campaign, pid: str = "PID0001"):
    """Enter ``campaign`` as a Prolific worker through the API; returns the CSRF token for writes."""
    link = f"PROLIFIC_PID={pid}&STUDY_ID=s1&SESSION_ID=sess-{pid}"
    response = client.get(f"/api/annotate/campaigns/{campaign.slug}/enter?{link}")
    assert response.status_code == 200, response.content
    return response.cookies["csrftoken"].value
