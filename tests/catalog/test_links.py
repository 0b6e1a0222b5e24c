"""Links: http(s) only, refused the same way by the form, the API, register_model and the admin (stored XSS)."""

from __future__ import annotations

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from safetensors.numpy import save as save_safetensors

from hpbench.catalog.links import link_problem
from hpbench.catalog.models import ModelEntry
from hpbench.leaderboard.models import Submission

BAD_LINKS = [
    "javascript:alert(document.cookie)",
    "JaVaScRiPt:alert(1)",
    " javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
    "ftp://example.org/model",
    "//evil.example/x",
    "https://" + "a" * 200 + ".org",
]


def _checkpoint() -> SimpleUploadedFile:
    return SimpleUploadedFile("model.safetensors", save_safetensors({"w": np.zeros((2,), dtype=np.float32)}))


@pytest.mark.parametrize("link", BAD_LINKS)
def test_only_http_and_https_urls_are_links(link):
    assert link_problem(link)


def test_good_links_and_no_link_pass():
    for link in ("", "https://arxiv.org/abs/2507.12416", "http://example.org/code?x=1#y"):
        assert link_problem(link) is None


@pytest.mark.django_db
@pytest.mark.parametrize("link", BAD_LINKS[:5])
def test_the_form_and_the_api_refuse_a_script_link_and_store_nothing(researcher, client, link):
    client.force_login(researcher)
    page = client.post("/submissions/", {"family": "clip4cir", "file": _checkpoint(), "link": link})
    assert page.status_code == 400 and "link" in page.content.decode()
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=researcher)[0].key}")
    response = api.post("/api/leaderboard/submissions", {"family": "clip4cir", "file": _checkpoint(), "link": link},
                        format="multipart")
    assert response.status_code == 400 and "link" in response.content.decode()
    assert Submission.objects.count() == 0 and ModelEntry.objects.count() == 0


@pytest.mark.django_db
def test_register_model_and_the_admin_refuse_a_script_link(staff_user, client):
    with pytest.raises(CommandError, match="only http:// and https:// URLs"):
        call_command("register_model", "m", "--family", "demo", "--link", "javascript:alert(1)")
    client.force_login(staff_user)
    form = {"name": "m", "family": "demo", "variant": "", "checkpoint_path": "", "config": "{}", "description": ""}
    response = client.post("/admin/catalog/modelentry/add/", {**form, "link": "javascript:alert(1)"})
    assert response.status_code == 200 and "errorlist" in response.content.decode()
    # ftp: passes the form's URLField, and is refused by the model field's validator (ours).
    response = client.post("/admin/catalog/modelentry/add/", {**form, "link": "ftp://example.org/m"})
    assert response.status_code == 200 and "only http:// and https:// URLs" in response.content.decode()
    assert not ModelEntry.objects.exists()
