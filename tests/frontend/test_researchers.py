"""Researchers' pages: the submit guide, sign-up, the token page and a submission's log (HTTP, real database)."""

from __future__ import annotations

import re

import pytest
from django.core.files.base import ContentFile
from django.test import override_settings
from django.utils.html import escape
from rest_framework.authtoken.models import Token

from hpbench.catalog.models import Dataset, ModelEntry, RetrievalRun
from hpbench.leaderboard.models import Submission
from models_zoo import VARIANTS
from models_zoo.registry import FAMILY_INFO

pytestmark = pytest.mark.django_db


# --- the submit page -------------------------------------------------------------------------------------


def test_the_submit_page_is_public_and_lists_every_familys_variants(client):
    page = client.get("/submit/")
    assert page.status_code == 200
    html = page.content.decode()
    for family, variants in VARIANTS.items():
        assert f'id="family-{family}"' in html
        for variant in variants:
            assert f'data-family="{family}" data-variant="{variant}"' in html
            assert escape(FAMILY_INFO[family].variants[variant]) in html
    picker = re.search(r'<select id="rs-variant">(.*?)</select>', html, re.S).group(1)
    assert re.findall(r'value="([^"]+)" data-family="([^"]+)"', picker) == [
        (v, f) for f in ("clip4cir", "blip2_cir", "demo") for v in VARIANTS[f]
    ]
    for words in ("Eq. 9", "Recall@K", "score file", "Limits", "Authorization: Token", "submissions per account"):
        assert words.lower() in html.lower() or words in html


def test_the_home_page_the_nav_and_the_leaderboard_link_the_submit_page(client):
    from hpbench.leaderboard.services.benchmarks import PairSpec, benchmark_store
    from tests.leaderboard.conftest import make_images

    dataset = Dataset.objects.create(name="fiq", kind=Dataset.Kind.FASHIONIQ, image_root="/tmp")
    ids = list(make_images(dataset, {"a": "dress", "b": "dress", "c": "shirt"}).values())
    benchmark_store(name="bench", source="imported", dataset=dataset,
                    pairs=[PairSpec(reference_id=ids[0], text="t", set1=(ids[1],), set2=(ids[2],), preference=1)])
    for url in ("/", "/leaderboard/bench/", "/queries/"):
        assert 'href="/submit/"' in client.get(url).content.decode(), url


def test_the_submission_form_offers_variants_from_a_drop_down(client, researcher):
    client.force_login(researcher)
    html = client.get("/submissions/").content.decode()
    assert '<select name="variant" id="id_variant">' in html
    assert '<option value="qure" data-family="blip2_cir">' in html


# --- sign-up -----------------------------------------------------------------------------------------------

FORM = {"username": "ada", "email": "ada@example.org", "password1": "grace-hopper-1906",
        "password2": "grace-hopper-1906"}


@override_settings(HPBENCH_SIGNUP="off")
def test_sign_up_off_has_no_page(client, django_user_model):
    assert client.get("/accounts/signup/").status_code == 404
    assert client.post("/accounts/signup/", FORM).status_code == 404
    assert not django_user_model.objects.filter(username="ada").exists()
    assert "Sign-up is closed" in client.get("/submit/").content.decode()


@override_settings(HPBENCH_SIGNUP="approval")
def test_sign_up_with_approval_cannot_log_in_until_staff_approve(client, staff_user, django_user_model):
    answer = client.post("/accounts/signup/", FORM)
    assert answer.status_code == 200 and "approves new accounts" in answer.content.decode()
    user = django_user_model.objects.get(username="ada")
    assert not user.is_active
    login = {"username": "ada", "password": FORM["password1"]}
    # Through the login page, as a person would (django-axes refuses client.login(), which carries no request).
    refused = client.post("/accounts/login/", login)
    assert refused.status_code == 200 and "_auth_user_id" not in client.session
    staff = client.__class__()
    staff.force_login(staff_user)
    changelist = staff.post("/admin/auth/user/", {"action": "approve", "_selected_action": [user.pk]})
    assert changelist.status_code == 302
    user.refresh_from_db()
    assert user.is_active
    assert client.post("/accounts/login/", login).status_code == 302
    assert client.session["_auth_user_id"] == str(user.pk)


@override_settings(HPBENCH_SIGNUP="open")
def test_open_sign_up_logs_the_researcher_in_and_names_bad_fields(client, django_user_model):
    bad = client.post("/accounts/signup/", {**FORM, "password2": "something-else-1"})
    assert bad.status_code == 400 and "password fields didn" in bad.content.decode()
    answer = client.post("/accounts/signup/", FORM)
    assert answer.status_code == 302 and answer["Location"] == "/account/token/"
    assert django_user_model.objects.get(username="ada").is_active
    assert client.get("/account/token/").status_code == 200
    taken = client.__class__().post("/accounts/signup/", FORM)
    assert taken.status_code == 400 and "is taken" in taken.content.decode()  # open sign-up logs in: it cannot hide


@override_settings(HPBENCH_SIGNUP="approval")
def test_sign_up_does_not_tell_whether_a_username_or_address_has_an_account(client, django_user_model):
    import re

    django_user_model.objects.create_user(username="grace", email="grace@example.org", password="x-long-pass-1")

    def page(form):
        answer = client.__class__().post("/accounts/signup/", form)
        html = re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", answer.content.decode())
        return answer.status_code, html.replace(form["username"], "NAME")

    fresh = page({**FORM, "username": "newcomer", "email": "newcomer@example.org"})
    taken_name = page({**FORM, "username": "GRACE", "email": "someone@example.org"})
    taken_address = page({**FORM, "username": "another", "email": "Grace@Example.org"})
    assert fresh[0] == taken_name[0] == taken_address[0] == 200
    assert fresh[1] == taken_name[1] == taken_address[1] and "approves new accounts" in fresh[1]
    assert not django_user_model.objects.filter(username="GRACE").exists()


def test_password_reset_pages_are_not_mounted_without_email_settings(client, settings):
    for path in ("/accounts/password_reset/", "/accounts/password_reset/done/", "/accounts/reset/done/",
                 "/accounts/reset/MQ/set-password/"):
        assert client.get(path).status_code == 404, path
    assert client.get("/accounts/login/").status_code == 200


# --- the token page ----------------------------------------------------------------------------------------


def test_the_token_page_needs_a_login(client):
    answer = client.get("/account/token/")
    assert answer.status_code == 302 and answer["Location"].startswith("/accounts/login/")
    assert client.post("/account/token/").status_code == 302
    assert not Token.objects.exists()


def test_the_token_page_shows_creates_and_rotates_only_the_callers_token(client, researcher, outsider):
    other = Token.objects.create(user=outsider)
    client.force_login(researcher)
    assert "You have no token yet" in client.get("/account/token/").content.decode()
    client.post("/account/token/")
    first = Token.objects.get(user=researcher).key
    answer = client.get("/account/token/")
    html = answer.content.decode()
    assert first in html and other.key not in html
    assert "no-store" in answer["Cache-Control"]
    client.post("/account/token/")
    second = Token.objects.get(user=researcher).key
    assert second != first and Token.objects.filter(user=outsider, key=other.key).exists()
    api = client.__class__()
    assert api.get("/api/leaderboard/submissions", HTTP_AUTHORIZATION=f"Token {first}").status_code in (401, 403)
    assert api.get("/api/leaderboard/submissions", HTTP_AUTHORIZATION=f"Token {second}").status_code == 200


# --- a submission's log page ---------------------------------------------------------------------------------


@pytest.fixture
def failed_submission(researcher, tmp_path, settings):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    dataset = Dataset.objects.create(name="fiq", kind=Dataset.Kind.FASHIONIQ, image_root="/tmp")
    model = ModelEntry(name="sub-x", family="clip4cir", owner=researcher, is_public=False)
    model.checkpoint_file.save("mine.safetensors", ContentFile(b"x" * 2048), save=False)
    model.save()
    submission = Submission.objects.create(owner=researcher, model=model, family="clip4cir", status="running",
                                           log="[2026-11-30 07:00:00] queued retrieval run")
    RetrievalRun.objects.create(
        model=model, dataset=dataset, split="val", status="failed",
        error=f"CheckpointError: Checkpoint {model.checkpoint_file.path}: no 'Combiner' key; CLIP folder "
              "/srv/models/clip-secret: not found\n\nTraceback (most recent call last):\n  File "
              '"/srv/hpbench/worker/retrieval.py", line 10, in run\n    raise CheckpointError\n')
    return submission


def test_the_owner_sees_each_jobs_status_times_error_and_files_without_server_paths(client, researcher,
                                                                                    failed_submission):
    client.force_login(researcher)
    answer = client.get(f"/submissions/{failed_submission.pk}/log/")
    assert answer.status_code == 200
    html = answer.content.decode()
    assert "Retrieval on fiq/val" in html and 'data-status="failed"' in html
    assert "no &#x27;Combiner&#x27; key" in html and "…/mine.safetensors" in html
    assert "&lt;server path&gt;" in html
    assert "/srv/" not in html and "retrieval.py" not in html and "media" not in html
    assert "mine.safetensors</code>: checkpoint, 2.0" in html
    assert f'href="/submissions/{failed_submission.pk}/log/"' in client.get(
        f"/submissions/{failed_submission.pk}/").content.decode()


def test_another_researcher_gets_404_even_once_published_and_staff_see_the_full_error(
        client, outsider, staff_user, failed_submission):
    client.force_login(outsider)
    assert client.get(f"/submissions/{failed_submission.pk}/log/").status_code == 404
    Submission.objects.filter(pk=failed_submission.pk).update(is_public=True)
    ModelEntry.objects.filter(pk=failed_submission.model_id).update(is_public=True)
    assert client.get(f"/submissions/{failed_submission.pk}/").status_code == 200  # the results are public
    assert client.get(f"/submissions/{failed_submission.pk}/log/").status_code == 404  # the log is not
    assert client.get("/submissions/999999/log/").status_code == 404
    client.force_login(staff_user)
    html = client.get(f"/submissions/{failed_submission.pk}/log/").content.decode()
    assert "/srv/models/clip-secret" in html and "Traceback" in html
    anonymous = client.__class__()
    assert anonymous.get(f"/submissions/{failed_submission.pk}/log/").status_code == 302


def test_the_submit_page_lists_each_familys_config_keys_and_registered_base_models(client):
    from hpbench.catalog.models import BaseModel

    BaseModel.objects.create(name="bert-base-uncased", family="blip2_cir", paths={"tokenizer_folder": "/srv/bert"})
    html = client.get("/submit/").content.decode()
    assert '<tr data-family="blip2_cir" data-key="base_model">' in html
    assert "one of: bert-base-uncased" in html and "/srv/bert" not in html
    assert '<tr data-family="clip4cir" data-key="projection_dim">' in html and "whole number 1–16384" in html
    assert '<tr data-family="blip2_cir" data-key="pad_ratio">' in html and "number 1–4, or null" in html
    assert 'data-family="demo" data-key=' not in html
