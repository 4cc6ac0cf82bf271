"""Breaking the write path each way the incident knew, and repairing it (dev and tests only).

Each `Break` reads what it is about to change from the catalog first and its repair puts
exactly that back:

- "check": a CHECK that rejects the engine's values (profiles_fc_coverage_bucket_check as
  the migrations wrote it: 'None', 'Partial', 'Full'; the engine writes 'low' or 'full');
- "trigger": a trigger on profiles that fires itself again with no guard (54001), like
  update_fc_metrics_trigger before Fix E;
- "rls": service_role without BYPASSRLS and no policy on profiles (42501, row-level security),
  the incident's own cause;
- "grant": INSERT and UPDATE on profiles revoked from service_role (42501, permission denied).

Roles are cluster-wide: the "rls" break changes service_role on the whole server.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import connections

CHECK = "profiles_fc_coverage_bucket_check"
CHECK_SQL = "CHECK (fc_coverage_bucket IN ('None', 'Partial', 'Full'))"
TRIGGER = "recursive_fc_metrics_trigger"
TRIGGER_FUNCTION = "recursive_fc_metrics"
CAUSES = ("check", "trigger", "rls", "grant")
# What the canary's alert names for each break (CanaryResult.cause).
EXPECTED = {
    "check": f"23514 on {CHECK}",
    "trigger": f"54001 in trigger {TRIGGER}",
    "rls": "42501 row-level security on profiles",
    "grant": "42501 permission denied on profiles",
}


@dataclass
class Break:
    """One break of the write path, with what its repair restores."""

    cause: str
    saved: dict[str, Any] = field(default_factory=dict)
    using: str = "pipeline"

    def apply(self) -> None:
        with connections[self.using].cursor() as cur:
            getattr(self, f"_break_{self.cause}")(cur)

    def repair(self) -> None:
        with connections[self.using].cursor() as cur:
            getattr(self, f"_repair_{self.cause}")(cur)

    # --- a CHECK that rejects the engine's values -------------------------------------------
    def _break_check(self, cur: Any) -> None:
        cur.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE conname = %s AND conrelid = 'public.profiles'::regclass",
            [CHECK],
        )
        row = cur.fetchone()
        self.saved["definition"] = row[0] if row else None
        cur.execute(
            f"ALTER TABLE public.profiles DROP CONSTRAINT IF EXISTS {CHECK},"
            f" ADD CONSTRAINT {CHECK} {CHECK_SQL} NOT VALID"
        )

    def _repair_check(self, cur: Any) -> None:
        sql = f"ALTER TABLE public.profiles DROP CONSTRAINT IF EXISTS {CHECK}"
        if self.saved.get("definition"):
            sql += f", ADD CONSTRAINT {CHECK} {self.saved['definition']}"
            if "NOT VALID" not in self.saved["definition"]:
                sql += " NOT VALID"
        cur.execute(sql)

    # --- a recursive trigger -----------------------------------------------------------------
    def _break_trigger(self, cur: Any) -> None:
        cur.execute(
            f"CREATE OR REPLACE FUNCTION public.{TRIGGER_FUNCTION}() RETURNS trigger"
            " LANGUAGE plpgsql AS $fn$ BEGIN"
            " UPDATE public.profiles SET fc_answered_ct = NEW.fc_answered_ct"
            " WHERE session_id = NEW.session_id; RETURN NEW; END $fn$"
        )
        cur.execute(
            f"CREATE TRIGGER {TRIGGER} AFTER INSERT OR UPDATE ON public.profiles"
            f" FOR EACH ROW EXECUTE FUNCTION public.{TRIGGER_FUNCTION}()"
        )

    def _repair_trigger(self, cur: Any) -> None:
        cur.execute(f"DROP TRIGGER IF EXISTS {TRIGGER} ON public.profiles")
        cur.execute(f"DROP FUNCTION IF EXISTS public.{TRIGGER_FUNCTION}()")

    # --- RLS without BYPASSRLS and without a policy -------------------------------------------
    def _break_rls(self, cur: Any) -> None:
        cur.execute("SELECT rolbypassrls FROM pg_roles WHERE rolname = 'service_role'")
        self.saved["bypassrls"] = bool(cur.fetchone()[0])
        cur.execute("SELECT relrowsecurity FROM pg_class WHERE oid = 'public.profiles'::regclass")
        self.saved["rls_enabled"] = bool(cur.fetchone()[0])
        cur.execute(
            "SELECT policyname, permissive, roles::text[], cmd, qual, with_check FROM pg_policies"
            " WHERE schemaname = 'public' AND tablename = 'profiles' ORDER BY policyname"
        )
        self.saved["policies"] = [list(r) for r in cur.fetchall()]
        for name, *_ in self.saved["policies"]:
            cur.execute(f'DROP POLICY "{name}" ON public.profiles')
        cur.execute("ALTER ROLE service_role NOBYPASSRLS")
        cur.execute("ALTER TABLE public.profiles ENABLE ROW LEVEL SECURITY")

    def _repair_rls(self, cur: Any) -> None:
        for name, permissive, roles, cmd, qual, check in self.saved.get("policies", []):
            sql = (
                f'CREATE POLICY "{name}" ON public.profiles AS {permissive} FOR {cmd}'
                f" TO {', '.join(roles)}"
            )
            if qual:
                sql += f" USING ({qual})"
            if check:
                sql += f" WITH CHECK ({check})"
            cur.execute(sql)
        if self.saved.get("bypassrls"):
            cur.execute("ALTER ROLE service_role BYPASSRLS")
        if not self.saved.get("rls_enabled", True):
            cur.execute("ALTER TABLE public.profiles DISABLE ROW LEVEL SECURITY")

    # --- a revoked grant -----------------------------------------------------------------------
    def _break_grant(self, cur: Any) -> None:
        cur.execute(
            "SELECT has_table_privilege('service_role', 'public.profiles', 'INSERT'),"
            " has_table_privilege('service_role', 'public.profiles', 'UPDATE')"
        )
        self.saved["insert"], self.saved["update"] = cur.fetchone()
        cur.execute("REVOKE INSERT, UPDATE ON public.profiles FROM service_role")

    def _repair_grant(self, cur: Any) -> None:
        granted = [p for p in ("insert", "update") if self.saved.get(p, True)]
        if granted:
            cur.execute(f"GRANT {', '.join(granted).upper()} ON public.profiles TO service_role")


def break_write_path(cause: str, *, using: str = "pipeline") -> Break:
    """Break the write path one way (committed); the returned Break repairs it."""
    if cause not in CAUSES:
        raise ValueError(f"unknown cause {cause!r}; one of {CAUSES}")
    b = Break(cause, using=using)
    b.apply()
    return b
