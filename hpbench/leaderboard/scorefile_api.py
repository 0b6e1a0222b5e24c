"""API of score files: request files to download (``/api/leaderboard/requests/...``) and score-file uploads
(``POST /api/leaderboard/submissions`` with ``scores`` files, answered by :func:`score_submission_post`)."""

from __future__ import annotations

import json

from django.http import Http404, HttpResponse, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from hpbench.catalog.models import Dataset
from hpbench.leaderboard import selectors
from hpbench.leaderboard.api_params import BenchmarkParams, benchmark_params
from hpbench.leaderboard.request_images import images_archive_stream, images_source
from hpbench.leaderboard.score_submissions import score_submission_create
from hpbench.leaderboard.scorefiles import benchmark_request, retrieval_request
from hpbench.leaderboard.services.submissions import QuotaExceeded, SubmissionError
from hpbench.openapi import error


class ScoreSubmissionSerializer(serializers.Serializer):
    scores = serializers.ListField(child=serializers.FileField(), min_length=1,
                                   help_text="One or more score files (.jsonl / .parquet relevance, .json rankings).")
    description = serializers.CharField(required=False, allow_blank=True, default="")
    link = serializers.URLField(required=False, allow_blank=True, default="")
    name = serializers.CharField(required=False, allow_blank=True, default="", max_length=64)
    paper_url = serializers.CharField(required=False, allow_blank=True, default="", max_length=500)
    code_url = serializers.CharField(required=False, allow_blank=True, default="", max_length=500)
    licence = serializers.CharField(required=False, allow_blank=True, default="", max_length=100)


def score_submission_post(request: Request) -> Response:
    """``POST submissions`` with ``scores`` files: bounded checks now (400: name, size, Parquet metadata), the
    quota (429), then the files are stored and checked row by row on a worker; the submission fails there with
    a message naming the file and its first bad line."""
    from hpbench.leaderboard.api import SubmissionSerializer

    fields = request.data if isinstance(request.data, dict) else {}  # a multipart body (it has files): a QueryDict
    data = {"scores": request.FILES.getlist("scores"), "description": fields.get("description", ""),
            **{k: fields.get(k, "") for k in ("link", "name", "paper_url", "code_url", "licence")}}
    form = ScoreSubmissionSerializer(data=data)
    form.is_valid(raise_exception=True)
    try:
        submission = score_submission_create(owner=request.user, **{"files": form.validated_data.pop("scores"),
                                                                    **form.validated_data})
    except QuotaExceeded as exc:
        return Response({"detail": str(exc)}, status=status.HTTP_429_TOO_MANY_REQUESTS)
    except SubmissionError as exc:
        return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
    return Response(SubmissionSerializer(submission).data, status=status.HTTP_201_CREATED)


class BenchmarkRequestApi(APIView):
    """``GET requests/benchmarks/<name>?version=N``: the questions to score, as JSON Lines (no verdicts)."""

    permission_classes = [IsAuthenticated]

    @extend_schema(summary="Request file of a preference benchmark (JSON Lines)", parameters=[BenchmarkParams],
                   responses={(200, "application/x-ndjson"): OpenApiTypes.STR, 404: error("No such benchmark.")})
    def get(self, request: Request, name: str) -> StreamingHttpResponse:
        try:
            benchmark = selectors.benchmark_get(name, benchmark_params(request).get("version"))
        except selectors.NotFound:
            raise Http404("No such benchmark.") from None
        response = StreamingHttpResponse(benchmark_request(benchmark), content_type="application/x-ndjson")
        response["Content-Disposition"] = f'attachment; filename="{benchmark.label}-request.jsonl"'
        # Where its images are: the platform's archive (shareable datasets) or the official release's names.
        source = images_source(benchmark.dataset)
        response["X-Hpbench-Images"] = source["archive"] or source["where"]
        if source["archive"]:
            response["Link"] = f'<{source["archive"]}>; rel="images"'
        return response


class ImagesArchiveApi(APIView):
    """``GET requests/images/<dataset>``: a zip of the dataset's images, streamed, for a shareable dataset."""

    permission_classes = [IsAuthenticated]

    @extend_schema(summary="The images of a shareable dataset (zip, streamed)",
                   responses={(200, "application/zip"): OpenApiTypes.BINARY,
                              404: error("No such dataset, or its images may not be redistributed (the request "
                                         "file says where to get them).")})
    def get(self, request: Request, name: str) -> StreamingHttpResponse:
        dataset = Dataset.objects.filter(name=name).first()
        if dataset is None or not dataset.images_shareable:
            raise Http404("No such dataset, or its images may not be redistributed.")
        response = StreamingHttpResponse(images_archive_stream(dataset), content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="{dataset.name}-images.zip"'
        return response


class SplitRequestApi(APIView):
    """``GET requests/datasets/<name>/<split>``: the queries and galleries of a dataset split, as JSON."""

    permission_classes = [IsAuthenticated]

    @extend_schema(summary="Request file of a dataset split (JSON)",
                   responses={200: OpenApiTypes.OBJECT, 404: error("No such dataset split.")})
    def get(self, request: Request, name: str, split: str) -> HttpResponse:
        dataset = Dataset.objects.filter(name=name).first()
        if dataset is None or not dataset.queries.filter(split=split).exists():
            raise Http404("No such dataset split.")
        body = json.dumps({**retrieval_request(dataset=dataset, split=split), "images": images_source(dataset)})
        response = HttpResponse(body, content_type="application/json")
        response["Content-Disposition"] = f'attachment; filename="{dataset.name}-{split}-request.json"'
        return response
