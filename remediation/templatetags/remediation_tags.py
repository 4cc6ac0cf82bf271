"""The portal's template filters and the banner of every admin page.

Filters (remediation.display holds the definitions, shared with messages and exports):
`when` (a date-time in the portal's zone and format), `duration` (milliseconds as a person
reads them), `words` (a code as words), `sqlstate` (a SQLSTATE's name with the code),
`count` ({{ n|count:"alert" }} → "1 alert", "2 alerts"; "batch,batches" for odd plurals).
"""

from typing import Any

from django import template

from remediation import display

register = template.Library()


@register.filter
def get_item(mapping: dict[str, Any], key: Any) -> Any:
    """mapping[str(key)] in a template."""
    return mapping.get(str(key))


register.filter("when", display.when)
register.filter("duration", display.duration)
register.filter("words", display.words)
register.filter("sqlstate", display.sqlstate)
register.filter("reason", display.reason)
register.filter("seconds", display.seconds)
register.filter("selection", display.selection)


@register.filter
def count(n: Any, nouns: str) -> str:
    """{{ n|count:"session" }} → "1 session" / "3 sessions"; {{ n|count:"batch,batches" }}."""
    noun, _, plural = nouns.partition(",")
    return display.count(n, noun, plural)


@register.inclusion_tag("admin/remediation/banner.html", takes_context=True)
def ops_banner(context: template.Context) -> dict[str, Any]:
    """Open alerts by severity and the maintenance gate, for a signed-in staff member."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not (user.is_active and user.is_staff):
        return {"show": False}
    from remediation.selectors.banner import banner_state

    return {
        "show": True,
        "banner": banner_state(),
        "can_view_alerts": user.has_perm("remediation.view_alert"),
        "can_view_runbook": user.has_perm("remediation.view_runbookrecord")
        or user.has_perm("remediation.run_runbook"),
    }
