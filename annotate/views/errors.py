"""The one place where browser views turn project errors into responses."""

from __future__ import annotations

import functools

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest
from django.shortcuts import render

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

    return login_required(wrapped)
