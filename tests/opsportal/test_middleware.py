"""Request hygiene: crafted URLs answer 400 or 404 (never 500), and every page carries the
Content-Security-Policy, with nothing inline in it that the policy would block."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib import admin
from django.contrib.auth.models import User
from django.test import Client, override_settings
from django.urls import reverse

from remediation import reference_data
from remediation.services.fc import fc_set_load
from remediation.services.fc_sets import read_set
from tests.remediation.admin.test_get_reads_only import admin_pages, portal  # noqa: F401

pytestmark = pytest.mark.django_db(databases="__all__")
HUGE = "99999999999999999999"


def _date_hierarchy_lists() -> list[tuple[str, str]]:
    """(changelist url, date_hierarchy field) of every registered admin that has one."""
    found = []
    for model, model_admin in admin.site._registry.items():
        if model_admin.date_hierarchy:
            info = f"{model._meta.app_label}_{model._meta.model_name}"
            found.append((reverse(f"admin:{info}_changelist"), model_admin.date_hierarchy))
    return found


def test_the_three_portal_date_hierarchies_are_among_them():
    urls = {url for url, _ in _date_hierarchy_lists()}
    assert {
        "/admin/remediation/finalizeattempt/",
        "/admin/remediation/auditevent/",
        "/admin/remediation/metricsnapshot/",
    } <= urls


@pytest.mark.parametrize(
    "query",
    [
        {"{f}__year": HUGE},
        {"{f}__year": "2025", "{f}__month": HUGE},
        {"{f}__year": "2025", "{f}__month": "1", "{f}__day": HUGE},
        {"{f}__year": "-1"},
        {"{f}__year": "20x5"},
    ],
)
def test_absurd_date_hierarchy_parts_are_400_on_every_list(admin_client, query):
    admin_client.raise_request_exception = False
    for url, field in _date_hierarchy_lists():
        params = {k.format(f=field): v for k, v in query.items()}
        resp = admin_client.get(url, params)
        assert resp.status_code == 400, (url, params, resp.status_code)
        assert b"must be a number of at most four digits" in resp.content


def test_ordinary_date_hierarchy_drilldown_still_works(admin_client):
    for url, field in _date_hierarchy_lists():
        assert admin_client.get(url, {f"{field}__year": "2025"}).status_code == 200
        resp = admin_client.get(url, {f"{field}__year": "2025", f"{field}__month": "13"})
        assert resp.status_code == 302 and "e=1" in resp["Location"]  # Django's own answer


def test_nul_bytes_in_the_path_or_query_are_400(admin_client):
    admin_client.raise_request_exception = False
    for url in (
        "/admin/remediation/fcblock/version/%00/",
        "/admin/remediation/fcblock/version/a%00b/",
        "/admin/remediation/fcblock/?version=%00",
        "/admin/remediation/auditevent/?q=a%00",
        "/admin/remediation/fcblock/?x%00=1",
    ):
        resp = admin_client.get(url)
        assert resp.status_code == 400, url
        assert b"NUL byte" in resp.content


def test_the_fc_version_page_is_404_for_unknown_or_malformed_versions(admin_client):
    assert admin_client.get("/admin/remediation/fcblock/version/v9.9/").status_code == 404
    # Without the middleware the view itself refuses a NUL byte (no query reaches PostgreSQL).
    middleware = [m for m in settings.MIDDLEWARE if not m.endswith("HostileRequestMiddleware")]
    with override_settings(MIDDLEWARE=middleware):
        client = Client(raise_request_exception=False)
        client.force_login(User.objects.get(username="admin"))
        assert client.get("/admin/remediation/fcblock/version/%00/").status_code == 404
    fc_set_load(read_set(reference_data.fc_seed_path()))
    assert admin_client.get("/admin/remediation/fcblock/version/v1.2/").status_code == 200
