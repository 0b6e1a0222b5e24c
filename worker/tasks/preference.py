"""Preference-model training on the ``gpu`` queue."""

from celery import shared_task


@shared_task(name="gpu.preference.train", acks_late=True, reject_on_worker_lost=True)
def train_preference_model(model_id: int) -> str:
    """Claim the PreferenceModel row, train it with cross-fitting and store its figures; returns the status."""
    from worker.preference import preference_model_execute  # torch: only inside the worker

    return preference_model_execute(model_id=model_id)
