"""JSON API of the leaderboard (``/api/leaderboard/``): benchmarks, leaderboards (JSON, CSV), submissions."""

from __future__ import annotations

import csv
import io

from django.http import FileResponse, Http404, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from hpbench.leaderboard import selectors
from hpbench.leaderboard.api_params import LeaderboardParams, benchmark_params
from hpbench.leaderboard.models import ModelScore, PreferenceBenchmark, Submission
from hpbench.leaderboard.services.submissions import (
    QuotaExceeded,
    SubmissionError,
    submission_cancel,
    submission_create,
    submission_publish,
    submission_refresh,
)
from hpbench.openapi import error
from hpbench.redact import researcher_text

CSV_COLUMNS = [
    "rank", "model", "above_model", "above_difference", "above_difference_low", "above_difference_high",
    "above_p_holm", "family", "variant", "is_baseline",
    "heldout_agreement", "heldout_agreement_low", "heldout_agreement_high", "heldout_n_pairs",
    "agreement", "agreement_low", "agreement_high",
    "loo_agreement", "loo_agreement_low", "loo_agreement_high", "human_ceiling_leave_one_out",
    "preference_ratio", "preference_ratio_low", "preference_ratio_high", "preference_ratio_chance",
    "recall", "arena_rating", "arena_votes",
    "n_pairs", "n_human_ties", "n_model_ties", "submitted", "source", "reported_preference_ratio",
    # Which estimate "agreement" is (the benchmark's setting: classic or ppi), and the classic one under ppi.
    "agreement_estimator", "agreement_classic", "agreement_classic_low", "agreement_classic_high",
]

#: Per-category CSV columns ``agreement_<category><suffix>``, each from the category's figure of that key.
CATEGORY_KEYS = {"": "agreement", "_low": "agreement_low", "_high": "agreement_high", "_n_pairs": "n_pairs"}


def _get_submission(request: Request, pk: int, *, write: bool = False) -> Submission:
    try:
        submission = selectors.submission_get_for_user(request.user, pk, write=write)
    except selectors.NotFound:
        raise Http404("No such submission.") from None
    return submission_refresh(submission=submission)


def _get_benchmark(name: str, version: int | None) -> PreferenceBenchmark:
    try:
        return selectors.benchmark_get(name, version)
    except selectors.NotFound:
        raise Http404("No such benchmark.") from None


class BenchmarkSerializer(serializers.ModelSerializer):
    dataset = serializers.CharField(source="dataset.name")

    class Meta:
        model = PreferenceBenchmark
        fields = ["name", "version", "source", "dataset", "tie_policy", "n_pairs", "votes_per_pair",
                  "human_agreement", "human_alpha", "ceiling_loo", "ceiling_loo_low", "ceiling_loo_high",
                  "ceiling_loo_pairs", "preference_ratio_chance", "frozen_at", "is_active", "notes"]


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
        fields = ["benchmark", "status", "progress", "error", "heldout_agreement", "heldout_agreement_low",
                  "heldout_agreement_high", "heldout_n_pairs", "agreement", "agreement_low", "agreement_high",
                  "loo_agreement", "loo_agreement_low", "loo_agreement_high",
                  "preference_ratio", "preference_ratio_low", "preference_ratio_high", "n_pairs",
                  "n_human_ties", "n_model_ties", "computed_at"]


class SubmissionSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username")
    model = serializers.CharField(source="model.name", default=None)
    paper_url = serializers.CharField(source="model.paper_url", default="")
    code_url = serializers.CharField(source="model.code_url", default="")
    licence = serializers.CharField(source="model.licence", default="")
    model_page = serializers.SerializerMethodField()
    log = serializers.SerializerMethodField()

    def get_model_page(self, submission: Submission) -> str | None:
        return f"/models/{submission.model.name}/" if submission.model else None

    def get_log(self, submission: Submission) -> str:
        return _for_caller(self, submission.log)

    class Meta:
        model = Submission
        fields = ["id", "owner", "model", "family", "variant", "config", "description", "link", "paper_url",
                  "code_url", "licence", "model_page", "status", "progress", "log", "is_public", "created_at",
                  "finished_at"]


class SubmissionCreateSerializer(serializers.Serializer):
    family = serializers.CharField(max_length=32)
    variant = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    config = serializers.CharField(required=False, allow_blank=True, default="")
    file = serializers.FileField()
    vit_checkpoint = serializers.FileField(
        required=False, allow_null=True, default=None,
        help_text="blip2_cir (QuRe clip_L) only: the ViT file (LAVIS's clip_vit_L.pth, or .safetensors) for a "
        "checkpoint without ViT weights; stored beside it, where the loader looks.")
    description = serializers.CharField(required=False, allow_blank=True, default="")
    link = serializers.URLField(required=False, allow_blank=True, default="")
    name = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=64,
        help_text="The model's name on the leaderboard: 3-64 lower-case letters, digits, '-', '_'; unique "
        "(a generated sub-… name when empty).")
    paper_url = serializers.CharField(required=False, allow_blank=True, default="", max_length=500,
                                      help_text="The paper (http or https).")
    code_url = serializers.CharField(required=False, allow_blank=True, default="", max_length=500,
                                     help_text="The code repository (http or https).")
    licence = serializers.CharField(required=False, allow_blank=True, default="", max_length=100,
                                    help_text="The licence of the weights or code.")

    def validate_config(self, value: str) -> dict:
        from hpbench.catalog.family_config import ConfigError, config_parse

        try:
            return config_parse(value)
        except ConfigError as exc:
            raise serializers.ValidationError(str(exc).removeprefix("config: ")) from None


class SubmissionDetailSerializer(SubmissionSerializer):
    """Documents ``GET submissions/<id>``: the submission with its scores and retrieval runs."""

    scores = ScoreSerializer(many=True)
    runs = serializers.ListField(child=inline_serializer("SubmissionRun", {
        "id": serializers.IntegerField(), "dataset": serializers.CharField(), "split": serializers.CharField(),
        "status": serializers.CharField(), "progress": serializers.FloatField(),
        "metrics": serializers.JSONField(), "error": serializers.CharField()}))

    class Meta(SubmissionSerializer.Meta):
        fields = [*SubmissionSerializer.Meta.fields, "scores", "runs"]


_BENCHMARK_404 = error("No benchmark of that name (and version).")
_SUBMISSION_404 = error("No such submission among the caller's own (all of them for staff).")
_LEADERBOARD = inline_serializer("Leaderboard", {
    "benchmark": inline_serializer("LeaderboardBenchmark", {
        "name": serializers.CharField(), "version": serializers.IntegerField(), "label": serializers.CharField(),
        "source": serializers.CharField(), "dataset": serializers.CharField(),
        "tie_policy": serializers.CharField(), "n_pairs": serializers.IntegerField(),
        "frozen_at": serializers.DateTimeField(), "notes": serializers.CharField(),
        "preference_ratio_chance": serializers.FloatField(
            allow_null=True,
            help_text="Expected preference ratio of random scores: the share of pairs preferring set 1.")}),
    "human_ceiling": inline_serializer("HumanCeiling", {
        "leave_one_out": serializers.FloatField(
            allow_null=True, help_text="Each vote against the majority of the other votes on its pair: the units of "
                                       "the rows' loo_agreement."),
        "leave_one_out_low": serializers.FloatField(allow_null=True),
        "leave_one_out_high": serializers.FloatField(allow_null=True),
        "leave_one_out_pairs": serializers.IntegerField(),
        "pairwise_agreement": serializers.FloatField(allow_null=True),
        "krippendorff_alpha": serializers.FloatField(allow_null=True),
        "votes_per_pair": serializers.FloatField(allow_null=True)}),
    "recall_label": serializers.CharField(),
    "recall_split": serializers.CharField(help_text="The dataset split the recall column comes from."),
    "ranking": serializers.DictField(help_text="How ranks are decided: paired test, correction, alpha, counts."),
    "sort": serializers.CharField(),
    "higher_is_better": serializers.ListField(child=serializers.CharField()),
    "rows": serializers.ListField(child=serializers.DictField(), help_text="One per model the caller may see: "
                                  "its scores with intervals (heldout_agreement, the headline, on the pairs where "
                                  "neither set is its own, with heldout_n_pairs), recall, arena rating, rank and the "
                                  "paired difference to the model above (columns as in the CSV)."),
})

class SubmissionUploadSerializer(SubmissionCreateSerializer):
    """Documents ``POST submissions``: a checkpoint (``family`` and ``file``) or score files (``scores``).

    One flat form (not a oneOf of the two: multipart clients and fuzzers need each part's type at the top level).
    """

    family = serializers.CharField(max_length=32, required=False, help_text="With `file`: the model family.")
    file = serializers.FileField(required=False, help_text="A checkpoint (safetensors, or a torch.save zip); for a "
                                 "folder-shaped family (demo) a .zip or .tar archive of the folder.")
    scores = serializers.ListField(
        child=serializers.FileField(), required=False,
        help_text="Instead of `file`: one or more score files (.jsonl / .parquet relevance, .json rankings).")



class BenchmarkListApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(summary="The active preference benchmarks", operation_id="leaderboard_benchmarks_list",
                   responses=BenchmarkSerializer(many=True))
    def get(self, request: Request) -> Response:
        return Response(BenchmarkSerializer(selectors.benchmarks_active(), many=True).data)


class LeaderboardApi(APIView):
    """``GET benchmarks/<name>?sort=-heldout&version=N``: the leaderboard as JSON."""

    permission_classes = [AllowAny]

    @extend_schema(summary="A benchmark's leaderboard (the models the caller may see)", parameters=[LeaderboardParams],
                   responses={200: _LEADERBOARD, 404: _BENCHMARK_404})
    def get(self, request: Request, name: str) -> Response:
        params = benchmark_params(request, LeaderboardParams)
        benchmark = _get_benchmark(name, params.get("version"))
        board = selectors.leaderboard(benchmark=benchmark, user=request.user, sort=params["sort"])
        section = selectors.preference_model_board(benchmark=benchmark, user=request.user)
        return Response(selectors.leaderboard_with_estimator(board, section))


class LeaderboardCsvApi(APIView):
    """``GET benchmarks/<name>/csv``: the same rows as CSV."""

    permission_classes = [AllowAny]

    @extend_schema(summary="A benchmark's leaderboard as CSV", parameters=[LeaderboardParams],
                   responses={(200, "text/csv"): OpenApiTypes.STR, 404: _BENCHMARK_404})
    def get(self, request: Request, name: str) -> HttpResponse:
        params = benchmark_params(request, LeaderboardParams)
        benchmark = _get_benchmark(name, params.get("version"))
        board = selectors.leaderboard(benchmark=benchmark, user=request.user, sort=params["sort"])
        section = selectors.preference_model_board(benchmark=benchmark, user=request.user)
        board = selectors.leaderboard_with_estimator(board, section)  # the same agreement as the page and JSON
        buffer = io.StringIO()
        per_category = [f"agreement_{c}{end}" for c in board["categories"]  # FashionIQ: dress, shirt, toptee
                        for end in CATEGORY_KEYS]
        writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS + per_category, extrasaction="ignore")
        writer.writeheader()
        for row in board["rows"]:
            writer.writerow({**row, "submitted": row["submitted"].isoformat() if row["submitted"] else "",
                             "reported_preference_ratio": (row["reported"] or {}).get("preference_ratio", ""),
                             "human_ceiling_leave_one_out": board["human_ceiling"]["leave_one_out"],
                             "preference_ratio_chance": board["benchmark"]["preference_ratio_chance"],
                             **{f"agreement_{c}{end}": figures.get(CATEGORY_KEYS[end], "")
                                for c, figures in row["by_category"].items() for end in CATEGORY_KEYS}})
        response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{benchmark.label}.csv"'
        return response


class SubmissionListApi(APIView):
    """``GET submissions``: the caller's own; ``POST submissions`` (multipart): a new one (201)."""

    permission_classes = [IsAuthenticated]
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    @extend_schema(summary="The caller's submissions", operation_id="leaderboard_submissions_list",
                   responses=SubmissionSerializer(many=True))
    def get(self, request: Request) -> Response:
        return Response(SubmissionSerializer(selectors.submissions_for_user(request.user), many=True,
                                             context={"request": request}).data)

    @extend_schema(
        summary="Submit a checkpoint (family + file) or the authors' score files (scores)",
        description="A checkpoint is evaluated on the platform; score files get bounded checks (name, size, "
        "Parquet metadata) while the upload waits and are validated row by row on a worker (a bad row fails "
        "the submission, its log naming the file and line). "
        "A checkpoint refused by the upload checks (format, archive layout for the family) is a 400 and does not "
        "count; every accepted submission counts against the daily quota (429 once reached).",
        request={"multipart/form-data": SubmissionUploadSerializer},
        responses={201: SubmissionSerializer,
                   400: error("A refused field, file or config; the message names it."),
                   429: error("The daily submission quota is reached.")})
    def post(self, request: Request) -> Response:
        if request.FILES.getlist("scores"):  # the authors' score files rather than a checkpoint
            from hpbench.leaderboard.scorefile_api import score_submission_post

            return score_submission_post(request)
        form = SubmissionCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            submission = submission_create(owner=request.user, **form.validated_data)
        except QuotaExceeded as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_429_TOO_MANY_REQUESTS)
        except SubmissionError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(SubmissionSerializer(submission, context={"request": request}).data,
                        status=status.HTTP_201_CREATED)


class SubmissionDetailApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(summary="One submission with its scores and runs", operation_id="leaderboard_submission_retrieve",
                   responses={200: SubmissionDetailSerializer, 404: _SUBMISSION_404})
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

    @extend_schema(summary="A submission's scores, one per benchmark", responses={
        200: ScoreSerializer(many=True), 404: _SUBMISSION_404})
    def get(self, request: Request, pk: int) -> Response:
        submission = _get_submission(request, pk)
        return Response(ScoreSerializer(selectors.submission_scores(submission), many=True,
                                        context={"request": request}).data)


class SubmissionFileApi(APIView):
    """``GET submissions/<id>/file``: the uploaded checkpoint, to its owner and staff only."""

    permission_classes = [IsAuthenticated]

    @extend_schema(summary="Download a submission's checkpoint (owner and staff)",
                   responses={(200, "application/octet-stream"): OpenApiTypes.BINARY,
                              404: error("No such submission of the caller's, or it has no checkpoint file.")})
    def get(self, request: Request, pk: int) -> FileResponse:
        submission = _get_submission(request, pk, write=True)
        if not submission.model or not submission.model.checkpoint_file:
            raise Http404("No file.")
        handle = submission.model.checkpoint_file.open("rb")
        name = submission.model.checkpoint_file.name or ""  # a set file (truthy) always has a name
        return FileResponse(handle, as_attachment=True, filename=name.rsplit("/")[-1],
                            content_type="application/octet-stream")


class SubmissionCancelApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(summary="Cancel a submission and its queued or running jobs", request=None, responses={
        200: SubmissionSerializer, 404: _SUBMISSION_404, 409: error("The submission has already ended.")})
    def post(self, request: Request, pk: int) -> Response:
        submission = _get_submission(request, pk, write=True)
        try:
            submission = submission_cancel(submission=submission)
        except SubmissionError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(SubmissionSerializer(submission, context={"request": request}).data)


class SubmissionPublishApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(summary="Make a submission and its scores public", request=None,
                   responses={200: SubmissionSerializer, 404: _SUBMISSION_404,
                              409: error("The submission failed or was cancelled: nothing to publish.")})
    def post(self, request: Request, pk: int) -> Response:
        submission = _get_submission(request, pk, write=True)
        try:
            submission = submission_publish(submission=submission)
        except SubmissionError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(SubmissionSerializer(submission, context={"request": request}).data)
