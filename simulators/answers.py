"""The simulated authority's answers (status-api.md), shared by its HTTP and MQTT faces.

Both transports carry the same JSON, so the answer to a request and the order in which
injected faults win are decided here once; ``status_service`` and ``mqtt_responder`` only
put the result on their wire.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from simulators.population import Population, is_valid_subject

# A status request is ``{"sub": "..."}``: anything bigger is not a request we need to read.
MAX_REQUEST_BYTES = 4096
# What a broken proxy in front of the authority might send instead of JSON.
GARBAGE_BODY = b"<html><body>502 Bad Gateway</body></html>\x00\xff"

UNAVAILABLE: Mapping[str, str] = {"error": "unavailable"}

FaultOutcome = Literal["down", "status_429", "error", "garbage"]


@dataclass(frozen=True, slots=True)
class StatusAnswer:
    """One answer to a status request: the JSON ``body`` and the HTTP ``code`` it goes with.

    ``code`` is 200 for a status, 400 for ``bad_request`` and 404 for ``unknown_subject``;
    transports without status codes (MQTT) send only the body.
    """

    code: int
    body: dict[str, Any]


def rfc3339(t: float) -> str:
    """UTC time as RFC 3339 with a ``Z``, to the second (status-api.md ``as_of``)."""
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def json_object(body: bytes) -> dict[str, Any] | None:
    """The body as a JSON object, or None when it is anything else."""
    try:
        value = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def status_answer(
    population: Population, request: bytes, *, now: float, max_age_s: int
) -> StatusAnswer:
    """The authority's answer to the raw request body ``request`` (``{"sub": "..."}``)."""
    parsed = json_object(request) if len(request) <= MAX_REQUEST_BYTES else None
    sub = parsed.get("sub") if parsed is not None else None
    if not isinstance(sub, str) or not is_valid_subject(sub):
        return StatusAnswer(400, {"error": "bad_request"})
    person = population.by_sub(sub)
    if person is None:
        return StatusAnswer(404, {"error": "unknown_subject"})
    body = {"sub": person.sub, "st": person.st, "as_of": rfc3339(now), "max_age": max_age_s}
    return StatusAnswer(200, body)


def fault_outcome(faults: Mapping[str, Any], roll: Callable[[], float]) -> FaultOutcome | None:
    """Which injected fault decides this request, or None for a true answer.

    ``faults`` is a ``Faults.snapshot()``; ``roll`` draws from [0, 1) for ``error_rate`` and
    is called only when that fault is on, so a seeded service stays reproducible. Latency is
    not an outcome: it delays whichever answer this gives.
    """
    if faults["down"]:
        return "down"
    if faults["status_429"]:
        return "status_429"
    if faults["error_rate"] and roll() < faults["error_rate"]:
        return "error"
    if faults["garbage"]:
        return "garbage"
    return None
