"""Settings come from the environment and refuse bad values loudly."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from annotate.settings import env_bool, parse_cache_url, parse_database_url

REPO = Path(__file__).resolve().parents[1]


def test_a_postgres_url_becomes_a_psycopg_database_entry():
    db = parse_database_url("postgres://alice:s%40cret@db.example:6543/preflab?sslmode=require")
    assert db["ENGINE"] == "django.db.backends.postgresql"
    assert (db["NAME"], db["USER"], db["PASSWORD"], db["HOST"], db["PORT"]) == (
        "preflab",
        "alice",
        "s@cret",
        "db.example",
        "6543",
    )
    assert db["OPTIONS"] == {"sslmode": "require", "server_side_binding": True, "prepare_threshold": 5}


def test_prepared_statements_can_be_tuned_or_turned_off_in_the_url():
    options = parse_database_url("postgres://db/x?prepare_threshold=off&server_side_binding=false")["OPTIONS"]
    assert options == {"server_side_binding": False, "prepare_threshold": None}
    assert parse_database_url("postgres://db/x?prepare_threshold=0")["OPTIONS"]["prepare_threshold"] == 0


def test_a_sqlite_url_names_its_file():
    assert parse_database_url("sqlite:////tmp/x.sqlite3")["NAME"] == "/tmp/x.sqlite3"


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("mysql://root@localhost/x", "unsupported scheme 'mysql'"),
        ("postgres://localhost:5432/", "names no database"),
        ("postgres://localhost:notaport/x", "port that is not a number"),
        ("sqlite://", "names no SQLite file"),
        ("postgres://db/x?prepare_threshold=soon", "prepare_threshold='soon' is not a whole number or off"),
        ("postgres://db/x?server_side_binding=maybe", "server_side_binding='maybe' is not true or false"),
    ],
)
def test_a_bad_database_url_is_refused_saying_what_is_wrong(url, complaint):
    with pytest.raises(ImproperlyConfigured, match=complaint):
        parse_database_url(url)


def test_the_shared_cache_is_the_database_unless_a_redis_url_is_given():
    assert parse_cache_url("")["BACKEND"] == "django.core.cache.backends.db.DatabaseCache"
    redis = parse_cache_url("redis://redis:6379/1")
    assert redis == {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://redis:6379/1"}
    # Process memory would give each gunicorn worker its own counts.
    with pytest.raises(ImproperlyConfigured, match="CACHE_URL='locmem://': unsupported scheme 'locmem'"):
        parse_cache_url("locmem://")


def test_a_boolean_that_is_neither_yes_nor_no_is_refused(monkeypatch):
    monkeypatch.setenv("SOME_FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="SOME_FLAG='maybe' is not a boolean"):
        env_bool("SOME_FLAG", False)


def start_django(**env) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY", "CELERY_BROKER_URL"}}
    return subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=REPO, env={**clean, **env}, capture_output=True, text=True, timeout=60
    )


def test_production_mode_without_a_secret_key_refuses_to_start():
    result = start_django(DEBUG="0")
    assert result.returncode != 0
    # One line that says what to set, not a traceback to read through.
    assert result.stderr.strip().splitlines() == [
        "Preflab cannot start: SECRET_KEY is not set. Set it (any long random string), or set DEBUG=1 for local use."
    ]


def test_an_unknown_broker_scheme_refuses_to_start():
    result = start_django(DEBUG="1", CELERY_BROKER_URL="kafka://localhost")
    assert result.returncode != 0
    assert "CELERY_BROKER_URL='kafka://localhost'" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unknown_study_creators_value_refuses_to_start_naming_the_choices():
    result = start_django(DEBUG="1", PREFLAB_STUDY_CREATORS="everyone")
    assert result.returncode != 0
    assert "PREFLAB_STUDY_CREATORS='everyone': use staff or all." in result.stderr
    assert "Traceback" not in result.stderr


def test_a_bad_api_failure_rate_refuses_to_start_saying_what_a_rate_looks_like():
    result = start_django(DEBUG="1", PREFLAB_API_AUTH_FAILURE_RATE="lots")
    assert result.returncode != 0
    assert "PREFLAB_API_AUTH_FAILURE_RATE='lots' is not a rate such as 20/hour" in result.stderr
    assert "Traceback" not in result.stderr


def security_settings(**env) -> dict:
    """What the settings module makes of these variables, read in a fresh process."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PREFLAB_") or k == "PREFLAB_VAR_DIR"}
    script = (
        "import json; from annotate import settings as s; print(json.dumps({"
        "'proxy_header': getattr(s, 'SECURE_PROXY_SSL_HEADER', None), 'num_proxies': s.REST_FRAMEWORK['NUM_PROXIES'], "
        "'hsts': getattr(s, 'SECURE_HSTS_SECONDS', 0), 'secure_cookies': getattr(s, 'SESSION_COOKIE_SECURE', False), "
        "'failure_limit': s.AXES_FAILURE_LIMIT, 'cool_off_minutes': s.AXES_COOLOFF_TIME.total_seconds() / 60}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, env={**clean, "DEBUG": "1", **env}, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_by_default_no_proxy_header_is_trusted_and_nothing_assumes_https():
    assert security_settings() == {
        "proxy_header": None,
        "num_proxies": 0,
        "hsts": 0,
        "secure_cookies": False,
        "failure_limit": 10,
        "cool_off_minutes": 15,
    }


def test_https_a_proxy_and_the_login_limits_come_from_the_environment():
    assert security_settings(
        PREFLAB_HTTPS="1", PREFLAB_PROXY_COUNT="1", PREFLAB_LOGIN_FAILURE_LIMIT="4", PREFLAB_LOGIN_COOLOFF_MINUTES="30"
    ) == {
        "proxy_header": ["HTTP_X_FORWARDED_PROTO", "https"],
        "num_proxies": 1,
        "hsts": 365 * 24 * 60 * 60,
        "secure_cookies": True,
        "failure_limit": 4,
        "cool_off_minutes": 30,
    }


def test_a_complete_environment_passes_djangos_checks():
    result = start_django(DEBUG="0", SECRET_KEY="x" * 50)
    assert result.returncode == 0, result.stderr


def test_a_sqlite_too_old_for_returning_refuses_to_start_saying_so(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    script = (
        "import sqlite3; sqlite3.sqlite_version_info = (3, 31, 1); sqlite3.sqlite_version = '3.31.1'; import annotate.settings"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        env={**env, "DEBUG": "1", "PREFLAB_VAR_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "needs SQLite 3.35 or newer; this Python has 3.31.1" in result.stderr


def celery_settings(tmp_path, **env) -> dict:
    clean = {k: v for k, v in os.environ.items() if k not in {"CELERY_BROKER_URL", "PREFLAB_RUN_STALE_SECONDS"}}
    script = (
        "import json; from annotate import settings as s; print(json.dumps({'options': s.CELERY_BROKER_TRANSPORT_OPTIONS,"
        " 'sweep': s.CELERY_BEAT_SCHEDULE['requeue-lost-runs'], 'state': s.CELERY_BEAT_SCHEDULE_FILENAME}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        env={**clean, "DEBUG": "1", "PREFLAB_VAR_DIR": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_sweep_runs_twice_per_stale_time_and_redis_redelivers_only_long_after_it(tmp_path):
    """A lost run comes back through the sweep; Redis's own redelivery must not hand a live job out again sooner."""
    default = celery_settings(tmp_path, CELERY_BROKER_URL="redis://127.0.0.1:6379/0")
    assert default["sweep"]["task"] == "annotate.tasks.requeue_lost_runs"
    assert default["sweep"]["schedule"] == 150 and default["sweep"]["options"]["expires"] == 150
    assert default["options"]["visibility_timeout"] == 6 * 3600
    slow = celery_settings(tmp_path, CELERY_BROKER_URL="redis://127.0.0.1:6379/0", PREFLAB_RUN_STALE_SECONDS="20000")
    assert slow["sweep"]["schedule"] == 10000 and slow["options"]["visibility_timeout"] == 40000
    quickstart = celery_settings(tmp_path)
    assert "visibility_timeout" not in quickstart["options"]  # the filesystem transport has none
    assert quickstart["state"] == str(tmp_path / "celerybeat-schedule")
