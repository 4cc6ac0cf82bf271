"""The list rows' action checkbox is plain HTML (remediation/admin/base.FastCheckboxAdmin),
the same element Django's form widget renders, so the admin's actions script finds it."""

from __future__ import annotations

from django.contrib import admin
from django.test.html import parse_html

from remediation.admin.base import FastCheckboxAdmin
from remediation.models import BackfillRun


def test_the_checkbox_is_the_element_djangos_widget_renders():
    run = BackfillRun(pk=42, kind="finalize", state="running")
    model_admin = admin.site._registry[BackfillRun]
    assert isinstance(model_admin, FastCheckboxAdmin)
    ours = parse_html(model_admin.action_checkbox(run))
    django = parse_html(admin.ModelAdmin.action_checkbox(model_admin, run))
    assert ours == django
    assert 'value="42"' in str(ours) and "action-select" in str(ours)
