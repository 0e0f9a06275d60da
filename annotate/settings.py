"""Preflab settings: one file, driven by the environment, failing loudly on bad values.

Every value a deployment may change is read from an environment variable here, so that the
quickstart, CI and production run the same code with different variables.
"""

from __future__ import annotations

import os
import re
import sqlite3
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("PREFLAB_VAR_DIR", BASE_DIR / "var"))


def as_bool(value: str) -> bool | None:
    """A clear yes or no (1/0, true/false, yes/no, on/off), or None for anything else."""
    value = value.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    return None


def env_bool(name: str, default: bool) -> bool:
    """Read a boolean variable; anything but a clear yes/no is an error, not a silent False."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = as_bool(raw)
    if value is None:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean: use 1/0, true/false, yes/no or on/off.")
    return value


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer.") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name}={value} must be at least {minimum}.")
    return value


def url_bool(url: str, name: str, value: str) -> bool:
    parsed = as_bool(value)
    if parsed is None:
        raise ImproperlyConfigured(f"DATABASE_URL={url!r}: {name}={value!r} is not true or false.")
    return parsed


def url_threshold(url: str, value: str) -> int | None:
    """psycopg's prepare_threshold: runs of a statement before it is prepared, or None (off) for never."""
    if value.lower() in {"off", "none", "never"}:
        return None
    if not value.isdigit():
        raise ImproperlyConfigured(f"DATABASE_URL={url!r}: prepare_threshold={value!r} is not a whole number or off.")
    return int(value)


def parse_database_url(url: str) -> dict:
    """Turn sqlite:///path or postgres://user:pass@host:port/name into a DATABASES entry."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "sqlite":
        # sqlite:///relative/or/absolute.sqlite3 — the path after the third slash.
        path = unquote(parts.path[1:] if parts.path.startswith("/") else parts.path)
        if parts.netloc:
            raise ImproperlyConfigured(f"DATABASE_URL={url!r}: a SQLite URL has no host; use sqlite:///path.")
        if not path:
            raise ImproperlyConfigured(f"DATABASE_URL={url!r} names no SQLite file.")
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": path, "OPTIONS": {"timeout": 20}}
    if scheme in {"postgres", "postgresql", "pgsql"}:
        name = unquote(parts.path.lstrip("/"))
        if not name:
            raise ImproperlyConfigured(f"DATABASE_URL={url!r} names no database (postgres://user@host:port/NAME).")
        try:
            port = parts.port
        except ValueError:
            raise ImproperlyConfigured(f"DATABASE_URL={url!r} has a port that is not a number.") from None
        options: dict = dict(parse_qsl(parts.query))
        # Statements bound and prepared on the server: a statement run 5 times on a connection is
        # planned once, which took a third off PostgreSQL's work per label (bench/web_load.py).
        # Behind a pooler that cannot keep prepared statements (PgBouncer in transaction mode
        # before 1.21), add ?prepare_threshold=off.
        options["server_side_binding"] = url_bool(url, "server_side_binding", options.get("server_side_binding", "true"))
        options["prepare_threshold"] = url_threshold(url, options.get("prepare_threshold", "5"))
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name,
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(port or ""),
            "OPTIONS": options,
            "CONN_MAX_AGE": env_int("DATABASE_CONN_MAX_AGE", 60),
        }
    raise ImproperlyConfigured(
        f"DATABASE_URL={url!r}: unsupported scheme {scheme!r}; use sqlite:///path or postgres://user@host:port/name."
    )


def parse_cache_url(url: str) -> dict:
    """The shared cache (throttling counts live there): redis://host:port/db, or the database when unset.

    Not process memory: each gunicorn worker must see the same counts.
    """
    if not url:
        return {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "preflab_cache"}
    scheme = urlsplit(url).scheme.lower()
    if scheme in {"redis", "rediss"}:
        return {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}
    raise ImproperlyConfigured(
        f"CACHE_URL={url!r}: unsupported scheme {scheme!r}; use redis://host:port/db, or leave it unset for the database."
    )


DEBUG = env_bool("DEBUG", False)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY is not set. Set it (any long random string), or set DEBUG=1 for local use.")
    SECRET_KEY = "preflab-insecure-development-key-never-use-in-production"

ALLOWED_HOSTS = [h.strip() for h in os.environ.get("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",") if h.strip()]
if DEBUG:
    ALLOWED_HOSTS.append("testserver")
CSRF_TRUSTED_ORIGINS = [o.strip() for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "template_partials",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "axes",
    "csp",
    "annotate.apps.AnnotateConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "annotate.middleware.MethodNotAllowedPage",
    "annotate.middleware.DatabaseUnreachable",
    # Last, as django-axes asks: it turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "annotate.urls"
WSGI_APPLICATION = "annotate.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
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

DATABASE_URL = os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'preflab.sqlite3'}"
DATABASES = {"default": parse_database_url(DATABASE_URL)}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    if sqlite3.sqlite_version_info < (3, 35):  # the annotation loop's statements use RETURNING
        raise ImproperlyConfigured(
            f"Preflab needs SQLite 3.35 or newer; this Python has {sqlite3.sqlite_version}. "
            "Use a newer Python build or set DATABASE_URL to PostgreSQL."
        )
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # A file, not memory, so a worker process started by a test sees the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(Path(DATABASES["default"]["NAME"]).with_suffix(".test.sqlite3"))}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
CACHES = {"default": parse_cache_url(os.environ.get("CACHE_URL", ""))}

# django-axes first: it refuses a locked-out account or address before any password is checked.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "study-list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "staticfiles"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# Trained models, exports and converted base models live here, one folder per run.
ARTIFACTS_DIR = Path(os.environ.get("PREFLAB_ARTIFACTS_DIR", VAR_DIR / "artifacts"))
if ARTIFACTS_DIR.exists() and not ARTIFACTS_DIR.is_dir():
    raise ImproperlyConfigured(f"PREFLAB_ARTIFACTS_DIR={ARTIFACTS_DIR} exists and is not a folder.")

# Minutes an annotator holds a query before it returns to the pool.
PREFLAB_ASSIGNMENT_MINUTES = env_int("PREFLAB_ASSIGNMENT_MINUTES", 30, minimum=1)
# A running job whose worker has not sent a heartbeat for this long is presumed lost: the beat
# sweep (CELERY_BEAT_SCHEDULE below) queues it again, up to PREFLAB_RUN_MAX_ATTEMPTS claims in
# all; then the run fails.
PREFLAB_RUN_STALE_SECONDS = env_int("PREFLAB_RUN_STALE_SECONDS", 300, minimum=2)
PREFLAB_RUN_MAX_ATTEMPTS = env_int("PREFLAB_RUN_MAX_ATTEMPTS", 2, minimum=1)
# The longest text Preflab stores (a prompt, a response, a guideline, a critique), in characters.
# Larger texts are refused at import or submit, naming the line and field; see the README.
PREFLAB_MAX_TEXT_CHARS = env_int("PREFLAB_MAX_TEXT_CHARS", 100_000, minimum=1)
# Processes that train one job: "auto" is one per visible GPU (accelerate's DDP through torchrun).
PREFLAB_TRAIN_PROCESSES = os.environ.get("PREFLAB_TRAIN_PROCESSES", "auto").strip() or "auto"
if PREFLAB_TRAIN_PROCESSES != "auto":
    PREFLAB_TRAIN_PROCESSES = str(env_int("PREFLAB_TRAIN_PROCESSES", 1, minimum=1))
# Who may create studies: "staff" (Django staff users and superusers) or "all" (any logged-in user).
PREFLAB_STUDY_CREATORS = os.environ.get("PREFLAB_STUDY_CREATORS", "staff").strip() or "staff"
if PREFLAB_STUDY_CREATORS not in {"staff", "all"}:
    raise ImproperlyConfigured(f"PREFLAB_STUDY_CREATORS={PREFLAB_STUDY_CREATORS!r}: use staff or all.")
# Annotator pseudonyms in exports and training data are keyed by this secret, so one person has one
# pseudonym in every study of a deployment. Set it to keep pseudonyms when SECRET_KEY is rotated.
PREFLAB_PSEUDONYM_KEY = os.environ.get("PREFLAB_PSEUDONYM_KEY", "") or SECRET_KEY

# ---- Proxies, HTTPS and the Content-Security-Policy ----
# Reverse proxies in front of gunicorn (nginx, a load balancer). Each appends the address it saw to
# X-Forwarded-For, so the client's address is that many entries from the right, and the nearest
# says in X-Forwarded-Proto whether the client used HTTPS. At 0 (gunicorn faces the clients) both
# headers are ignored: anyone can send them, and a forged address would dodge the login lockout.
PREFLAB_PROXY_COUNT = env_int("PREFLAB_PROXY_COUNT", 0)
if PREFLAB_PROXY_COUNT:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Served over HTTPS: plain-HTTP requests are redirected, browsers are told to use HTTPS only for a
# year (HSTS, subdomains included) and cookies never travel unencrypted.
PREFLAB_HTTPS = env_bool("PREFLAB_HTTPS", False)
if PREFLAB_HTTPS:
    SECURE_SSL_REDIRECT = True
    SECURE_HSTS_SECONDS = 365 * 24 * 60 * 60
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
# HSTS preload (security.W021) puts the whole domain on the browsers' built-in list, hard to undo
# and decided by the domain's owner at hstspreload.org, not by one application's header.
SILENCED_SYSTEM_CHECKS = ["security.W021"]
# django-csp (Django 5.2 LTS has no CSP of its own; its settings match Django 6's SECURE_CSP).
# Pages load only this site's files: no inline script, style or event handler anywhere.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

# ---- Failed logins and bad API tokens ----
# django-axes keeps failed logins in the database, so every gunicorn worker sees them: this many
# failures for one username, or from one address, lock that username or address out for the
# cool-off (each further try restarts it), whatever the password.
AXES_FAILURE_LIMIT = env_int("PREFLAB_LOGIN_FAILURE_LIMIT", 10, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("PREFLAB_LOGIN_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_CLIENT_IP_CALLABLE = "annotate.throttling.client_address"
AXES_LOCKOUT_CALLABLE = "annotate.throttling.login_locked_out"
AXES_DISABLE_ACCESS_LOG = True  # failures are what count; no table of every successful login
# Bad API tokens per client address, in DRF's rate format (N/second, minute, hour or day), counted
# in the shared cache (CACHE_URL); past it every token from that address is refused with 429.
PREFLAB_API_AUTH_FAILURE_RATE = os.environ.get("PREFLAB_API_AUTH_FAILURE_RATE", "").strip() or "20/hour"
if not re.fullmatch(r"[1-9]\d*/(s|m|h|d|sec|second|min|minute|hour|day)", PREFLAB_API_AUTH_FAILURE_RATE):
    raise ImproperlyConfigured(
        f"PREFLAB_API_AUTH_FAILURE_RATE={PREFLAB_API_AUTH_FAILURE_RATE!r} is not a rate such as 20/hour "
        "(a whole number, then second, minute, hour or day)."
    )

REST_FRAMEWORK = {
    # Token first: an API client without valid credentials is told 401 with WWW-Authenticate: Token.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "annotate.api.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "annotate.api.errors.exception_handler",
    # JSON only: the browsable API's pages carry inline styles that the Content-Security-Policy refuses.
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # The client's address for throttling: the same proxies as above (0: X-Forwarded-For is ignored).
    "NUM_PROXIES": PREFLAB_PROXY_COUNT,
    # ?format= names an export format here, not a DRF renderer.
    "URL_FORMAT_OVERRIDE": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Preflab API",
    "DESCRIPTION": "Collect human feedback on language-model outputs and train models from it.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "annotate.api.schema.add_error_responses"],
    "ENUM_NAME_OVERRIDES": {
        "RunKindEnum": "annotate.models.training.RunKind",
        "HandRunKindEnum": "annotate.api.serializers.HAND_RUN_KINDS",
    },
}

# Celery: Redis in production and CI; kombu's filesystem transport for the quickstart, which
# needs no server. Both run the same tasks through the same worker. The filesystem transport
# ignores the host; naming one spares the worker's log kombu's "No hostname was supplied" warning.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or "filesystem://localhost/"
_broker_scheme = urlsplit(CELERY_BROKER_URL).scheme
if _broker_scheme not in {"redis", "rediss", "filesystem", "amqp", "memory"}:
    raise ImproperlyConfigured(
        f"CELERY_BROKER_URL={CELERY_BROKER_URL!r}: unsupported scheme {_broker_scheme!r}; use redis://host:port/db or filesystem://."
    )
CELERY_BROKER_TRANSPORT_OPTIONS: dict = {}
if _broker_scheme in {"redis", "rediss"}:
    # Redis hands an unacknowledged task (acks_late: a training job is acknowledged when it ends)
    # to another worker after the visibility timeout, whether or not its worker is still alive.
    # That is not how a lost job comes back: the beat sweep re-queues it within about
    # PREFLAB_RUN_STALE_SECONDS, on any broker. So the timeout is long, for a live job of a few
    # hours is then not delivered twice, and never under twice the stale time, for a lost job is
    # the sweep's to re-queue first. A second delivery is harmless anyway: it finds the run held
    # by a live worker (its heartbeat is fresh) and ends there.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": max(6 * 3600, 2 * PREFLAB_RUN_STALE_SECONDS)}
if _broker_scheme == "filesystem":
    _broker_dir = VAR_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
    for _folder in ("queue", "processed", "control"):
        (_broker_dir / _folder).mkdir(parents=True, exist_ok=True)
# A job is sent to its kind's queue (learning/jobs.py, by services.training.run_enqueue); every
# other task goes to `default`.
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
# Exactly one beat runs (docker-compose's `beat` service, or `-B` on the quickstart's worker). Its
# sweep looks for lost training jobs twice per stale time; a sweep not started by the time the
# next is due is dropped rather than piled up behind a busy worker.
_SWEEP_EVERY_SECONDS = PREFLAB_RUN_STALE_SECONDS / 2
CELERY_BEAT_SCHEDULE = {
    "requeue-lost-runs": {
        "task": "annotate.tasks.requeue_lost_runs",
        "schedule": _SWEEP_EVERY_SECONDS,
        "options": {"expires": _SWEEP_EVERY_SECONDS},
    }
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")  # beat's state, not the repository's
VAR_DIR.mkdir(parents=True, exist_ok=True)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}
