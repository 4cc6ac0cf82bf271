"""Fix A of the IR-07 plan: a service-role policy on public.profiles, in one of two forms.

Apply:     the runbook page, or  manage.py fix apply A [--form plan|strict]
Roll back: the runbook page, or  manage.py fix rollback A

The form is chosen at apply time (remediation/fixes/forms.py): "plan" is the plan's policy
exactly as written (`TO public`, a check on auth.role(): a forged claim passes), "strict"
is `TO service_role`. The form and what Fix A found are stored in
<PIPELINE_PORTAL_SCHEMA>.fix_preimages:

- `form`: which form was applied;
- `created:<policy>`: the policy Fix A created (its definition as read back);
- `pre-existing:<policy>`: a policy of that name that was already there (its full
  definition: cmd, roles, qual, with_check, permissive). Fix A then changes nothing and
  says so.

Fix A owns only what it created: the reverse drops a `created:` policy and leaves a
`pre-existing:` one as it is (re-creating it from the stored definition if it has been
dropped since), so the policies on profiles are exactly those before the apply.
"""

import json
from typing import Any, ClassVar

from django.db import migrations

from remediation.fixes.forms import form as policy_form
from remediation.fixes.operations import (
    PIPELINE_HINTS,
    fix_context,
    portal_schema,
    preimages_table_sql,
)
from remediation.fixes.operations import (
    execute_with_lock_timeout as _lock_timeout,
)

POLICY_SQL = (
    "SELECT cmd, roles::text[], qual, with_check, permissive FROM pg_policies"
    " WHERE schemaname = 'public' AND tablename = 'profiles' AND policyname = %s"
)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def policy_definition(cur: Any, name: str) -> dict[str, Any] | None:
    """A policy on public.profiles as pg_policies shows it, or None."""
    cur.execute(POLICY_SQL, [name])
    row = cur.fetchone()
    if row is None:
        return None
    cmd, roles, qual, with_check, permissive = row
    return {
        "cmd": cmd,
        "roles": list(roles),
        "qual": qual,
        "with_check": with_check,
        "permissive": permissive,
    }


def create_policy_sql(name: str, d: dict[str, Any]) -> str:
    """CREATE POLICY that gives back exactly the stored definition."""
    roles = ", ".join("PUBLIC" if r == "public" else _ident(r) for r in d["roles"])
    sql = (
        f"CREATE POLICY {_ident(name)} ON public.profiles AS {d['permissive']}"
        f" FOR {d['cmd']} TO {roles}"
    )
    if d["qual"] is not None:
        sql += f" USING ({d['qual']})"
    if d["with_check"] is not None:
        sql += f" WITH CHECK ({d['with_check']})"
    return sql


def describe(d: dict[str, Any]) -> str:
    text = f"{d['permissive'].lower()} FOR {d['cmd']} TO {', '.join(d['roles'])}"
    if d["qual"] is not None:
        text += f" USING {d['qual']}"
    if d["with_check"] is not None:
        text += f" WITH CHECK {d['with_check']}"
    return text


def _store(cur: Any, obj: str, definition: str) -> None:
    cur.execute(
        f"INSERT INTO {portal_schema()}.fix_preimages (fix, object, definition)"
        " VALUES ('A', %s, %s)",
        [obj, definition],
    )


def forward(apps, schema_editor):
    context = fix_context()
    chosen = policy_form(context.form)
    _lock_timeout(schema_editor, [preimages_table_sql()])
    with schema_editor.connection.cursor() as cur:
        cur.execute("SELECT to_regclass('public.profiles')")
        if cur.fetchone()[0] is None:
            context.note("Fix A: public.profiles does not exist here; nothing changed")
            return
        cur.execute(f"DELETE FROM {portal_schema()}.fix_preimages WHERE fix = 'A'")
        _store(cur, "form", chosen.key)
        existing = policy_definition(cur, chosen.policy)
        if existing is not None:
            _store(cur, f"pre-existing:{chosen.policy}", json.dumps(existing))
            context.note(
                f'Fix A: a policy named "{chosen.policy}" was already there'
                f" ({describe(existing)}); nothing changed"
            )
            return
        cur.execute(chosen.sql)
        created = policy_definition(cur, chosen.policy)
        _store(cur, f"created:{chosen.policy}", json.dumps(created))
        context.note(f'Fix A: created the policy "{chosen.policy}", {chosen.label}')


def backward(apps, schema_editor):
    context = fix_context()
    schema = portal_schema()
    with schema_editor.connection.cursor() as cur:
        cur.execute(
            "SELECT to_regclass(%s), to_regclass('public.profiles')", [f"{schema}.fix_preimages"]
        )
        table, profiles = cur.fetchone()
        rows = []
        if table is not None:
            cur.execute(
                f"SELECT object, definition FROM {schema}.fix_preimages"
                " WHERE fix = 'A' ORDER BY object"
            )
            rows = cur.fetchall()
        if not rows:
            # Applied before Fix A recorded what it found: whether the policy was created by
            # it or by hand cannot be told, so it is left alone rather than guessed at.
            context.note(
                "Fix A: nothing was recorded about what it created (applied by an older"
                " version); no policy was dropped: drop it by hand if Fix A created it"
            )
            return
        stored = [(obj, definition) for obj, definition in rows if obj != "form"]
        if profiles is not None:
            for obj, definition in stored:
                kind, _, name = obj.partition(":")
                if kind == "created":
                    _lock_timeout(
                        schema_editor, [f"DROP POLICY IF EXISTS {_ident(name)} ON public.profiles"]
                    )
                    context.note(f'Fix A: dropped the policy "{name}" it had created')
                elif policy_definition(cur, name) is not None:
                    context.note(f'Fix A: left the pre-existing policy "{name}" as it was')
                else:
                    _lock_timeout(schema_editor, [create_policy_sql(name, json.loads(definition))])
                    context.note(
                        f'Fix A: re-created the pre-existing policy "{name}" from its stored'
                        " definition (it had been dropped since)"
                    )
        if not stored:
            context.note("Fix A: it had created nothing; nothing changed")
        cur.execute(f"DELETE FROM {schema}.fix_preimages WHERE fix = 'A'")


class Migration(migrations.Migration):
    # Each fix stands alone: applied and rolled back on its own.
    dependencies: ClassVar[list[tuple[str, str]]] = []

    operations = [migrations.RunPython(forward, backward, hints=PIPELINE_HINTS)]
