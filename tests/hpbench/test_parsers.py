"""Bad input never gets a 500: the API's JSON/form parsers (hpbench/parsers.py), on the annotators' short
middleware stack and on the full one, with nothing stored."""

from __future__ import annotations

import io
import json
import sys
import uuid

import pytest
from rest_framework.exceptions import ParseError

from annotate.models import Vote
from hpbench.handlers import Application
from hpbench.parsers import check_json
from tests.annotate.conftest import make_campaign, make_world
from tests.hpbench.test_handlers import application  # noqa: F401 - the fixture

pytestmark = pytest.mark.django_db

NUL_KEY = json.dumps({"choice": "left", "idempotency_key": "key\u0000"})
SURROGATE_KEY = json.dumps({"choice": "left", "idempotency_key": "key\ud800"})  # written as the escape \ud800
JSON = "application/json"
DEEP = "[" * 5000 + "]" * 5000


class RawBrowser:
    """Calls the WSGI application as gunicorn does, with a raw body; keeps cookies."""

    def __init__(self, app: Application) -> None:
        self.application = app
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, body: bytes = b"", *, query: str = "", content_type: str = JSON):
        environ = {
            "REQUEST_METHOD": method,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "SERVER_NAME": "testserver",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": "testserver",
            "REMOTE_ADDR": "127.0.0.1",
            "CONTENT_TYPE": content_type,
            "CONTENT_LENGTH": str(len(body)),
            "HTTP_COOKIE": "; ".join(f"{name}={value}" for name, value in self.cookies.items()),
            "HTTP_X_CSRFTOKEN": self.cookies.get("csrftoken", ""),
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.url_scheme": "http",
            "wsgi.version": (1, 0),
            "wsgi.multithread": True,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }
        answer: dict = {}

        def start_response(status, headers, exc_info=None):
            answer["status"] = int(status.split()[0])
            answer["headers"] = {name.lower(): value for name, value in headers}
            for name, value in headers:
                if name.lower() == "set-cookie":
                    key, _, rest = value.partition("=")
                    self.cookies[key.strip()] = rest.split(";")[0]

        answer["body"] = b"".join(self.application(environ, start_response))
        return answer


class FullStack:
    """The same calls through Django's test client: the full middleware stack (settings.MIDDLEWARE)."""

    def __init__(self, client) -> None:
        self.client = client

    def request(self, method: str, path: str, body: bytes = b"", *, query: str = "", content_type: str = JSON):
        url = f"{path}?{query}" if query else path
        token = self.client.cookies["csrftoken"].value if "csrftoken" in self.client.cookies else ""
        if method == "GET":
            response = self.client.get(url)
        else:
            response = self.client.generic(method, url, body, content_type=content_type, HTTP_X_CSRFTOKEN=token)
        return {"status": response.status_code, "headers": {k.lower(): v for k, v in response.items()},
                "body": response.content}


@pytest.fixture(params=["short stack", "full stack"])
def caller(request, application, client):  # noqa: F811 - the fixture imported above
    if request.param == "short stack":
        return RawBrowser(application)
    return FullStack(client)


def _lease(caller) -> str:
    campaign = make_campaign(make_world())
    pid = uuid.uuid4().hex[:12]
    entered = caller.request(
        "GET", f"/api/annotate/campaigns/{campaign.slug}/enter", query=f"PROLIFIC_PID={pid}&STUDY_ID=s&SESSION_ID=x"
    )
    assert entered["status"] == 200, entered["body"]
    task = caller.request("POST", f"/api/annotate/campaigns/{campaign.slug}/next")
    assert task["status"] == 200, task["body"]
    return json.loads(task["body"])["task"]["lease"]


def _detail(answer) -> str:
    assert answer["headers"]["content-type"].startswith("application/json"), answer
    return json.loads(answer["body"])["detail"]


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (NUL_KEY, "$.idempotency_key contains a NUL character"),
        (SURROGATE_KEY, "$.idempotency_key contains a lone surrogate (U+D800)"),
        (DEEP, "nested deeper than 32 levels"),
        ('{"lease": "x", "choice": "left", "idempotency_key": "k", "extra": ' + "[" * 40 + "]" * 40 + "}",
         "nested deeper than 32 levels at $.extra"),
        ('{"lease": "x", "\\u0000": 1}', "JSON key"),
        ("{not json", "JSON parse error"),
    ],
    ids=["nul", "surrogate", "5000-deep", "40-deep", "nul-key", "malformed"],
)
def test_a_bad_vote_body_gets_a_json_400_and_stores_nothing(caller, body, says):
    lease = _lease(caller)
    if body.startswith('{"choice"'):
        body = body.replace('{"choice"', f'{{"lease": "{lease}", "choice"', 1)
    answer = caller.request("POST", "/api/annotate/votes", body.encode())
    assert answer["status"] == 400, answer
    assert says in _detail(answer)
    assert not Vote.objects.exists()


def test_a_form_encoded_vote_with_a_nul_key_is_refused_by_the_service(caller):
    lease = _lease(caller)
    body = f"lease={lease}&choice=left&idempotency_key=k%00".encode()
    answer = caller.request("POST", "/api/annotate/votes", body, content_type="application/x-www-form-urlencoded")
    assert answer["status"] == 400, answer
    assert _detail(answer) == "idempotency_key contains a NUL character"
    assert not Vote.objects.exists()


def test_a_vote_body_over_the_limit_gets_a_json_413_before_it_is_read(caller, settings):
    lease = _lease(caller)
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2000
    body = json.dumps({"lease": lease, "choice": "left", "idempotency_key": "k", "pad": "x" * 5000}).encode()
    answer = caller.request("POST", "/api/annotate/votes", body)
    assert answer["status"] == 413, answer
    assert "over the 2,000-byte limit" in _detail(answer)
    form = f"lease={lease}&choice=left&idempotency_key=k&pad={'x' * 5000}".encode()
    answer = caller.request("POST", "/api/annotate/votes", form, content_type="application/x-www-form-urlencoded")
    assert answer["status"] == 413, answer
    assert not Vote.objects.exists()


def test_a_multipart_field_over_the_limit_gets_json_not_an_html_page(client, researcher, settings):
    client.force_login(researcher)
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2000
    boundary = "XyZ"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="family"\r\n\r\n{"x" * 5000}\r\n--{boundary}--\r\n'
    ).encode()
    response = client.generic(
        "POST", "/api/leaderboard/submissions", body, content_type=f"multipart/form-data; boundary={boundary}"
    )
    assert response.status_code == 413, response.content
    assert response["Content-Type"].startswith("application/json")
    assert "over the 2,000-byte limit" in response.json()["detail"]


@pytest.mark.parametrize("k", ["abc", "0", "51", "1.5", "%00"])
def test_a_bad_k_on_query_results_gets_a_json_400(client, k):
    world = make_world()
    response = client.get(f"/api/queries/{world.queries[0].pk}/results?k={k}")
    assert response.status_code == 400, response.content
    assert response["Content-Type"].startswith("application/json")


def test_a_good_k_still_bounds_each_model_s_results(client):
    world = make_world()
    body = client.get(f"/api/queries/{world.queries[0].pk}/results?k=3").json()
    assert body["results_hidden"] is False
    assert [len(m["results"]) for m in body["models"]] == [3, 3]


def test_check_json_names_the_place_of_the_problem():
    with pytest.raises(ParseError, match=r"\$\.a\[1\]\.b contains a NUL"):
        check_json({"a": [1, {"b": "x\x00"}]})
    with pytest.raises(ParseError, match="nested deeper than 3 levels"):
        check_json([[[[1]]]], max_depth=3)
    check_json({"a": [[1, "ok", None, 2.5]]}, max_depth=3)
