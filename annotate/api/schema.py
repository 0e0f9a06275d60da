"""The OpenAPI schema's error answers: every operation may refuse, always in the one shape of api/errors.py."""

from __future__ import annotations

from annotate.selectors.queues import REVISABLE_ANSWERS

ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "detail": {"type": "string", "description": "What was wrong, written for the person who sent the request."},
        "field": {"type": "string", "description": "The field to blame, where one is (`a.b[2]` inside nested input)."},
        "errors": {"type": "object", "description": "A serializer's full errors, where one refused the body."},
    },
    "required": ["detail"],
}
# What any operation may answer, and what only some do (keyed by path and method).
COMMON_ERRORS = {
    "400": "The request is invalid; detail says why and field names the culprit.",
    "401": "No valid credentials (Authorization: Token <key>, or a session).",
    "403": "The caller's role in this study does not allow it.",
    "404": "Nothing with this id that the caller may see.",
    "429": "Too many bad API tokens from this address; every token from it waits Retry-After seconds.",
    "503": "The database is unreachable; try again after the Retry-After header's seconds.",
}
MORE_ERRORS = {
    ("/api/v1/queries/{id}/annotations/", "post"): {
        "409": "Already answered or skipped, or the client_key names another query's annotation.",
        "410": "The caller's assignment of this query expired; ask for the next query.",
        "413": "The body is larger than the server takes.",
        "415": "The body is not JSON.",
    },
    ("/api/v1/annotations/{id}/revise/", "post"): {
        "409": "Already changed (change its newest version), no longer among the caller's last "
        f"{REVISABLE_ANSWERS} answers in the study, or the client_key names another annotation.",
        "413": "The body is larger than the server takes.",
        "415": "The body is not JSON.",
    },
    ("/api/v1/queries/{id}/skip/", "post"): {
        "409": "Already answered or skipped.",
        "410": "The caller's assignment of this query expired.",
        "415": "The body is not JSON.",
    },
    ("/api/v1/runs/{id}/cancel/", "post"): {"409": "The run has already finished."},
    ("/api/v1/models/{id}/score/", "post"): {"409": "The model version's files are missing or changed."},
}


def add_error_responses(result: dict, generator, request, public) -> dict:
    """drf-spectacular postprocessing hook: document the error answers of every operation."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            statuses = {**COMMON_ERRORS, **MORE_ERRORS.get((path, method), {})}
            responses = operation.setdefault("responses", {})
            for status, description in statuses.items():
                responses.setdefault(status, {"content": error, "description": description})
    return result
