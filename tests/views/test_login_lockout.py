"""Failed logins lock out the username and the address they came from, for a while, whatever the password."""

import pytest
from axes.models import AccessAttempt
from django.http import HttpRequest
from django.urls import reverse

from annotate.throttling import client_address

pytestmark = pytest.mark.django_db

RIGHT = "pw-for-tests"
LIMIT = 3


@pytest.fixture(autouse=True)
def small_limit(settings):
    settings.AXES_FAILURE_LIMIT = LIMIT


def log_in(client, username: str, password: str, address: str = "10.0.0.1"):
    return client.post(reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=address)


def is_logged_in(client) -> bool:
    return client.get(reverse("study-list")).status_code == 200


def test_after_too_many_wrong_passwords_even_the_right_one_is_refused_with_a_time_to_come_back(client, annotator, settings):
    for _ in range(LIMIT - 1):
        assert log_in(client, "ana", "wrong").status_code == 200
    assert log_in(client, "ana", "wrong").status_code == 429
    reply = log_in(client, "ana", RIGHT)
    assert reply.status_code == 429
    assert reply["Retry-After"] == str(int(settings.AXES_COOLOFF_TIME.total_seconds()))
    page = reply.content.decode()
    assert "Too many failed logins for this username or from your address" in page
    assert "paused for 15 minutes. Try again after" in page and "(UTC)" in page
    assert 'name="password"' in page and 'value="ana"' in page  # the form stays, for later
    assert not is_logged_in(client)


def test_once_the_cool_off_has_passed_the_right_password_works_again(client, annotator, settings):
    for _ in range(LIMIT):
        log_in(client, "ana", "wrong")
    assert log_in(client, "ana", RIGHT).status_code == 429
    AccessAttempt.objects.update(attempt_time=AccessAttempt.objects.get().attempt_time - settings.AXES_COOLOFF_TIME)
    reply = log_in(client, "ana", RIGHT)
    assert reply.status_code == 302 and reply["Location"] == reverse("study-list")
    assert is_logged_in(client)


def test_one_address_guessing_many_usernames_is_locked_out_for_every_username(client, annotator):
    for name in ("mallory", "root", "admin"):
        log_in(client, name, "guess", address="10.0.0.9")
    assert log_in(client, "ana", RIGHT, address="10.0.0.9").status_code == 429
    assert log_in(client, "ana", RIGHT, address="10.0.0.2").status_code == 302  # the account itself is fine


def test_one_username_guessed_from_many_addresses_is_locked_out_from_every_address(client, annotator):
    for i in range(LIMIT):
        log_in(client, "ana", "guess", address=f"10.0.1.{i}")
    assert log_in(client, "ana", RIGHT, address="10.0.2.1").status_code == 429
    assert not is_logged_in(client)


def test_failures_are_kept_in_the_database_where_every_web_worker_sees_them(client, annotator, settings):
    assert settings.AXES_HANDLER == "axes.handlers.database.AxesDatabaseHandler"
    log_in(client, "ana", "wrong")
    assert AccessAttempt.objects.get().failures_since_start == 1


def request_from(remote_addr: str, forwarded_for: str | None = None) -> HttpRequest:
    request = HttpRequest()
    request.META["REMOTE_ADDR"] = remote_addr
    if forwarded_for is not None:
        request.META["HTTP_X_FORWARDED_FOR"] = forwarded_for
    return request


def test_without_proxies_a_forged_forwarded_for_header_does_not_change_the_address():
    assert client_address(request_from("203.0.113.5", "1.2.3.4")) == "203.0.113.5"


def test_behind_one_proxy_the_address_is_the_one_that_proxy_saw(settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    # The client forged the first entry; the proxy appended the address it really saw.
    assert client_address(request_from("172.18.0.3", "1.2.3.4, 198.51.100.7")) == "198.51.100.7"


def test_a_forged_forwarded_for_header_does_not_dodge_the_lockout(client, annotator):
    for i in range(LIMIT):
        forged = {"HTTP_X_FORWARDED_FOR": f"1.1.1.{i}"}
        client.post(reverse("login"), {"username": f"u{i}", "password": "x"}, REMOTE_ADDR="10.0.0.9", **forged)
    assert log_in(client, "ana", RIGHT, address="10.0.0.9").status_code == 429
