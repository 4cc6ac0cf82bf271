"""Login throttling for the admin's username/password login."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied


class ThrottledModelBackend(ModelBackend):
    """ModelBackend that refuses further attempts after too many recent failures."""

    def authenticate(
        self, request: Any, username: str | None = None, password: str | None = None, **kwargs: Any
    ) -> Any:
        from django.conf import settings
        from django.utils import timezone

        from remediation.models import LoginFailure

        address = (request.META.get("REMOTE_ADDR", "") if request is not None else "")[:64]
        since = timezone.now() - timedelta(seconds=settings.LOGIN_FAILURE_WINDOW_SECONDS)
        recent = LoginFailure.objects.filter(at__gte=since)
        limit = settings.LOGIN_FAILURE_LIMIT
        if (username and recent.filter(username=username).count() >= limit) or (
            address and recent.filter(address=address).count() >= limit
        ):
            raise PermissionDenied("too many failed logins; try again later")
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None and username:
            LoginFailure.objects.create(username=str(username)[:150], address=address)
        return user
