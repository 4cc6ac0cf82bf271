"""Issue 15, item 8: a session whose Likert answers are all unusable ('NaN', emoji,
'Infinity', blank) but which answered the forced-choice blocks gets the spec's profile,
scored from FC alone, stored with `validity_status` 'flagged' and the reason in
`validity` (scoring.validity, applied by the write path); on both schema variants, alone
(Finalize) and in a backfill batch beside a normal session, which stays 'valid'."""

from __future__ import annotations

import json

import pytest

from remediation import jobs, reference_data
from remediation.models import FinalizeAttempt
from remediation.services import fc, session_finalize
from tests.factories import OPTION_A_EVERYWHERE, make_session, pipeline_sql

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)

# Not numbers: skipped by the engine (the FC component alone scores the session).
NOT_NUMBERS = ["NaN", "😀", "Infinity", "-Infinity", "n/a"]
# Blank: the engine scores them as 0 (6 when reverse-scored), as JavaScript Number("") does.
BLANK = ["", "  "]


def _unusable_likert_answers(values: list[str]) -> dict[int, str | None]:
    """Every Likert item answered with one of `values`, in turn; free text kept."""
    answers: dict[int, str | None] = {}
    for n, row in enumerate(reference_data.scoring_key_rows()):
        if row.scale_type.startswith("LIKERT"):
            answers[row.question_id] = values[n % len(values)]
    answers[247] = "free text"
    return answers


def _answer_fc(session_id: str, seed: dict) -> None:
    for block in seed["blocks"]:
        pipeline_sql(
            "INSERT INTO fc_responses (session_id, block_id, option_id) VALUES (%s, %s, %s)",
            [session_id, block["id"], block["options"][0]["id"]],
        )


def _profile(session_id: str) -> tuple[str, dict, dict]:
    status, validity, strengths = pipeline_sql(
        "SELECT validity_status, validity::text, strengths::text FROM profiles"
        " WHERE session_id = %s",
        [session_id],
        "one",
    )
    return status, json.loads(validity), json.loads(strengths)


FLAGGED_VALIDITY = {
    "attention": 0,
    "inconsistency": 0,
    "sd_index": 0,
    "flags": ["no_usable_likert"],
    "likert_usable": 0,
}


def test_unusable_likert_with_fc_is_written_flagged(clear_variant):
    seed = json.loads(reference_data.fc_seed_path().read_text())
    fc.fc_set_load(seed)
    flagged = make_session(seed=61, answers=_unusable_likert_answers(NOT_NUMBERS))
    _answer_fc(flagged, seed)
    attempt = session_finalize(session_id=flagged)
    assert attempt.outcome == "created", attempt.explanation
    status, validity, strengths = _profile(flagged)
    assert (status, validity) == ("flagged", FLAGGED_VALIDITY)
    # Scored from FC alone, as the spec computes it: strength = 0.5 x FC score / 100 x 5.
    assert strengths == {f: round(0.5 * v / 100 * 5, 3) for f, v in OPTION_A_EVERYWHERE.items()}
    names = [e["name"] for e in attempt.events]
    assert "fc_scores_loaded" in names and "validity_flagged" in names
    event = next(e for e in attempt.events if e["name"] == "validity_flagged")
    assert (event["flags"], event["fc_source"]) == ("no_usable_likert", "scores")


def test_in_a_backfill_only_the_unusable_session_is_flagged(clear_variant):
    seed = json.loads(reference_data.fc_seed_path().read_text())
    fc.fc_set_load(seed)
    flagged = make_session(seed=62, answers=_unusable_likert_answers(NOT_NUMBERS + BLANK))
    normal = make_session(seed=63)
    for sid in (flagged, normal):
        _answer_fc(sid, seed)
    run = jobs.run_until_done(
        jobs.backfill_start(selection="ids", ids=[flagged, normal], enqueue=False).pk
    )
    assert (run.state, run.created) == ("succeeded", 2)
    assert _profile(flagged)[:2] == ("flagged", FLAGGED_VALIDITY)
    assert _profile(normal)[:2] == (
        "valid",
        {"attention": 0, "inconsistency": 0, "sd_index": 0},
    )
    by_session = {
        str(a.session_id): [e["name"] for e in a.events]
        for a in FinalizeAttempt.objects.filter(run_id=run.pk)
    }
    assert "validity_flagged" in by_session[flagged]
    assert "validity_flagged" not in by_session[normal]


def test_unusable_likert_without_fc_is_still_refused_as_unscorable(clear_variant):
    """The existing rule is unchanged: nothing to score at all is refused (unless
    WRITE_UNSCORABLE_PROFILES); the flag is for profiles that are written."""
    sid = make_session(seed=64, answers={1: "NaN", 2: "😀", 247: "free text"})
    refused = session_finalize(session_id=sid)
    assert (refused.outcome, refused.reason) == ("failed", "unscorable")
    from django.test import override_settings

    with override_settings(WRITE_UNSCORABLE_PROFILES=True):
        written = session_finalize(session_id=sid)
    assert written.outcome == "created"
    assert _profile(sid)[:2] == ("flagged", FLAGGED_VALIDITY)
