"""The write-path probe: SELECT and INSERT on profiles as each role, with PostgREST's claims.

The INSERT writes the engine's real row: the profile row the write path builds for the
runbook's test session (the newest orphan), so each role meets exactly what the edge
function's write meets (RLS, grants, the CHECK constraints on the engine's values,
triggers). Only when there is no orphan (or it cannot be scored) does it write the
engine's row for a synthetic session, and says so. Every probe runs in a transaction that
is always rolled back: nothing stays behind.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from django.db import DatabaseError, connections, transaction
from django.utils import timezone

from remediation.pipeline import (
    classify_error,
    load_context,
    pipeline_transaction,
    postgrest_claims,
)
from remediation.pipeline.profiles import engine_row
from remediation.pipeline.samples import engine_sample_rows
from remediation.pipeline.sql import json_default
from remediation.selectors.checks import STRICT_POLICY_SQL
from remediation.selectors.sessions import newest_orphan_id

# Categories of a refusal that come after the RLS check of an INSERT (CHECK constraints,
# unique and foreign keys, AFTER triggers): the policy had let the row through.
REFUSED_BEFORE_RLS = ("rls", "grant", "schema")
# The engine row's columns the probe shows (those the incident's constraints are about).
SHOWN = ("type_code", "overlay_neuro", "overlay_state", "fc_answered_ct", "fc_coverage_bucket")


@dataclass
class ProbeCell:
    role: str
    claim: str
    select: str
    insert: str
    insert_category: str = ""  # "" when the INSERT was allowed, else the refusal's category


def probe_write_path() -> dict[str, Any]:
    """SELECT and INSERT on profiles as each role, with PostgREST's claims, all rolled back."""
    with connections["pipeline"].cursor() as cur:
        cur.execute("SELECT current_user")
        own = cur.fetchone()[0]
        cur.execute("SELECT rolbypassrls FROM pg_roles WHERE rolname = 'service_role'")
        row = cur.fetchone()
        bypass = bool(row and row[0])
        cur.execute(
            "SELECT count(*) FROM pg_policies WHERE schemaname = 'public' AND tablename = 'profiles'"
        )
        policies = cur.fetchone()[0]
    cases = [
        ("anon", "anon"),
        ("authenticated", "authenticated"),
        ("service_role", "service_role"),
        (own, "(none: the portal's own connection)"),
        ("authenticated", "service_role (forged)"),
    ]
    sample = _engine_row()
    cells = [ProbeCell(role, claim, *_probe(role, claim, own, sample)) for role, claim in cases]
    forged = cells[-1]
    notes = []
    if policies and forged.insert_category not in REFUSED_BEFORE_RLS:
        later = (
            ""
            if not forged.insert_category
            else f" (the row was then stopped by something after the policy: {forged.insert})"
        )
        notes.append(
            "A forged claim gets through: a session running as authenticated that sets "
            "request.jwt.claims role=service_role passes the plan's policy (TO public, auth.role() "
            f"= 'service_role'){later}. Scope the policy to the role instead: " + STRICT_POLICY_SQL
        )
    if bypass:
        notes.append(
            "service_role has BYPASSRLS: its writes ignore every policy, so the plan's policy "
            "changes nothing for the real edge function."
        )
    notes.append(sample["note"])  # last: the warnings come first
    forms = _forms(own, sample)
    return {
        "forms": forms,
        "own_role": own,
        "bypassrls": bypass,
        "policies": policies,
        "cells": [asdict(c) for c in cells],
        "session": {k: v for k, v in sample.items() if k != "row"},
        "notes": notes,
        "strict_policy": STRICT_POLICY_SQL,
    }


def _engine_row() -> dict[str, Any]:
    """The row the write path builds for the test session (rolled back: scoring FC writes
    fc_scores), else the engine's row for a synthetic session; with what it is."""
    sid = newest_orphan_id()
    now = timezone.now()
    reason = "there is no orphaned session"
    with pipeline_transaction(), connections["pipeline"].cursor() as cur:
        ctx = load_context()
        row = None
        if sid is not None:
            row, outcome = engine_row(ctx, cur, sid, now)
            if row is None:
                reason = f"the test session {sid} cannot be scored ({outcome.explanation})"
        if row is None:
            samples = engine_sample_rows(ctx, now)
            row = samples[0][1] if samples else None
        transaction.set_rollback(True, using="pipeline")
    if row is None:  # nothing the engine can score here (no scoring key): the bare row
        return {
            "session_id": None,
            "synthetic": True,
            "values": {},
            "note": "Every INSERT writes only session_id (a synthetic session): the engine has"
            f" nothing to score here ({reason}, and no Likert item in the scoring key).",
            "row": {"session_id": None},
        }
    if sid is not None and str(row.get("session_id")) == sid:
        synthetic, session_id = False, sid
        what = f"the engine's row for the test session {sid} (the newest orphan)"
    else:
        synthetic, session_id = True, None
        what = (
            f"the engine's row for a synthetic session ({reason}; every Likert item answered 3,"
            " no forced choice)"
        )
    shown = ", ".join(f"{k} = {row[k]!r}" for k in SHOWN if k in row)
    return {
        "session_id": session_id,
        "synthetic": synthetic,
        "values": {k: row[k] for k in SHOWN if k in row},
        "note": f"Every INSERT writes {what}, as the write path builds it: {shown}.",
        "row": row,
    }


def _forms(own: str, sample: dict[str, Any]) -> list[dict[str, Any]]:
    """What each form of Fix A lets through, each alone: in a transaction that is rolled
    back, the policies on profiles are replaced by that form's policy, then the forged claim
    and the real service_role try the engine's row."""
    from remediation.fixes.forms import FORMS

    out = []
    for form in FORMS.values():
        cells = {}
        for role, claim in (
            ("authenticated", "service_role (forged)"),
            ("service_role", "service_role"),
        ):
            _select, insert, category = _probe(role, claim, own, sample, policy_sql=form.sql)
            cells[claim] = {"insert": insert, "passed_rls": category not in REFUSED_BEFORE_RLS}
        out.append(
            {
                "form": form.key,
                "label": form.label,
                "forged": cells["service_role (forged)"],
                "service_role": cells["service_role"],
            }
        )
    return out


_ONLY_THIS_POLICY = """
DO $$
DECLARE p record;
BEGIN
  FOR p IN SELECT policyname FROM pg_policies WHERE schemaname = 'public' AND tablename = 'profiles' LOOP
    EXECUTE format('DROP POLICY %I ON public.profiles', p.policyname);
  END LOOP;
END
$$;
"""


def _probe(
    role: str, claim: str, own: str, sample: dict[str, Any], *, policy_sql: str = ""
) -> tuple[str, str, str]:
    results = []
    category = ""
    for op in ("select", "insert"):
        try:
            with pipeline_transaction(), connections["pipeline"].cursor() as cur:
                if policy_sql:  # rolled back with everything else
                    cur.execute(_ONLY_THIS_POLICY)
                    cur.execute(policy_sql)
                row = dict(sample["row"])
                if op == "insert" and sample["synthetic"]:
                    cur.execute(
                        "INSERT INTO assessment_sessions (status, share_token) VALUES ('completed',"
                        " 'probe-' || gen_random_uuid()::text) RETURNING id::text"
                    )
                    row["session_id"] = cur.fetchone()[0]
                if role != own:
                    cur.execute(f'SET LOCAL ROLE "{role}"')
                if not claim.startswith("(none"):
                    cur.execute(
                        "SELECT set_config('request.jwt.claims', %s, true)",
                        [postgrest_claims(claim.split(" ")[0])],
                    )
                if op == "select":
                    cur.execute("SELECT count(*) FROM profiles")
                    results.append(f"allowed ({cur.fetchone()[0]} rows visible)")
                else:
                    names = ", ".join(row)
                    cur.execute(
                        f"INSERT INTO profiles ({names}) SELECT {names}"
                        " FROM jsonb_populate_record(NULL::profiles, %s::jsonb)",
                        [json.dumps(row, default=json_default)],
                    )
                    results.append("allowed")
                transaction.set_rollback(True, using="pipeline")
        except DatabaseError as exc:
            info = classify_error(exc)
            where = f" {info.constraint}" if info.constraint else ""
            results.append(f"refused: {info.sqlstate} {info.category}{where}")
            if op == "insert":
                category = info.category
    return results[0], results[1], category
