"""One place where the project's errors become API responses: always {"detail", "field"}, in JSON."""

from __future__ import annotations

from django.core.exceptions import RequestDataTooBig
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from annotate.errors import PreflabError


def first_error(detail, path: str = "") -> tuple[str, str]:
    """(field path, message) of the first error in a DRF validation detail: nested dicts and lists."""
    if isinstance(detail, dict):
        key, value = next(iter(detail.items()))
        field = path if key == "non_field_errors" else (f"{path}.{key}" if path else str(key))
        return first_error(value, field)
    if isinstance(detail, list) and detail:
        return first_error(detail[0], path)
    return path, str(detail)


def exception_handler(exc, context):
    if isinstance(exc, PreflabError):
        return Response(exc.as_dict(), status=exc.status_code)
    if isinstance(exc, RequestDataTooBig):
        return Response({"detail": f"The request body is too large: {exc}", "field": "body"}, status=413)
    if isinstance(exc, exceptions.ValidationError):
        # A serializer's checks, in the same shape as the services' (the full detail rides along).
        field, message = first_error(exc.detail)
        body = {"detail": f"{field}: {message}" if field else message, "errors": exc.detail}
        if field:
            body["field"] = field
        return Response(body, status=exc.status_code)
    return drf_exception_handler(exc, context)


@csrf_exempt  # a POST to a wrong path is told 404, not the site's HTML page about a missing CSRF cookie
def not_found(request, *args, **kwargs) -> JsonResponse:
    """Any other path under /api/: JSON, like the rest of the API, not the site's HTML page."""
    return JsonResponse({"detail": f"No API endpoint at {request.path}."}, status=404)
