"""The text an annotator is shown for a query is the text the model encoded for it (FashionIQ and CIRR)."""

from __future__ import annotations

from unittest import mock

import pytest
from django.conf import settings
from django.core.management import call_command

from annotate.models import Campaign
from annotate.services.campaign_build import campaign_build
from annotate.services.campaigns import campaign_create, campaign_set_status
from hpbench.catalog.models import Dataset, ModelEntry, Query, RetrievalRun
from hpbench.catalog.results import read_topk_stored, write_topk
from models_zoo import encoding
from models_zoo.tiny import make_tiny_clip
from tests.annotate.conftest import enter, next_task
from tests.catalog.conftest import build_cirr, build_fashioniq

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    return make_tiny_clip(tmp_path_factory.mktemp("tiny-clip"))


# Captions whose official text keeps or drops punctuation and case: a rule applied twice would drift here.
CAPTIONS = {
    "fashioniq": (["is red.", "  has long sleeves?"], "Is red and has long sleeves"),
    "cirr": (["  Show two of them, on grass.  "], "Show two of them, on grass."),
}


@pytest.mark.parametrize("kind", ["fashioniq", "cirr"])
def test_annotators_see_the_text_the_model_encoded(kind, tmp_path, tiny_clip, client):
    from worker.retrieval import retrieval_run_execute

    root = build_fashioniq(tmp_path / "data") if kind == "fashioniq" else build_cirr(tmp_path / "data")
    subset = ["--categories", "dress"] if kind == "fashioniq" else ["--splits", "val", "test1"]
    call_command("import_dataset", kind, str(root), "--name", f"texts-{kind}", *subset, "--json",
                 stdout=mock.Mock())
    dataset = Dataset.objects.get(name=f"texts-{kind}")
    captions, official = CAPTIONS[kind]
    query = Query.objects.filter(dataset=dataset, split="val").order_by("pk").first()
    Query.objects.filter(dataset=dataset, split="val").exclude(pk=query.pk).delete()
    Query.objects.filter(pk=query.pk).update(captions=captions)
    model = ModelEntry.objects.create(
        name="tiny", family="clip_zeroshot", variant="sum", checkpoint_path=str(tiny_clip)
    )
    run = RetrievalRun.objects.create(model=model, dataset=dataset, split="val", topk=2)

    encoded: list[str] = []

    def spy(model, references, texts, **kwargs):
        encoded.extend(texts)
        return encoding.encode_query_batches(model, references, texts, **kwargs)

    with mock.patch("worker.embeddings.encode_query_batches", side_effect=spy):
        assert retrieval_run_execute(run_id=run.pk) == RetrievalRun.Status.FINISHED
    assert encoded == [official]

    # A second model's run with other images, so the campaign has a pair to show.
    run.refresh_from_db()
    shown = read_topk_stored(run.results_path).as_dict(2)[query.pk]
    others = list(dataset.images.filter(split="val").exclude(pk__in=shown).values_list("pk", flat=True))[:2]
    other = ModelEntry.objects.create(
        name="other", family="clip_zeroshot", variant="image", checkpoint_path=str(tiny_clip)
    )
    path = settings.MEDIA_ROOT / "runs" / f"texts-{kind}.npz"
    write_topk(path, query_ids=[query.pk], image_ids=[others], scores=[[1.0, 0.5]])
    RetrievalRun.objects.create(model=other, dataset=dataset, split="val", topk=2, results_path=str(path),
                                status=RetrievalRun.Status.FINISHED)
    campaign = campaign_create(
        slug=f"texts-{kind}", name="texts", dataset=dataset, models=[model, other], split="val", set_size=2,
        num_queries=1, gold_share=0.0,
    )
    campaign_build(campaign=campaign)
    campaign_set_status(campaign=campaign, status=Campaign.Status.OPEN)

    token = enter(client, campaign)
    task = next_task(client, campaign, token).json()["task"]
    assert task["text"] == official
