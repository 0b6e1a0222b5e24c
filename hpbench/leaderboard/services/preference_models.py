"""Preference models of a benchmark (``PreferenceModel``): queued on request, trained by a worker, stored or failed;
and the benchmark's agreement estimator setting."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from hpbench import dispatch
from hpbench.leaderboard.models import PreferenceBenchmark, PreferenceModel


def preference_model_request(*, benchmark: PreferenceBenchmark, folds: int = 5, seed: int = 0) -> PreferenceModel:
    """Queue training of the benchmark's next preference model version; dispatched on commit.

    A queued or running one is returned instead of queuing a second. Raises ``ValueError`` unless ``2 <= folds
    <= 20``.
    """
    if not 2 <= folds <= 20:
        raise ValueError(f"folds must be in 2..20, got {folds}")
    from models_zoo.preference import VERSION  # no torch: the package's __init__ imports nothing heavy

    with transaction.atomic():
        PreferenceBenchmark.objects.select_for_update().filter(pk=benchmark.pk).first()  # one version at a time
        pending = PreferenceModel.objects.filter(
            benchmark=benchmark, status__in=(PreferenceModel.Status.QUEUED, PreferenceModel.Status.RUNNING)
        ).first()
        if pending is not None:
            return pending
        latest = PreferenceModel.objects.filter(benchmark=benchmark).aggregate(v=Max("version"))["v"] or 0
        row = PreferenceModel.objects.create(benchmark=benchmark, version=latest + 1, method=VERSION, folds=folds,
                                             seed=seed)
        dispatch.task_send_on_commit(dispatch.PREFERENCE_TRAIN, row.pk)
    return row


def preference_model_store(
    *, model_id: int, predictions: bytes, feature_models: list[int], report: dict, candidates: dict | None = None
) -> None:
    """Store a trained model's out-of-fold predictions (float64 bytes, position order) and figures; finished.

    When the benchmark was frozen from a campaign and the model predicted its uncompared candidates (keyed), those
    predictions become the campaign's :class:`annotate.models.SelectionPredictor` in the same transaction, so its
    next informative refresh draws where this model is least certain."""
    from annotate.models import SelectionPredictor

    candidates = candidates or {}
    with transaction.atomic():
        stored = PreferenceModel.objects.filter(pk=model_id, status=PreferenceModel.Status.RUNNING).update(
            predictions=predictions, feature_models=feature_models, report=report, candidates=candidates,
            status=PreferenceModel.Status.FINISHED, progress=1.0, error="", finished_at=timezone.now(),
        )
        row = PreferenceModel.objects.select_related("benchmark").get(pk=model_id)
        keys, p = candidates.get("keys"), candidates.get("p")
        if stored and row.benchmark.campaign_id is not None and keys and p and len(keys) == len(p):
            SelectionPredictor.objects.create(campaign_id=row.benchmark.campaign_id, keys=keys, p=p,
                                              label=f"preference model v{row.version} on {row.benchmark.label}")


def preference_model_fail(*, model_id: int, error: str) -> None:
    PreferenceModel.objects.filter(pk=model_id).exclude(status=PreferenceModel.Status.CANCELLED).update(
        status=PreferenceModel.Status.FAILED, error=error[:20000], finished_at=timezone.now()
    )


def benchmark_estimator_set(*, benchmark: PreferenceBenchmark, estimator: str) -> None:
    """Choose how the leaderboard estimates agreement on ``benchmark`` (``classic`` or ``ppi``).

    Raises ``ValueError`` for another value.
    """
    if estimator not in PreferenceBenchmark.Estimator.values:
        raise ValueError(f"estimator must be one of {', '.join(PreferenceBenchmark.Estimator.values)}, "
                         f"got {estimator!r}")
    PreferenceBenchmark.objects.filter(pk=benchmark.pk).update(agreement_estimator=estimator)
