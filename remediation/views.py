"""Views outside the admin, for other tools: /metrics (Prometheus) and /healthz."""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from remediation import metrics as prometheus
from remediation.selectors.health import healthz as health_report


@require_GET
@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text format; needs `Authorization: Bearer <METRICS_TOKEN>`."""
    expected = settings.METRICS_TOKEN.reveal()
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if not expected:
        return HttpResponse(
            "metrics are disabled: set METRICS_TOKEN\n", status=404, content_type="text/plain"
        )
    if not hmac.compare_digest(given.encode(), expected.encode()):
        return HttpResponse("unauthorized\n", status=401, content_type="text/plain")
    return HttpResponse(
        prometheus.render(), content_type="text/plain; version=0.0.4; charset=utf-8"
    )


@require_GET
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """Portal database, pipeline database and job cluster; 503 when any is not ok."""
    ok, report = health_report()
    return JsonResponse({"ok": ok, **report}, status=200 if ok else 503)
