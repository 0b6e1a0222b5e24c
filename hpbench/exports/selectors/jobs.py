"""Export jobs, fetched through the access checks (staff only) in one place."""

from __future__ import annotations

from django.db.models import QuerySet


class JobNotFound(Exception):
    """No such job for this caller (non-staff callers never see any)."""


def _is_staff(user) -> bool:
    return bool(user is not None and user.is_authenticated and user.is_active and user.is_staff)


def export_jobs_for_user(user) -> QuerySet:
    """Jobs the caller may see: all of them for staff, none for anyone else."""
    from hpbench.exports.models import ExportJob

    qs = ExportJob.objects.select_related("requested_by").order_by("-created_at")
    return qs if _is_staff(user) else qs.none()


def export_job_get_for_user(user, job_id: int):
    """The job, for staff; raises :class:`JobNotFound` otherwise."""
    job = export_jobs_for_user(user).filter(pk=job_id).first()
    if job is None:
        raise JobNotFound(job_id)
    return job


def export_job_for_download(user, token: str):
    """The finished job with this token whose file exists, for staff; raises :class:`JobNotFound` otherwise
    (wrong token, not staff, not finished, file gone)."""
    import os

    from hpbench import media
    from hpbench.exports.models import ExportJob

    if not token or len(token) > 64:
        raise JobNotFound(token)
    job = export_jobs_for_user(user).filter(token=token, status=ExportJob.Status.FINISHED).first()
    if job is None or not job.file_path:
        raise JobNotFound(token)
    # A media storage name; jobs finished before exports went through the storage kept an absolute path.
    exists = os.path.isfile(job.file_path) if os.path.isabs(job.file_path) else media.storage().exists(job.file_path)
    if not exists:
        raise JobNotFound(token)
    return job
