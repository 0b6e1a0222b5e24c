"""Catalogue API: datasets, queries with each visible model's top results, retrieval runs."""

from __future__ import annotations

from pathlib import Path

from django.http import FileResponse, Http404, HttpRequest
from django.shortcuts import get_object_or_404
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import permissions, serializers
from rest_framework.generics import ListAPIView, RetrieveAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from hpbench.catalog.models import Dataset, Image, ModelEntry, Query, RetrievalRun
from hpbench.catalog.selectors import model_entries_visible_to, query_results_for_user
from hpbench.catalog.services import query_results_shown_to
from hpbench.openapi import error


@require_GET
@cache_control(public=True, max_age=86400)
def image_file(request: HttpRequest, image_id: int) -> FileResponse:
    """Serve a dataset image by id. Images carry no model identity, so annotators may load them."""
    image = get_object_or_404(Image.objects.select_related("dataset"), pk=image_id)
    root = Path(image.dataset.image_root).resolve()
    path = (root / image.file_path).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise Http404("image file missing")
    return FileResponse(path.open("rb"))


class DatasetSerializer(serializers.ModelSerializer):
    class Meta:
        model = Dataset
        fields = ["id", "name", "kind", "created_at"]


@extend_schema(summary="The datasets in the catalogue")
class DatasetList(ListAPIView):
    serializer_class = DatasetSerializer
    permission_classes = [permissions.AllowAny]
    queryset = Dataset.objects.order_by("name")


class QuerySerializer(serializers.ModelSerializer):
    dataset: serializers.SlugRelatedField[Dataset] = serializers.SlugRelatedField(slug_field="name", read_only=True)
    reference = serializers.SerializerMethodField()
    target = serializers.SerializerMethodField()

    class Meta:
        model = Query
        fields = ["id", "dataset", "key", "split", "category", "captions", "pairid", "reference", "target"]

    def get_reference(self, query: Query) -> dict:
        return {"id": query.reference_id, "name": query.reference.name, "url": f"/images/{query.reference_id}"}

    def get_target(self, query: Query) -> dict | None:
        target = query.target if query.target_id is not None else None  # no database read without a target
        if target is None:
            return None
        return {"id": query.target_id, "name": target.name, "url": f"/images/{query.target_id}"}


class QueryResultsParams(serializers.Serializer):
    k = serializers.IntegerField(min_value=1, max_value=50, default=10, help_text="Results per model (1-50).")


_RESULTS_HIDDEN_HELP = (
    "True when the query is kept for annotation campaigns (one compares its result sets, open or closed, or it is "
    "in the private pool for future ones): then `models` is empty and `query.target` null for everyone but staff, "
    "so annotators cannot tell which model made a set."
)


class QueryResults(APIView):
    """One query with each visible model's top results (from its latest finished run on that split)."""

    permission_classes = [permissions.AllowAny]

    @extend_schema(
        summary="A query with each visible model's top-k results",
        parameters=[QueryResultsParams],
        responses={
            200: inline_serializer(
                "QueryResults",
                {
                    "query": QuerySerializer(),
                    "results_hidden": serializers.BooleanField(help_text=_RESULTS_HIDDEN_HELP),
                    "models": serializers.ListField(child=serializers.DictField()),
                },
            ),
            404: error("No such query."),
        },
    )
    def get(self, request: Request, query_id: int) -> Response:
        params = QueryResultsParams(data=request.query_params)
        params.is_valid(raise_exception=True)
        query = get_object_or_404(Query.objects.select_related("dataset", "reference", "target"), pk=query_id)
        hidden = not query_results_shown_to(user=request.user, query=query)
        data = QuerySerializer(query).data
        if hidden:
            data["target"] = None
        k = params.validated_data["k"]
        models = [] if hidden else query_results_for_user(user=request.user, query=query, k=k)
        return Response({"query": data, "results_hidden": hidden, "models": models})


class RunSerializer(serializers.ModelSerializer):
    model: serializers.SlugRelatedField[ModelEntry] = serializers.SlugRelatedField(slug_field="name", read_only=True)
    dataset: serializers.SlugRelatedField[Dataset] = serializers.SlugRelatedField(slug_field="name", read_only=True)
    error = serializers.SerializerMethodField()

    def get_error(self, run: RetrievalRun) -> str:
        """In full for staff; without server paths for anyone else."""
        from hpbench.redact import researcher_text

        request = self.context.get("request")
        return run.error if request is not None and request.user.is_staff else researcher_text(run.error)

    class Meta:
        model = RetrievalRun
        fields = ["id", "model", "dataset", "split", "status", "progress", "error", "metrics", "timings",
                  "created_at", "started_at", "finished_at"]


@extend_schema(summary="A retrieval run of a model the caller may see", responses={
    200: RunSerializer, 404: error("No such run among the models the caller may see.")})
class RunDetail(RetrieveAPIView):
    """A run of a model the caller may see (404 otherwise)."""

    serializer_class = RunSerializer

    def get_queryset(self):
        return RetrievalRun.objects.filter(model__in=model_entries_visible_to(self.request.user)).select_related(
            "model", "dataset"
        )
