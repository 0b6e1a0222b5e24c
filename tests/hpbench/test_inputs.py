"""NUL characters in URLs get a 400 before any lookup (hpbench/inputs.py), and the text check itself."""

from __future__ import annotations

import pytest

from hpbench.inputs import text_problem

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
