"""What a retrieval protocol asks of a model on one dataset split, shared by model runs and score files.

Torch-free (the web process builds request files from it): which queries are asked (their text is
:func:`hpbench.catalog.query_text.query_text`, as for the annotators), and each query's gallery (one per
FashionIQ category, one for CIRR).
``worker/retrieval.py`` ranks these galleries with a model's embeddings; ``worker/scorefiles.py`` reads the
same galleries' rankings from a researcher's file; both hand the ranks to ``hpbench.metrics.retrieval``.
"""

from __future__ import annotations

from collections import defaultdict

from hpbench.catalog.models import Dataset, Query
from hpbench.catalog.selectors import gallery_images, split_queries

#: How deep a submitted ranking goes (the official CIRR test server reads 50 names; Recall@K up to K = 50).
RANKING_DEPTH = 50
#: How deep a submitted CIRR subset ranking goes (Recall_subset@1/2/3).
SUBSET_DEPTH = 3


def query_public_id(query: Query, dataset: Dataset) -> str:
    """The id a request file and a ranking file use for a query: CIRR's pair id (as the official test server
    does), else the query's key in the dataset (e.g. ``dress.val.17``)."""
    if dataset.protocol == "cirr" and query.pairid is not None:
        return str(int(query.pairid))
    return query.key


def retrieval_groups(*, dataset: Dataset, split: str) -> dict[str, tuple[list[int], list[Query]]]:
    """``{group: (gallery image ids, queries)}``: CIRR ranks every query against the whole split (group
    ``"all"``); FashionIQ (and the demo) rank each category's queries against that category's images.

    Raises ``ValueError`` when the split has no queries.
    """
    queries = list(split_queries(dataset=dataset, split=split))
    if not queries:
        raise ValueError(f"dataset {dataset.name} has no queries in split {split!r}")
    if dataset.protocol == "cirr":
        return {"all": (list(gallery_images(dataset=dataset, split=split).values_list("id", flat=True)), queries)}
    by_category: dict[str, list[Query]] = defaultdict(list)
    for query in queries:
        by_category[query.category].append(query)
    return {
        category: (
            list(gallery_images(dataset=dataset, split=split, category=category).values_list("id", flat=True)),
            members,
        )
        for category, members in sorted(by_category.items())
    }
