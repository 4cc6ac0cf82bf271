"""Pre-images, fingerprints and restore: what makes a run's changes exactly reversible.

A pre-image is the session, profile and fc_scores rows of a session as JSON before a
write; a fingerprint is the md5 of those rows right after it. Restoring puts the
pre-image back only when the rows still match the fingerprint (nobody changed them since).
One implementation serves the batch write path, the edge backend and run rollback.
"""

from __future__ import annotations

import json
from typing import Any

from remediation.pipeline.sql import uuid_array

_FINGERPRINT_SQL = (
    "SELECT s.id::text, md5(to_jsonb(s)::text),"
    " (SELECT md5(to_jsonb(p)::text) FROM profiles p WHERE p.session_id = s.id),"
    " (SELECT md5(coalesce(jsonb_agg(to_jsonb(f) ORDER BY f.version, f.fc_kind), '[]')::text)"
    "  FROM fc_scores f WHERE f.session_id = s.id)"
    " FROM assessment_sessions s WHERE s.id = ANY(%s::uuid[])"
)
# The same fingerprint as one JSON object, of the session row `s` (for statements that
# compute it where they write something else: the run ledger's).
FINGERPRINT_OBJECT_SQL = (
    "jsonb_build_object('session', md5(to_jsonb(s)::text),"
    " 'profile', (SELECT md5(to_jsonb(p)::text) FROM profiles p WHERE p.session_id = s.id),"
    " 'fc_scores', (SELECT md5(coalesce(jsonb_agg(to_jsonb(f) ORDER BY f.version, f.fc_kind),"
    " '[]')::text) FROM fc_scores f WHERE f.session_id = s.id))"
)

# The session columns a finalize changes, and so the ones a rollback puts back.
SESSION_COLUMNS = (
    "status",
    "completed_at",
    "finalized_at",
    "share_token",
    "share_token_expires_at",
    "completed_questions",
    "updated_at",
)


def fingerprints(cur: Any, ids: list[str]) -> dict[str, dict[str, Any]]:
    """md5 of each session's session, profile and fc_scores rows as they are now."""
    if not ids:
        return {}
    cur.execute(_FINGERPRINT_SQL, [uuid_array(ids)])
    return {
        sid: {"session": s_md5, "profile": p_md5, "fc_scores": fc_md5}
        for sid, s_md5, p_md5, fc_md5 in cur.fetchall()
    }


def fingerprint_many(cur: Any, outcomes: dict[str, Any], ids: list[str]) -> None:
    """Set post_fingerprint on the outcomes of the sessions just written."""
    for sid, value in fingerprints(cur, ids).items():
        outcomes[sid].post_fingerprint = value


def fill_pre_images(cur: Any, outcomes: dict[str, Any], ids: list[str]) -> None:
    """Add the fc_scores rows to pre-images whose session and profile rows are already read
    (the write path reads those in the statements that lock them)."""
    cur.execute(
        "SELECT session_id::text, to_jsonb(f)::text FROM fc_scores f"
        " WHERE session_id = ANY(%s::uuid[]) ORDER BY session_id, version, fc_kind",
        [uuid_array(ids)],
    )
    for sid, image in cur.fetchall():
        pre = outcomes[sid].pre_image
        if pre is not None:
            pre["fc_scores"].append(json.loads(image))


def read_pre_images(cur: Any, ids: list[str]) -> dict[str, dict[str, Any]]:
    """The session, profile and fc_scores rows of sessions, as JSON (missing sessions left out)."""
    if not ids:
        return {}
    cur.execute(
        "SELECT s.id::text, to_jsonb(s)::text,"
        " (SELECT to_jsonb(p)::text FROM profiles p WHERE p.session_id = s.id),"
        " (SELECT coalesce(jsonb_agg(to_jsonb(f) ORDER BY f.version, f.fc_kind), '[]')::text"
        "  FROM fc_scores f WHERE f.session_id = s.id)"
        " FROM assessment_sessions s WHERE s.id = ANY(%s::uuid[])",
        [uuid_array(ids)],
    )
    return {
        sid: {
            "session": json.loads(session),
            "profile": json.loads(profile) if profile else None,
            "fc_scores": json.loads(fc),
        }
        for sid, session, profile, fc in cur.fetchall()
    }


def restore(
    cur: Any,
    session_id: str,
    *,
    pre_image: dict[str, Any],
    post_fingerprint: dict[str, Any] | None,
    profile_id: Any,
) -> list[str]:
    """Put one session's rows back as the pre-image has them, in the caller's transaction.

    Returns the rows changed since the write (then nothing is done): a rollback never
    overwrites what someone else wrote after the run.
    """
    sid = session_id
    cur.execute("SELECT 1 FROM assessment_sessions WHERE id = %s FOR UPDATE", [sid])
    now = fingerprints(cur, [sid]).get(sid, {})
    post = post_fingerprint or {}
    changed = [k for k in ("session", "profile", "fc_scores") if post.get(k) != now.get(k)]
    if changed:
        return changed
    if pre_image.get("profile") is None:
        # Only the profile this write created, never another.
        cur.execute(
            "DELETE FROM profiles WHERE session_id = %s AND id = %s", [sid, str(profile_id)]
        )
    else:
        cols = [c for c in pre_image["profile"] if c not in ("id", "session_id")]
        cur.execute(
            f"UPDATE profiles p SET ({', '.join(cols)}) ="
            f" (SELECT {', '.join('r.' + c for c in cols)}"
            " FROM jsonb_populate_record(NULL::profiles, %s::jsonb) r) WHERE p.session_id = %s",
            [json.dumps(pre_image["profile"]), sid],
        )
    # The columns a finalize changes that this database has (the pre-image has them all).
    columns = [c for c in SESSION_COLUMNS if c in pre_image["session"]]
    cur.execute(
        f"UPDATE assessment_sessions s SET ({', '.join(columns)}) ="
        f" (SELECT {', '.join('r.' + c for c in columns)}"
        " FROM jsonb_populate_record(NULL::assessment_sessions, %s::jsonb) r) WHERE s.id = %s",
        [json.dumps(pre_image["session"]), sid],
    )
    _restore_fc_scores(cur, sid, pre_image.get("fc_scores") or [])
    return []


def restore_completed_at(cur: Any, session_id: str, pre_session: dict[str, Any]) -> Any:
    """Put the session's completed_at back to the pre-image's value when it differs now
    (the deployed edge function overwrites it on every call), in the caller's transaction.
    Returns (the value found, the value put back), or None when nothing differed. Safe to
    repeat: a second call finds nothing to do."""
    if "completed_at" not in pre_session:
        return None
    cur.execute(
        "SELECT s.completed_at, r.completed_at FROM assessment_sessions s,"
        " jsonb_populate_record(NULL::assessment_sessions, %s::jsonb) r"
        " WHERE s.id = %s AND s.completed_at IS DISTINCT FROM r.completed_at FOR UPDATE OF s",
        [json.dumps({"completed_at": pre_session["completed_at"]}), session_id],
    )
    row = cur.fetchone()
    if row is None:
        return None
    cur.execute(
        "UPDATE assessment_sessions SET completed_at = %s WHERE id = %s", [row[1], session_id]
    )
    return row[0], row[1]


def _restore_fc_scores(cur: Any, sid: str, rows: list[dict[str, Any]]) -> None:
    cur.execute(
        "SELECT md5(coalesce(jsonb_agg(to_jsonb(f) ORDER BY f.version, f.fc_kind), '[]')::text)"
        " FROM fc_scores f WHERE f.session_id = %s",
        [sid],
    )
    current = cur.fetchone()[0]
    cur.execute("SELECT md5(%s::jsonb::text)", [json.dumps(rows)])
    if cur.fetchone()[0] == current:
        return
    cur.execute("DELETE FROM fc_scores WHERE session_id = %s", [sid])
    if rows:
        cur.execute(
            "INSERT INTO fc_scores SELECT * FROM jsonb_populate_recordset(NULL::fc_scores, %s::jsonb)",
            [json.dumps(rows)],
        )


def is_restored(
    cur: Any,
    session_id: str,
    pre_image: dict[str, Any],
    profile_id: Any,
    *,
    ignore: tuple[str, ...] = (),
) -> bool:
    """True when the session's rows already equal the pre-image (a restore that ran before
    and whose record was lost): the restore is not done, nor counted as a conflict, twice.
    `ignore`: session columns a trigger rewrites on every update (they never match)."""
    cur.execute(
        "SELECT (to_jsonb(s) - %s::text[]) = (%s::jsonb - %s::text[])"
        " FROM assessment_sessions s WHERE s.id = %s",
        [list(ignore), json.dumps(pre_image.get("session")), list(ignore), session_id],
    )
    row = cur.fetchone()
    if not row or not row[0]:
        return False
    if pre_image.get("profile") is None:
        cur.execute(
            "SELECT NOT EXISTS (SELECT 1 FROM profiles WHERE session_id = %s AND id = %s)",
            [session_id, str(profile_id)],
        )
    else:
        cur.execute(
            "SELECT coalesce((SELECT to_jsonb(p) = %s::jsonb FROM profiles p"
            " WHERE p.session_id = %s), false)",
            [json.dumps(pre_image["profile"]), session_id],
        )
    if not cur.fetchone()[0]:
        return False
    cur.execute(
        "SELECT coalesce(jsonb_agg(to_jsonb(f) ORDER BY f.version, f.fc_kind), '[]')"
        " = %s::jsonb FROM fc_scores f WHERE f.session_id = %s",
        [json.dumps(pre_image.get("fc_scores") or []), session_id],
    )
    return bool(cur.fetchone()[0])


def differences(cur: Any, session_id: str, pre_image: dict[str, Any]) -> dict[str, list[str]]:
    """The columns of the session (and its profile) that differ from the pre-image now."""
    cur.execute(
        "SELECT coalesce(array_agg(e.key ORDER BY e.key), '{}') FROM assessment_sessions s,"
        " jsonb_each(to_jsonb(s)) e WHERE s.id = %s"
        " AND e.value IS DISTINCT FROM (%s::jsonb -> e.key)",
        [session_id, json.dumps(pre_image.get("session") or {})],
    )
    out = {"session": list(cur.fetchone()[0])}
    if pre_image.get("profile") is not None:
        cur.execute(
            "SELECT coalesce(array_agg(e.key ORDER BY e.key), '{}') FROM profiles p,"
            " jsonb_each(to_jsonb(p)) e WHERE p.session_id = %s"
            " AND e.value IS DISTINCT FROM (%s::jsonb -> e.key)",
            [session_id, json.dumps(pre_image["profile"])],
        )
        out["profile"] = list(cur.fetchone()[0])
    return {k: v for k, v in out.items() if v}
