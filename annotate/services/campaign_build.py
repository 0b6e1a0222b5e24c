"""Building a campaign's comparisons from its models' retrieval runs (pairs of top-k sets, informative
draws, gold tasks), and topping them up later."""

from __future__ import annotations

import random
from collections.abc import Callable

from django.db import transaction

from annotate import aliases
from annotate.errors import (
    BuildError,
)
from annotate.models import Campaign, Comparison
from hpbench.catalog import oracle
from hpbench.catalog.models import Dataset, Image, ModelEntry, Query, RetrievalRun
from hpbench.catalog.query_text import query_text

ProgressCallback = Callable[[float], None]


def _latest_runs(campaign: Campaign, models: list[ModelEntry]) -> dict[int, RetrievalRun]:
    runs: dict[int, RetrievalRun] = {}
    for model in models:
        run = (
            RetrievalRun.objects.filter(
                model=model, dataset=campaign.dataset, split=campaign.split, status=RetrievalRun.Status.FINISHED
            )
            .exclude(results_path="")
            .order_by("-finished_at", "-created_at", "-pk")
            .first()
        )
        if run is None:
            raise BuildError(
                f"model {model.name!r} has no finished retrieval run on {campaign.dataset.name}/{campaign.split}"
            )
        runs[model.pk] = run
    return runs


def campaign_build(*, campaign: Campaign, progress: ProgressCallback | None = None) -> int:
    """Create the campaign's comparisons; returns how many exist afterwards.

    For ``num_queries`` queries sampled (with the campaign's seed) from those every chosen model's latest
    finished run covers, a pair of two different models is drawn and each contributes its top ``set_size``
    images; pairs whose two sets hold the same images are skipped. Gold comparisons (``gold_share`` of
    the total) oppose the target plus images meeting the request to unrelated images of the category, on
    queries not otherwise sampled where there are enough (so no query is shown twice). Every image shown gets
    its per-campaign token (``annotate.aliases``) in the comparison's ``shown`` payload, in a random order within
    each set with ``shuffle_sets``, and a re-encoded copy to be served under it.
    Queries whose results were ever shown publicly (``Query.results_public_at``) are never drawn; the queries
    drawn join the private pool (``Query.reserved``), so their results are never shown publicly afterwards.
    With ``pair_selection = "informative"`` the campaign's ``num_queries`` comparisons are instead drawn from every
    (covered query, model pair) by :mod:`annotate.selection` (a query may then be compared for several pairs), each
    storing its round and inclusion probability (``selection_round``, ``selection_pi``; about ``num_queries`` are
    drawn, a Poisson round); they are drawn once (a rebuild adds nothing; :func:`campaign_refresh` does).
    Every comparison starts at :func:`campaign_initial_target` votes.
    Deterministic and idempotent: rebuilding creates only what is missing, never duplicates. The models are
    :func:`campaign_set_makers` (the campaign's models and its pool).
    Raises :class:`BuildError` naming what is missing (models, runs, queries).
    """
    report = progress or (lambda fraction: None)
    models = campaign_set_makers(campaign=campaign)
    if len(models) < 2:
        raise BuildError(f"campaign {campaign.slug!r} needs at least two models, has {len(models)}")
    runs = _latest_runs(campaign, models)
    k = campaign.set_size
    topks: dict[int, dict[int, list[int]]] = {}
    for model in models:
        topks[model.pk] = _stored_topk(runs[model.pk]).as_dict(k)
    covered = set.intersection(*(set(q for q, ids in t.items() if len(ids) >= k) for t in topks.values()))
    candidate_ids = sorted(
        Query.objects.filter(dataset=campaign.dataset, split=campaign.split, pk__in=covered)
        .filter(results_public_at__isnull=True)  # a query whose results were ever public could tell the models
        .values_list("pk", flat=True)
    )
    if not candidate_ids:
        raise BuildError(
            f"no query of {campaign.dataset.name}/{campaign.split} is covered by every model's latest run "
            "and has never had its results shown publicly"
        )
    rng = random.Random(campaign.seed)
    target = campaign_initial_target(campaign=campaign)
    if campaign.pair_selection == "informative":
        if Comparison.objects.filter(campaign=campaign).exists():
            return Comparison.objects.filter(campaign=campaign).count()  # drawn once; campaign_refresh adds more
        drawn, pool, predictor = _informative_draw(
            campaign, models, runs, candidate_ids, campaign.num_queries, topks, seed=campaign.seed & 0xFFFFFFFF
        )
        selection_round = _selection_round(campaign, campaign.num_queries, pool, drawn_before=0, **predictor)
        chosen = list(dict.fromkeys(d.query_id for d in drawn))
    else:
        chosen = rng.sample(candidate_ids, min(campaign.num_queries, len(candidate_ids)))
    report(0.05)

    rows: list[Comparison] = []
    queries = Query.objects.in_bulk(chosen)
    if campaign.pair_selection == "informative":
        by_pk = {m.pk: m for m in models}
        rows = _comparison_rows(campaign, drawn, by_pk, queries, topks, target, rng, selection_round)
    else:
        for query_id in chosen:
            query = queries[query_id]
            model_a, model_b = rng.sample(models, 2)
            set_a = topks[model_a.pk][query_id][:k]
            set_b = topks[model_b.pk][query_id][:k]
            seed = rng.getrandbits(48)
            position = rng.getrandbits(48)
            if set(set_a) == set(set_b):
                continue
            rows.append(
                Comparison(
                    campaign=campaign,
                    query_id=query_id,
                    reference_image_id=query.reference_id,
                    text=query_text(protocol=campaign.dataset.protocol, captions=query.captions),
                    position=position,
                    set_a_images=set_a,
                    set_b_images=set_b,
                    set_a_model=model_a,
                    set_b_model=model_b,
                    seed=seed,
                    open_slots=target,
                    target_votes=target,
                    shows_reference=query.reference_id in set_a or query.reference_id in set_b,
                )
            )
    report(0.3)
    share = campaign.gold_share
    if share > 0 and rows:
        n_gold = max(1, round(len(rows) * share / (1.0 - share)))
        # Gold tasks on queries no model pair is compared on, where there are enough: an annotator shown the
        # same reference and text twice would know one of the two tasks is gold.
        chosen_set = set(chosen)
        spare = [q for q in candidate_ids if q not in chosen_set]
        queries.update(Query.objects.in_bulk(spare))
        rows.extend(_gold_comparisons(campaign, spare, chosen, queries, topks, n_gold, rng))
    rows = _reserve_queries(rows)
    aliases.fill_shown(campaign_id=campaign.pk, comparisons=rows, shuffle=campaign.shuffle_sets)
    report(0.5)
    batch = 2000
    for start in range(0, len(rows), batch):
        Comparison.objects.bulk_create(rows[start : start + batch], ignore_conflicts=True)
        report(0.5 + 0.3 * min(1.0, (start + batch) / len(rows)))
    if campaign.pair_selection == "informative":
        from annotate.selection import selection_weights_update

        selection_weights_update(campaign=campaign)
    aliases.reencode_campaign_images(campaign_id=campaign.pk)
    report(1.0)
    return Comparison.objects.filter(campaign=campaign).count()


def campaign_set_makers(*, campaign: Campaign) -> list[ModelEntry]:
    """The models whose top-k sets a campaign's pairs oppose, by primary key: its models and its pool (set makers
    not scored on the board, which keep the board's models many held-out pairs). "Models" below means these."""
    return list((campaign.models.all() | campaign.pool_models.all()).distinct().order_by("pk"))


def _reserve_queries(rows: list[Comparison]) -> list[Comparison]:
    """Put the rows' queries into the private pool (``Query.reserved``: their results are never shown publicly
    again) and drop the rows of any query whose results were shown publicly since it was drawn. One conditional
    UPDATE: a public page stamping a query at the same moment (hpbench.catalog.services.query_results_shown_to)
    either stamps it first, and the query is dropped here, or finds it reserved, and shows nothing."""
    ids = {row.query_id for row in rows}
    Query.objects.filter(pk__in=ids, results_public_at__isnull=True).update(reserved=True)
    public = set(Query.objects.filter(pk__in=ids, results_public_at__isnull=False).values_list("pk", flat=True))
    return [row for row in rows if row.query_id not in public]


def campaign_initial_target(*, campaign: Campaign) -> int:
    """Votes a new model comparison asks for: ``min_votes_per_pair`` with adaptive overlap, else ``votes_per_pair``
    (gold tasks always ask ``votes_per_pair``)."""
    if campaign.adaptive_overlap:
        return min(campaign.min_votes_per_pair, campaign.votes_per_pair)
    return campaign.votes_per_pair


def _stored_topk(run: RetrievalRun):
    """The run's top-K, read through the media storage by its ``results_path`` (a storage name, on a folder or a
    bucket). Raises :class:`BuildError` naming the run when it cannot be read."""
    from hpbench.catalog.results import read_topk_stored

    try:
        return read_topk_stored(run.results_path)
    except (OSError, KeyError, ValueError) as exc:
        raise BuildError(f"cannot read the results of run {run.pk} ({run.results_path}): {exc}") from exc


def _full_topks(runs: dict[int, RetrievalRun]) -> dict[int, dict[int, tuple[list[int], list[float]]]]:
    out = {}
    for pk, run in runs.items():
        topk = _stored_topk(run)
        out[pk] = {
            int(q): (ids.tolist(), scores.tolist())
            for q, ids, scores in zip(topk.query_ids, topk.image_ids, topk.scores, strict=True)
        }
    return out


def _selection_round(campaign, take: int, pool: int, *, drawn_before: int, predictor: str = "",
                     predicted: int = 0) -> int:
    from annotate.selection import selection_round_record

    return selection_round_record(campaign=campaign, take=take, pool=pool, drawn_before=drawn_before,
                                  predictor=predictor, predicted=predicted)


def _informative_draw(campaign, models, runs, query_ids, take, topks, *, seed) -> tuple[list, int, dict]:
    """About ``take`` comparisons by informative selection (annotate/selection.py), reproducible by ``seed``,
    the number of candidates they were drawn from, and which learned predictor chose them (``{"predictor",
    "predicted"}``, empty when none)."""
    import numpy as np

    from annotate import selection

    model_pks = [m.pk for m in models]
    existing = set()
    for q, a, b in Comparison.objects.filter(campaign=campaign, is_gold=False).values_list(
        "query_id", "set_a_model_id", "set_b_model_id"
    ):
        existing.add((q, min(a, b), max(a, b)))
    candidates = selection.informative_candidates(
        model_pks=model_pks, query_ids=query_ids, topks=topks, set_size=campaign.set_size, existing=existing
    )
    learned, label = selection.campaign_learned_preferences(campaign=campaign)
    drawn = selection.informative_select(
        campaign=campaign,
        model_pks=model_pks,
        candidates=candidates,
        topks_full=_full_topks(runs),
        set_size=campaign.set_size,
        take=take,
        rng=np.random.default_rng(seed),
        learned=learned,
    )
    predicted = sum(1 for c in candidates if c in learned)
    return drawn, len(candidates), ({"predictor": label, "predicted": predicted} if predicted else {})


def _comparison_rows(
    campaign, drawn, by_pk, queries, topks, target, rng: random.Random, selection_round: int
) -> list[Comparison]:
    k = campaign.set_size
    rows = []
    for d in drawn:
        query = queries[d.query_id]
        model_a, model_b = (by_pk[d.model_a], by_pk[d.model_b])
        if rng.random() < 0.5:
            model_a, model_b = model_b, model_a
        set_a, set_b = topks[model_a.pk][d.query_id][:k], topks[model_b.pk][d.query_id][:k]
        rows.append(
            Comparison(
                campaign=campaign,
                query_id=d.query_id,
                reference_image_id=query.reference_id,
                text=query_text(protocol=campaign.dataset.protocol, captions=query.captions),
                position=rng.getrandbits(48),
                set_a_images=set_a,
                set_b_images=set_b,
                shows_reference=query.reference_id in set_a or query.reference_id in set_b,
                set_a_model=model_a,
                set_b_model=model_b,
                seed=rng.getrandbits(48),
                open_slots=target,
                target_votes=target,
                selection_round=selection_round,
                selection_pi=d.pi,
            )
        )
    return rows


def campaign_refresh(*, campaign: Campaign, count: int) -> int:
    """Add about ``count`` comparisons (the expected count of a Poisson round) chosen by informative selection
    with the evidence gathered so far, and set every drawn comparison's weight again (``annotate.selection``).

    Candidates are the (query, model pair)s the campaign does not compare yet; Bradley-Terry strengths and the
    predicted-preference fit come from its finished comparisons, or the probabilities of the newest preference
    model trained on a benchmark frozen from it, where it predicted the candidate. New comparisons get random
    serving positions, as at build. Reproducible: the draw is seeded by the campaign's seed and how many
    comparisons it has. Returns how many were added.
    Raises ``ValueError`` unless the campaign uses informative selection and ``count >= 1``, and
    :class:`BuildError` as :func:`campaign_build` does.
    """
    if campaign.pair_selection != "informative":
        raise ValueError(f"campaign {campaign.slug!r} does not use informative pair selection")
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be a whole number >= 1, got {count!r}")
    models = campaign_set_makers(campaign=campaign)
    runs = _latest_runs(campaign, models)
    k = campaign.set_size
    topks = {pk: _stored_topk(run).as_dict(k) for pk, run in runs.items()}
    covered = set.intersection(*(set(q for q, ids in t.items() if len(ids) >= k) for t in topks.values()))
    query_ids = sorted(
        Query.objects.filter(dataset=campaign.dataset, split=campaign.split, pk__in=covered)
        .filter(results_public_at__isnull=True)
        .values_list("pk", flat=True)
    )
    with transaction.atomic():
        Campaign.objects.select_for_update().filter(pk=campaign.pk).first()  # one refresh at a time
        campaign.refresh_from_db(fields=["selection_rounds"])
        n_existing = Comparison.objects.filter(campaign=campaign).count()
        seed = [campaign.seed & 0xFFFFFFFF, n_existing]
        drawn, pool, predictor = _informative_draw(campaign, models, runs, query_ids, count, topks, seed=seed)
        drawn_before = Comparison.objects.filter(campaign=campaign, is_gold=False).count()
        selection_round = _selection_round(campaign, count, pool, drawn_before=drawn_before, **predictor)
        rng = random.Random(f"{campaign.seed}:{n_existing}")
        queries = Query.objects.in_bulk({d.query_id for d in drawn})
        rows = _comparison_rows(
            campaign, drawn, {m.pk: m for m in models}, queries, topks, campaign_initial_target(campaign=campaign), rng,
            selection_round,
        )
        rows = _reserve_queries(rows)
        aliases.fill_shown(campaign_id=campaign.pk, comparisons=rows, shuffle=campaign.shuffle_sets)
        Comparison.objects.bulk_create(rows, batch_size=2000)
        from annotate.selection import selection_weights_update

        selection_weights_update(campaign=campaign)
    aliases.reencode_campaign_images(campaign_id=campaign.pk)
    return len(rows)


def _gold_comparisons(
    campaign: Campaign,
    spare: list[int],
    chosen: list[int],
    queries: dict[int, Query],
    topks: dict[int, dict[int, list[int]]],
    n_gold: int,
    rng: random.Random,
) -> list[Comparison]:
    """Gold tasks: target + images meeting the request (those keeping the rest of the reference first) versus
    images of the same category meeting none of it, on ``spare`` queries (compared nowhere else) first, then on
    ``chosen`` ones."""
    k = campaign.set_size
    first = [q for q in spare if queries[q].target_id is not None]
    picked = rng.sample(first, min(n_gold, len(first)))
    if len(picked) < n_gold:
        then = [q for q in chosen if queries[q].target_id is not None]
        picked += rng.sample(then, min(n_gold - len(picked), len(then)))
    if not picked:
        return []
    is_demo = campaign.dataset.kind == Dataset.Kind.DEMO
    gallery = list(
        Image.objects.filter(dataset=campaign.dataset, split=campaign.split).values_list("pk", "category", "attributes")
    )
    by_category: dict[str, list[tuple[int, dict]]] = {}
    for pk, category, attributes in gallery:
        by_category.setdefault(category, []).append((pk, attributes or {}))
    attrs_of = {pk: attributes or {} for pk, _c, attributes in gallery}
    first_model = min(topks)
    out: list[Comparison] = []
    for query_id in picked:
        query = queries[query_id]
        pool = by_category.get(query.category) or [(pk, a) for pk, _c, a in gallery]
        assert query.target_id is not None  # picked above only among queries with a target
        good: list[int] = [query.target_id]
        requested: dict[str, str] = {}
        if is_demo:
            try:
                requested = oracle.requested_attributes(query.captions, attrs_of.get(query.reference_id))
            except ValueError:
                requested = {}
        if requested:
            # Images meeting the whole request, those that also keep the rest of the reference first.
            reference = attrs_of.get(query.reference_id) or {}
            matching = [pk for pk, a in pool if oracle.requested_met(a, requested) == len(requested)]
            rng.shuffle(matching)
            matching.sort(key=lambda pk: -oracle.relevance(attrs_of[pk], reference, requested))
            good += [pk for pk in matching if pk not in good and pk != query.reference_id][: k - 1]
        if len(good) < k:
            good += [pk for pk in topks[first_model][query_id] if pk not in good and pk != query.reference_id][
                : k - len(good)
            ]
        avoid = set(good) | {query.reference_id}
        for ranked in topks.values():
            avoid |= set(ranked.get(query_id, []))
        if requested:
            unrelated = [pk for pk, a in pool if pk not in avoid and oracle.requested_met(a, requested) == 0]
        else:
            unrelated = [pk for pk, _a in pool if pk not in avoid]
        if len(unrelated) < k:
            unrelated += [pk for pk, _a in pool if pk not in avoid and pk not in unrelated]
        if len(good) < k or len(unrelated) < k:
            continue
        bad = rng.sample(unrelated, k)
        rng.shuffle(good)
        good_is_a = rng.random() < 0.5
        out.append(
            Comparison(
                campaign=campaign,
                query_id=query_id,
                reference_image_id=query.reference_id,
                text=query_text(protocol=campaign.dataset.protocol, captions=query.captions),
                position=rng.getrandbits(48),
                set_a_images=good if good_is_a else bad,
                set_b_images=bad if good_is_a else good,
                is_gold=True,
                gold_answer="a" if good_is_a else "b",
                seed=rng.getrandbits(48),
                # Gold tasks keep fixed overlap: every annotator's gold accuracy needs them seen.
                open_slots=campaign.votes_per_pair,
                target_votes=campaign.votes_per_pair,
            )
        )
    return out
