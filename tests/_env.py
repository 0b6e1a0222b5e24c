"""Test environment, loaded as a pytest plugin before Django's settings are read.

The suite runs on the real services: PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379,
unless DATABASE_URL / CELERY_BROKER_URL say otherwise. Every run gets its own Redis key prefix
and its own scratch folder for media and data, so runs never see each other's messages or files.
"""

import os
import tempfile
import uuid

_run = uuid.uuid4().hex[:8]
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
os.environ.setdefault("CELERY_BROKER_KEY_PREFIX", f"hpbench-test-{_run}:")
os.environ.setdefault("HPBENCH_VAR_DIR", tempfile.mkdtemp(prefix=f"hpbench-test-{_run}-"))
os.environ.setdefault("HPBENCH_TEST_DB_NAME", "test_hpbench")
# Hundreds of crowd identities enter from 127.0.0.1 in one run: no per-IP entry limit, except in the tests of it
# (tests/annotate/test_crowd.py turns it on, with IPs of their own).
os.environ.setdefault("HPBENCH_CROWD_NEW_PER_IP_HOUR", "0")
# Workers do not reap on their own (beat never runs in the suite): a test's rows stay as the test set them,
# except in the tests of that fallback (tests/worker/test_lost_workers.py turns it on for its workers).
os.environ.setdefault("HPBENCH_WORKER_REAPS", "0")
# pytest-django's live_server with Playwright's sync API (see ../shared/FACTS.md).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
