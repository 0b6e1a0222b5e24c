"""With DEBUG on, an API body over the limit is still the JSON 413 (not Django's HTML debug page)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

TOKEN = "a" * 32  # a CSRF secret, in the cookie and the header: the check passes, the body is read


@pytest.mark.django_db
@pytest.mark.parametrize("debug", [True, False])
@pytest.mark.parametrize("path", ["/api/annotate/votes", "/api/annotate/campaigns/c/onboarded"])
@pytest.mark.parametrize("content_type", ["application/json", "application/x-www-form-urlencoded"])
def test_an_oversized_api_body_is_a_json_413_whatever_debug_says(live_server, settings, debug, path, content_type):
    settings.DEBUG = debug
    body = b"a=" + b"x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 10)
    request = urllib.request.Request(f"{live_server.url}{path}", data=body, method="POST",
                                     headers={"Content-Type": content_type, "Cookie": f"csrftoken={TOKEN}",
                                              "X-CSRFToken": TOKEN})
    with pytest.raises(urllib.error.HTTPError) as answer:
        urllib.request.urlopen(request, timeout=30)
    assert answer.value.code == 413, answer.value.read()[:300]
    assert answer.value.headers["Content-Type"] == "application/json"
    assert "limit" in json.loads(answer.value.read())["detail"]
