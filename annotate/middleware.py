"""Site-wide response fixes that no single view owns."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

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
