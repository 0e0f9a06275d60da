"""API token authentication: DRF's tokens, looked up with one written-out statement.

DRF's own lookup compiles a select_related join on every request, which cost more than the rest of
a `queries/next` call; see annotate/rows.py.
"""

from __future__ import annotations

from functools import cache

from django.contrib.auth import get_user_model
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token

from annotate.rows import Columns, fetch_one
from annotate.throttling import TokenFailureThrottle


@cache  # not at import: the user model may be swapped, and is known only once apps are ready
def user_columns() -> Columns:
    return Columns(get_user_model(), "u")


def user_for_token(key: str):
    """The user who owns this token key, or None."""
    users = user_columns()
    row = fetch_one(
        f"SELECT {users.sql} FROM {Token._meta.db_table} t JOIN {users.model._meta.db_table} u ON u.id = t.user_id "
        "WHERE t.key = %s",
        [key],
    )
    return None if row is None else users.load(row)


class TokenAuthentication(authentication.TokenAuthentication):
    """`Authorization: Token <key>`, as DRF's, with the same errors, and a limit on bad tokens per address.

    Requests without a token (the browser's session) never touch the throttle's cache.
    """

    def authenticate(self, request):
        words = authentication.get_authorization_header(request).split()
        if not words or words[0].lower() != self.keyword.lower().encode():
            return None
        throttle = TokenFailureThrottle()
        throttle.check(request)
        try:
            return super().authenticate(request)
        except exceptions.AuthenticationFailed:
            throttle.record_failure()
            raise

    def authenticate_credentials(self, key: str):
        user = user_for_token(key)
        if user is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        return user, Token(key=key, user=user)  # request.auth is the token, as with DRF's class
