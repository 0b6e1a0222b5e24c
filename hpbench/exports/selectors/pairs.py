"""Pair-level rows: the pairs of a frozen benchmark version, votes published under pseudonyms."""

from __future__ import annotations

import json
from collections.abc import Iterator

from annotate.models import Annotator
from hpbench.exports.selectors.lookups import DEFAULT_CHUNK, _chunks, _Names
from hpbench.exports.selectors.params import ExportError, ExportParams
from hpbench.leaderboard.models import BenchmarkPair, PreferenceBenchmark


def pair_rows(
    params: ExportParams, *, chunk_size: int = DEFAULT_CHUNK, with_categories: bool = False
) -> Iterator[list[dict]]:
    """One dict per pair of the benchmark version (keys of :data:`PAIR_COLUMNS`), by position.

    With ``with_categories`` each row also carries ``_category``: the pair's own (``BenchmarkPair.category``),
    else the linked query's, else the reference image's (the HP-FashionIQ writer files all of a question's images
    under it, as the release does).
    """
    benchmark = benchmark_of(params)
    if benchmark is None:
        raise ExportError("benchmark: pair rows need a benchmark version")
    if benchmark.hidden_split_of_id is not None:
        raise ExportError(f"benchmark: {benchmark} is a hidden split; its verdicts are never exported")
    names = _Names()
    pseudonyms: dict[str, str] = {}
    if benchmark.campaign_id is not None:  # frozen votes name annotators by id: publish their pseudonym
        pseudonyms = {
            str(pk): p
            for pk, p in Annotator.objects.filter(campaign_id=benchmark.campaign_id).values_list("pk", "pseudonym")
        }
    qs = (
        BenchmarkPair.objects.filter(benchmark=benchmark)
        .order_by("position")
        .values_list(
            "position",
            "source_key",
            "reference_id",
            "text",
            "set1_image_ids",
            "set2_image_ids",
            "set1_model_id",
            "set2_model_id",
            "preference",
            "likert1",
            "likert2",
            "votes",
            "n_votes",
            "stop_reason",
            "selection_round",
            "selection_pi",
            "selection_weight",
            "query__captions",
            "query__target_id",
            "query__category",
            "category",
        )
    )
    for chunk in _chunks(qs.iterator(chunk_size=chunk_size), chunk_size):
        names.load_images(i for r in chunk for i in (r[2], r[18], *r[4], *r[5]))
        rows = []
        for (
            position,
            key,
            ref,
            text,
            set1,
            set2,
            model1,
            model2,
            preference,
            likert1,
            likert2,
            votes,
            n_votes,
            stop_reason,
            selection_round,
            selection_pi,
            selection_weight,
            captions,
            target,
            category,
            pair_category,
        ) in chunk:
            public_votes = []
            for v in votes or []:
                v = dict(v)
                label = str(v.get("annotator", ""))
                v["annotator"] = pseudonyms.get(label, label) if benchmark.campaign_id is not None else label
                if benchmark.campaign_id is not None and label not in pseudonyms:
                    v["annotator"] = "unknown"  # never publish an internal id
                public_votes.append(v)
            row = {
                "benchmark": benchmark.name,
                "version": benchmark.version,
                "position": position,
                "source_key": key,
                "dataset": benchmark.dataset.name,
                "reference_image": names.image(ref),
                "captions": list(captions or []),
                "text": text,
                "target_image": names.image(target),
                "set1_images": [names.image(i) for i in set1],
                "set2_images": [names.image(i) for i in set2],
                "set1_model": names.model(model1),
                "set2_model": names.model(model2),
                "preference": preference,
                "likert1": likert1,
                "likert2": likert2,
                "votes": len(public_votes),
                "votes_json": json.dumps(public_votes, sort_keys=True),
                "campaign_votes": n_votes,
                "stop_reason": stop_reason,
                "selection_round": selection_round,
                "selection_pi": selection_pi,
                "selection_weight": selection_weight,
            }
            if with_categories:
                row["_category"] = pair_category or category or names.category(ref)
            rows.append(row)
        yield rows


def benchmark_of(params: ExportParams) -> PreferenceBenchmark | None:
    return (
        PreferenceBenchmark.objects.select_related("dataset").get(pk=params.benchmark_id)
        if params.benchmark_id is not None
        else None
    )
