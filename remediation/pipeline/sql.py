"""Small SQL helpers shared by the write path: uuid arrays, PostgREST claims, the role switch."""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any


def postgrest_claims(role: str = "service_role") -> str:
    """The JWT claims PostgREST puts in request.jwt.claims for a service-role key."""
    now = int(time.time())
    return json.dumps({"iss": "supabase", "role": role, "iat": now, "exp": now + 3600})


def as_service_role(cur: Any) -> None:
    cur.execute("SET LOCAL ROLE service_role")
    cur.execute(
        "SELECT set_config('request.jwt.claims', %s, true),"
        " set_config('request.method', 'POST', true),"
        " set_config('request.path', '/rest/v1/profiles', true)",
        [postgrest_claims()],
    )


def uuid_array(ids: list[str]) -> str:
    """A uuid[] literal for ids already validated as UUIDs: one text parameter instead of a
    list psycopg would dump element by element."""
    return "{" + ",".join(ids) + "}"


def json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)
