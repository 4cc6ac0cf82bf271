"""Request hygiene: crafted URLs answer 400 or 404 (never 500), and every page carries the
Content-Security-Policy, with nothing inline in it that the policy would block."""

from __future__ import annotations

import re

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


def test_the_fc_version_page_is_404_for_malformed_versions(admin_client):
    assert (
        admin_client.get("/admin/remediation/fcblock/version/" + "v" * 101 + "/").status_code == 404
    )
    # Without the middleware the view itself refuses a NUL byte (no query reaches PostgreSQL).
    middleware = [m for m in settings.MIDDLEWARE if not m.endswith("HostileRequestMiddleware")]
    with override_settings(MIDDLEWARE=middleware):
        client = Client(raise_request_exception=False)
        client.force_login(User.objects.get(username="admin"))
        assert client.get("/admin/remediation/fcblock/version/%00/").status_code == 404
    fc_set_load(read_set(reference_data.fc_seed_path()))
    assert admin_client.get("/admin/remediation/fcblock/version/v1.2/").status_code == 200


# --- Content-Security-Policy ------------------------------------------------------------

INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.I)
INLINE_STYLE = re.compile(r"<style\b|\sstyle\s*=", re.I)
HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.I)
JS_URL = re.compile(r"href\s*=\s*[\"']\s*javascript:", re.I)


def test_the_policy_allows_only_the_portals_own_scripts_and_styles():
    policy = settings.CONTENT_SECURITY_POLICY
    assert "script-src 'self';" in policy and "style-src 'self';" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert "object-src 'none'" in policy and "frame-ancestors 'none'" in policy


def test_the_inline_patterns_catch_what_the_policy_blocks():
    assert HANDLER.search('<form method="post"\n onsubmit="return confirm(1)">')
    assert INLINE_STYLE.search('<div class="submit-row" style="text-align:left">')
    assert INLINE_STYLE.search("<style>tr{}</style>") and INLINE_SCRIPT.search(
        "<script>x()</script>"
    )
    assert not INLINE_SCRIPT.search('<script src="/static/admin/js/theme.js"></script>')
    assert not HANDLER.search('<form data-confirm="Sure?">')


def test_every_admin_page_carries_the_csp_and_nothing_inline(client, portal):  # noqa: F811
    user = User.objects.create_superuser("root", "root@example.org", "pw-123456789")
    client.force_login(user)
    client.raise_request_exception = False
    pages = admin_pages(portal, user)
    assert len(pages) > 60
    problems = []
    for url, query in pages:
        resp = client.get(url, query)
        label = f"GET {url} {query or ''}".strip()
        if resp.get("Content-Security-Policy") != settings.CONTENT_SECURITY_POLICY:
            problems.append(f"{label}: no Content-Security-Policy header")
        if resp.streaming or "text/html" not in resp.get("Content-Type", ""):
            continue
        html = resp.content.decode()
        for name, pattern in (
            ("inline script", INLINE_SCRIPT),
            ("inline style", INLINE_STYLE),
            ("event handler attribute", HANDLER),
            ("javascript: link", JS_URL),
        ):
            if match := pattern.search(html):
                problems.append(f"{label}: {name}: {html[match.start() : match.start() + 120]}")
    assert problems == []
    run_page = client.get(
        reverse("admin:remediation_backfillrun_change", args=[portal["undone"].pk])
    )
    assert b"/static/remediation/portal.js" in run_page.content


def test_login_error_and_plain_pages_carry_the_csp(client):
    client.raise_request_exception = False
    for url, status in (
        ("/admin/login/", 200),
        ("/healthz", None),  # 200 or 503 (no snapshot yet): the header either way
        ("/admin/remediation/fcblock/version/%00/", 400),
        ("/no-such-page/", 404),
    ):
        resp = client.get(url)
        assert status is None or resp.status_code == status, url
        assert resp["Content-Security-Policy"] == settings.CONTENT_SECURITY_POLICY, url
