"""hpbench settings: one module, configured by environment variables.

With no environment set, hpbench runs embedded: SQLite under ``var/`` and a real Celery worker on
kombu's filesystem broker (no servers to install). Production and the test suite set
``DATABASE_URL`` (PostgreSQL) and ``CELERY_BROKER_URL`` (Redis).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from hpbench.env import env_bool, env_header, env_int, env_list, env_networks, env_path, env_str
from hpbench.storage_config import storages_from_env

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = env_path("HPBENCH_VAR_DIR", BASE_DIR / "var")

DEBUG = env_bool("DEBUG", True)

_DEV_SECRET_KEY = "hpbench-development-only-secret-key-do-not-use-in-production"
SECRET_KEY = env_str("SECRET_KEY", _DEV_SECRET_KEY) or ""
if not DEBUG and (SECRET_KEY == _DEV_SECRET_KEY or len(SECRET_KEY) < 32):
    raise ImproperlyConfigured(
        "SECRET_KEY must be set to a random value of at least 32 characters when DEBUG is off"
    )

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "axes",  # login attempts: locks out a username from an address after repeated failures
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served from our own static files (no CDN)
    "hpbench.catalog",
    "hpbench.leaderboard",
    "hpbench.exports",
    "hpbench.accounts",
    "annotate",
    "frontend",
    "hpbench.ops",  # above the apps: `up` and the demo it fills
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "hpbench.inputs.reject_nul_in_url_middleware",  # %00 in a URL: 400, not a database error
    "csp.middleware.CSPMiddleware",  # CONTENT_SECURITY_POLICY below: no inline script or style
    "hpbench.leaderboard.uploads.upload_limit_middleware",  # 413 for oversized checkpoint uploads, body unread
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "annotate.identity.middleware",  # the signed cookie of the annotators a browser entered as
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # answers a locked-out login with 429
    "hpbench.errors.database_unavailable_middleware",  # a connection that broke mid-request: 503, not 500
]
# The annotators' next-task and vote requests, and their images, run through a shorter stack: see
# hpbench/handlers.py, which finds these routes by name in the URL conf at start-up (an unknown name stops it).
# The API views check the CSRF token themselves; the images are plain GETs.
HOT_ROUTES = ["annotate:next-task", "annotate:vote", "campaign-image"]
HOT_PATH_MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "hpbench.handlers.content_length_middleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "annotate.identity.middleware",
    "hpbench.errors.database_unavailable_middleware",
]

ROOT_URLCONF = "hpbench.urls"
WSGI_APPLICATION = "hpbench.wsgi.application"
ASGI_APPLICATION = "hpbench.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
_DEFAULT_DATABASE_URL = f"sqlite:///{VAR_DIR / 'hpbench.sqlite3'}"
DATABASE_URL = env_str("DATABASE_URL", _DEFAULT_DATABASE_URL) or _DEFAULT_DATABASE_URL
try:
    # Health checks: a kept connection the database dropped while idle (restart, pg_terminate_backend, a
    # proxy's timeout) is replaced at the start of the next request instead of failing it.
    DATABASES = {"default": dj_database_url.parse(
        DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 0, minimum=0), conn_health_checks=True,
    )}
except (ValueError, dj_database_url.UnknownSchemeError) as exc:
    raise ImproperlyConfigured(f"DATABASE_URL={DATABASE_URL!r} cannot be parsed: {exc}") from None
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web process and the worker share the file: take the write lock when a transaction starts (no
    # deadlocked lock upgrades), wait for it instead of failing at once, and let readers run beside a writer.
    DATABASES["default"].setdefault("OPTIONS", {}).update({
        "timeout": 30, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;",
    })
_test_db_name = env_str("HPBENCH_TEST_DB_NAME")
if _test_db_name:
    DATABASES["default"]["TEST"] = {"NAME": _test_db_name}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache and sessions -----------------------------------------------------------------------
# With CACHE_URL=redis://host:6379/1 (shared by every web process), sessions are read from the cache and
# written through to the database. Without it sessions are read from the database: a per-process memory
# cache would go stale (a logout in one gunicorn process would go unseen by the others). Crowd workers have
# no session at all: a signed cookie says who they are (annotate/identity.py).
CACHE_URL = env_str("CACHE_URL", "") or ""
if CACHE_URL.startswith(("redis://", "rediss://")):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL,
                          "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "hpbench") or "hpbench"}}
elif CACHE_URL:
    raise ImproperlyConfigured(f"CACHE_URL={CACHE_URL!r}: use redis://host:port/db, or leave it unset")
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
SESSION_ENGINE = f"django.contrib.sessions.backends.{'cached_db' if CACHE_URL else 'db'}"

# --- HTTPS (on by default when DEBUG is off: production runs behind HTTPS) -----------------------
_HTTPS = not DEBUG
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", _HTTPS)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # load balancers probe over plain HTTP
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 365 * 24 * 3600 if _HTTPS else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", _HTTPS)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", _HTTPS)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", _HTTPS)  # also the annotators' cookie (annotate/identity.py)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", _HTTPS)
# The header the TLS-terminating proxy sets (and overwrites) to say the request came over HTTPS; empty = none.
SECURE_PROXY_SSL_HEADER = env_header("SECURE_PROXY_SSL_HEADER", ("HTTP_X_FORWARDED_PROTO", "https") if _HTTPS else None)

# --- Login attempts (django-axes: admin and /accounts/login/) ----------------------------------------
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = env_int("HPBENCH_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("HPBENCH_LOGIN_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]  # one address cannot lock a user out everywhere
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "annotate.crowd.client_ip"  # REMOTE_ADDR, or HPBENCH_CLIENT_IP_HEADER behind a proxy
AXES_VERBOSE = False  # no start-up banner on every command

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Files ----------------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
MEDIA_ROOT = env_path("HPBENCH_MEDIA_ROOT", VAR_DIR / "media")
MEDIA_URL = "/media/"
# Media (uploads, embeddings, top-K files, exports) goes through Django's storage API: a folder, or an
# S3-compatible bucket shared by the web server and every worker (hpbench/storage_config.py, README).
STORAGES = storages_from_env()
# A worker's own copies of what it reads repeatedly from a remote storage (checkpoints, embedding stores).
HPBENCH_WORKER_CACHE = env_path("HPBENCH_WORKER_CACHE", VAR_DIR / "worker-cache")
HPBENCH_DATA_ROOT = env_path("HPBENCH_DATA_ROOT", VAR_DIR / "data")
HPBENCH_MAX_CHECKPOINT_BYTES = env_int("HPBENCH_MAX_CHECKPOINT_BYTES", 2 * 1024**3, minimum=1)
# Score files: the web process checks name, size and a Parquet file's metadata; a worker validates the rows in a
# child process limited to HPBENCH_SCORE_CHECK_MEMORY_BYTES of address space and HPBENCH_SCORE_CHECK_SECONDS.
HPBENCH_MAX_SCORE_FILE_BYTES = env_int("HPBENCH_MAX_SCORE_FILE_BYTES", 64 * 1024**2, minimum=1)
HPBENCH_SCORE_CHECK_MEMORY_BYTES = env_int("HPBENCH_SCORE_CHECK_MEMORY_BYTES", 2 * 1024**3, minimum=512 * 1024**2)
HPBENCH_SCORE_CHECK_SECONDS = env_int("HPBENCH_SCORE_CHECK_SECONDS", 300, minimum=10)
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
# The first handler stops an upload once it passes HPBENCH_MAX_CHECKPOINT_BYTES (hpbench/leaderboard/uploads.py).
FILE_UPLOAD_HANDLERS = [
    "hpbench.leaderboard.uploads.CappedUploadHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]
HPBENCH_MAX_SAFETENSORS_HEADER_BYTES = env_int("HPBENCH_MAX_SAFETENSORS_HEADER_BYTES", 8 * 1024**2, minimum=1024)

# --- Celery ---------------------------------------------------------------------------------
_BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://") or "filesystem://"
CELERY_TASK_HARD_TIME_LIMIT = env_int("CELERY_TASK_HARD_TIME_LIMIT", 6 * 3600, minimum=10)
CELERY_TASK_SOFT_TIME_LIMIT = env_int(
    "CELERY_TASK_SOFT_TIME_LIMIT", CELERY_TASK_HARD_TIME_LIMIT - 60, minimum=5
)
if CELERY_TASK_SOFT_TIME_LIMIT >= CELERY_TASK_HARD_TIME_LIMIT:
    raise ImproperlyConfigured("CELERY_TASK_SOFT_TIME_LIMIT must be below CELERY_TASK_HARD_TIME_LIMIT")
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_BROKER_DIR / "queue"),
        "data_folder_out": str(_BROKER_DIR / "queue"),
        "processed_folder": str(_BROKER_DIR / "processed"),
        "control_folder": str(_BROKER_DIR / "control"),
        "store_processed": False,
    }
elif CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # How long an unacknowledged message (a job whose worker was SIGKILLed) waits before Redis hands it out
        # again. Jobs need not wait for it: the reaper requeues a job once its heartbeat stops. A copy delivered
        # while the job still runs finds the claim held and does nothing, so this can be shorter than a job.
        "visibility_timeout": env_int("CELERY_BROKER_VISIBILITY_TIMEOUT", 3600, minimum=60),
        # Each test run (or deployment) can isolate its keys on a shared Redis.
        "global_keyprefix": env_str("CELERY_BROKER_KEY_PREFIX", "") or "",
    }
else:
    raise ImproperlyConfigured(
        f"CELERY_BROKER_URL={CELERY_BROKER_URL!r}: use redis://host:port/db or filesystem://"
    )
# Results are only used for small replies (health checks, tests); the work itself writes its rows.
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND") or (
    f"file://{_BROKER_DIR / 'results'}" if CELERY_BROKER_URL.startswith("filesystem://") else CELERY_BROKER_URL
)
CELERY_RESULT_EXPIRES = 24 * 3600
CELERY_TASK_ALWAYS_EAGER = False
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = CELERY_TASK_HARD_TIME_LIMIT
CELERY_TASK_DEFAULT_QUEUE = "default"
# GPU work (retrieval, scoring, training) is named "gpu.*" and goes to its own queue.
CELERY_TASK_ROUTES = {"gpu.*": {"queue": "gpu"}}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- Job claims and the reaper (worker/claims.py) -------------------------------------------------
# A running job refreshes its row's heartbeat every HPBENCH_HEARTBEAT_SECONDS; one silent for
# HPBENCH_HEARTBEAT_TIMEOUT belongs to a lost worker. `celery beat` runs the reaper every HPBENCH_REAP_SECONDS:
# it queues such jobs again (at most HPBENCH_JOB_RESTARTS times, then fails them) and fails jobs past the hard limit.
HPBENCH_HEARTBEAT_SECONDS = env_int("HPBENCH_HEARTBEAT_SECONDS", 30, minimum=1)
HPBENCH_HEARTBEAT_TIMEOUT = env_int("HPBENCH_HEARTBEAT_TIMEOUT", 180, minimum=2)
if HPBENCH_HEARTBEAT_TIMEOUT < 2 * HPBENCH_HEARTBEAT_SECONDS:
    raise ImproperlyConfigured(
        f"HPBENCH_HEARTBEAT_TIMEOUT={HPBENCH_HEARTBEAT_TIMEOUT} must be at least twice "
        f"HPBENCH_HEARTBEAT_SECONDS={HPBENCH_HEARTBEAT_SECONDS}"
    )
HPBENCH_REAP_SECONDS = env_int("HPBENCH_REAP_SECONDS", 60, minimum=1)
HPBENCH_JOB_RESTARTS = env_int("HPBENCH_JOB_RESTARTS", 2, minimum=0)
# Quality control of open campaigns (gold bar, steering test: annotate/quality.py), flagging and excluding.
HPBENCH_QUALITY_SECONDS = env_int("HPBENCH_QUALITY_SECONDS", 300, minimum=10)
# A job still queued this long after its message was sent is sent again by the reaper (a lost broker message, a
# worker that failed as it took it); a duplicate message is harmless (the claim is one conditional UPDATE).
HPBENCH_REQUEUE_QUEUED_SECONDS = env_int("HPBENCH_REQUEUE_QUEUED_SECONDS", 600, minimum=1)
# Workers reap too (a thread in each worker's main process) whenever beat has not run the reaper for three periods.
HPBENCH_WORKER_REAPS = env_bool("HPBENCH_WORKER_REAPS", True)
CELERY_BEAT_SCHEDULE = {
    "reap-lost-jobs": {
        "task": "default.jobs.reap",
        "schedule": float(HPBENCH_REAP_SECONDS),
        "options": {"expires": float(HPBENCH_REAP_SECONDS)},  # a backlog of reaps is one reap too many
    },
    "campaign-quality": {
        "task": "default.campaigns.quality",
        "schedule": float(HPBENCH_QUALITY_SECONDS),
        "options": {"expires": float(HPBENCH_QUALITY_SECONDS)},
    },
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# --- Workers and models ---------------------------------------------------------------------
HPBENCH_DEVICE = env_str("HPBENCH_DEVICE", "auto")  # auto | cpu | cuda | cuda:N
HPBENCH_BATCH_SIZE = env_int("HPBENCH_BATCH_SIZE", 64, minimum=1)
HPBENCH_TOPK = env_int("HPBENCH_TOPK", 50, minimum=1)
# The open campaign the home page invites visitors to try (``make up`` creates it); nothing shown otherwise.
HPBENCH_TRY_CAMPAIGN = env_str("HPBENCH_TRY_CAMPAIGN", "demo-try-it")
# The researcher's contact the demo campaigns show on their first screen.
HPBENCH_DEMO_CONTACT = env_str("HPBENCH_DEMO_CONTACT", "hpbench demo (no real study): see the project's README")

# --- Submissions ----------------------------------------------------------------------------
HPBENCH_SUBMISSIONS_PER_DAY = env_int("HPBENCH_SUBMISSIONS_PER_DAY", 5, minimum=1)  # every submission counts
# Files of failed and cancelled submissions are deleted this long after they ended (manage.py
# purge_submission_files; Celery beat every HPBENCH_PURGE_INTERVAL_SECONDS).
HPBENCH_FAILED_SUBMISSION_RETENTION_DAYS = env_int("HPBENCH_FAILED_SUBMISSION_RETENTION_DAYS", 7, minimum=0)
HPBENCH_PURGE_INTERVAL_SECONDS = env_int("HPBENCH_PURGE_INTERVAL_SECONDS", 3600, minimum=60)
# Datasets every submission is evaluated on, as "name" or "name:split"; empty = the datasets of active benchmarks.
HPBENCH_SUBMISSION_DATASETS = env_list("HPBENCH_SUBMISSION_DATASETS", [])

# --- Crowd entry (annotate/crowd.py) ------------------------------------------------------------
# New crowd identities per client IP and hour (0 = no limit); counted in the cache (set CACHE_URL in production).
HPBENCH_CROWD_NEW_PER_IP_HOUR = env_int("HPBENCH_CROWD_NEW_PER_IP_HOUR", 20, minimum=0)
# Behind a proxy: the header it writes the client's address to (e.g. X-Forwarded-For). It is believed only on
# requests whose REMOTE_ADDR is one of HPBENCH_TRUSTED_PROXIES (addresses or CIDRs): a client that reaches
# gunicorn directly cannot name itself. The address used is the header's last entry that is not a trusted proxy.
HPBENCH_CLIENT_IP_HEADER = env_str("HPBENCH_CLIENT_IP_HEADER", "") or ""
HPBENCH_TRUSTED_PROXIES = env_networks("HPBENCH_TRUSTED_PROXIES", [])
if HPBENCH_CLIENT_IP_HEADER and not HPBENCH_TRUSTED_PROXIES:
    raise ImproperlyConfigured(
        "HPBENCH_CLIENT_IP_HEADER is set but HPBENCH_TRUSTED_PROXIES is empty: name the proxies' addresses "
        "(e.g. 127.0.0.1 or 10.0.0.0/8), or anyone could forge the header"
    )

# --- API ------------------------------------------------------------------------------------
REST_FRAMEWORK: dict[str, Any] = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # Bounded size (413) and depth, storable text only: hpbench/parsers.py. Multipart: Django's own limits.
    "DEFAULT_PARSER_CLASSES": [
        "hpbench.parsers.JSONParser",
        "hpbench.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
}
if DEBUG:
    REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"].append("rest_framework.renderers.BrowsableAPIRenderer")
SPECTACULAR_SETTINGS = {
    "TITLE": "hpbench API",
    "DESCRIPTION": "Human-preference benchmark for composed image retrieval. Errors are JSON: `{\"detail\": ...}`, "
    "or a refused form's fields with their messages. Text anywhere (parameters, bodies) may not hold a NUL "
    "character (U+0000) or a lone surrogate: 400.",
    "VERSION": "0.1.0",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,  # request bodies as sent: an upload's file is binary, not a URL
    "SERVE_INCLUDE_SCHEMA": False,  # the schema describes the API, not itself
    # The error answers every operation may get, documented once (hpbench/openapi.py).
    "ENUM_NAME_OVERRIDES": {
        "SubmissionStatusEnum": "hpbench.leaderboard.models.Submission.Status",
        "JobStatusEnum": "hpbench.catalog.models.JobStatus",  # retrieval runs' and scores' status
    },
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "hpbench.openapi.add_common_errors"],
}

# --- Content-Security-Policy (django-csp) ----------------------------------------------------------
# Scripts and styles only from our own static files: no inline <script>, event handler or style attribute runs,
# and a javascript: link does nothing. Images may be data: URLs (Swagger UI's icons).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
# Researchers' sign-up (/accounts/signup/): off | approval (inactive until staff approve in the admin) | open.
# E-mail (password resets): set EMAIL_HOST to send it; without it the password-reset pages are not mounted.
EMAIL_HOST = env_str("EMAIL_HOST", "") or ""
EMAIL_PORT = env_int("EMAIL_PORT", 587, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "") or ""
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "") or ""
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "hpbench@localhost") or "hpbench@localhost"
HPBENCH_PASSWORD_RESET = bool(EMAIL_HOST)
HPBENCH_SIGNUP = (env_str("HPBENCH_SIGNUP", "approval") or "").strip().lower()
if HPBENCH_SIGNUP not in ("off", "approval", "open"):
    raise ImproperlyConfigured(f"HPBENCH_SIGNUP={HPBENCH_SIGNUP!r}: use off, approval or open")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"httpx": {"level": "WARNING"}, "httpcore": {"level": "WARNING"}},
}
