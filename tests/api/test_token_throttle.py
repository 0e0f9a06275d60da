"""Bad API tokens are limited per client address, in the shared cache, and a good token is not slowed."""

import os
import subprocess
import sys

import pytest
from django.core.cache import cache
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.factories import UserFactory
from tests.integration.test_celery_worker import REPO, database_url_of_test_db

STUDIES = "/api/v1/studies/"
BAD = "Token 0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(autouse=True)
def three_per_hour(settings, db):
    """A low rate, and empty counts: Redis (CACHE_URL), unlike the database, keeps them between tests."""
    settings.PREFLAB_API_AUTH_FAILURE_RATE = "3/hour"
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def good_token(db) -> str:
    return "Token " + Token.objects.create(user=UserFactory()).key


def get(token: str, address: str = "10.0.0.1"):
    return APIClient().get(STUDIES, HTTP_AUTHORIZATION=token, REMOTE_ADDR=address)


def test_bad_tokens_are_refused_with_401_until_the_limit_then_429_with_retry_after():
    assert [get(BAD).status_code for _ in range(3)] == [401, 401, 401]
    reply = get(BAD)
    assert reply.status_code == 429
    assert reply.json() == {"detail": "Too many bad API tokens from this address. Try again in 3600 seconds."}
    assert reply["Retry-After"] == "3600"


def test_past_the_limit_even_a_good_token_from_that_address_waits(good_token):
    for _ in range(3):
        get(BAD)
    assert get(good_token).status_code == 429  # or the limit would only change the answer to a wrong guess
    assert get(good_token, address="10.0.0.2").status_code == 200


def test_a_good_token_is_never_counted_however_often_it_is_used(good_token):
    assert {get(good_token).status_code for _ in range(10)} == {200}
    assert get(BAD).status_code == 401


def test_a_malformed_token_header_counts_as_a_bad_token(db):
    for _ in range(3):
        assert APIClient().get(STUDIES, HTTP_AUTHORIZATION="Token", REMOTE_ADDR="10.0.0.1").status_code == 401
    assert get(BAD).status_code == 429


def test_a_browser_session_never_meets_the_token_limit(client, db):
    for _ in range(3):
        get(BAD, address="127.0.0.1")
    client.force_login(UserFactory())
    assert client.get(STUDIES).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_the_count_is_shared_by_separate_processes_as_by_gunicorn_workers(good_token):
    """Failures counted here refuse a good token in another Python process on the same database and cache."""
    address = "10.7.7.7"
    script = (
        "import django; django.setup(); from django.conf import settings; "
        "settings.PREFLAB_API_AUTH_FAILURE_RATE = '3/hour'; "
        "from rest_framework.test import APIClient; "
        f"print(APIClient().get({STUDIES!r}, HTTP_AUTHORIZATION={good_token!r}, REMOTE_ADDR={address!r}).status_code)"
    )
    env = {**os.environ, "DATABASE_URL": database_url_of_test_db(), "DEBUG": "1", "DJANGO_SETTINGS_MODULE": "annotate.settings"}

    def other_process() -> str:
        result = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip().splitlines()[-1]

    for _ in range(3):
        assert get(BAD, address=address).status_code == 401
    assert other_process() == "429"
