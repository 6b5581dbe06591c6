"""Decisions, reasons and sources: the vocabulary of credentials.md and gate.md."""

from __future__ import annotations

from enum import StrEnum


class Decision(StrEnum):
    """What the gate does with a presented code."""

    ADMIT = "admit"
    DENY = "deny"
    REFER = "refer"


class Reason(StrEnum):
    """Why: exactly one per decision."""

    # credentials.md
    INVALID_PAYLOAD = "invalid_payload"
    INVALID_IIN = "invalid_iin"
    BAD_SIGNATURE = "bad_signature"
    UNTRUSTED_KEY = "untrusted_key"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    REPLAYED = "replayed"
    # gate.md
    ADMITTED = "admitted"
    STATUS_NOT_ALLOWED = "status_not_allowed"
    UNKNOWN_SUBJECT = "unknown_subject"
    BACKEND_UNAVAILABLE = "backend_unavailable"
    CLOCK_UNTRUSTED = "clock_untrusted"
    VENUE_FULL = "venue_full"
    CLOSED = "closed"
    ANTI_PASSBACK = "anti_passback"
    LOCKDOWN = "lockdown"
    EMERGENCY = "emergency"


CREDENTIAL_REASONS = frozenset(
    {
        Reason.INVALID_PAYLOAD,
        Reason.INVALID_IIN,
        Reason.BAD_SIGNATURE,
        Reason.UNTRUSTED_KEY,
        Reason.EXPIRED,
        Reason.NOT_YET_VALID,
        Reason.REPLAYED,
    }
)


class Via(StrEnum):
    """Where the status that decided came from (mqtt.md, decision event)."""

    ONLINE = "online"
    CACHE = "cache"
    PASS = "pass"
    NONE = "none"


class Status(StrEnum):
    """A holder's status as the authority says it."""

    GREEN = "green"
    BLUE = "blue"
    YELLOW = "yellow"
    RED = "red"


class Mode(StrEnum):
    """The gate's mode (mqtt.md state)."""

    NORMAL = "normal"
    LOCKDOWN = "lockdown"
    EMERGENCY = "emergency"
    CLOSED = "closed"


class Source(StrEnum):
    """Which reader produced the code."""

    CAMERA = "camera"
    SCANNER = "scanner"
