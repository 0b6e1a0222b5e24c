"""Scoring from the authors' score files on the ``default`` queue (no model, no GPU)."""

from celery import shared_task


@shared_task(name="default.scorefiles.check", acks_late=True, reject_on_worker_lost=True)
def check_score_files(submission_id: int) -> str:
    """Validate a score-file submission's files (a child process each, with a memory limit) and queue its
    scoring, or fail it naming the first bad line; returns the submission's status."""
    from worker.scorefiles import score_files_check_execute

    return score_files_check_execute(submission_id=submission_id)


@shared_task(name="default.scorefiles.score", acks_late=True, reject_on_worker_lost=True)
def score_from_file(score_id: int) -> str:
    """Claim the ModelScore row and compute it from the model's relevance file; returns the status."""
    from worker.scorefiles import score_from_file_execute

    return score_from_file_execute(score_id=score_id)


@shared_task(name="default.scorefiles.rankings", acks_late=True, reject_on_worker_lost=True)
def recall_from_file(run_id: int) -> str:
    """Claim the RetrievalRun and compute Recall@K from the model's ranking files; returns the status."""
    from worker.scorefiles import rankings_execute

    return rankings_execute(run_id=run_id)
