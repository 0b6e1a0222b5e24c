"""The staff campaign set-up pages (frontend/views/campaign_setup.py): rights, the two-step creation with the
defaults filled, the actions, and the dataset-folder import with its errors."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from annotate.models import Campaign
from hpbench.catalog.models import Dataset
from tests.annotate.conftest import make_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(staff_user) -> Client:
    client = Client()
    client.force_login(staff_user)
    return client


@pytest.mark.parametrize("path", ["/campaigns/new/", "/datasets/import/"])
def test_anonymous_visitors_are_sent_to_log_in_and_researchers_are_refused(path, researcher):
    assert Client().get(path).headers["Location"].startswith("/accounts/login/?next=")
    client = Client()
    client.force_login(researcher)
    assert client.get(path).status_code == 403
    assert client.post(path, {}).status_code == 403


def test_step_one_lists_each_split_with_its_queries(staff_client):
    world = make_world(n_queries=4)
    body = staff_client.get("/campaigns/new/").content.decode()
    assert f'value="{world.dataset.pk}:val"' in body
    assert "(4 queries" in body


def test_step_two_fills_the_defaults_and_creates_a_draft_comparing_the_chosen_models(staff_client, staff_user):
    world = make_world(n_queries=4, n_models=3)
    url = f"/campaigns/new/?dataset={world.dataset.pk}&split=val"
    form = staff_client.get(url).context["form"]
    assert form.initial["num_queries"] == 4  # every query when fewer than 100
    assert sorted(form.initial["models"]) == sorted(str(m.pk) for m in world.models)
    assert form["votes_per_pair"].value() == 3 and form["min_vote_ms"].value() == 1500  # the model's defaults

    fields = {name: form[name].value() for name in form.fields if form[name].value() not in (None, False)}
    fields.update(name="Shirts pilot", slug="", models=[str(m.pk) for m in world.models[:2]], num_queries=3)
    response = staff_client.post(url, fields)
    assert response.status_code == 302 and response.headers["Location"] == "/campaigns/shirts-pilot/setup/"
    campaign = Campaign.objects.get(slug="shirts-pilot")
    assert (campaign.status, campaign.build_status, campaign.num_queries) == ("draft", "not_built", 3)
    assert set(campaign.models.all()) == set(world.models[:2])
    assert campaign.created_by == staff_user and campaign.dataset == world.dataset and campaign.split == "val"


def test_step_two_names_what_is_wrong(staff_client):
    world = make_world(n_queries=2)
    url = f"/campaigns/new/?dataset={world.dataset.pk}&split=val"
    response = staff_client.post(url, {"name": "x", "models": [str(world.models[0].pk)], "num_queries": 0,
                                       "votes_per_pair": 3, "adaptive_overlap": "on", "min_votes_per_pair": 5})
    errors = response.context["form"].errors
    assert errors["models"] == ["choose at least two models"]
    assert "num_queries" in errors and "min_votes_per_pair" in errors
    assert not Campaign.objects.exists()


def test_build_then_open_through_the_actions(staff_client, django_capture_on_commit_callbacks):
    world = make_world(n_queries=3)
    from tests.annotate.conftest import make_campaign

    campaign = make_campaign(world, build=False, status=Campaign.Status.DRAFT)
    refused = staff_client.post(f"/campaigns/{campaign.slug}/setup/open", follow=True)
    assert "has no comparisons yet" in refused.content.decode()
    with django_capture_on_commit_callbacks(execute=False) as sent:
        staff_client.post(f"/campaigns/{campaign.slug}/setup/build")
    assert len(sent) == 1  # the build task, sent after commit
    state = json.loads(staff_client.get(f"/campaigns/{campaign.slug}/setup/status").content)
    assert state["build_status"] == "queued" and state["comparisons"] == 0
    assert staff_client.post(f"/campaigns/{campaign.slug}/setup/nonsense").status_code == 404


def test_the_import_form_runs_the_importer_and_names_a_malformed_file(staff_client, tmp_path):
    (tmp_path / "captions").mkdir()
    (tmp_path / "image_splits").mkdir()
    (tmp_path / "image_splits" / "split.dress.val.json").write_text('["B001"]')
    (tmp_path / "captions" / "cap.dress.val.json").write_text("[{]")
    response = staff_client.post("/datasets/import/", {"format": "fashioniq", "root": str(tmp_path),
                                                       "name": "fiq", "splits": "val"})
    message = " ".join(response.context["form"].non_field_errors())
    assert "Import failed, nothing was written" in message and "cap.dress.val.json" in message
    assert not Dataset.objects.filter(name="fiq").exists()

    response = staff_client.post("/datasets/import/", {"format": "cirr", "root": str(tmp_path), "name": "c",
                                                       "splits": "val nope"})
    assert "unknown split(s) nope" in " ".join(response.context["form"].errors["splits"])
