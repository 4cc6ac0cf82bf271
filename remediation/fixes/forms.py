"""The two forms Fix A can take, chosen at apply time and recorded with the fix.

- "plan": the IR-07 plan's policy, verbatim: `TO public` with a check on auth.role().
  Any role that can set the JWT claim itself (a forged `role: service_role`) passes it.
- "strict": the stricter form the runbook's checks and probe recommend
  (remediation.selectors.checks.STRICT_POLICY_SQL): `TO service_role`, so only a
  connection that really is service_role passes; a forged claim does not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from remediation.selectors.checks import STRICT_POLICY_SQL

PLAN_POLICY_NAME = "Service role can manage profiles"
PLAN_POLICY_SQL = (
    f'CREATE POLICY "{PLAN_POLICY_NAME}"\n'
    "ON public.profiles\n"
    "FOR ALL\n"
    "TO public\n"
    "USING (auth.role() = 'service_role')\n"
    "WITH CHECK (auth.role() = 'service_role');"
)


@dataclass(frozen=True)
class PolicyForm:
    key: str
    label: str
    policy: str
    sql: str
    lets_through: str


def _policy_name(sql: str) -> str:
    found = re.search(r'CREATE POLICY "([^"]+)"', sql)
    if found is None:
        raise ValueError(f"no policy name in {sql!r}")
    return found.group(1)


FORMS: dict[str, PolicyForm] = {
    "plan": PolicyForm(
        "plan",
        "the plan's form (TO public, USING auth.role() = 'service_role')",
        PLAN_POLICY_NAME,
        PLAN_POLICY_SQL,
        "any connection whose JWT claims say role = service_role, including a forged claim"
        " set by anon or authenticated: the probe's forged-claim row gets through",
    ),
    "strict": PolicyForm(
        "strict",
        "the strict form (TO service_role, USING true)",
        _policy_name(STRICT_POLICY_SQL),
        STRICT_POLICY_SQL,
        "only connections that are the service_role role; a forged service_role claim"
        " from anon or authenticated does not get through",
    ),
}
DEFAULT_FORM = "plan"


def form(key: str | None) -> PolicyForm:
    """The form called `key` (default: the plan's); ValueError for any other name."""
    chosen = key or DEFAULT_FORM
    if chosen not in FORMS:
        raise ValueError(f"unknown Fix A form {chosen!r} (plan or strict)")
    return FORMS[chosen]
