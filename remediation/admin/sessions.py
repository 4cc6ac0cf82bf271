"""The session list and page: pipeline state, why no profile (stored diagnosis), attempts."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from remediation import display, selectors
from remediation.admin.base import CappedCountPaginator, DateRangeFilter, ReadOnlyAdmin
from remediation.admin.fc import can_manage
from remediation.admin.filters import HasProfileFilter, SessionSearchMixin
from remediation.admin.finalize import can_finalize, finalize_action, finalize_view
from remediation.admin.permissions import log_change
from remediation.models import AssessmentSession, FinalizeAttempt
from remediation.services import InvalidSessionId, normalize_session_id, session_diagnose


class SessionActionsMixin(admin.ModelAdmin):
    """Finalize and diagnose, on the session list and the orphan list alike."""

    def has_finalize_permission(self, request: HttpRequest) -> bool:
        return can_finalize(request)

    @admin.action(permissions=["finalize"], description="Finalize selected sessions…")
    def finalize_selected(self, request: HttpRequest, queryset: QuerySet[Any]) -> Any:
        return finalize_action(self, request, queryset)

    @admin.action(permissions=["view"], description="Diagnose selected sessions (why no profile?)")
    def diagnose_selected(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        diagnose_and_report(self, request, queryset)


@admin.register(AssessmentSession)
class AssessmentSessionAdmin(SessionActionsMixin, SessionSearchMixin, ReadOnlyAdmin):
    list_display = ("id", "email", "status", "created_at", "completed_at", "has_profile")
    list_filter = (
        "status",
        HasProfileFilter,
        ("completed_at", DateRangeFilter),
        ("created_at", DateRangeFilter),
    )
    search_fields = ("email",)  # shows the box; get_search_results does the matching
    paginator = CappedCountPaginator
    show_full_result_count = False
    list_per_page = 50
    readonly_fields = (
        "pipeline_state",
        "profile_history",
        "why_no_profile",
        "attempts",
        "results_messages",
    )
    actions = ("finalize_selected", "diagnose_selected", "recompute_fc", "recompute_fc_refinalize")
    fieldsets = (
        (
            "Pipeline state",
            {
                "fields": (
                    "pipeline_state",
                    "profile_history",
                    "why_no_profile",
                    "attempts",
                    "results_messages",
                )
            },
        ),
        (
            "Session",
            {
                "fields": (
                    "id",
                    "status",
                    "email",
                    "user_id",
                    "session_type",
                    "started_at",
                    "completed_at",
                    "finalized_at",
                    "total_questions",
                    "completed_questions",
                    "share_token",
                    "share_token_expires_at",
                    "metadata",
                    "created_at",
                    "updated_at",
                )
            },
        ),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return (
            super().get_queryset(request).annotate(has_profile=selectors.has_profile_expression())
        )

    def get_urls(self) -> list[Any]:
        wrap = self.admin_site.admin_view
        custom = [
            path(
                "<path:object_id>/finalize/",
                wrap(lambda request, object_id: finalize_view(self, request, object_id)),
                name="remediation_assessmentsession_finalize",
            ),
            path(
                "<path:object_id>/diagnose/",
                wrap(self.diagnose_view),
                name="remediation_assessmentsession_diagnose",
            ),
        ]
        return custom + super().get_urls()

    def diagnose_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """POST: try the write (rolled back), store the diagnosis, back to the session page."""
        if request.method != "POST":
            return HttpResponse(status=405)
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            sid = normalize_session_id(object_id)
        except InvalidSessionId as exc:
            raise Http404(str(exc)) from exc
        session = get_object_or_404(AssessmentSession, pk=sid)
        d = session_diagnose(session_id=sid)
        self.message_user(request, f"Diagnosed: {display.reason(d.category, d.sqlstate)}")
        log_change(request, session, f"Diagnosed: {d.category} {d.sqlstate}".strip())
        return HttpResponseRedirect(
            reverse("admin:remediation_assessmentsession_change", args=[sid])
        )

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> Any:
        from remediation.admin.notifications import can_send
        from remediation.selectors.notifications import targets

        try:
            sid = normalize_session_id(object_id)
        except InvalidSessionId:
            sid = None
        link = targets([sid])[sid].results_url if sid else ""
        extra_context = {
            **(extra_context or {}),
            "can_finalize": can_finalize(request),
            "can_send_results": can_send(request),
            "results_link": link,
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def has_manage_fc_permission(self, request: HttpRequest) -> bool:
        return can_manage(request)

    def _recompute(self, request: HttpRequest, queryset: QuerySet[Any], refinalize: bool) -> None:
        from remediation.services import fc

        ids = [str(pk) for pk in queryset.values_list("pk", flat=True)[:26]]
        if len(ids) > 25:
            self.message_user(
                request,
                "More than 25 sessions: start a backfill with re-score, which recomputes FC first.",
                messages.ERROR,
            )
            return
        results = fc.fc_scores_recompute(ids, refinalize=refinalize, actor=request.user)
        for sid, entry in results.items():
            names = ", ".join(e["name"] for e in entry["events"])
            extra = f"; re-finalize: {entry['finalize']}" if "finalize" in entry else ""
            self.message_user(request, f"{sid}: {names}{extra}")

    @admin.action(permissions=["manage_fc"], description="Recompute FC scores")
    def recompute_fc(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        self._recompute(request, queryset, refinalize=False)

    @admin.action(permissions=["manage_fc"], description="Recompute FC scores and re-finalize")
    def recompute_fc_refinalize(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        self._recompute(request, queryset, refinalize=True)

    @admin.display(description="why no profile")
    def why_no_profile(self, obj: AssessmentSession) -> SafeString:
        """The latest stored diagnosis and its time (a page view never diagnoses: that is a
        POST, the "Diagnose now" button)."""
        d = selectors.stored_diagnoses([obj.pk]).get(str(obj.pk))
        if d is None:
            return format_html("{}", "not diagnosed yet: press “Diagnose now”")
        return format_html(
            '<div class="diagnosis diagnosis-{}"><strong>{}</strong>: {}'
            ' <span class="diagnosed-at">(diagnosed {})</span></div>',
            d.category,
            display.reason(d.category, d.sqlstate),
            d.explanation,
            display.when(d.checked_at),
        )

    @admin.display(description="profile history")
    def profile_history(self, obj: AssessmentSession) -> SafeString:
        """What runs did to the profile, and what is there now (runs link to their pages)."""
        from remediation.models import Profile

        now = Profile.objects.filter(session_id=obj.pk).values_list("pk", flat=True).first()
        current = (
            format_html(
                'now: <a href="{}" id="profile-now">profile {}</a>',
                reverse("admin:remediation_profile_change", args=[now]),
                now,
            )
            if now
            else format_html('<span id="profile-now">{}</span>', "now: no profile")
        )
        rows = selectors.profile_history(obj.pk)
        if not rows:
            return format_html("{}; no run has written it", current)
        return format_html(
            '<ol class="profile-history" id="profile-history">{}</ol>{}',
            format_html_join(
                "",
                '<li>{}: {} by <a href="{}">{}</a></li>',
                (
                    (
                        display.when(r["at"]) if r["at"] else "–",
                        r["what"],
                        reverse("admin:remediation_backfillrun_change", args=[r["run_id"]]),
                        r["run"],
                    )
                    for r in rows
                ),
            ),
            current,
        )

    @admin.display(description="finalize attempts")
    def attempts(self, obj: AssessmentSession) -> SafeString:
        from remediation.models import Profile

        rows = FinalizeAttempt.objects.filter(session_id=obj.pk).order_by("-started_at")[:20]
        if not rows:
            return format_html("{}", "none yet")
        current = Profile.objects.filter(session_id=obj.pk).values_list("pk", flat=True).first()
        return format_html(
            '<table class="attempts"><tr><th>when</th><th>who</th><th>backend</th><th>outcome</th>'
            "<th>SQLSTATE</th><th>detail</th><th>results</th></tr>{}</table>",
            format_html_join(
                "",
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                (
                    (
                        display.when(a.started_at),
                        a.requested_by_name,
                        a.backend,
                        a.get_outcome_display(),
                        display.sqlstate(a.sqlstate),
                        a.explanation or a.type_code or "–",
                        _results_cell(a, current),
                    )
                    for a in rows
                ),
            ),
        )

    @admin.display(description="results messages")
    def results_messages(self, obj: AssessmentSession) -> SafeString:
        """The results notifications of this session, as the database has them."""
        from remediation.models import ResultsNotification

        rows = ResultsNotification.objects.filter(session_id=obj.pk).order_by("-generation")[:10]
        if not rows:
            return format_html("{}", "none sent yet")
        return format_html(
            '<table class="results-messages"><tr><th>message</th><th>state</th><th>reason</th>'
            "<th>attempts</th><th>sent</th><th>run</th></tr>{}</table>",
            format_html_join(
                "",
                '<tr><td>#{}</td><td class="notification-state">{}</td><td>{}</td><td>{}</td>'
                '<td>{}</td><td><a href="{}">#{}</a></td></tr>',
                (
                    (
                        n.generation,
                        n.get_state_display(),
                        n.get_reason_display(),
                        n.attempts,
                        n.sent_at or "–",
                        reverse("admin:remediation_backfillrun_change", args=[n.run_id or 0]),
                        n.run_id or "–",
                    )
                    for n in rows
                ),
            ),
        )

    @admin.display(boolean=True, description="profile", ordering="has_profile")
    def has_profile(self, obj: Any) -> bool:
        return bool(getattr(obj, "has_profile", False))

    @admin.display(description="at a glance")
    def pipeline_state(self, obj: AssessmentSession) -> SafeString:
        state = selectors.session_pipeline_state(obj.pk)
        answers_url = (
            reverse("admin:remediation_assessmentresponse_changelist")
            + f"?session__id__exact={obj.pk}"
        )
        rows: list[tuple[str, Any]] = [
            ("Answers", format_html('<a href="{}">{}</a>', answers_url, state.answers)),
            ("Answers only in answer_numeric", state.answers_only_numeric),
            ("answer_value and answer_numeric disagree", state.answers_disagreeing),
            ("FC responses", state.fc_responses),
            (
                "FC scores",
                ", ".join(
                    f"{s['version']}/{s['fc_kind']} ({display.count(s['blocks_answered'], 'block')})"
                    for s in state.fc_scores
                )
                or "none",
            ),
        ]
        profile = state.profile
        if profile is None:
            rows.append(
                (
                    "Profile",
                    format_html(
                        "<strong>{}</strong>",
                        "none: orphaned" if obj.status == "completed" else "none",
                    ),
                )
            )
        else:
            url = reverse("admin:remediation_profile_change", args=[profile.pk])
            rows.append(
                (
                    "Profile",
                    format_html(
                        '<a href="{}">{} {}</a>, created {}, submitted {}, recomputed {}',
                        url,
                        profile.type_code or "?",
                        profile.results_version or "?",
                        display.when(profile.created_at),
                        display.when(profile.submitted_at),
                        display.when(profile.recomputed_at),
                    ),
                )
            )
        return format_html(
            '<table class="pipeline-state">{}</table>',
            format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", rows),
        )


def _results_cell(attempt: FinalizeAttempt, current: Any) -> SafeString | str:
    """The attempt's results link, only while the profile it wrote is there now."""
    if not attempt.results_url:
        return "–"
    if current is None:
        return format_html('<span class="gone">{}</span>', "profile no longer exists")
    if attempt.profile_id and str(attempt.profile_id) != str(current):
        return format_html('<span class="gone">{}</span>', "replaced since")
    return format_html('<a href="{}">link</a>', attempt.results_url)


def diagnose_and_report(
    model_admin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Any]
) -> None:
    from collections import Counter

    from remediation.pipeline import load_context

    sessions = list(queryset[:200])
    ctx = load_context()
    tally: Counter[str] = Counter(
        session_diagnose(session_id=str(s.pk), context=ctx).category for s in sessions
    )
    summary = ", ".join(f"{n} {display.words(cat)}" for cat, n in tally.most_common())
    model_admin.message_user(
        request, f"Diagnosed {display.count(len(sessions), 'session')}: {summary}."
    )
