"""Shared by the row readers: the default chunk size, per-export name lookups (a constant number of
queries per chunk), chunking of an iterator, and the start of a calendar day."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator

from django.utils import timezone

from annotate.models import Campaign, Comparison
from hpbench.catalog.models import Image, ModelEntry

DEFAULT_CHUNK = 10_000


_CACHE_LIMIT = 50_000  # entries per lookup cache before it is emptied (keeps memory flat)


class _Names:
    """Small per-export lookups: campaign slug and dataset, model names, image names and categories."""

    def __init__(self) -> None:
        self.campaigns = {
            pk: (slug, ds) for pk, slug, ds in Campaign.objects.values_list("pk", "slug", "dataset__name")
        }
        self.models = dict(ModelEntry.objects.values_list("pk", "name"))
        self.images: dict[int, tuple[str, str]] = {}
        self.comparisons: dict[int, dict] = {}

    def load_images(self, ids: Iterable[int]) -> None:
        wanted = {int(i) for i in ids if i is not None}
        missing = wanted - self.images.keys()
        if not missing:
            return
        if len(self.images) + len(missing) > _CACHE_LIMIT:  # start afresh: refetch all this batch needs
            self.images.clear()
            missing = wanted
        for pk, name, category in Image.objects.filter(pk__in=missing).values_list("pk", "name", "category"):
            self.images[pk] = (name, category)

    def image(self, pk: int | None) -> str | None:
        return None if pk is None else self.images[int(pk)][0]

    def category(self, pk: int) -> str:
        return self.images[int(pk)][1]

    def model(self, pk: int | None) -> str | None:
        return None if pk is None else self.models.get(pk)

    def load_comparisons(self, ids: Iterable[int]) -> None:
        wanted = set(ids)
        missing = wanted - self.comparisons.keys()
        if not missing:
            return
        if len(self.comparisons) + len(missing) > _CACHE_LIMIT:  # start afresh: refetch all this batch needs
            self.comparisons.clear()
            missing = wanted
        rows = list(
            Comparison.objects.filter(pk__in=missing).values_list(
                "pk",
                "campaign_id",
                "reference_image_id",
                "text",
                "set_a_images",
                "set_b_images",
                "set_a_model_id",
                "set_b_model_id",
                "is_gold",
                "query__captions",
                "query__target_id",
                "query__category",
            )
        )
        self.load_images(i for r in rows for i in (r[2], r[10], *r[4], *r[5]))
        for pk, campaign_id, ref, text, set_a, set_b, model_a, model_b, gold, captions, target, category in rows:
            slug, dataset = self.campaigns[campaign_id]
            self.comparisons[pk] = {
                "campaign": slug,
                "dataset": dataset,
                "reference_image": self.image(ref),
                "captions": list(captions or []),
                "text": text,
                "target_image": self.image(target),
                "set_a_images": [self.image(i) for i in set_a],
                "set_b_images": [self.image(i) for i in set_b],
                "set_a_model": self.model(model_a),
                "set_b_model": self.model(model_b),
                "gold": gold,
                "_category": category or self.category(ref),
            }


def _chunks(iterator: Iterator, size: int) -> Iterator[list]:
    chunk: list = []
    for item in iterator:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _day_start(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))
