"""Catalogue API: datasets, queries with each visible model's top results, retrieval runs."""

from __future__ import annotations

from pathlib import Path

from django.http import FileResponse, Http404, HttpRequest
from django.shortcuts import get_object_or_404
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET
from rest_framework import permissions, serializers
from rest_framework.generics import ListAPIView, RetrieveAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from hpbench.catalog.models import Dataset, Image, Query, RetrievalRun
from hpbench.catalog.selectors import model_entries_visible_to, query_results_for_user


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


class DatasetList(ListAPIView):
    serializer_class = DatasetSerializer
    permission_classes = [permissions.AllowAny]
    queryset = Dataset.objects.order_by("name")


class QuerySerializer(serializers.ModelSerializer):
    dataset = serializers.SlugRelatedField(slug_field="name", read_only=True)
    reference = serializers.SerializerMethodField()
    target = serializers.SerializerMethodField()

    class Meta:
        model = Query
        fields = ["id", "dataset", "key", "split", "category", "captions", "pairid", "reference", "target"]

    def get_reference(self, query: Query) -> dict:
        return {"id": query.reference_id, "name": query.reference.name, "url": f"/images/{query.reference_id}"}

    def get_target(self, query: Query) -> dict | None:
        if query.target_id is None:
            return None
        return {"id": query.target_id, "name": query.target.name, "url": f"/images/{query.target_id}"}


class QueryResults(APIView):
    """One query with each visible model's top results (from its latest finished run on that split)."""

    permission_classes = [permissions.AllowAny]

    def get(self, request: Request, query_id: int) -> Response:
        query = get_object_or_404(Query.objects.select_related("dataset", "reference", "target"), pk=query_id)
        k = max(1, min(int(request.query_params.get("k", 10)), 50))
        return Response({
            "query": QuerySerializer(query).data,
            "models": query_results_for_user(user=request.user, query=query, k=k),
        })


class RunSerializer(serializers.ModelSerializer):
    model = serializers.SlugRelatedField(slug_field="name", read_only=True)
    dataset = serializers.SlugRelatedField(slug_field="name", read_only=True)
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


class RunDetail(RetrieveAPIView):
    """A run of a model the caller may see (404 otherwise)."""

    serializer_class = RunSerializer

    def get_queryset(self):
        return RetrievalRun.objects.filter(model__in=model_entries_visible_to(self.request.user)).select_related(
            "model", "dataset"
        )
