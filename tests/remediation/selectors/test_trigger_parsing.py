"""What a trigger function writes, read from its body: the tables named by INSERT INTO,
UPDATE and DELETE FROM; `ON CONFLICT … DO UPDATE SET` names no table of its own."""

from __future__ import annotations

import pytest

from remediation.selectors.triggers import _WRITES


@pytest.mark.parametrize(
    ("body", "tables"),
    [
        (
            "INSERT INTO dashboard_statistics (day, n) VALUES (d, 1)"
            " ON CONFLICT (day) DO UPDATE SET n = dashboard_statistics.n + 1",
            ["dashboard_statistics"],
        ),
        ("insert into x values (1) on conflict do\n update set a = 1", ["x"]),
        (
            "UPDATE public.profiles SET x = 1; DELETE FROM ONLY fc_scores",
            ["public.profiles", "fc_scores"],
        ),
        ('UPDATE "Weird" SET a = 1', ['"Weird"']),
    ],
)
def test_the_tables_a_trigger_body_writes(body, tables):
    assert _WRITES.findall(body) == tables
