"""Production settings: HTTPS, HSTS, secure cookies and the proxy header from the environment, on when DEBUG is
off; ``manage.py check --deploy`` clean with the README's production example."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

from annotate import identity
from tests.annotate.conftest import enter, make_campaign, make_world

ROOT = Path(__file__).resolve().parents[2]
SECRET = "s" * 50
NAMES = ["SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD",
         "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SECURE_PROXY_SSL_HEADER"]


def _clean_env(**env: str) -> dict[str, str]:
    drop = {"DEBUG", "SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL", "CACHE_URL", "ALLOWED_HOSTS", *NAMES,
            "DJANGO_ALLOW_ASYNC_UNSAFE"}  # the test environment's, which production must not have
    return {k: v for k, v in os.environ.items() if k not in drop} | {"DJANGO_SETTINGS_MODULE": "hpbench.settings"} | env


def _settings(**env: str) -> dict:
    code = ("import django, json; django.setup(); from django.conf import settings as s; "
            f"print(json.dumps({{n: getattr(s, n) for n in {NAMES!r}}}))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_clean_env(**env), capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    import json

    return json.loads(result.stdout.strip().splitlines()[-1])


def test_https_settings_are_on_when_debug_is_off_and_off_in_development():
    assert _settings(DEBUG="false", SECRET_KEY=SECRET) == {
        "SECURE_SSL_REDIRECT": True, "SECURE_HSTS_SECONDS": 31536000, "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        "SECURE_HSTS_PRELOAD": True, "SESSION_COOKIE_SECURE": True, "CSRF_COOKIE_SECURE": True,
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
    }
    assert _settings(DEBUG="true") == {
        "SECURE_SSL_REDIRECT": False, "SECURE_HSTS_SECONDS": 0, "SECURE_HSTS_INCLUDE_SUBDOMAINS": False,
        "SECURE_HSTS_PRELOAD": False, "SESSION_COOKIE_SECURE": False, "CSRF_COOKIE_SECURE": False,
        "SECURE_PROXY_SSL_HEADER": None,
    }


def test_each_https_setting_can_be_set_from_the_environment():
    values = _settings(DEBUG="false", SECRET_KEY=SECRET, SECURE_SSL_REDIRECT="off", SECURE_HSTS_SECONDS="600",
                       SECURE_HSTS_PRELOAD="no", SECURE_HSTS_INCLUDE_SUBDOMAINS="0", SESSION_COOKIE_SECURE="false",
                       CSRF_COOKIE_SECURE="false", SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_SCHEME, https")
    assert values == {
        "SECURE_SSL_REDIRECT": False, "SECURE_HSTS_SECONDS": 600, "SECURE_HSTS_INCLUDE_SUBDOMAINS": False,
        "SECURE_HSTS_PRELOAD": False, "SESSION_COOKIE_SECURE": False, "CSRF_COOKIE_SECURE": False,
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_SCHEME", "https"],
    }
    assert _settings(DEBUG="false", SECRET_KEY=SECRET, SECURE_PROXY_SSL_HEADER="")["SECURE_PROXY_SSL_HEADER"] is None


@pytest.mark.parametrize(
    "env, message",
    [
        ({"SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto"}, "'X-Forwarded-Proto' is not HEADER,value"),
        ({"SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto,https"}, "SECURE_PROXY_SSL_HEADER='X-Forwarded-Proto,https'"),
        ({"SECURE_HSTS_SECONDS": "a year"}, "SECURE_HSTS_SECONDS='a year' is not a whole number"),
        ({"SECURE_SSL_REDIRECT": "sometimes"}, "SECURE_SSL_REDIRECT='sometimes' is not a boolean"),
        ({"HPBENCH_LOGIN_FAILURE_LIMIT": "0"}, "HPBENCH_LOGIN_FAILURE_LIMIT=0 must be at least 1"),
        ({"HPBENCH_HEARTBEAT_SECONDS": "60", "HPBENCH_HEARTBEAT_TIMEOUT": "90"}, "HPBENCH_HEARTBEAT_TIMEOUT=90 must"),
    ],
)
def test_bad_values_stop_start_up_naming_the_variable(env, message):
    result = subprocess.run([sys.executable, "-c", "import django; django.setup()"], cwd=ROOT,
                            env=_clean_env(DEBUG="false", SECRET_KEY=SECRET, **env), capture_output=True, text=True,
                            timeout=60)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and message in result.stderr


def _readme_production_env() -> dict[str, str]:
    """The variables the README's production example exports (SECRET_KEY: a value of the kind it generates)."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Production", 1)[1].split("\n## ", 1)[0]
    env: dict[str, str] = {}
    for line in section.splitlines():
        if line.startswith("export "):
            for word in shlex.split(line.split("#", 1)[0])[1:]:
                name, _, value = word.partition("=")
                env[name] = value
    assert {"DEBUG", "SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL"} <= set(env), env
    import secrets

    env["SECRET_KEY"] = secrets.token_urlsafe(48)
    return env


def test_check_deploy_is_clean_with_the_readme_production_example():
    env = _readme_production_env()
    assert env["DEBUG"] == "false"
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy"], cwd=ROOT, env=_clean_env(**env),
                            capture_output=True, text=True, timeout=120)
    issues = re.findall(r"^\S*: \(([\w.]+)\)", result.stdout + result.stderr, flags=re.MULTILINE)
    assert issues == [], result.stderr  # the OpenAPI schema's checks (drf_spectacular.*) included
    assert "System check identified" in result.stdout + result.stderr  # the check did run


@pytest.mark.django_db
def test_plain_http_is_redirected_and_https_answers_with_hsts_and_secure_cookies(settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 3600
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.CSRF_COOKIE_SECURE = True
    plain = Client().get("/accounts/login/")
    assert plain.status_code == 301 and plain["Location"] == "https://testserver/accounts/login/"
    assert Client().get("/healthz").status_code != 301  # load balancers probe over plain HTTP

    proxied = Client().get("/accounts/login/", HTTP_X_FORWARDED_PROTO="https")
    assert proxied.status_code == 200
    assert proxied["Strict-Transport-Security"].startswith("max-age=3600")
    assert proxied.cookies["csrftoken"]["secure"] is True


@pytest.mark.django_db
def test_the_annotators_cookie_is_secure_when_session_cookies_are(settings):
    settings.SESSION_COOKIE_SECURE = True
    client = Client()
    enter(client, make_campaign(make_world()))
    assert client.cookies[identity.COOKIE]["secure"] is True
