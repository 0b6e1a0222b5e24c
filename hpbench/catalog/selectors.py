"""Reads of the catalogue, with the caller's rights applied in one place."""

from __future__ import annotations

import math

from django.db.models import Count, Exists, OuterRef, Q, QuerySet

from hpbench.catalog.models import Dataset, Image, ImageListing, ModelEntry, Query, RetrievalRun
from hpbench.catalog.results import TopK, read_topk_stored


def model_entries_visible_to(user) -> QuerySet[ModelEntry]:
    """Staff see every model; others see public, unhidden models and their own."""
    if user is not None and user.is_authenticated and user.is_staff:
        return ModelEntry.objects.all()
    visible = Q(is_public=True, is_hidden=False)
    if user is not None and user.is_authenticated:
        visible |= Q(owner=user)
    return ModelEntry.objects.filter(visible)


def model_entry_get_for_user(user, model_id: int) -> ModelEntry:
    """The model if the caller may see it; ``ModelEntry.DoesNotExist`` otherwise (never reveal it exists)."""
    return model_entries_visible_to(user).get(pk=model_id)


def gallery_images(*, dataset: Dataset, split: str, category: str | None = None) -> QuerySet[Image]:
    """The images a query of this split (and category) is ranked against, in a stable order: those the split
    files list there (:class:`ImageListing`; an image FashionIQ lists under two categories is in both
    galleries), and images without listings by their own split and category."""
    own = Q(split=split) if category is None else Q(split=split, category=category)
    listed = ImageListing.objects.filter(dataset=dataset, split=split)
    if category is not None:
        listed = listed.filter(category=category)
    images = Image.objects.filter(dataset=dataset).filter(
        (own & ~Exists(ImageListing.objects.filter(image=OuterRef("pk")))) | Q(pk__in=listed.values("image_id"))
    )
    return images.order_by("id")


def split_queries(*, dataset: Dataset, split: str) -> QuerySet[Query]:
    return Query.objects.filter(dataset=dataset, split=split).select_related("reference", "target").order_by("id")


def dataset_splits(*, dataset: Dataset) -> dict[str, int]:
    """``{split: number of queries}`` of a dataset, splits in name order (only splits that have queries)."""
    rows = Query.objects.filter(dataset=dataset).values_list("split").annotate(n=Count("id")).order_by("split")
    return dict(rows)


def models_with_finished_runs(*, dataset: Dataset, split: str) -> list[ModelEntry]:
    """Models with a finished retrieval run on ``dataset``/``split`` (what a campaign build needs), by name."""
    finished = RetrievalRun.objects.filter(dataset=dataset, split=split, status=RetrievalRun.Status.FINISHED)
    return list(ModelEntry.objects.filter(pk__in=finished.values("model_id")).order_by("name"))


def latest_finished_run(*, model: ModelEntry, dataset: Dataset, split: str) -> RetrievalRun | None:
    return (
        RetrievalRun.objects.filter(model=model, dataset=dataset, split=split, status=RetrievalRun.Status.FINISHED)
        .order_by("-finished_at", "-id")
        .first()
    )


def run_topk(run: RetrievalRun) -> TopK:
    """The stored top-K results of a finished run."""
    if run.status != RetrievalRun.Status.FINISHED or not run.results_path:
        raise ValueError(f"run {run.pk} has no results (status {run.status})")
    return read_topk_stored(run.results_path)


def query_results_hidden_from(*, user, query: Query) -> bool:
    """Whether ``query``'s model results and target are hidden from this caller: from everyone but staff when the
    query is in the private pool of campaign queries (``Query.reserved``) or any campaign, open or closed, compares
    result sets of it. An annotator who saw which images each model returned for a query could tell which model
    made each set, and which task is gold; once a campaign closes, its votes still feed benchmarks, and a later
    campaign could be built again on the query. A caller shown the results stamps the query
    (:func:`hpbench.catalog.services.query_results_shown_to`), so no campaign ever draws it afterwards."""
    if user is not None and user.is_authenticated and user.is_staff:
        return False
    if query.reserved:
        return True
    from annotate.selectors import query_in_campaign  # annotate builds on the catalogue

    return query_in_campaign(query_id=query.pk)


def query_results_for_user(*, user, query: Query, k: int = 10) -> list[dict]:
    """Each visible model's top-``k`` images for one query, from its latest finished run on the query's split;
    empty while they are hidden from this caller (:func:`query_results_hidden_from`)."""
    if query_results_hidden_from(user=user, query=query):
        return []
    results = []
    for model in model_entries_visible_to(user).order_by("name"):
        run = latest_finished_run(model=model, dataset=query.dataset, split=query.split)
        if run is None:
            continue
        try:
            image_ids, scores = run_topk(run).for_query(query.pk)
        except KeyError:
            continue
        kept = [(i, s) for i, s in zip(image_ids, scores, strict=True) if i >= 0][:k]  # -1 pads short rankings
        image_ids, scores = [i for i, _ in kept], [s for _, s in kept]
        names = dict(Image.objects.filter(pk__in=image_ids).values_list("id", "name"))
        results.append({
            "model": model.name, "is_baseline": model.is_baseline, "run": run.pk,
            "results": [
                {"image": image_id, "name": names.get(image_id, ""),
                 "score": None if math.isnan(score) else round(score, 5),  # ranking files carry no scores
                 "is_target": image_id == query.target_id}
                for image_id, score in zip(image_ids, scores, strict=True)
            ],
        })
    return results
