"""Limits on guessing: failed logins (django-axes, in the database) and bad API tokens (DRF, in the cache).

Both count per client address, found the same way here, and both keep their counts where every
gunicorn worker sees them, never in process memory.
"""

from __future__ import annotations

import math

from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.throttling import BaseThrottle, SimpleRateThrottle


def client_address(request: HttpRequest) -> str:
    """The client's IP address: REMOTE_ADDR, or X-Forwarded-For's entry from the nearest of PREFLAB_PROXY_COUNT proxies.

    The same rule as DRF's throttles (its NUM_PROXIES is this setting), so a login and an API call
    from one client count against one address.
    """
    return BaseThrottle().get_ident(request)


def login_locked_out(request: HttpRequest, original_response=None, credentials: dict | None = None) -> HttpResponse:
    """django-axes' answer to a login while locked out: the login page, saying until when, with Retry-After."""
    cool_off = settings.AXES_COOLOFF_TIME
    # Every try during a lockout restarts the cool-off (django-axes' default), so it ends this long from now.
    until = timezone.localtime(timezone.now() + cool_off)
    minutes = math.ceil(cool_off.total_seconds() / 60)
    username = (credentials or {}).get("username") or request.POST.get("username", "")
    context = {
        "form": AuthenticationForm(request, initial={"username": username}),
        "locked_out": {"minutes": minutes, "until": until},
        "next": request.POST.get("next", request.GET.get("next", "")),
    }
    response = render(request, "registration/login.html", context, status=429)
    response["Retry-After"] = str(int(cool_off.total_seconds()))
    return response


class TokenFailureThrottle(SimpleRateThrottle):
    """Bad API tokens per client address, at PREFLAB_API_AUTH_FAILURE_RATE, in the shared cache.

    Unlike DRF's throttles, which count every request once authentication has passed, this one
    counts only failures, and is asked before a token is looked up: past the limit even a good
    token from that address waits, or the limit would only change the answer to a wrong guess.
    """

    scope = "token_failures"

    def get_rate(self) -> str:
        return settings.PREFLAB_API_AUTH_FAILURE_RATE

    def get_cache_key(self, request, view=None) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}

    def check(self, request) -> None:
        """Raise Throttled (429, Retry-After) where this address has used up its failures."""
        self.key = self.get_cache_key(request)
        self.history = self.cache.get(self.key, [])
        self.now = self.timer()
        while self.history and self.history[-1] <= self.now - self.duration:
            self.history.pop()
        if len(self.history) >= self.num_requests:
            raise TokensThrottled(wait=self.wait())

    def record_failure(self) -> None:
        """Count one more bad token; `check` has run for this request."""
        self.history.insert(0, self.now)
        self.cache.set(self.key, self.history, self.duration)


class TokensThrottled(exceptions.Throttled):
    default_detail = "Too many bad API tokens from this address."
    extra_detail_singular = "Try again in {wait} second."
    extra_detail_plural = "Try again in {wait} seconds."
