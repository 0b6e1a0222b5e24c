"""Where media lives: Django's ``STORAGES`` built from environment variables (read while settings load).

``HPBENCH_STORAGE=filesystem`` (the default) keeps media under ``HPBENCH_MEDIA_ROOT``: the web server and every
worker must then see that folder (one machine, or a shared volume mounted at the same path everywhere).
``HPBENCH_STORAGE=s3`` keeps it in a bucket of an S3-compatible object store (django-storages' ``S3Storage``);
each machine then needs only the bucket's address and credentials, and ``HPBENCH_MEDIA_ROOT`` is private to it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ImproperlyConfigured

BACKENDS = ("filesystem", "s3")
S3_BACKEND = "storages.backends.s3.S3Storage"
STATICFILES = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}


def storages_from_env(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The ``STORAGES`` setting for ``env`` (default ``os.environ``).

    Variables: ``HPBENCH_STORAGE`` (``filesystem`` or ``s3``); for ``s3``: ``AWS_STORAGE_BUCKET_NAME`` (required),
    ``AWS_S3_ENDPOINT_URL`` (a MinIO, Ceph, R2 or other S3-compatible server; unset for AWS),
    ``AWS_S3_REGION_NAME``, ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` (unset: boto3's own chain, such as
    an instance role) and ``AWS_LOCATION`` (a key prefix inside the bucket). Raises ``ImproperlyConfigured``
    naming the variable that is wrong.
    """
    env = os.environ if env is None else env
    backend = (env.get("HPBENCH_STORAGE") or "filesystem").strip().lower()
    if backend == "filesystem":
        return {
            # No location: it follows MEDIA_ROOT (HPBENCH_MEDIA_ROOT).
            "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
            "staticfiles": STATICFILES,
        }
    if backend != "s3":
        raise ImproperlyConfigured(
            f"HPBENCH_STORAGE={env.get('HPBENCH_STORAGE')!r}: use one of {', '.join(BACKENDS)}"
        )
    bucket = (env.get("AWS_STORAGE_BUCKET_NAME") or "").strip()
    if not bucket:
        raise ImproperlyConfigured("HPBENCH_STORAGE=s3 needs AWS_STORAGE_BUCKET_NAME (the bucket that holds media)")
    endpoint = (env.get("AWS_S3_ENDPOINT_URL") or "").strip() or None
    if endpoint is not None and not endpoint.startswith(("http://", "https://")):
        raise ImproperlyConfigured(f"AWS_S3_ENDPOINT_URL={endpoint!r}: expected an http:// or https:// URL")
    options: dict[str, Any] = {
        "bucket_name": bucket,
        "endpoint_url": endpoint,
        "region_name": (env.get("AWS_S3_REGION_NAME") or "").strip() or None,
        "location": (env.get("AWS_LOCATION") or "").strip().strip("/"),
        # Media is private (checkpoints, exports): no public ACL, and the web process streams every download
        # itself after its own access checks, so no presigned URL is ever handed out.
        "default_acl": None,
        "querystring_auth": True,
        # A worker rewrites the same names (an embedding store, a run's top-K file): replace, never rename.
        "file_overwrite": True,
    }
    if env.get("AWS_ACCESS_KEY_ID"):
        options["access_key"] = env["AWS_ACCESS_KEY_ID"]
        options["secret_key"] = env.get("AWS_SECRET_ACCESS_KEY") or ""
    return {"default": {"BACKEND": S3_BACKEND, "OPTIONS": options}, "staticfiles": STATICFILES}
