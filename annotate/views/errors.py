"""The one place where browser views turn project errors into responses."""

from __future__ import annotations

import functools
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render, resolve_url
from django.views import defaults

from annotate.errors import Forbidden, NotFound, PreflabError


def is_htmx(request: HttpRequest) -> bool:
    """True for a request htmx made (it swaps a partial); False for a plain page load or form post."""
    return request.headers.get("HX-Request") == "true"


def page(view):
    """Require a login; NotFound becomes 404, Forbidden 403, any other PreflabError an error page.

    Views that can show a service error inline (the workspace, the dashboard forms) catch it
    themselves; whatever escapes lands here.
    """

    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except NotFound as exc:
            raise Http404(exc.message) from exc
        except Forbidden as exc:
            raise PermissionDenied(exc.message) from exc
        except PreflabError as exc:
            template = "errors.html#error-message" if is_htmx(request) else "errors.html"
            return render(request, template, {"message": exc.message}, status=exc.status_code)

    protected = login_required(wrapped)

    @functools.wraps(view)
    def entry(request, *args, **kwargs):
        if is_htmx(request) and not request.user.is_authenticated:
            return login_again(request)
        return protected(request, *args, **kwargs)

    return entry


def login_again(request: HttpRequest) -> HttpResponse:
    """The whole page goes to the login form, which leads back to the page the request came from.

    A plain redirect would be followed by htmx itself, which would put the login page inside the
    panel it meant to replace, and the login would then lead to the partial's URL.
    """
    current = urlsplit(request.headers.get("HX-Current-URL", ""))
    back = (current.path + (f"?{current.query}" if current.query else "")) if current.path else request.path
    messages.info(request, "You were logged out, so that last action was not saved. Log in to go on.")
    login = f"{resolve_url(settings.LOGIN_URL)}?{urlencode({'next': back})}"
    return HttpResponse(status=204, headers={"HX-Redirect": login})


def server_error(request: HttpRequest) -> HttpResponse:
    """Django's handler500: under /api/ the answer is JSON like every other API answer; pages keep Django's own."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "The server failed to answer this request; the error was logged."}, status=500)
    return defaults.server_error(request)
