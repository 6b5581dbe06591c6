"""What a status lookup can come back with, and the one parser of the authority's JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from kiosk.reasons import Status

_STATUSES = frozenset(s.value for s in Status)


class Outcome(StrEnum):
    """The three things a lookup can end in."""

    ANSWER = "answer"
    UNKNOWN = "unknown_subject"
    NO_ANSWER = "no_answer"


@dataclass(frozen=True, slots=True)
class LookupResult:
    """The result of one lookup; ``detail`` says why there was no answer (never the subject)."""

    outcome: Outcome
    st: str | None = None
    max_age_s: float = 0.0
    detail: str = ""

    @classmethod
    def no_answer(cls, detail: str) -> LookupResult:
        """No answer within the deadline: the offline rule decides."""
        return cls(Outcome.NO_ANSWER, detail=detail)


UNKNOWN = LookupResult(Outcome.UNKNOWN)


class StatusLookup(Protocol):
    """A transport to the status authority (HTTP, MQTT)."""

    def lookup(self, subject: str, *, deadline_s: float) -> LookupResult:
        """Ask for ``subject``'s status; return within ``deadline_s`` whatever happens."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


def parse_answer(body: bytes, subject: str) -> LookupResult:
    """Parse a 200 answer; anything not a valid answer for this subject is no answer."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return LookupResult.no_answer("answer is not JSON")
    if not isinstance(doc, dict):
        return LookupResult.no_answer("answer is not a JSON object")
    if doc.get("sub") != subject:
        return LookupResult.no_answer("answer is for another subject")
    st, max_age, as_of = doc.get("st"), doc.get("max_age"), doc.get("as_of")
    if st not in _STATUSES:
        return LookupResult.no_answer("answer has an unknown st")
    if isinstance(max_age, bool) or not isinstance(max_age, int | float) or max_age < 0:
        return LookupResult.no_answer("answer has no valid max_age")
    if not isinstance(as_of, str) or not _is_rfc3339(as_of):
        return LookupResult.no_answer("answer has no valid as_of")
    return LookupResult(Outcome.ANSWER, st=st, max_age_s=float(max_age))


def parse_error(body: bytes) -> str | None:
    """The ``error`` code of an error object, or None."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    err = doc.get("error") if isinstance(doc, dict) else None
    return err if isinstance(err, str) else None


def _is_rfc3339(text: str) -> bool:
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True
