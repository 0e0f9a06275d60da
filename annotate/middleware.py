"""Site-wide response fixes that no single view owns."""

from __future__ import annotations

import logging

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.template.loader import render_to_string

logger = logging.getLogger(__name__)

DATABASE_UNREACHABLE = "The database is unreachable; try again shortly."
RETRY_AFTER_SECONDS = 10
FORM_ONLY = "This address is where a form's button sends its answer; it cannot be opened as a page. Go back and use the button."


class MethodNotAllowedPage:
    """A browser that opens a form's address (GET /logout/, a submit URL) gets a page, not a blank 405.

    The API keeps its own JSON answer, and a 405 that already has a body keeps it.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code != 405 or request.method != "GET" or request.path.startswith("/api/"):
            return response
        if response.streaming or response.content:
            return response
        page = render(request, "errors.html", {"message": FORM_ONLY}, status=405)
        if response.has_header("Allow"):
            page["Allow"] = response["Allow"]
        return page


class DatabaseUnreachable:
    """A database that cannot be reached answers 503 "try again", not an HTML 500.

    The API answers JSON ({"detail"}), pages a calm page that is rendered without a request, so
    that it reads neither the session nor the user from the database it cannot reach. Both carry
    Retry-After. Django raises OperationalError and InterfaceError when a connection cannot be
    made or is lost (and for a locked SQLite file, where trying again is also the answer); a
    refused statement (IntegrityError, DataError) is a different error and is not caught here.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        logger.error("Database unreachable for %s %s: %s", request.method, request.path, exception)
        if request.path.startswith("/api/"):
            response = JsonResponse({"detail": DATABASE_UNREACHABLE}, status=503)
        else:
            response = HttpResponse(render_to_string("503.html"), status=503)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
