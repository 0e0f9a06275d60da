"""What the study navigation shows: the actions the user's role allows."""

from __future__ import annotations

from annotate import access
from annotate.models import Study


def with_perms(study: Study, role: str | None = None) -> Study:
    """Attach `my_role` and `perms` (the role's allowed actions) for templates to test with `in`."""
    if role is not None:
        study.my_role = role
    study.perms = access.PERMISSIONS.get(getattr(study, "my_role", None), frozenset())
    return study
