"""One place where the project's errors become API responses."""

from __future__ import annotations

from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from annotate.errors import PreflabError


def exception_handler(exc, context):
    if isinstance(exc, PreflabError):
        return Response(exc.as_dict(), status=exc.status_code)
    return drf_exception_handler(exc, context)
