"""Retrieval runs on the ``gpu`` queue."""

from celery import shared_task


@shared_task(name="gpu.retrieval.run", acks_late=True, reject_on_worker_lost=True)
def run_retrieval(run_id: int) -> str:
    """Claim the run and compute its embeddings, top-K results and Recall@K; returns the final status."""
    from worker.retrieval import retrieval_run_execute

    return retrieval_run_execute(run_id=run_id)
