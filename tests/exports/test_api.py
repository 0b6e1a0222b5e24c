"""The exports API and download: staff only, unguessable links, 404 for anyone else."""

from __future__ import annotations

from unittest import mock

import pytest
from django.test import Client

from hpbench.exports import services
from hpbench.exports.models import ExportJob
from worker import claims

pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


@pytest.fixture
def finished_job(staff_user, export_world, tmp_path, settings):
    settings.VAR_DIR = tmp_path
    job = ExportJob.objects.create(
        requested_by=staff_user, format="jsonl", params={"campaigns": [export_world.campaign.slug]}
    )
    assert claims.job_claim(model=ExportJob, pk=job.pk, owner="test-worker")
    return services.export_job_run(job_id=job.pk, owner="test-worker")


def test_staff_can_queue_a_job_and_it_is_sent_to_the_worker_after_commit(staff_user, export_world):
    client = client_for(staff_user)
    with (
        mock.patch("hpbench.celery.app.send_task") as send,
        mock.patch("django.db.transaction.on_commit", side_effect=lambda fn: fn()),
    ):
        response = client.post(
            "/api/exports/jobs",
            {"format": "parquet", "campaigns": [export_world.campaign.slug], "level": "comparisons"},
            content_type="application/json",
        )
    assert response.status_code == 201, response.content
    job = ExportJob.objects.get(pk=response.json()["id"])
    assert job.status == "queued" and job.params["level"] == "comparisons"
    send.assert_called_once_with("default.exports.run", args=[job.pk])
    assert len(job.token) >= 43 and response.json()["download_url"] is None
    detail = client.get(f"/api/exports/jobs/{job.pk}").json()
    assert detail["status"] == "queued" and detail["params"]["campaigns"] == [export_world.campaign.slug]


def test_bad_requests_are_answered_400_with_the_reason(staff_user, export_world):
    client = client_for(staff_user)
    response = client.post(
        "/api/exports/jobs", {"format": "csv", "campaigns": ["nope"]}, content_type="application/json"
    )
    assert response.status_code == 400 and "no campaign 'nope'" in response.json()["detail"]
    response = client.post("/api/exports/jobs", {"format": "xls"}, content_type="application/json")
    assert response.status_code == 400 and "format" in response.json()
    assert not ExportJob.objects.exists()


def test_a_finished_job_serves_its_file_to_staff_with_the_token(staff_user, finished_job):
    assert finished_job.status == "finished" and finished_job.rows == 7
    client = client_for(staff_user)
    url = client.get(f"/api/exports/jobs/{finished_job.pk}").json()["download_url"]
    response = client.get(url)
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode()
    assert len(body.splitlines()) == 7
    assert "attachment" in response["Content-Disposition"]
    assert client.get(url[:-1] + ("A" if url[-1] != "A" else "B")).status_code == 404


def test_a_job_file_is_stored_in_the_bucket_and_downloaded_from_it(s3_media, staff_user, export_world, tmp_path,
                                                                    settings):
    settings.VAR_DIR = tmp_path
    job = ExportJob.objects.create(
        requested_by=staff_user, format="jsonl", params={"campaigns": [export_world.campaign.slug]}
    )
    assert claims.job_claim(model=ExportJob, pk=job.pk, owner="test-worker")
    job = services.export_job_run(job_id=job.pk, owner="test-worker")
    assert job.file_path == f"exports/job-{job.pk}-{job.token[:12]}.jsonl"
    assert not list((tmp_path / "exports").iterdir())  # the local copy is gone once stored
    response = client_for(staff_user).get(f"/api/exports/download/{job.token}")
    assert response.status_code == 200
    assert len(b"".join(response.streaming_content).decode().splitlines()) == 7
    from hpbench import media

    media.storage().delete(job.file_path)
    assert client_for(staff_user).get(f"/api/exports/download/{job.token}").status_code == 404


@pytest.mark.parametrize("who", ["anonymous", "researcher", "annotator"])
def test_everyone_but_staff_is_refused_every_endpoint_and_file(who, request, finished_job, export_world):
    user = (
        None
        if who == "anonymous"
        else request.getfixturevalue("researcher" if who == "researcher" else "annotator_user")
    )
    client = client_for(user)
    assert client.get("/api/exports/jobs").status_code in (401, 403)
    assert client.post("/api/exports/jobs", {"format": "csv"}, content_type="application/json").status_code in (
        401,
        403,
    )
    assert client.get(f"/api/exports/jobs/{finished_job.pk}").status_code in (401, 403)
    assert client.get(f"/api/exports/download/{finished_job.token}").status_code == 404
    assert client.get("/exports/").status_code in (403, 404)
    assert ExportJob.objects.count() == 1


def test_the_service_refuses_a_non_staff_requester(researcher, export_world):
    from hpbench.exports.selectors.params import params_parse

    with pytest.raises(PermissionError):
        services.export_job_create(requested_by=researcher, fmt="csv", params=params_parse())


def test_a_job_that_is_not_queued_is_not_claimed_twice(finished_job):
    assert not claims.job_claim(model=ExportJob, pk=finished_job.pk, owner="another-worker")


def test_a_worker_that_lost_its_claim_writes_nothing(staff_user, export_world, tmp_path, settings):
    settings.VAR_DIR = tmp_path
    job = ExportJob.objects.create(
        requested_by=staff_user, format="jsonl", params={"campaigns": [export_world.campaign.slug]}
    )
    assert claims.job_claim(model=ExportJob, pk=job.pk, owner="first-worker")
    ExportJob.objects.filter(pk=job.pk).update(status=ExportJob.Status.FAILED, error="reaped")  # by the reaper
    job = services.export_job_run(job_id=job.pk, owner="first-worker")
    assert (job.status, job.error, job.file_path) == (ExportJob.Status.FAILED, "reaped", "")


def test_the_staff_page_starts_an_export_and_lists_jobs(staff_user, finished_job, export_world):
    client = client_for(staff_user)
    page = client.get("/exports/")
    assert page.status_code == 200
    assert f"/api/exports/download/{finished_job.token}" in page.content.decode()
    with mock.patch("hpbench.celery.app.send_task"):
        response = client.post(
            "/exports/",
            {"format": "csv", "level": "votes", "campaigns": [export_world.campaign.slug], "include_gold": "on"},
        )
    assert response.status_code == 302
    assert ExportJob.objects.filter(format="csv", status="queued").count() == 1
    response = client.post("/exports/", {"format": "csv", "since": "yesterday"})
    assert response.status_code == 400 and "is not a date" in response.content.decode()


def test_a_date_past_the_last_day_is_a_400_and_no_job(staff_user, export_world):
    response = client_for(staff_user).post("/api/exports/jobs", {"format": "csv", "until": "9999-12-31"},
                                           content_type="application/json")
    assert response.status_code == 400 and "until: 9999-12-31 is out of range" in response.json()["detail"]
    assert not ExportJob.objects.exists()
