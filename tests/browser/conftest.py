"""Playwright driving Debian's Chromium against pytest-django's live server.

The browser is the system's (`apt-get install chromium`), never one Playwright downloads. Where
it or the playwright package is missing these tests skip, saying why; `.ci/run` installs both
and sets PREFLAB_REQUIRE_BROWSER=1, which turns the skip into a failure.

Set PREFLAB_SCREENSHOTS=/some/folder to save a screenshot of each workspace the tests reach.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("PREFLAB_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1440, "height": 1000}


def unavailable(reason: str):
    if os.environ.get("PREFLAB_REQUIRE_BROWSER"):
        pytest.fail(f"{reason}, and PREFLAB_REQUIRE_BROWSER is set", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="package")
def browser():
    """One Chromium for the browser tests, closed (and the ORM's async guard restored) after the last."""
    if not CHROMIUM.exists():
        unavailable(f"{CHROMIUM} is absent: install Debian's chromium (apt-get install chromium) to run the browser tests")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the playwright package is not installed (pip install -e '.[dev]')")
    # Playwright's sync API keeps an event loop running in this thread from here on; the ORM
    # calls the tests make (and pytest-django's database setup) are plain synchronous calls,
    # which Django refuses where a loop is running unless told otherwise.
    before = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        if before is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = before


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server.url, viewport=VIEWPORT)
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.js_errors = errors
    # Chromium logs each inline script, style element or style attribute the CSP refuses.
    violations: list[str] = []
    page.on("console", lambda message: violations.append(message.text) if "Content Security Policy" in message.text else None)
    page.csp_violations = violations
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
    assert not violations, f"The page broke its Content-Security-Policy: {violations}"


@pytest.fixture
def login(live_server):
    """Log a user in by giving the browser a session cookie made by the test client: no login form."""
    from django.conf import settings
    from django.test import Client

    def as_user(page, user):
        client = Client()
        client.force_login(user)
        cookie = client.cookies[settings.SESSION_COOKIE_NAME]
        page.context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": cookie.value, "url": live_server.url}])
        return page

    return as_user


@pytest.fixture
def shot():
    """Save a screenshot when PREFLAB_SCREENSHOTS names a folder; otherwise do nothing."""
    folder = os.environ.get("PREFLAB_SCREENSHOTS")

    def take(page, name: str, *, full_page: bool = True):
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=full_page)

    return take
