"""What a fix (A, D, E) or its rollback would do, read from the live catalog, for the
confirmation page: the SQL it would run and the objects it touches. Reads only (no
CREATE SCHEMA, no lock): a GET of the confirmation page leaves the database as it was.

The statements mirror the fixes' migrations (remediation/fixes/migrations/): Fix A's
policy SQL, Fix D's widened CHECKs and restored definitions, Fix E's guarded triggers and
the stored definitions its rollback restores.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any

from django.conf import settings
from django.db import connections

from remediation.fixes import executor
from remediation.fixes.forms import FORMS
from remediation.fixes.operations import portal_schema


@dataclass
class FixObject:
    """One catalog object the fix touches: its kind, name, definition now, what happens."""

    kind: str
    name: str
    definition: str
    effect: str


@dataclass
class FixPreview:
    fix: str
    reverse: bool
    title: str
    applied: bool
    statements: list[str] = field(default_factory=list)
    objects: list[FixObject] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # Fix A apply: one entry per form, {"key", "label", "lets_through", "statements", "effect"}.
    forms: list[dict[str, Any]] = field(default_factory=list)
    # Fix D rollback: {constraint: rows that would block it}; non-empty means refused.
    blocking: dict[str, int] = field(default_factory=dict)

    @property
    def changes_nothing(self) -> bool:
        return self.applied != self.reverse


def _migration(name: str) -> Any:
    return import_module(f"remediation.fixes.migrations.{executor.FIXES[name]}")


def _preimages(cur: Any, fix: str) -> list[tuple[str, str]]:
    cur.execute("SELECT to_regclass(%s)", [f"{portal_schema()}.fix_preimages"])
    if cur.fetchone()[0] is None:
        return []
    cur.execute(
        f"SELECT object, definition FROM {portal_schema()}.fix_preimages"
        " WHERE fix = %s ORDER BY object",
        [fix],
    )
    return list(cur.fetchall())


def _policies(cur: Any) -> list[FixObject]:
    cur.execute(
        "SELECT policyname, cmd, roles::text[], qual, with_check, permissive FROM pg_policies"
        " WHERE schemaname = 'public' AND tablename = 'profiles' ORDER BY policyname"
    )
    describe = _migration("A").describe
    return [
        FixObject(
            "policy",
            name,
            describe({"cmd": c, "roles": list(r), "qual": q, "with_check": w, "permissive": p}),
            "left as it is",
        )
        for name, c, r, q, w, p in cur.fetchall()
    ]


def _setup_statements() -> list[str]:
    """What every fix runs first: its lock timeout and the portal's bookkeeping table."""
    mod = import_module("remediation.fixes.operations")
    return [
        f"SET LOCAL lock_timeout = '{settings.PIPELINE_LOCK_TIMEOUT}'",
        f"CREATE SCHEMA IF NOT EXISTS {portal_schema()}",
        mod.preimages_table_sql(),
    ]


def fix_preview(name: str, *, reverse: bool) -> FixPreview:
    """The confirmation page's preview of applying (or rolling back) fix `name`."""
    executor.migration(name)  # validates the name
    applied = executor.is_applied(name)
    preview = FixPreview(name, reverse, executor.TITLES[name], applied)
    if preview.changes_nothing:
        state = "applied" if applied else "not applied"
        preview.notes.append(f"Fix {name} is {state} already: confirming changes nothing.")
        return preview
    with connections[executor.PIPELINE].cursor() as cur:
        cur.execute("SELECT to_regclass('public.profiles')")
        if cur.fetchone()[0] is None:
            preview.notes.append("public.profiles does not exist here: the fix changes nothing.")
            return preview
        {"A": _fix_a, "D": _fix_d, "E": _fix_e}[name](cur, preview)
    return preview


def _fix_a(cur: Any, preview: FixPreview) -> None:
    mod = _migration("A")
    policies = _policies(cur)
    names = {p.name for p in policies}
    if not preview.reverse:
        for key, f in FORMS.items():
            if f.policy in names:
                effect = (
                    f'a policy named "{f.policy}" is already there: it is recorded and'
                    " left as it is; nothing changes"
                )
                statements = _setup_statements()
            else:
                effect = f'creates the policy "{f.policy}" on public.profiles'
                statements = [*_setup_statements(), f.sql]
            preview.forms.append(
                {
                    "key": key,
                    "label": f.label,
                    "lets_through": f.lets_through,
                    "statements": statements,
                    "effect": effect,
                }
            )
        preview.objects = policies
        return
    stored = _preimages(cur, "A")
    if not stored:
        preview.notes.append(
            "Nothing was recorded about what Fix A created (applied by an older version):"
            " no policy is dropped."
        )
    by_name = {p.name: p for p in policies}
    statements = [f"SET LOCAL lock_timeout = '{settings.PIPELINE_LOCK_TIMEOUT}'"]
    for obj, definition in stored:
        kind, _, pname = obj.partition(":")
        if kind == "created":
            statements.append(f"DROP POLICY IF EXISTS {mod._ident(pname)} ON public.profiles")
            if pname in by_name:
                by_name[pname].effect = "dropped (Fix A created it)"
        elif kind == "pre-existing":
            if pname in by_name:
                by_name[pname].effect = "left as it is (it was there before Fix A)"
            else:
                sql = mod.create_policy_sql(pname, json.loads(definition))
                statements.append(sql)
                policies.append(
                    FixObject(
                        "policy", pname, "(missing now)", "re-created from its stored definition"
                    )
                )
    statements.append(f"DELETE FROM {portal_schema()}.fix_preimages WHERE fix = 'A'")
    preview.statements = statements
    preview.objects = policies


def _constraint(cur: Any, name: str) -> str | None:
    cur.execute(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid ="
        " to_regclass('public.profiles') AND conname = %s AND contype = 'c'",
        [name],
    )
    row = cur.fetchone()
    return row[0] if row else None


def _fix_d(cur: Any, preview: FixPreview) -> None:
    mod = _migration("D")
    stored = dict(_preimages(cur, "D"))
    statements = [*_setup_statements()] if not preview.reverse else []
    if not preview.reverse:
        for name, (column, values) in mod.VOCABULARY.items():
            now = _constraint(cur, name)
            if now is None:
                preview.objects.append(
                    FixObject("constraint", name, "(does not exist here)", "left alone")
                )
                continue
            if name in stored:
                preview.objects.append(FixObject("constraint", name, now, "already widened"))
                continue
            allowed = ", ".join(f"'{v}'" for v in values)
            new = f"CHECK (({mod._body(now)}) OR {column} IN ({allowed}))"
            statements.append(
                f'ALTER TABLE public.profiles DROP CONSTRAINT "{name}", ADD CONSTRAINT "{name}" {new}'
            )
            preview.objects.append(
                FixObject(
                    "constraint", name, now, f"replaced by {new} (its old definition is stored)"
                )
            )
        preview.statements = statements
        return
    if not stored:
        preview.notes.append("Fix D recorded no constraint: its rollback changes nothing.")
        return
    statements = [
        f"SET LOCAL lock_timeout = '{settings.PIPELINE_LOCK_TIMEOUT}'",
        "LOCK TABLE public.profiles IN ACCESS EXCLUSIVE MODE",
    ]
    for name, definition in sorted(stored.items()):
        now = _constraint(cur, name) or "(missing now)"
        cur.execute(f"SELECT count(*) FROM public.profiles WHERE NOT ({mod._body(definition)})")
        blocking = cur.fetchone()[0]
        if blocking:
            preview.blocking[name] = blocking
        statements.append(
            f'ALTER TABLE public.profiles DROP CONSTRAINT IF EXISTS "{name}",'
            f' ADD CONSTRAINT "{name}" {definition}'
        )
        preview.objects.append(
            FixObject("constraint", name, now, f"restored to {definition} (stored at apply)")
        )
    statements.append(f"DELETE FROM {portal_schema()}.fix_preimages WHERE fix = 'D'")
    preview.statements = statements
    if preview.blocking:
        total = sum(preview.blocking.values())
        preview.notes.append(
            f"{total} profile{'s' if total != 1 else ''} written since would violate the stored"
            " definitions: confirming would be refused and change nothing (no other fix is"
            " touched)."
        )


def _fix_e(cur: Any, preview: FixPreview) -> None:
    if not preview.reverse:
        cur.execute(
            "SELECT tg.tgname, pg_get_triggerdef(tg.oid),"
            " regexp_replace(pg_get_triggerdef(tg.oid), ' EXECUTE (FUNCTION|PROCEDURE) ',"
            " ' WHEN (pg_trigger_depth() < 1) EXECUTE \\1 ')"
            " FROM pg_trigger tg JOIN pg_proc p ON p.oid = tg.tgfoid"
            " WHERE tg.tgrelid = 'public.profiles'::regclass AND NOT tg.tgisinternal"
            " AND pg_get_functiondef(p.oid) ~* 'update\\s+(public\\.)?profiles'"
            " AND pg_get_triggerdef(tg.oid) !~* 'pg_trigger_depth'"
            " AND pg_get_functiondef(p.oid) !~* 'pg_trigger_depth' ORDER BY 1"
        )
        rows = cur.fetchall()
        preview.statements = _setup_statements()
        for tgname, tdef, guarded in rows:
            preview.statements += [f'DROP TRIGGER "{tgname}" ON public.profiles', guarded]
            preview.objects.append(
                FixObject("trigger", tgname, tdef, "re-created with WHEN (pg_trigger_depth() < 1)")
            )
        if not rows:
            preview.notes.append("No recursive trigger on profiles here: nothing is changed.")
        return
    stored = _preimages(cur, "E")
    functions = {o[len("function:") :]: d for o, d in stored if o.startswith("function:")}
    statements = [f"SET LOCAL lock_timeout = '{settings.PIPELINE_LOCK_TIMEOUT}'"]
    for obj, definition in stored:
        if not obj.startswith("trigger:"):
            continue
        tgname = obj[len("trigger:") :]
        cur.execute(
            "SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid ="
            " 'public.profiles'::regclass AND tgname = %s",
            [tgname],
        )
        row = cur.fetchone()
        statements.append(f'DROP TRIGGER IF EXISTS "{tgname}" ON public.profiles')
        if tgname in functions:
            statements.append(functions[tgname].strip())
        statements.append(definition)
        preview.objects.append(
            FixObject(
                "trigger",
                tgname,
                row[0] if row else "(missing now)",
                f"restored to {definition} (stored at apply)",
            )
        )
    statements.append(f"DELETE FROM {portal_schema()}.fix_preimages WHERE fix = 'E'")
    preview.statements = statements
    if not preview.objects:
        preview.notes.append("Fix E recorded no trigger: its rollback changes nothing.")


def fix_states() -> dict[str, bool]:
    """Each fix: applied or not, now."""
    now = executor.applied()
    return {name: name in now for name in executor.FIXES}


def sql_quote(text: str) -> str:
    """A value as an SQL literal, for showing statements (never executed from here)."""
    return "'" + re.sub("'", "''", text) + "'"
