"""Admin for the forced-choice infrastructure: block sets, validation, load/rollback/undo,
coverage and recompute. Changes need `remediation.manage_fc`."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import DatabaseError
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

import scoring
from remediation import display, reference_data
from remediation.admin.base import LiveColumnsAdmin, ReadOnlyAdmin
from remediation.admin.permissions import MANAGE_FC, has_perm, log_change
from remediation.models import FcBlock, FcChange, FcOption
from remediation.selectors.fc import coverage
from remediation.selectors.fc_rollback import fc_undo_preview, fc_version_removal
from remediation.services import fc
from remediation.services.fc_sets import (
    MAX_SET_BYTES,
    FcSetInvalid,
    parse_set,
    read_set,
    validate_weights,
)


def can_manage(request: HttpRequest) -> bool:
    return has_perm(request, MANAGE_FC)


class FcOptionForm(forms.ModelForm):
    class Meta:
        model = FcOption
        fields = ("block", "option_code", "prompt", "weights_json", "order_index")

    def clean_weights_json(self) -> Any:
        weights = self.cleaned_data["weights_json"]
        errors = validate_weights(weights)
        if errors:
            raise ValidationError(errors)
        return weights

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        block, code = data.get("block"), data.get("option_code")
        if block and code:
            clash = FcOption.objects.filter(block=block, option_code=code).exclude(
                pk=self.instance.pk
            )
            if clash.exists():
                raise ValidationError(f"Option code {code!r} is already used in block {block}.")
        return data


class _ManagedFcAdmin(LiveColumnsAdmin):
    """Viewable by staff with view permission; changes need manage_fc as well."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return can_manage(request) and super().has_add_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return can_manage(request) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # whole versions are rolled back (undoably), not rows deleted


class FcOptionInline(admin.TabularInline):
    model = FcOption
    form = FcOptionForm
    fields = ("option_code", "prompt", "weights_json", "order_index")
    extra = 0
    can_delete = False


@admin.register(FcBlock)
class FcBlockAdmin(_ManagedFcAdmin):
    list_display = ("code", "version", "title", "order_index", "is_active")
    list_filter = ("version", "is_active")
    search_fields = ("code", "title")
    inlines = (FcOptionInline,)
    actions = ("rollback_versions",)
    change_list_template = "admin/remediation/fcblock/change_list.html"

    def get_urls(self) -> list[Any]:
        wrap = self.admin_site.admin_view
        return [
            path("version/<str:version>/", wrap(self.version_view), name="remediation_fc_version"),
            path("load/", wrap(self.load_view), name="remediation_fc_load"),
            path("coverage/", wrap(self.coverage_view), name="remediation_fc_coverage"),
            *super().get_urls(),
        ]

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        versions = FcBlock.objects.values_list("version", flat=True).distinct().order_by("version")
        extra = {
            **(extra_context or {}),
            "versions": list(versions),
            "can_manage": can_manage(request),
        }
        return super().changelist_view(request, extra)

    def has_manage_fc_permission(self, request: HttpRequest) -> bool:
        return can_manage(request)

    @admin.action(
        permissions=["manage_fc"],
        description="Roll back the versions of the selected blocks (undoable)",
    )
    def rollback_versions(
        self, request: HttpRequest, queryset: QuerySet[FcBlock]
    ) -> HttpResponse | None:
        """Like delete_selected: first a page listing every block and option it removes
        (the whole version of each selected block); the POST with post=yes does it."""
        if request.POST.get("post") != "yes":
            versions: dict[str, int] = {}
            for version in queryset.values_list("version", flat=True):
                versions[version] = versions.get(version, 0) + 1
            context = {
                **self.admin_site.each_context(request),
                "title": "Roll back FC set versions?",
                "opts": self.model._meta,
                "removals": [fc_version_removal(v, n) for v, n in sorted(versions.items())],
                "queryset": queryset,
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            }
            return TemplateResponse(request, "admin/remediation/fc_rollback_confirm.html", context)
        for version in sorted(set(queryset.values_list("version", flat=True))):
            change = fc.fc_version_rollback(version, actor=request.user.get_username())
            log_change(request, change, f"Rolled back FC {version}")
            self.message_user(
                request,
                f"Rolled back FC {version}: "
                + ", ".join(f"{n} {t}" for t, n in change.summary.items())
                + f". Undo from FC set changes (#{change.pk}).",
                messages.SUCCESS,
            )
        return None

    def version_view(self, request: HttpRequest, version: str) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        if "\x00" in version or len(version) > 100:
            raise Http404("no such FC set version")
        blocks = list(
            FcBlock.objects.filter(version=version)
            .order_by("order_index")
            .prefetch_related("options")
        )
        functions = list(scoring.FUNCTIONS)
        table = [
            {
                "block": b,
                "options": [
                    {"option": o, "weights": [o.weights_json.get(f, "") for f in functions]}
                    for o in sorted(b.options.all(), key=lambda o: o.order_index)
                ],
            }
            for b in blocks
        ]
        context = {
            **self.admin_site.each_context(request),
            "title": f"FC set {version}",
            "opts": self.model._meta,
            "version": version,
            "table": table,
            "functions": functions,
        }
        return TemplateResponse(request, "admin/remediation/fc_version.html", context)

    def load_view(self, request: HttpRequest) -> HttpResponse:
        """Upload a set, or take the shipped v1.2; always a dry-run diff first."""
        if not can_manage(request):
            raise PermissionDenied
        data, diff, errors = None, None, []
        try:
            upload = request.FILES.get("file")
            if request.method == "POST" and upload is not None:
                data = parse_set(upload.read(MAX_SET_BYTES + 1), f"{upload.name}")
            else:
                data = read_set(reference_data.fc_seed_path())
            if request.method == "POST" and request.POST.get("confirm") == "yes":
                diff = fc.fc_set_load(data, actor=request.user.get_username())
                messages.success(
                    request,
                    f"Loaded FC {diff.version}: {diff.changes} rows changed, {diff.unchanged} unchanged.",
                )
                return HttpResponseRedirect(
                    reverse("admin:remediation_fc_version", args=[diff.version])
                )
            diff = fc.fc_set_load(data, dry_run=True)
        except FcSetInvalid as exc:
            errors = exc.errors
        except ValueError as exc:
            errors = [f"not a JSON set: {exc}"]
        context = {
            **self.admin_site.each_context(request),
            "title": "Load an FC set",
            "opts": self.model._meta,
            "diff": diff,
            "errors": errors,
            "shipped": reference_data.fc_seed_path().name,
        }
        return TemplateResponse(request, "admin/remediation/fc_load.html", context)

    def coverage_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "title": "FC coverage",
            "opts": self.model._meta,
            "report": coverage(),
        }
        return TemplateResponse(request, "admin/remediation/fc_coverage.html", context)


@admin.register(FcOption)
class FcOptionAdmin(_ManagedFcAdmin):
    form = FcOptionForm
    list_display = ("block", "option_code", "prompt", "weights_json")
    list_filter = ("block__version",)
    search_fields = ("prompt",)


@admin.register(FcChange)
class FcChangeAdmin(ReadOnlyAdmin):
    list_display = ("at", "kind", "version", "actor", "summary", "undone_at", "undone_by")
    list_filter = ("kind", "version")
    actions = ("undo",)
    exclude = ("pre_images",)

    def has_manage_fc_permission(self, request: HttpRequest) -> bool:
        return can_manage(request)

    @admin.action(permissions=["manage_fc"], description="Undo the selected rollbacks")
    def undo(self, request: HttpRequest, queryset: QuerySet[FcChange]) -> HttpResponse | None:
        """Like delete_selected: first a page listing every row each undo puts back (and the
        ones that would be refused); the POST with post=yes does it."""
        changes = list(queryset.order_by("at"))
        previews = [fc_undo_preview(c) for c in changes]
        if request.POST.get("post") != "yes":
            doable = sum(1 for p in previews if not p["refusal"])
            context = {
                **self.admin_site.each_context(request),
                "title": "Undo FC set rollbacks?",
                "opts": self.model._meta,
                "previews": previews,
                "doable": doable,
                "confirm_label": f"Yes, undo {display.count(doable, 'rollback')}",
                "queryset": queryset,
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            }
            return TemplateResponse(request, "admin/remediation/fc_undo_confirm.html", context)
        for preview in previews:
            change = preview["change"]
            if preview["refusal"]:
                self.message_user(
                    request, f"Not undone: {preview['refusal']}; nothing changed.", messages.ERROR
                )
                continue
            try:
                fc.fc_change_undo(change.pk, actor=request.user.get_username())
            except (FcSetInvalid, DatabaseError) as exc:
                self.message_user(
                    request,
                    f"Rollback #{change.pk} not undone, nothing changed: {str(exc).splitlines()[0]}",
                    messages.ERROR,
                )
                continue
            log_change(request, change, f"Undid rollback of FC {change.version}")
            self.message_user(
                request,
                f"Restored FC {change.version} (rollback #{change.pk} undone): "
                f"{preview['block_count']} blocks, {preview['option_count']} options,"
                f" {preview['fc_responses']} responses, {preview['fc_scores']} FC scores put back.",
                messages.SUCCESS,
            )
        return None
