"""Unstorable text and bad parameters across the API get a 400 (hpbench/inputs.py): NUL characters in URLs,
submission configs and descriptions, health-check parameters; and the text check itself."""

from __future__ import annotations

import io

import pytest

from hpbench.inputs import text_problem
from hpbench.leaderboard.models import Submission

pytestmark = pytest.mark.django_db


def test_text_problem_names_nul_and_lone_surrogates_and_passes_other_text():
    assert text_problem("a\x00b") == "contains a NUL character"
    assert "lone surrogate (U+DC00)" in text_problem("a\udc00")
    assert text_problem("ordinary text, accents é and emoji 👍") is None


@pytest.mark.parametrize(
    "url", ["/queries/?dataset=%00", "/queries/?split=a%00b", "/api/exports/download/a%00b", "/api/datasets/?x=%00"]
)
def test_a_nul_in_the_url_gets_a_400_not_a_database_error(client, url):
    response = client.get(url)
    assert response.status_code == 400
    if url.startswith("/api/"):
        assert response.json() == {"detail": "the URL contains a NUL character (%00)"}
    else:
        assert b"NUL character" in response.content


def test_an_unknown_api_path_answers_json(client):
    response = client.get("/api/no-such-thing")
    assert response.status_code == 404
    assert response.json() == {"detail": "not found"}


def _checkpoint():
    upload = io.BytesIO(b"not checked before the text")
    upload.name = "model.safetensors"
    return upload


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"config": "[" * 5000 + "]" * 5000}, "nested too deep"),
        ({"config": '{"a": {"b": "\\u0000"}}'}, "config: JSON string at $.a.b contains a NUL character"),
        ({"config": '{"a": "\\ud800"}'}, "lone surrogate"),
        ({"config": '{"a": ' + "[" * 33 + "1" + "]" * 33 + "}"}, "nested deeper than 32 levels"),
    ],
    ids=["5000-deep", "nul", "surrogate", "34-deep"],
)
def test_a_submission_config_the_database_cannot_store_gets_a_400(client, researcher, fields, says):
    client.force_login(researcher)
    response = client.post("/api/leaderboard/submissions", {"family": "clip4cir", "file": _checkpoint(), **fields})
    assert response.status_code == 400, response.content
    assert says in response.content.decode()
    page = client.post("/submissions/", {"family": "clip4cir", "file": _checkpoint(), **fields})
    assert page.status_code in (200, 400) and says.split(": ")[-1].split(" (")[0] in page.content.decode()
    assert not Submission.objects.exists()


def test_a_submission_description_with_a_nul_gets_a_400_on_the_api_and_the_form(client, researcher):
    client.force_login(researcher)
    response = client.post(
        "/api/leaderboard/submissions", {"family": "clip4cir", "file": _checkpoint(), "description": "a\x00b"}
    )
    assert response.status_code == 400 and "Null characters are not allowed" in response.content.decode()
    page = client.post("/submissions/", {"family": "clip4cir", "file": _checkpoint(), "description": "a\x00b"})
    assert page.status_code in (200, 400) and "description: contains a NUL character" in page.content.decode()
    assert not Submission.objects.exists()


@pytest.mark.parametrize("timeout", ["abc", "nan", "0", "1e9"])
def test_healthz_refuses_a_bad_timeout_with_a_400(client, timeout):
    response = client.get(f"/healthz?timeout={timeout}")
    assert response.status_code == 400
    assert "timeout must be" in response.json()["detail"]
