"""Operator commands (mqtt.md, Commands; gate.md, Modes): what each does and when it is
refused. Commands arrive verified (kiosk/fleet/commands.py checks signatures); this decides
only whether the gate may do it now.

Only the controller's loop calls ``execute``; it acts through :class:`CommandTarget`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from kiosk.clock import rfc3339_ms
from kiosk.gate.inputs import Command
from kiosk.gate.notes import CommandNote
from kiosk.gate.records import CommandRecord, Record
from kiosk.gate.view import GateView
from kiosk.reasons import Mode

log = logging.getLogger(__name__)


class CommandTarget(Protocol):
    """What a command may do to the gate (the controller)."""

    @property
    def mode(self) -> Mode: ...

    def busy(self) -> bool:
        """Someone is being decided or passing."""
        ...

    def resume(self) -> str | None:
        """End an emergency or lockdown; the refusal's name, if refused."""
        ...

    def lockdown(self) -> None: ...

    def open_once(self) -> None:
        """Free the turnstile for one passage."""
        ...

    def reset_occupancy(self) -> int:
        """Set the count to 0; returns what it was."""
        ...

    def record(self, record: Record) -> None:
        """Record (a failing store is the target's to handle)."""
        ...

    def reload_policy(self) -> float | None:
        """Load the venue policy again; when it takes effect (epoch s), None if unavailable.
        Raises on a configuration error (the details go to the log, not the event)."""
        ...


@dataclass(frozen=True)
class CommandOutcome:
    """A command's result; ``said`` is the journal's words for one that changes no mode, and
    ``occupancy`` the count a command set (it goes into the record and the state)."""

    ok: bool
    error: str | None = None
    said: str = ""
    occupancy: int | None = None


def execute(cmd: str, gate: CommandTarget, *, unlock_s: float) -> CommandOutcome:
    """Run ``cmd`` on ``gate``."""
    if cmd == "resume":
        error = gate.resume()
        return CommandOutcome(error is None, error)
    if cmd == "lockdown":
        gate.lockdown()
        return CommandOutcome(True)
    if cmd == "open_once":
        if gate.mode in (Mode.EMERGENCY, Mode.LOCKDOWN):
            return CommandOutcome(False, gate.mode.value)
        if gate.busy():
            return CommandOutcome(False, "busy")  # someone is being decided or passing
        gate.open_once()
        return CommandOutcome(True, said=f"turnstile free for one passage ({unlock_s:g} s)")
    if cmd == "reset_occupancy":
        # The count drifts (people leaving by another door): an operator sets it to 0.
        was = gate.reset_occupancy()
        return CommandOutcome(True, said=f"occupancy reset to 0 (was {was})", occupancy=0)
    if cmd == "reload_config":
        try:
            effective = gate.reload_policy()
        except Exception as exc:  # noqa: BLE001 - any configuration problem: refused, named in the log
            log.error("reload_config refused: %s", exc)
            return CommandOutcome(False, "config_error")
        if effective is None:
            return CommandOutcome(False, "reload_not_available")
        log.info("new venue policy takes effect at %s", rfc3339_ms(effective))
        return CommandOutcome(True)
    return CommandOutcome(False, "unknown_command")


def run(cmd: Command, gate: CommandTarget, *, unlock_s: float, view: GateView) -> None:
    """Execute ``cmd``, record it, tell the view (the journal says it), answer whoever sent it."""
    outcome = execute(cmd.cmd, gate, unlock_s=unlock_s)
    gate.record(
        CommandRecord(
            cmd.cmd,
            cmd.jti,
            cmd.origin,
            outcome.ok,
            outcome.error,
            outcome.occupancy,
            account=cmd.account,
        )
    )
    view.note(
        CommandNote(
            cmd.cmd, cmd.origin, outcome.ok, outcome.error, outcome.said, account=cmd.account
        )
    )
    if cmd.done is not None:
        cmd.done(outcome.ok, outcome.error)
