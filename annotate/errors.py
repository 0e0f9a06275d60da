"""The project's error types. Services raise them; views and the API map them to responses in one place."""

from __future__ import annotations


class PreflabError(Exception):
    """A request that cannot be carried out, with a message meant for the person who made it."""

    status_code = 400

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field

    def as_dict(self) -> dict:
        body: dict = {"detail": self.message}
        if self.field:
            body["field"] = self.field
        return body


class InvalidInput(PreflabError):
    status_code = 400


class NotFound(PreflabError):
    status_code = 404


class Forbidden(PreflabError):
    status_code = 403


class Conflict(PreflabError):
    status_code = 409


class Gone(PreflabError):
    """The thing existed but can no longer be acted on (an expired assignment)."""

    status_code = 410
