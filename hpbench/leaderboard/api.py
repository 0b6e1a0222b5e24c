"""JSON API of the leaderboard (``/api/leaderboard/``): benchmarks, leaderboards (JSON, CSV), submissions."""

from __future__ import annotations

import csv
import io

from django.http import FileResponse, Http404, HttpResponse
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from hpbench.leaderboard import selectors, services
from hpbench.leaderboard.models import ModelScore, PreferenceBenchmark, Submission
from hpbench.redact import researcher_text

CSV_COLUMNS = [
    "rank", "model", "family", "variant", "is_baseline", "agreement", "agreement_low", "agreement_high",
    "preference_ratio", "preference_ratio_low", "preference_ratio_high", "recall", "arena_rating", "arena_votes",
    "n_pairs", "n_human_ties", "n_model_ties", "submitted", "source", "reported_preference_ratio",
]


def _get_submission(request: Request, pk: int, *, write: bool = False) -> Submission:
    try:
        submission = selectors.submission_get_for_user(request.user, pk, write=write)
    except selectors.NotFound:
        raise Http404("No such submission.") from None
    return services.submission_refresh(submission=submission)


def _get_benchmark(name: str, request: Request) -> PreferenceBenchmark:
    try:
        return selectors.benchmark_get(name, request.query_params.get("version"))
    except selectors.NotFound:
        raise Http404("No such benchmark.") from None


class BenchmarkSerializer(serializers.ModelSerializer):
    dataset = serializers.CharField(source="dataset.name")

    class Meta:
        model = PreferenceBenchmark
        fields = ["name", "version", "source", "dataset", "tie_policy", "n_pairs", "votes_per_pair",
                  "human_agreement", "human_alpha", "frozen_at", "is_active", "notes"]


def _for_caller(serializer: serializers.Serializer, text: str) -> str:
    """Error text as the caller may read it: in full for staff, without server paths for anyone else."""
    request = serializer.context.get("request")
    if request is not None and request.user.is_staff:
        return text
    return researcher_text(text)


class ScoreSerializer(serializers.ModelSerializer):
    benchmark = serializers.CharField(source="benchmark.label")
    error = serializers.SerializerMethodField()

    def get_error(self, score: ModelScore) -> str:
        return _for_caller(self, score.error)

    class Meta:
        model = ModelScore
        fields = ["benchmark", "status", "progress", "error", "agreement", "agreement_low", "agreement_high",
                  "preference_ratio", "preference_ratio_low", "preference_ratio_high", "n_pairs",
                  "n_human_ties", "n_model_ties", "computed_at"]


class SubmissionSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username")
    model = serializers.CharField(source="model.name", default=None)
    log = serializers.SerializerMethodField()

    def get_log(self, submission: Submission) -> str:
        return _for_caller(self, submission.log)

    class Meta:
        model = Submission
        fields = ["id", "owner", "model", "family", "variant", "config", "description", "link", "status",
                  "progress", "log", "is_public", "created_at", "finished_at"]


class SubmissionCreateSerializer(serializers.Serializer):
    family = serializers.CharField(max_length=32)
    variant = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    config = serializers.CharField(required=False, allow_blank=True, default="")
    file = serializers.FileField()
    description = serializers.CharField(required=False, allow_blank=True, default="")
    link = serializers.URLField(required=False, allow_blank=True, default="")

    def validate_config(self, value: str) -> dict:
        from hpbench.catalog.family_config import ConfigError, config_parse

        try:
            return config_parse(value)
        except ConfigError as exc:
            raise serializers.ValidationError(str(exc).removeprefix("config: ")) from None


class BenchmarkListApi(APIView):
    permission_classes = [AllowAny]

    def get(self, request: Request) -> Response:
        return Response(BenchmarkSerializer(selectors.benchmarks_active(), many=True).data)


class LeaderboardApi(APIView):
    """``GET benchmarks/<name>?sort=-agreement&version=N``: the leaderboard as JSON."""

    permission_classes = [AllowAny]

    def get(self, request: Request, name: str) -> Response:
        benchmark = _get_benchmark(name, request)
        board = selectors.leaderboard(benchmark=benchmark, user=request.user,
                                      sort=request.query_params.get("sort", selectors.DEFAULT_SORT))
        return Response(board)


class LeaderboardCsvApi(APIView):
    """``GET benchmarks/<name>/csv``: the same rows as CSV."""

    permission_classes = [AllowAny]

    def get(self, request: Request, name: str) -> HttpResponse:
        benchmark = _get_benchmark(name, request)
        board = selectors.leaderboard(benchmark=benchmark, user=request.user,
                                      sort=request.query_params.get("sort", selectors.DEFAULT_SORT))
        buffer = io.StringIO()
        per_category = [f"agreement_{c}" for c in board["categories"]]  # FashionIQ: dress, shirt, toptee
        writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS + per_category, extrasaction="ignore")
        writer.writeheader()
        for row in board["rows"]:
            writer.writerow({**row, "submitted": row["submitted"].isoformat() if row["submitted"] else "",
                             "reported_preference_ratio": (row["reported"] or {}).get("preference_ratio", ""),
                             **{f"agreement_{c}": figures.get("agreement", "")
                                for c, figures in row["by_category"].items()}})
        response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{benchmark.label}.csv"'
        return response


class SubmissionListApi(APIView):
    """``GET submissions``: the caller's own; ``POST submissions`` (multipart): a new one (201)."""

    permission_classes = [IsAuthenticated]
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    def get(self, request: Request) -> Response:
        return Response(SubmissionSerializer(selectors.submissions_for_user(request.user), many=True,
                                             context={"request": request}).data)

    def post(self, request: Request) -> Response:
        if request.FILES.getlist("scores"):  # the authors' score files rather than a checkpoint
            from hpbench.leaderboard.scorefile_api import score_submission_post

            return score_submission_post(request)
        form = SubmissionCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            submission = services.submission_create(owner=request.user, **form.validated_data)
        except services.QuotaExceeded as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_429_TOO_MANY_REQUESTS)
        except services.SubmissionError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(SubmissionSerializer(submission, context={"request": request}).data,
                        status=status.HTTP_201_CREATED)


class SubmissionDetailApi(APIView):
    permission_classes = [IsAuthenticated]

    def get(self, request: Request, pk: int) -> Response:
        submission = _get_submission(request, pk)
        context = {"request": request}
        data = SubmissionSerializer(submission, context=context).data
        data["scores"] = ScoreSerializer(selectors.submission_scores(submission), many=True, context=context).data
        data["runs"] = [
            {"id": r.pk, "dataset": r.dataset.name, "split": r.split, "status": r.status, "progress": r.progress,
             "metrics": r.metrics, "error": r.error if request.user.is_staff else researcher_text(r.error)}
            for r in selectors.submission_runs(submission)
        ]
        return Response(data)


class SubmissionScoresApi(APIView):
    permission_classes = [IsAuthenticated]

    def get(self, request: Request, pk: int) -> Response:
        submission = _get_submission(request, pk)
        return Response(ScoreSerializer(selectors.submission_scores(submission), many=True,
                                        context={"request": request}).data)


class SubmissionFileApi(APIView):
    """``GET submissions/<id>/file``: the uploaded checkpoint, to its owner and staff only."""

    permission_classes = [IsAuthenticated]

    def get(self, request: Request, pk: int) -> FileResponse:
        submission = _get_submission(request, pk, write=True)
        if not submission.model or not submission.model.checkpoint_file:
            raise Http404("No file.")
        handle = submission.model.checkpoint_file.open("rb")
        return FileResponse(handle, as_attachment=True, filename=submission.model.checkpoint_file.name.rsplit("/")[-1])


class SubmissionCancelApi(APIView):
    permission_classes = [IsAuthenticated]

    def post(self, request: Request, pk: int) -> Response:
        submission = _get_submission(request, pk, write=True)
        try:
            submission = services.submission_cancel(submission=submission)
        except services.SubmissionError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(SubmissionSerializer(submission, context={"request": request}).data)


class SubmissionPublishApi(APIView):
    permission_classes = [IsAuthenticated]

    def post(self, request: Request, pk: int) -> Response:
        submission = _get_submission(request, pk, write=True)
        return Response(SubmissionSerializer(services.submission_publish(submission=submission),
                                             context={"request": request}).data)
