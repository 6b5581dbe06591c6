"""What the gate records: one frozen record per event type of mqtt.md (Events).

Each record's ``fields()`` is exactly the body the event store keeps for it (the envelope,
``seq``, ``ts`` and the ids, is the store's); keys that today's events leave out when they do
not apply (a passage's ``cause`` on the way out, a decision's ``anti_passback``) are left out
here too, so the records are the same on the wire as before they were typed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from kiosk.gate.view import LastDecision
from kiosk.replay import jti_key

if TYPE_CHECKING:
    from kiosk.decision import Verdict
    from kiosk.gate.window import Admission
    from kiosk.reasons import Source
    from kiosk.store import EventStore


class Record(Protocol):
    """A recorded event: its ``type`` and its body."""

    type: ClassVar[str]

    def fields(self) -> dict[str, Any]:
        """The event's body, as the store records it."""
        ...


class Recorder(Protocol):
    """Commits a record durably and returns the event as stored (with ``seq`` and ``ts``)."""

    def record(self, record: Record) -> dict[str, Any]:
        """Commit ``record``; raise KioskError (StoreError) if it could not be."""
        ...


def _without_none(fields: dict[str, Any], *optional: str) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if not (k in optional and v is None)}


@dataclass(frozen=True)
class DecisionRecord:
    """One decision on one code (gate.md, Decisions)."""

    type: ClassVar[str] = "decision"
    decision: str
    reason: str
    st: str | None
    via: str
    source: str
    subject: str | None
    latency_ms: float
    anti_passback: bool = False

    @classmethod
    def of(cls, v: Verdict, source: Source, latency_ms: float) -> DecisionRecord:
        """The record of verdict ``v`` on a code read by ``source``."""
        return cls(
            v.decision.value,
            v.reason.value,
            v.st,
            v.via.value,
            source.value,
            v.subject,
            latency_ms,
            anti_passback=bool(v.passback),
        )

    def shown(self, at: float, masked: str | None, event: Mapping[str, Any] | None) -> LastDecision:
        """The decision as people may see it (the view): the holder masked, no subject."""
        return LastDecision(
            self.decision,
            self.reason,
            self.st,
            self.via,
            self.source,
            self.latency_ms,
            at=at,
            holder_masked=masked,
            seq=event.get("seq") if event else None,
        )

    def fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "decision": self.decision,
            "reason": self.reason,
            "st": self.st,
            "via": self.via,
            "source": self.source,
            "subject": self.subject,
            "latency_ms": self.latency_ms,
        }
        if self.anti_passback:
            out["anti_passback"] = True
        return out


@dataclass(frozen=True)
class PassageRecord:
    """Someone went through: ``entry`` after an admission (or freely in emergency), ``exit``
    past the exit sensor. ``pass_ref``/``pass_exp`` let a restart rebuild the replay memory."""

    type: ClassVar[str] = "passage"
    direction: str
    subject: str | None = None
    cause: str | None = None
    occupancy: int | None = None
    pass_ref: str | None = None
    pass_exp: int | None = None

    @classmethod
    def entry(cls, admission: Admission, occupancy: int) -> PassageRecord:
        """The admitted person went through; with the pass's reference, so a restart
        rebuilds the replay memory from the record (kiosk/memory.py)."""
        return cls(
            "entry",
            admission.subject,
            admission.cause,
            occupancy,
            jti_key(admission.jti) if admission.jti else None,
            admission.pass_exp if admission.jti else None,
        )

    def fields(self) -> dict[str, Any]:
        return _without_none(
            {
                "direction": self.direction,
                "subject": self.subject,
                "cause": self.cause,
                "occupancy": self.occupancy,
                "pass_ref": self.pass_ref,
                "pass_exp": self.pass_exp,
            },
            "cause",
            "occupancy",
            "pass_ref",
            "pass_exp",
        )


@dataclass(frozen=True)
class PassageTimeoutRecord:
    """An unlock window ended without a passage; the admission does not count."""

    type: ClassVar[str] = "passage_timeout"
    subject: str | None
    cause: str

    def fields(self) -> dict[str, Any]:
        return {"subject": self.subject, "cause": self.cause}


@dataclass(frozen=True)
class ForcedPassageRecord:
    """The passage beam broke with no admission."""

    type: ClassVar[str] = "forced_passage"
    occupancy: int

    def fields(self) -> dict[str, Any]:
        return {"subject": None, "occupancy": self.occupancy}


@dataclass(frozen=True)
class AlarmRecord:
    """The fire-alarm input changed (``open``: alarm or a cut wire)."""

    type: ClassVar[str] = "alarm"
    open: bool

    def fields(self) -> dict[str, Any]:
        return {"alarm": "fire", "input": "open" if self.open else "closed"}


@dataclass(frozen=True)
class ModeRecord:
    """The gate's mode changed (or was judged at start)."""

    type: ClassVar[str] = "mode"
    mode: str
    previous: str
    cause: str
    occupancy: int

    def fields(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "previous": self.previous,
            "cause": self.cause,
            "occupancy": self.occupancy,
        }


@dataclass(frozen=True)
class CommandRecord:
    """An operator command, run or refused (``error`` names why)."""

    type: ClassVar[str] = "command"
    cmd: str | None
    jti: str | None
    origin: str
    ok: bool
    error: str | None
    occupancy: int | None = None
    account: str | None = None  # the console user who gave it

    def fields(self) -> dict[str, Any]:
        return _without_none(
            {
                "cmd": self.cmd,
                "jti": self.jti,
                "origin": self.origin,
                "via": self.origin,  # mqtt.md's name for where a command came from
                "ok": self.ok,
                "error": self.error,
                "occupancy": self.occupancy,
                "account": self.account,
            },
            "occupancy",
            "account",
        )


class StoreRecorder:
    """Records into an event store, then wakes the outbox (mqtt.md: local first)."""

    def __init__(self, store: EventStore, *, wake: Callable[[], None] | None = None) -> None:
        self._store = store
        self._wake = wake

    def record(self, record: Record) -> dict[str, Any]:
        event: dict[str, Any] = self._store.record(record.type, **record.fields())
        if self._wake is not None:
            self._wake()
        return event
