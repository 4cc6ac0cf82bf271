"""The write-path probe: SELECT and INSERT on profiles as each role, with PostgREST's claims.

Every probe runs in a transaction that is always rolled back: nothing stays behind.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from django.db import DatabaseError, connections, transaction

from remediation.pipeline import classify_error, pipeline_transaction, postgrest_claims
from remediation.selectors.checks import STRICT_POLICY_SQL


@dataclass
class ProbeCell:
    role: str
    claim: str
    select: str
    insert: str


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
    cells = [ProbeCell(role, claim, *_probe(role, claim, own)) for role, claim in cases]
    forged = cells[-1]
    notes = []
    if forged.insert == "allowed" and policies:
        notes.append(
            "A forged claim gets through: a session running as authenticated that sets "
            "request.jwt.claims role=service_role passes the plan's policy (TO public, auth.role() "
            "= 'service_role'). Scope the policy to the role instead: " + STRICT_POLICY_SQL
        )
    if bypass:
        notes.append(
            "service_role has BYPASSRLS: its writes ignore every policy, so the plan's policy "
            "changes nothing for the real edge function."
        )
    return {
        "own_role": own,
        "bypassrls": bypass,
        "policies": policies,
        "cells": [asdict(c) for c in cells],
        "notes": notes,
        "strict_policy": STRICT_POLICY_SQL,
    }


def _probe(role: str, claim: str, own: str) -> tuple[str, str]:
    results = []
    for op in ("select", "insert"):
        try:
            with pipeline_transaction(), connections["pipeline"].cursor() as cur:
                sid = None
                if op == "insert":
                    cur.execute(
                        "INSERT INTO assessment_sessions (status, share_token) VALUES ('completed',"
                        " 'probe-' || gen_random_uuid()::text) RETURNING id::text"
                    )
                    sid = cur.fetchone()[0]
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
                    cur.execute(
                        "INSERT INTO profiles (session_id, overlay_neuro, overlay_state, fc_coverage_bucket,"
                        " results_version) VALUES (%s, '0', '0', 'None', 'probe')",
                        [sid],
                    )
                    results.append("allowed")
                transaction.set_rollback(True, using="pipeline")
        except DatabaseError as exc:
            info = classify_error(exc)
            results.append(f"refused: {info.sqlstate} {info.category}")
    return results[0], results[1]
