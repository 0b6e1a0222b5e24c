"""The exports JSON API (mounted at /api/exports/): staff start jobs, follow them, download their files.

Everything here is for staff only. The download also needs the job's unguessable token and answers 404 to
anyone else, so the existence of a file is never revealed.
"""

from __future__ import annotations

from django.http import FileResponse, Http404, HttpRequest
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from hpbench import media
from hpbench.exports import services
from hpbench.exports.models import ExportJob
from hpbench.exports.selectors.jobs import (
    JobNotFound,
    export_job_for_download,
    export_job_get_for_user,
    export_jobs_for_user,
)
from hpbench.exports.selectors.params import LEVELS, ExportError, params_parse
from hpbench.openapi import error
from hpbench.parsers import JSONParser


def job_json(job: ExportJob) -> dict:
    """A job as the API and the staff page show it (the download URL only once finished)."""
    return {
        "id": job.pk,
        "format": job.format,
        "params": job.params,
        "status": job.status,
        "progress": job.progress,
        "rows": job.rows,
        "error": job.error,
        "summary": job.summary,
        "requested_by": job.requested_by.username if job.requested_by is not None else None,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "download_url": f"/api/exports/download/{job.token}" if job.status == ExportJob.Status.FINISHED else None,
    }


_JOB = inline_serializer("ExportJob", {
    "id": serializers.IntegerField(), "format": serializers.CharField(), "params": serializers.DictField(),
    "status": serializers.CharField(), "progress": serializers.FloatField(), "rows": serializers.IntegerField(),
    "error": serializers.CharField(), "summary": serializers.DictField(),
    "requested_by": serializers.CharField(allow_null=True), "created_at": serializers.DateTimeField(),
    "started_at": serializers.DateTimeField(allow_null=True), "finished_at": serializers.DateTimeField(allow_null=True),
    "download_url": serializers.CharField(allow_null=True)})


class _Boolean(serializers.BooleanField):
    """true or false, nothing DRF would coerce ("yes", 1, "on"): a JSON API has booleans."""

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class JobRequestSerializer(serializers.Serializer):
    format = serializers.ChoiceField(choices=ExportJob.Format.values)
    level = serializers.ChoiceField(choices=LEVELS, default="votes")
    campaigns = serializers.ListField(child=serializers.CharField(max_length=100), required=False, default=list)
    benchmark = serializers.CharField(max_length=120, required=False, allow_blank=True, default="")
    since = serializers.CharField(max_length=40, required=False, allow_blank=True, default="")
    until = serializers.CharField(max_length=40, required=False, allow_blank=True, default="")
    include_excluded = _Boolean(required=False, default=False)
    include_gold = _Boolean(required=False, default=True)


class JobListView(APIView):
    permission_classes = [IsAdminUser]
    parser_classes = [JSONParser]  # a JSON object: forms would turn its booleans and lists into strings

    @extend_schema(summary="Export jobs, newest first (staff)", operation_id="exports_jobs_list",
                   responses=inline_serializer("ExportJobs", {"jobs": serializers.ListField(child=_JOB)}))
    def get(self, request: Request) -> Response:
        jobs = export_jobs_for_user(request.user)[:50]
        return Response({"jobs": [job_json(j) for j in jobs]})

    @extend_schema(summary="Start an export job (staff)", request=JobRequestSerializer,
                   responses={201: _JOB, 400: error("A refused parameter (unknown campaign, bad date, ...).")})
    def post(self, request: Request) -> Response:
        form = JobRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = dict(form.validated_data)
        fmt = data.pop("format")
        try:
            params = params_parse(**data)
            job = services.export_job_create(requested_by=request.user, fmt=fmt, params=params)
        except ExportError as exc:
            return Response({"detail": str(exc)}, status=400)
        return Response(job_json(job), status=201)


class JobDetailView(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(summary="One export job (staff)", responses={200: _JOB, 404: error("No such export job.")})
    def get(self, request: Request, job_id: int) -> Response:
        try:
            job = export_job_get_for_user(request.user, job_id)
        except JobNotFound:
            return Response({"detail": "No such export job."}, status=404)
        return Response(job_json(job))


def download(request: HttpRequest, token: str) -> FileResponse:
    """The job's file, for staff holding the token; 404 for anything else (anonymous callers included)."""
    try:
        job = export_job_for_download(request.user, token)
    except JobNotFound:
        raise Http404("No such export.") from None
    try:
        handle = media.open_stored(job.file_path)
    except media.MediaError:
        raise Http404("No such export.") from None
    return FileResponse(handle, as_attachment=True, filename=services.download_name(job))
