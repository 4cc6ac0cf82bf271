"""Request hygiene for every page: crafted URLs get a 400, every response a CSP header.

- HostileRequestMiddleware: a NUL byte in the path or query string (PostgreSQL text refuses
  it: a lookup with one was a 500) and a date-hierarchy part (`<field>__year`, `__month`,
  `__day`) that is not a short number (Django's changelist turns ValueError into its
  "?e=1" redirect but lets OverflowError through: a 500) answer 400 Bad Request before any
  view runs. Every admin list with a date hierarchy, the portal's and django-axes', is covered.
- ContentSecurityPolicyMiddleware: `Content-Security-Policy: settings.CONTENT_SECURITY_POLICY`
  on every response that has none (first in MIDDLEWARE, so WhiteNoise's files get it too).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest

DATE_PART = re.compile(r"__(year|month|day)$")
SHORT_NUMBER = re.compile(r"^\d{1,4}$")


def hostile_request_reason(request: HttpRequest) -> str | None:
    """Why the request is refused with 400, or None."""
    if "\x00" in request.path:
        return "the path contains a NUL byte"
    for key, values in request.GET.lists():
        if "\x00" in key or any("\x00" in v for v in values):
            return "the query string contains a NUL byte"
        if DATE_PART.search(key) and not all(SHORT_NUMBER.match(v) for v in values):
            return f"{key} must be a number of at most four digits"
    return None


class HostileRequestMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> Any:
        reason = hostile_request_reason(request)
        if reason:
            return HttpResponseBadRequest(
                f"Bad request: {reason}.", content_type="text/plain; charset=utf-8"
            )
        return self.get_response(request)


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.policy = settings.CONTENT_SECURITY_POLICY

    def __call__(self, request: HttpRequest) -> Any:
        response = self.get_response(request)
        if self.policy and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = self.policy
        return response
