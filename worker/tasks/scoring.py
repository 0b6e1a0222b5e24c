"""Preference scoring on the ``gpu`` queue."""

from celery import shared_task


@shared_task(name="gpu.scoring.score_model", acks_late=True, reject_on_worker_lost=True)
def score_model(score_id: int) -> str:
    """Claim the ModelScore row and compute the model's agreement with the benchmark; returns the status."""
    from worker.scoring import score_model_execute  # torch: only inside the worker

    return score_model_execute(score_id=score_id)
