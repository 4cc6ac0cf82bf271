"""Request hygiene for every page: crafted URLs get a 400, every response a CSP header.

- HostileRequestMiddleware: a NUL byte in the path or query string (PostgreSQL text refuses
  it: a lookup with one was a 500) and a date-hierarchy part (`<field>__year`, `__month`,
  `__day`) that is not a short number (Django's changelist turns ValueError into its
  "?e=1" redirect but lets OverflowError through: a 500) answer 400 Bad Request before any
  view runs. Every admin list with a date hierarchy, the portal's and django-axes', is covered.
- ContentSecurityPolicyMiddleware: `Content-Security-Policy: settings.CONTENT_SECURITY_POLICY`
  on every response that has none (first in MIDDLEWARE, so WhiteNoise's files get it too).
- PipelineTimeoutMiddleware: a view (or its template) whose pipeline statement hit the lock
  or statement timeout (remediation.pipeline.timeouts.PipelineTimeout: 55P03 / 57014 on the
  `pipeline` connection) answers 503 with what happened in plain words, inside the admin
  look, never Django's technical 500 page; the one place that decides it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.template.response import TemplateResponse

from remediation.pipeline.timeouts import limits_ms, timeout_in

logger = logging.getLogger("opsportal.requests")

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


class PipelineTimeoutMiddleware:
    """503 with a clear message when a pipeline statement of the view hit its timeout.

    Placed after the authentication and message middleware: the page is rendered in the
    admin look (site header, the user's links) for a staff user, as plain text otherwise.
    The message names the limit and the SQLSTATE, never the SQL or its parameters.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> Any:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> Any:
        timeout = timeout_in(exception)
        if timeout is None:
            return None
        logger.warning(
            "pipeline %s (%s) on %s %s",
            timeout.setting,
            timeout.sqlstate,
            request.method,
            request.path,
        )
        if request.method in ("GET", "HEAD", "OPTIONS"):
            after = "Try again in a moment; nothing was changed."
        else:
            after = "The pipeline transaction was rolled back. Check the page before trying again."
        user = getattr(request, "user", None)
        if user is None or not (user.is_active and user.is_staff):
            response: HttpResponse = HttpResponse(
                f"{timeout.message} {after}\n",
                status=503,
                content_type="text/plain; charset=utf-8",
            )
        else:
            from django.contrib import admin

            context = {
                **admin.site.each_context(request),
                "title": "The pipeline database is busy",
                "message": timeout.message,
                "after": after,
                "limits": limits_ms(),
            }
            response = TemplateResponse(
                request, "admin/pipeline_timeout.html", context, status=503
            ).render()
        response["Retry-After"] = str(max(1, -(-(timeout.limit_ms or 1000) // 1000)))
        return response
