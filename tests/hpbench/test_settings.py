"""Settings fail loudly on bad environment values (each case in a fresh interpreter)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load_settings(**env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY", "DATABASE_URL",
                                                             "CELERY_BROKER_URL", "ALLOWED_HOSTS"}}
    clean.update(env)
    code = ("import django; django.setup(); from django.conf import settings as s; "
            "print(s.DATABASES['default']['ENGINE'], s.CELERY_BROKER_URL, s.DEBUG, ','.join(s.ALLOWED_HOSTS))")
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**clean, "DJANGO_SETTINGS_MODULE":
                          "hpbench.settings"}, capture_output=True, text=True, timeout=60)


def test_the_embedded_default_is_sqlite_and_the_filesystem_broker(tmp_path):
    result = load_settings(HPBENCH_VAR_DIR=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[:3] == ["django.db.backends.sqlite3", "filesystem://", "True"]


def test_production_settings_come_from_the_environment():
    result = load_settings(DEBUG="off", SECRET_KEY="x" * 50, DATABASE_URL="postgres://u@db:5432/hp",
                           CELERY_BROKER_URL="redis://cache:6379/2", ALLOWED_HOSTS="hp.example.org, api.example.org")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["django.db.backends.postgresql", "redis://cache:6379/2", "False",
                                     "hp.example.org,api.example.org"]


@pytest.mark.parametrize(
    "env, message",
    [
        ({"DEBUG": "0"}, "SECRET_KEY must be set"),
        ({"DEBUG": "false", "SECRET_KEY": "short"}, "SECRET_KEY must be set"),
        ({"DEBUG": "maybe"}, "DEBUG='maybe' is not a boolean"),
        ({"DATABASE_URL": "nosuchdb://x"}, "DATABASE_URL='nosuchdb://x' cannot be parsed"),
        ({"CELERY_BROKER_URL": "amqp://guest@localhost//"}, "CELERY_BROKER_URL='amqp://guest@localhost//'"),
        ({"HPBENCH_BATCH_SIZE": "many"}, "HPBENCH_BATCH_SIZE='many' is not a whole number"),
        ({"HPBENCH_BATCH_SIZE": "0"}, "HPBENCH_BATCH_SIZE=0 must be at least 1"),
    ],
)
def test_bad_values_stop_start_up_with_a_message_naming_the_variable(env, message):
    result = load_settings(**env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and message in result.stderr


@pytest.mark.parametrize(
    "cache_url, engine",
    [
        ("", "django.contrib.sessions.backends.db"),
        ("redis://cache:6379/1", "django.contrib.sessions.backends.cached_db"),
    ],
)
def test_sessions_are_cached_only_in_a_cache_every_web_process_shares(cache_url, engine):
    # A per-process memory cache would go stale: a logout in one gunicorn process unseen by the others.
    clean = {k: v for k, v in os.environ.items() if k != "CACHE_URL"}
    code = "import django; django.setup(); from django.conf import settings as s; print(s.SESSION_ENGINE)"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                            env={**clean, "CACHE_URL": cache_url, "DJANGO_SETTINGS_MODULE": "hpbench.settings"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == engine
