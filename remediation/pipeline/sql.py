"""Small SQL helpers shared by the write path: uuid arrays, PostgREST claims, the role switch."""

from __future__ import annotations

import json
import time
import uuid
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


def uuid_array(ids: list[str]) -> list[uuid.UUID]:
    """ids already validated as UUIDs, as a uuid[] parameter (`= ANY(%s::uuid[])`).

    Not a text literal cast in SQL (`%s::text::uuid[]`): that cast is evaluated again for
    every row a sequential scan visits (array_in is not immutable, so the planner does not
    fold it), which made a batch's answer read take seconds instead of milliseconds when the
    planner chose a scan: 600,000 rows, 200 ids: 112 s against 0.13 s on this machine."""
    return [uuid.UUID(i) for i in ids]


def json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)
