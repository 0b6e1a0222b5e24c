import pytest
from celery import Celery


@pytest.mark.django_db(transaction=True)
def test_healthz_is_ok_when_database_broker_and_worker_answer(client, celery_worker_process):
    response = client.get("/healthz?timeout=5")
    body = response.json()
    assert response.status_code == 200, body
    assert body["ok"] is True
    assert body["database"]["vendor"] == "postgresql"
    assert celery_worker_process in body["workers"]["workers"]


@pytest.mark.django_db
def test_healthz_reports_a_missing_worker_with_503(client, monkeypatch):
    # The same Redis under a key prefix no worker listens on, whether or not the test worker is running.
    from django.conf import settings

    monkeypatch.delenv("CELERY_BROKER_URL")  # Celery prefers the environment over its arguments
    lonely = Celery("lonely", broker=settings.CELERY_BROKER_URL, set_as_current=False)
    lonely.conf.broker_transport_options = {"global_keyprefix": "hpbench-test-no-worker:"}
    monkeypatch.setattr("hpbench.health.celery_app", lonely)
    response = client.get("/healthz?timeout=0.3")
    assert response.status_code == 503
    body = response.json()
    assert body["database"]["ok"] is True and body["broker"]["ok"] is True
    assert body["workers"] == {"ok": False, "error": "no worker answered a ping within 0.3 s", "workers": []}


@pytest.mark.django_db
def test_healthz_reports_an_unreachable_broker_with_503(client, monkeypatch):
    monkeypatch.delenv("CELERY_BROKER_URL")  # Celery prefers the environment over its arguments
    unreachable = Celery("unreachable", broker="redis://127.0.0.1:1/0", set_as_current=False)  # port 1: nobody
    monkeypatch.setattr("hpbench.health.celery_app", unreachable)
    response = client.get("/healthz?timeout=0.3")
    assert response.status_code == 503
    body = response.json()
    assert body["broker"]["ok"] is False and "Error" in body["broker"]["error"], body
    assert body["workers"]["error"] == "broker unreachable"


def test_healthz_answers_only_to_get(client):
    assert client.post("/healthz").status_code == 405


@pytest.mark.django_db
def test_healthz_says_when_beat_has_not_run_the_reaper(client, settings):
    from datetime import timedelta

    from django.utils import timezone

    from hpbench.catalog.models import ReaperState

    body = client.get("/healthz?timeout=0.2").json()
    assert body["beat"]["ok"] is False and body["beat"]["beat_last_run"] is None
    assert body["warnings"] == [f"beat: {body['beat']['error']}"] and "is beat running?" in body["beat"]["error"]
    stale = timezone.now() - timedelta(seconds=3 * settings.HPBENCH_REAP_SECONDS + 5)
    ReaperState.objects.create(pk=1, ran_at=timezone.now(), beat_ran_at=stale)  # a worker reaps, beat does not
    body = client.get("/healthz?timeout=0.2").json()
    assert body["beat"]["ok"] is False and body["beat"]["beat_last_run"] == stale.isoformat()
    ReaperState.objects.filter(pk=1).update(beat_ran_at=timezone.now())
    body = client.get("/healthz?timeout=0.2").json()
    assert body["beat"]["ok"] is True and body["warnings"] == []
