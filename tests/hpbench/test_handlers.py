"""The WSGI application (hpbench/handlers.py): the annotators' hot path on the short middleware stack."""

from __future__ import annotations

import gc
import io
import json
import sys
import uuid
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import request_finished, request_started
from django.db import close_old_connections

from annotate.models import Vote
from hpbench.handlers import Application
from tests.annotate.conftest import make_campaign, make_world

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


class Browser:
    """Calls the WSGI application as gunicorn does, keeping cookies."""

    def __init__(self, application: Application) -> None:
        self.application = application
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, body: dict | None = None, query: str = "", csrf: bool = True):
        data = json.dumps(body).encode() if body is not None else b""
        environ = {
            "REQUEST_METHOD": method,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "SERVER_NAME": "testserver",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": "testserver",
            "REMOTE_ADDR": "127.0.0.1",
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(data)),
            "HTTP_COOKIE": "; ".join(f"{name}={value}" for name, value in self.cookies.items()),
            "wsgi.input": io.BytesIO(data),
            "wsgi.errors": sys.stderr,
            "wsgi.url_scheme": "http",
            "wsgi.version": (1, 0),
            "wsgi.multithread": True,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }
        if csrf and "csrftoken" in self.cookies:
            environ["HTTP_X_CSRFTOKEN"] = self.cookies["csrftoken"]
        answer: dict = {}

        def start_response(status, headers, exc_info=None):
            answer["status"] = int(status.split()[0])
            answer["headers"] = {}
            for name, value in headers:
                answer["headers"].setdefault(name.lower(), value)
                if name.lower() == "set-cookie":
                    key, _, rest = value.partition("=")
                    self.cookies[key.strip()] = rest.split(";")[0]

        answer["body"] = b"".join(self.application(environ, start_response))
        return answer


@pytest.fixture
def application(settings):
    settings.ALLOWED_HOSTS = ["testserver"]
    # As Django's test client does: the test's transaction holds the connection across requests.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield Application()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def test_only_next_task_and_votes_take_the_short_stack(application):
    hot = [
        "/api/annotate/campaigns/spring-study/next",
        "/api/annotate/votes",
    ]
    pages = [
        "/api/annotate/campaigns/spring-study/enter",
        "/api/annotate/campaigns/spring-study",
        "/api/annotate/votes/",
        "/api/annotate/votesx",
        "/x/api/annotate/votes",
        "/annotate/spring-study/",
        "/admin/",
    ]
    assert [application.handler_for(path) is application.hot for path in hot] == [True] * len(hot)
    assert [application.handler_for(path) is application.pages for path in pages] == [True] * len(pages)


def test_the_hot_routes_are_found_by_name_so_a_moved_route_still_takes_the_short_stack(application, settings):
    settings.ROOT_URLCONF = "tests.hpbench.moved_urls"
    moved = Application()
    assert moved.handler_for("/v2/labelling/campaigns/spring-study/next") is moved.hot
    assert moved.handler_for("/v2/labelling/votes") is moved.hot
    assert moved.handler_for("/v2/pictures/abc-DEF_123") is moved.hot
    assert moved.handler_for("/api/annotate/votes") is moved.pages
    assert moved.handler_for("/v2/labelling/campaigns/spring-study") is moved.pages


def test_a_hot_route_name_the_url_conf_lacks_stops_the_application_at_start_up(settings):
    settings.HOT_ROUTES = ["annotate:next-task", "annotate:votes"]  # as if the vote route had been renamed
    with pytest.raises(ImproperlyConfigured, match="does not have: annotate:votes"):
        Application()


def test_a_crowd_worker_votes_through_the_short_stack_with_the_security_headers(application):
    campaign = make_campaign(make_world())
    browser = Browser(application)
    entered = browser.request(
        "GET", f"/api/annotate/campaigns/{campaign.slug}/enter", query="PROLIFIC_PID=wsgi1&STUDY_ID=s&SESSION_ID=x"
    )
    assert entered["status"] == 200, entered["body"]
    assert entered["headers"]["x-frame-options"] == "DENY"  # the page stack

    task = browser.request("POST", f"/api/annotate/campaigns/{campaign.slug}/next")
    assert task["status"] == 200, task["body"]
    assert task["headers"]["x-content-type-options"] == "nosniff"
    assert int(task["headers"]["content-length"]) == len(task["body"])  # not chunked on a kept-alive connection
    assert "x-frame-options" not in task["headers"]  # the short stack
    lease = json.loads(task["body"])["task"]["lease"]

    key = str(uuid.uuid4())
    vote = browser.request("POST", "/api/annotate/votes", {"lease": lease, "choice": "right", "idempotency_key": key})
    assert vote["status"] == 201, vote["body"]
    assert vote["headers"]["x-content-type-options"] == "nosniff"
    assert Vote.objects.get(idempotency_key=key).annotator.external_id_hash


def test_the_short_stack_still_refuses_a_vote_without_the_csrf_token(application):
    campaign = make_campaign(make_world())
    browser = Browser(application)
    browser.request(
        "GET", f"/api/annotate/campaigns/{campaign.slug}/enter", query="PROLIFIC_PID=wsgi2&STUDY_ID=s&SESSION_ID=x"
    )
    task = browser.request("POST", f"/api/annotate/campaigns/{campaign.slug}/next")
    lease = json.loads(task["body"])["task"]["lease"]
    refused = browser.request(
        "POST", "/api/annotate/votes", {"lease": lease, "choice": "left", "idempotency_key": "k"}, csrf=False
    )
    assert refused["status"] == 403
    assert "CSRF" in json.loads(refused["body"])["detail"]
    assert not Vote.objects.exists()
    no_session = Browser(application).request("POST", f"/api/annotate/campaigns/{campaign.slug}/next")
    assert no_session["status"] == 403


def test_gunicorn_workers_freeze_start_up_objects_out_of_the_collector():
    import runpy

    config = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    threshold = gc.get_threshold()
    try:
        config["post_worker_init"](None)
        assert gc.get_freeze_count() > 10_000
        assert gc.get_threshold()[0] == 20_000
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


def test_a_vote_whose_database_connection_broke_gets_a_503_to_send_again_on_the_short_stack(application, monkeypatch):
    from django.db import OperationalError

    from annotate.api import VoteView

    campaign = make_campaign(make_world())
    browser = Browser(application)
    crowd = "PROLIFIC_PID=w503&STUDY_ID=s&SESSION_ID=y"
    browser.request("GET", f"/api/annotate/campaigns/{campaign.slug}/enter", query=crowd)
    task = json.loads(browser.request("POST", f"/api/annotate/campaigns/{campaign.slug}/next")["body"])["task"]

    def connection_lost(**kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(VoteView, "record", staticmethod(connection_lost))
    answer = browser.request("POST", "/api/annotate/votes",
                             {"lease": task["lease"], "choice": "left", "idempotency_key": str(uuid.uuid4())})
    assert answer["status"] == 503, answer["body"]
    assert answer["headers"]["retry-after"] == "1"
    assert "send the request again" in json.loads(answer["body"])["detail"]
    assert not Vote.objects.exists()
