"""Crowd entry guards (annotate/crowd.py through annotator_enter): study and session required and pinned,
sessions not shared, new identities rate-limited per IP and per campaign, completion codes per annotator."""

from __future__ import annotations

import itertools
import uuid

import pytest
from django.test import Client

from annotate.models import Annotator
from tests.annotate.conftest import make_campaign, next_task, post_vote

pytestmark = pytest.mark.django_db
_ips = itertools.count(1)


def _ip() -> str:
    """An address of this test's own: the rate counters live in a cache shared by the whole run."""
    n = next(_ips) + uuid.uuid4().int % 10_000 * 100
    return f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"


def _enter(client: Client, campaign, query: str, ip: str = "127.0.0.1"):
    return client.get(f"/api/annotate/campaigns/{campaign.slug}/enter?{query}", REMOTE_ADDR=ip)


def _prolific(pid: str, study: str = "study1", session: str | None = None) -> str:
    return f"PROLIFIC_PID={pid}&STUDY_ID={study}&SESSION_ID={session or 'sess-' + pid}"


def test_a_made_up_prolific_id_without_study_and_session_is_refused(client, world):
    campaign = make_campaign(world)
    for query in ("PROLIFIC_PID=madeup1", "PROLIFIC_PID=madeup1&STUDY_ID=s1", "PROLIFIC_PID=madeup1&SESSION_ID=x"):
        response = _enter(client, campaign, query)
        assert response.status_code == 403, query
        assert "the link lacks" in response.json()["detail"]
    page = client.get(f"/annotate/{campaign.slug}/?PROLIFIC_PID=madeup1")
    assert page.status_code == 403 and b"The link lacks STUDY_ID" in page.content
    mturk = _enter(client, campaign, "workerId=W9&hitId=H1")
    assert mturk.status_code == 403 and "assignmentId" in mturk.json()["detail"]
    assert not Annotator.objects.filter(campaign=campaign).exists()


def test_a_campaign_may_accept_links_without_study_and_session(client, world):
    campaign = make_campaign(world, require_crowd_session=False)
    assert _enter(client, campaign, "PROLIFIC_PID=bare1").status_code == 200


def test_only_the_pinned_studies_enter(client, world):
    campaign = make_campaign(world, crowd_study_ids="studyA, studyB")
    wrong = _enter(client, campaign, _prolific("p1", study="other"))
    assert wrong.status_code == 403 and "STUDY_ID is not this study's" in wrong.json()["detail"]
    assert _enter(client, campaign, _prolific("p1", study="studyB")).status_code == 200
    hit = _enter(Client(), campaign, "workerId=W1&hitId=nothere&assignmentId=A1")
    assert hit.status_code == 403 and "hitId" in hit.json()["detail"]
    assert _enter(Client(), campaign, "workerId=W1&hitId=studyA&assignmentId=A1").status_code == 200


def test_a_session_is_never_shared_by_two_worker_ids(client, world):
    campaign = make_campaign(world)
    assert _enter(client, campaign, _prolific("first", session="S1")).status_code == 200
    assert _enter(client, campaign, _prolific("first", session="S1")).status_code == 200  # resuming is fine
    second = _enter(Client(), campaign, _prolific("second", session="S1"))
    assert second.status_code == 403 and "SESSION_ID belongs to another participant" in second.json()["detail"]
    assert Annotator.objects.filter(campaign=campaign).count() == 1


@pytest.mark.parametrize("cache", ["memory", "redis"])
def test_new_identities_are_rate_limited_per_ip(settings, world, cache):
    if cache == "redis":  # as in production: one cache every web process counts in
        settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                       "LOCATION": "redis://127.0.0.1:6379/1", "KEY_PREFIX": uuid.uuid4().hex}}
    settings.HPBENCH_CROWD_NEW_PER_IP_HOUR = 3
    campaign = make_campaign(world)
    ip = _ip()
    for n in range(3):
        assert _enter(Client(), campaign, _prolific(f"w{n}"), ip).status_code == 200
    refused = _enter(Client(), campaign, _prolific("w3"), ip)
    assert refused.status_code == 429
    assert "too many new participants from your network" in refused.json()["detail"]
    page = Client().get(f"/annotate/{campaign.slug}/?{_prolific('w4')}", REMOTE_ADDR=ip)
    assert page.status_code == 429 and b"try again" in page.content
    assert _enter(Client(), campaign, _prolific("w0"), ip).status_code == 200  # a resume is not a new identity
    assert _enter(Client(), campaign, _prolific("w3"), _ip()).status_code == 200  # another network
    assert Annotator.objects.filter(campaign=campaign).count() == 4


def test_a_trusted_proxy_header_names_the_client(settings, world):
    settings.HPBENCH_CROWD_NEW_PER_IP_HOUR = 1
    settings.HPBENCH_CLIENT_IP_HEADER = "X-Forwarded-For"
    campaign = make_campaign(world)
    proxy, first, second = _ip(), _ip(), _ip()
    settings.HPBENCH_TRUSTED_PROXIES = [proxy]

    def enter(pid: str, forwarded: str):
        url = f"/api/annotate/campaigns/{campaign.slug}/enter?{_prolific(pid)}"
        return Client().get(url, REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR=forwarded)

    assert enter("a", f"1.2.3.4, {first}").status_code == 200
    assert enter("b", f"9.9.9.9, {second}").status_code == 200  # same proxy, another client
    assert enter("c", f"{second}, {first}").status_code == 429  # the proxy's own entry (the last) counts


def test_a_forged_header_from_a_client_that_is_no_proxy_is_ignored(settings, world):
    # gunicorn reached directly: the client writes its own X-Forwarded-For, one new address per entry.
    settings.HPBENCH_CROWD_NEW_PER_IP_HOUR = 3
    settings.HPBENCH_CLIENT_IP_HEADER = "X-Forwarded-For"
    settings.HPBENCH_TRUSTED_PROXIES = ["10.255.0.1"]
    campaign = make_campaign(world)
    attacker = _ip()
    statuses = [
        Client().get(f"/api/annotate/campaigns/{campaign.slug}/enter?{_prolific(f'forged{n}')}",
                     REMOTE_ADDR=attacker, HTTP_X_FORWARDED_FOR=f"198.51.100.{n}").status_code
        for n in range(30)
    ]
    assert statuses.count(200) == 3 and statuses[3:] == [429] * 27
    assert Annotator.objects.filter(campaign=campaign).count() == 3


def test_new_identities_are_rate_limited_per_campaign(world):
    campaign = make_campaign(world, new_annotators_per_hour=2)
    assert [_enter(Client(), campaign, _prolific(f"c{n}"), _ip()).status_code for n in range(3)] == [200, 200, 429]
    other = make_campaign(world)
    assert _enter(Client(), other, _prolific("c2"), _ip()).status_code == 200


def _finish(campaign, pid: str) -> str:
    client = Client(enforce_csrf_checks=True)
    response = _enter(client, campaign, _prolific(pid))
    token = response.cookies["csrftoken"].value
    while (body := next_task(client, campaign, token).json())["task"] is not None:
        assert post_vote(client, token, lease=body["task"]["lease"]).status_code == 201
    return body["completion"]["code"]


def test_each_annotator_gets_their_own_completion_code_that_staff_can_verify(client, world, staff_user):
    campaign = make_campaign(
        world, completion_code="HPB-DONE", completion_code_per_annotator=True, per_person_quota=2, votes_per_pair=3
    )
    codes = {pid: _finish(campaign, pid) for pid in ("alice", "bob")}
    assert codes["alice"] != codes["bob"]
    assert all(code.startswith("HPB-DONE-") and len(code) == len("HPB-DONE-") + 10 for code in codes.values())
    client.force_login(staff_user)
    detail = client.get(f"/api/annotate/campaigns/{campaign.slug}").json()
    listed = {row["completion_code"] for row in detail["annotators"]}
    assert listed == set(codes.values())
    admin = client.get(f"/admin/annotate/annotator/?campaign__id__exact={campaign.pk}").content.decode()
    assert all(code in admin for code in codes.values())


def test_without_per_annotator_codes_everyone_gets_the_campaign_code(world):
    campaign = make_campaign(
        world, completion_code="HPB-DONE", completion_code_per_annotator=False, per_person_quota=1, votes_per_pair=3
    )
    assert _finish(campaign, "carol") == _finish(campaign, "dave") == "HPB-DONE"


def test_the_crowd_options_are_in_the_campaign_admin(client, staff_user):
    client.force_login(staff_user)
    form = client.get("/admin/annotate/campaign/add/").content.decode()
    fields = ("crowd_study_ids", "require_crowd_session", "new_annotators_per_hour", "completion_code_per_annotator")
    for field in fields:
        assert f'name="{field}"' in form
