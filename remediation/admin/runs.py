"""Admin for runs of every job kind (backfills, rollbacks, diagnoses): the run page with live
progress, its controls and the items CSV. Starting a backfill: admin/backfills.py."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import formats, timezone

from remediation import display, jobs
from remediation.admin import backfills, run_confirm
from remediation.admin.backfills import can_run
from remediation.admin.base import ReadOnlyAdmin, csv_response
from remediation.admin.finalize import can_use_edge
from remediation.admin.permissions import (
    ROLLBACK_BACKFILL,
    RUN_BACKFILL,
    has_perm,
    log_change,
)
from remediation.models import BackfillRun
from remediation.selectors.triggers import trigger_context
from remediation.services import runs as run_services


def run_figures(run: BackfillRun) -> dict[str, Any]:
    """Percent, rate and ETA for the run page."""
    total = max(run.estimated_total, 1)
    percent = min(100.0, 100.0 * run.processed / total)
    elapsed = (
        ((run.finished_at or timezone.now()) - run.started_at).total_seconds()
        if run.started_at
        else 0
    )
    rate = run.processed / elapsed if elapsed > 0 else 0.0
    remaining = max(0, run.estimated_total - run.processed)
    eta = remaining / rate if rate > 0 and run.is_active else None
    return {"percent": percent, "rate_per_min": rate * 60, "eta_seconds": eta, "elapsed": elapsed}


def run_progress(run: BackfillRun) -> dict[str, Any]:
    """The run's live figures as the progress endpoint serves them (the page's own figures,
    read from the database now; `text` as the page writes them)."""
    figures = run_figures(run)
    eta = figures["eta_seconds"]
    figures_text = {
        "state": run.get_state_display(),
        "state_words": run_state_words(run),
        "percent": f"{figures['percent']:.1f}%",
        "processed": str(run.processed),
        "estimated_total": display.count(run.estimated_total, "session"),
        "rate_per_min": f"{figures['rate_per_min']:.0f}",
        "eta": f", about {display.seconds(eta)} left" if eta is not None else "",
        "failed_reasons": str(run.failed)
        + "".join(f" · {display.words(r)} {n}" for r, n in (run.failed_by_reason or {}).items()),
        **{
            k: str(getattr(run, k))
            for k in ("created", "rescored", "existing", "failed", "skipped")
        },
    }
    return {
        "id": run.pk,
        "kind": run.kind,
        "state": run.state,
        "active": run.is_active,
        "processed": run.processed,
        "estimated_total": run.estimated_total,
        "percent": round(figures["percent"], 1),
        "counts": run.counts or {},
        "failed_by_reason": run.failed_by_reason or {},
        "heartbeat_at": run.heartbeat_at.isoformat() if run.heartbeat_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "read_at": timezone.now().isoformat(),
        "text": figures_text,
    }


def run_state_words(run: BackfillRun) -> str:
    """The run's state in words, and that it was rolled back (when, by which run) when it was."""
    words = run.get_state_display()
    rollback_run = (run.rollback_report or {}).get("rollback_run")
    if rollback_run:
        words += f", rolled back by run #{rollback_run}"
        if run.rolled_back_at:
            words += f" on {formats.date_format(timezone.localtime(run.rolled_back_at), 'DATETIME_FORMAT')}"
    elif (
        run.kind == BackfillRun.Kind.FINALIZE
        and run.follow_up_runs.filter(kind=BackfillRun.Kind.ROLLBACK)
        .exclude(state__in=jobs.TERMINAL)
        .exists()
    ):
        words += ", being rolled back"
    return words


def run_links(run: BackfillRun) -> dict[str, Any]:
    """What the run is linked to: its django-q2 tasks, its finalize attempts, the alerts open
    while it ran, the runs holding the same sessions while it is active."""
    from django_q.models import Failure, Success

    from remediation.jobs.selection import runs_sharing_pending
    from remediation.models import Alert, FinalizeAttempt

    group = f"run-{run.pk}"
    end = run.finished_at or timezone.now()
    alerts = (
        Alert.objects.filter(first_seen__lte=end)
        .exclude(resolved_at__lt=run.started_at or run.created_at)
        .order_by("-first_seen")
    )
    overlapping: list[tuple[BackfillRun, int]] = []
    if run.state not in jobs.TERMINAL:
        shared = runs_sharing_pending(run)
        by_pk = BackfillRun.objects.in_bulk(list(shared))
        overlapping = [(by_pk[pk], n) for pk, n in shared.items() if pk in by_pk]
    return {
        "task_group": group,
        "tasks_done": Success.objects.filter(group=group).count(),
        "tasks_failed": Failure.objects.filter(group=group).count(),
        "attempt_count": FinalizeAttempt.objects.filter(run_id=run.pk).count(),
        "alerts": list(alerts[:10]),
        "overlapping": overlapping,
    }


def round_rows(run: BackfillRun) -> list[dict[str, Any]]:
    """The run page's Rounds table: what each round did, in words."""
    labels = dict(BackfillRun.State.choices)
    rows = []
    for r in run.rounds or []:
        counts = r.get("counts") or {}
        reasons = r.get("failed_by_reason") or {}
        parts = []
        order = list(OUTCOME_WORDS)  # a fixed order (jsonb keeps its own key order)
        for outcome, n in sorted(counts.items(), key=lambda c: (_rank(order, c[0]), c[0])):
            text = f"{n} {OUTCOME_WORDS.get(outcome, outcome)}"
            if outcome == "failed" and reasons:
                text += (
                    " (" + ", ".join(f"{display.words(k)} {v}" for k, v in reasons.items()) + ")"
                )
            parts.append(text)
        rows.append(
            {
                "round": r.get("round"),
                "retry": r.get("retry"),
                "sessions": r.get("sessions"),
                "outcomes": "; ".join(parts)
                or ("in progress" if not r.get("state") else "nothing"),
                "state": labels.get(r.get("state") or "", "in progress"),
                "started_at": _parse_time(r.get("started_at")),
                "finished_at": _parse_time(r.get("finished_at")),
            }
        )
    return rows


OUTCOME_WORDS = {
    "created": "created",
    "rescored": "re-scored",
    "existing": "already had a profile",
    "failed": "failed",
    "unknown": "unknown (no answer, no profile yet)",
    "skipped": "skipped (dry run)",
    "restored": "restored",
    "conflict": "changed since and left alone",
    "diagnosed": "diagnosed",
    "sent": "sent",
}


def _rank(order: list[str], outcome: str) -> int:
    return order.index(outcome) if outcome in order else len(order)


def _parse_time(value: str | None) -> Any:
    from django.utils.dateparse import parse_datetime

    return parse_datetime(value) if value else None


class RolledBackFilter(admin.SimpleListFilter):
    title = "rolled back"
    parameter_name = "rolled_back"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "rolled back"), ("no", "not rolled back")]

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        if self.value() == "yes":
            return queryset.filter(rolled_back_at__isnull=False)
        if self.value() == "no":
            return queryset.filter(rolled_back_at__isnull=True)
        return queryset


@admin.register(BackfillRun)
class BackfillRunAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "kind",
        "state_shown",
        "selection",
        "backend",
        "dry_run",
        "estimated_total",
        "processed",
        "created",
        "existing",
        "failed",
        "started_by_name",
        "created_at",
        "rolled_back_at",
    )
    list_filter = ("kind", "state", RolledBackFilter, "backend", "dry_run")
    search_fields = ("=id", "started_by_name")

    @admin.display(description="state", ordering="state")
    def state_shown(self, run: BackfillRun) -> str:
        return run_state_words(run)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return can_run(request)

    def get_urls(self) -> list[Any]:
        wrap = self.admin_site.admin_view
        return [
            path(
                "<int:run_id>/control/<str:action>/",
                wrap(self.control_view),
                name="remediation_backfillrun_control",
            ),
            path(
                "<int:run_id>/rollback-sessions.csv",
                wrap(lambda request, run_id: run_confirm.rollback_csv_view(self, request, run_id)),
                name="remediation_backfillrun_rollback_csv",
            ),
            path(
                "<int:run_id>/progress.json",
                wrap(self.progress_view),
                name="remediation_backfillrun_progress",
            ),
            path(
                "<int:run_id>/items.csv",
                wrap(self.items_csv_view),
                name="remediation_backfillrun_items_csv",
            ),
            *super().get_urls(),
        ]

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        return backfills.add_view(self, request)

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        if not str(object_id).isdigit():
            raise Http404("no such backfill run")
        run = get_object_or_404(BackfillRun, pk=int(object_id))
        failing = run.items.filter(outcome__in=["failed", "unknown"]).order_by("ordinal")[:100]
        context = {
            **self.admin_site.each_context(request),
            "title": str(run).rsplit(" (", 1)[0],
            "state_words": run_state_words(run),
            "rounds": round_rows(run),
            "follow_ups": list(run.follow_up_runs.order_by("-created_at")),
            **run_links(run),
            **trigger_context(),
            "opts": self.model._meta,
            "run": run,
            "figures": run_figures(run),
            "failing": failing,
            "can_run": can_run(request),
            "can_rollback": has_perm(request, ROLLBACK_BACKFILL) and run.kind == "finalize",
            "controls": [c for c in _controls(run) if may_steer(request, run, c[0])],
            "refresh": run.is_active,
            "conflicts": (run.rollback_report or {}).get("conflicts", []),
            **notify_context(request, run),
        }
        return TemplateResponse(request, "admin/remediation/backfill_run.html", context)

    def control_view(self, request: HttpRequest, run_id: int, action: str) -> HttpResponse:
        if request.method != "POST" and action not in run_confirm.CONFIRMED:
            return HttpResponse(status=405)
        needed = ROLLBACK_BACKFILL if action == "rollback" else RUN_BACKFILL
        if not has_perm(request, needed):
            raise PermissionDenied
        run = get_object_or_404(BackfillRun, pk=run_id)
        if not may_steer(request, run, action):
            raise PermissionDenied("this run calls the edge function: that needs the Engineer role")
        if run_confirm.needs_confirmation(request, action):  # rollback, cancel: ask first
            return run_confirm.confirm_page(self, request, run, action)
        handlers = {
            "pause": run_services.run_pause,
            "resume": run_services.run_resume,
            "cancel": run_services.run_cancel,
            "retry": run_services.run_retry_failed,
        }
        target = run.pk
        try:
            if action == "rollback":
                rollback = jobs.run_rollback(run.pk, actor=request.user)
                messages.success(
                    request,
                    f"Rollback #{rollback.pk} started: {display.count(rollback.estimated_total, 'session')}"
                    " to restore"
                    f" from run #{run.pk}'s pre-images; its progress is below.",
                )
                target = rollback.pk
            elif action in handlers:
                after = handlers[action](run.pk, actor=request.user)
                messages.success(request, control_words(action, after))
            else:
                raise PermissionDenied
        except jobs.RunError as exc:
            messages.error(request, str(exc))
        else:
            log_change(request, run, f"Run #{run.pk}: {action}")
        return HttpResponseRedirect(reverse("admin:remediation_backfillrun_change", args=[target]))

    def progress_view(self, request: HttpRequest, run_id: int) -> JsonResponse:
        """The run page's figures as JSON, for the page's poll (portal.js): same permission;
        never cached (admin_view)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        return JsonResponse(run_progress(get_object_or_404(BackfillRun, pk=run_id)))

    def items_csv_view(self, request: HttpRequest, run_id: int) -> Any:
        if not self.has_view_permission(request):
            raise PermissionDenied
        run = get_object_or_404(BackfillRun, pk=run_id)

        columns = [
            "ordinal",
            "session_id",
            "outcome",
            "reason",
            "sqlstate",
            "constraint_name",
            "error",
            "profile_id",
            "type_code",
            "results_url",
            "processed_at",
            "rolled_back",
        ]
        rows = run.items.order_by("ordinal").values_list(*columns).iterator(chunk_size=2000)
        return csv_response(f"{run.kind}-{run.pk}-items.csv", columns, rows)


def control_words(action: str, run: BackfillRun) -> str:
    """What a control did, as the database has it now: pause and resume change only the run's
    state (no pipeline row); cancel stops processing; retry opens a new round."""
    name = str(run).rsplit(" (", 1)[0]
    state = run.get_state_display()
    left = max(0, run.estimated_total - run.processed)
    if action == "pause":
        when = (
            "it stops at the end of the batch it is in"
            if run.state == BackfillRun.State.PAUSING
            else "no batch was running"
        )
        return f"{name} is {state}: {when}. Nothing in the pipeline database was changed."
    if action == "resume":
        return (
            f"{name} is {state}: it continues with the {left} session{'' if left == 1 else 's'}"
            " not processed yet. Nothing in the pipeline database was changed by resuming."
        )
    if action == "cancel":
        when = (
            "it stops at the end of the batch it is in"
            if run.state == BackfillRun.State.CANCELLING
            else "it has stopped"
        )
        return f"{name} is {state}: {when}; what it already wrote stays (roll it back for that)."
    return f"{name} is {state}: {run.message}."


def notify_context(request: HttpRequest, run: BackfillRun) -> dict[str, Any]:
    """Results notifications on a run page: the send button of a backfill, the messages of a
    notify run (each one's state as the database has it; addresses only with session access)."""
    from remediation.admin.notifications import can_send
    from remediation.selectors import notifications as sel

    if run.kind == BackfillRun.Kind.FINALIZE:
        created = 0 if run.dry_run else run.items.filter(outcome="created").count()
        return {"notify_created": created, "can_send": can_send(request)}
    if run.kind != BackfillRun.Kind.NOTIFY:
        return {}
    rows = list(run.notifications.order_by("pk")[:500])
    sees = request.user.has_perm("remediation.view_assessmentsession")
    for n in rows:
        n.shown_to = sel.address_for(request.user, n.recipient)  # type: ignore[attr-defined]
        # A refusal may quote the address: the reply only for those who may see addresses.
        n.reply_shown = n.smtp_reply if sees else ("(hidden)" if n.smtp_reply else "")  # type: ignore[attr-defined]
    return {
        "notifications": rows,
        "notification_total": run.notifications.count(),
        "skip_reasons": sorted(
            (sel.SKIP_WORDS.get(r or "", r), n)
            for r, n in _tally(run.items.filter(outcome="skipped").values_list("reason", flat=True))
        ),
    }


def _tally(values: Any) -> list[tuple[str, int]]:
    from collections import Counter

    return list(Counter(values).items())


EDGE_CALLS = ("resume", "retry")  # the controls that make an edge run call the function again


def may_steer(request: HttpRequest, run: BackfillRun, action: str) -> bool:
    """Resuming or retrying an edge run calls the edge function: the Engineer role only."""
    return run.backend != "edge" or action not in EDGE_CALLS or can_use_edge(request)


def _controls(run: BackfillRun) -> list[tuple[str, str]]:
    """The buttons that make sense in the run's state: (action, label)."""
    s = BackfillRun.State
    out = []
    if run.state in (s.ENQUEUED, s.RUNNING):
        out.append(("pause", "Pause"))
    if run.state in (s.PAUSED, s.INTERRUPTED):
        out.append(("resume", "Resume"))
    if run.state in (s.ENQUEUED, s.RUNNING, s.PAUSING, s.PAUSED, s.INTERRUPTED, s.ERRORED):
        out.append(("cancel", "Cancel"))
    if (
        run.kind != "rollback"
        and run.state in jobs.TERMINAL
        and (run.failed or run.items.filter(outcome="busy").exists())
    ):
        out.append(("retry", "Retry failed"))
    return out
