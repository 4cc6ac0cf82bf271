"""Golden-shaped inputs: `{sessionId, responses, scoringKey, config, fcFunctionScores}`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .config import EngineConfig
from .model import KeyEntry, Response, _canonical_qid, key_from_mapping

__all__ = ["ScoringInput", "parse_input"]


@dataclass(frozen=True, slots=True)
class ScoringInput:
    """A parsed golden-shaped input document."""

    session_id: object
    responses: tuple[Response, ...]
    key: Mapping[int, KeyEntry]
    config: EngineConfig
    fc_function_scores: object


def _first(doc: Mapping[str, object], *names: str) -> object:
    for n in names:
        if n in doc:
            return doc[n]
    return None


def parse_input(doc: object) -> ScoringInput:
    """Parse a golden-shaped input; raise ValueError when it is not an object.

    Responses that are not objects, or whose question_id no JavaScript key lookup could
    match, are dropped (the engine would skip them anyway). Snake-case names
    (`session_id`, `scoring_key`, `fc_function_scores`) are accepted too.
    """
    if not isinstance(doc, Mapping):
        raise ValueError("input must be a JSON object with responses and scoringKey")
    raw_responses = _first(doc, "responses")
    responses: list[Response] = []
    if isinstance(raw_responses, list):
        for r in raw_responses:
            if not isinstance(r, Mapping):
                continue
            raw_qid = r.get("question_id")
            q = None if isinstance(raw_qid, bool) else _canonical_qid(raw_qid)  # String(true)
            if q is not None:
                responses.append(Response(q, r.get("answer_value")))
    elif raw_responses is not None:
        raise ValueError("responses must be a list")
    raw_key = _first(doc, "scoringKey", "scoring_key")
    if raw_key is None:
        key: dict[int, KeyEntry] = {}
    elif isinstance(raw_key, (Mapping, list)):
        key = key_from_mapping(raw_key)
    else:
        raise ValueError("scoringKey must be an object or a list of rows")
    raw_config = _first(doc, "config")
    config_map = raw_config if isinstance(raw_config, Mapping) else {}
    return ScoringInput(
        session_id=_first(doc, "sessionId", "session_id"),
        responses=tuple(responses),
        key=key,
        config=EngineConfig.from_mapping(config_map),
        fc_function_scores=_first(doc, "fcFunctionScores", "fc_function_scores"),
    )
