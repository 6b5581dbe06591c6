"""kiosk/gate/commands.py: what each operator command does and when it is refused."""

from __future__ import annotations

from kiosk.gate.commands import execute
from kiosk.reasons import Mode


class Gate:
    """A stand-in for the controller's side of a command (the CommandTarget protocol)."""

    def __init__(self, mode: Mode = Mode.NORMAL, *, busy: bool = False, fire_open=False):
        self.mode = mode
        self._busy = busy
        self._fire_open = fire_open
        self.occupancy = 9
        self.done: list[str] = []
        self.reload: object = None

    def busy(self) -> bool:
        return self._busy

    def resume(self) -> str | None:
        return "fire_alarm_active" if self._fire_open else self.done.append("resume")

    def lockdown(self) -> None:
        self.done.append("lockdown")

    def open_once(self) -> None:
        self.done.append("open_once")

    def reset_occupancy(self) -> int:
        was, self.occupancy = self.occupancy, 0
        return was

    def record(self, record) -> None:
        pass

    def reload_policy(self) -> float | None:
        if isinstance(self.reload, Exception):
            raise self.reload
        return self.reload  # type: ignore[return-value]


def test_open_once_is_refused_in_emergency_lockdown_and_while_busy():
    for mode in (Mode.EMERGENCY, Mode.LOCKDOWN):
        assert execute("open_once", Gate(mode), unlock_s=5).error == mode.value
    assert execute("open_once", Gate(busy=True), unlock_s=5).error == "busy"
    gate = Gate()
    outcome = execute("open_once", gate, unlock_s=5)
    assert outcome.ok and gate.done == ["open_once"]
    assert outcome.said == "turnstile free for one passage (5 s)"


def test_resume_lockdown_and_reset_occupancy():
    assert execute("resume", Gate(fire_open=True), unlock_s=5).error == "fire_alarm_active"
    gate = Gate()
    assert execute("resume", gate, unlock_s=5).ok and execute("lockdown", gate, unlock_s=5).ok
    assert gate.done == ["resume", "lockdown"]
    reset = execute("reset_occupancy", gate, unlock_s=5)
    assert (reset.ok, reset.occupancy, reset.said) == (True, 0, "occupancy reset to 0 (was 9)")


def test_reload_config_and_unknown_commands():
    gate = Gate()
    assert execute("reload_config", gate, unlock_s=5).error == "reload_not_available"
    gate.reload = ValueError("kiosk.toml: [policy] bad")
    assert execute("reload_config", gate, unlock_s=5).error == "config_error"
    gate.reload = 1_700_000_000.0
    assert execute("reload_config", gate, unlock_s=5).ok
    assert execute("self_destruct", gate, unlock_s=5).error == "unknown_command"
