"""A gate on mock pins for tests: real drivers, real core, real status service, real store,
built by the production builder (kiosk/assembly.py).

Only the far end of the pins is simulated (gpiozero mock pins and the turnstile model).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from kiosk.assembly import RecordTap, build_kiosk
from kiosk.clock import Clock, SystemClock
from kiosk.config import load_config
from kiosk.core import EVENTS_DB
from kiosk.gate.inputs import CodeRead, Command
from kiosk.reasons import Source
from kiosk.store import EventStore
from kiosk.wiring import SimHardware
from simulators.turnstile import SimPinFactory, TurnstileModel
from support import write_config

FAST_GATE = {
    "unlock_s": 0.6,
    "cooldown_s": 5.0,
    "left_view_s": 0.3,
    "deny_light_s": 0.3,
    "refer_light_s": 0.3,
}


class Rig:
    """Build with a tmp dir and a status URL (None: no service); ``start`` runs the loop."""

    def __init__(
        self,
        tmp_path: Path,
        url: str | None,
        *,
        extra_toml: str = "",
        clock: Clock | None = None,
        restored_events: list[tuple[str, dict[str, Any]]] | None = None,
        **sections: dict[str, Any],
    ) -> None:
        clock_ = clock or SystemClock()
        sections = {k: dict(v) for k, v in sections.items()}
        sections.setdefault("gpio", {}).setdefault("pin_factory", "mock")
        sections["gpio"].setdefault("exit_sensor", 5)
        gate = {**FAST_GATE, **sections.pop("gate", {})}
        self.cfg = load_config(
            write_config(tmp_path, url, gate=gate, extra_toml=extra_toml, **sections)
        )
        gpio = self.cfg.gpio
        self.factory = SimPinFactory()
        self.model = TurnstileModel.for_config(self.factory, gpio, self.cfg.gate)
        self.relay_pin = self.factory.sim_pin(gpio.relay)
        if restored_events:
            self.cfg.state_dir.mkdir(parents=True, exist_ok=True)
            with EventStore(
                self.cfg.state_dir / EVENTS_DB, kiosk_id="k1", venue_id="v1", clock=clock_
            ) as store:
                for type_, fields in restored_events:
                    store.record(type_, **fields)
        # The production builder, with simulated far ends: the same kiosk the daemon runs.
        self.kiosk = build_kiosk(
            self.cfg,
            far_ends=SimHardware(pin_factory=self.factory, clock_synchronised=lambda: True),
            clock=clock_,
        )
        self.board = self.kiosk.hardware
        self.core = self.kiosk.core
        self.store = self.kiosk.store
        self.controller = self.kiosk.controller
        self.view = self.kiosk.view
        self.events: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self.view.subscribe(RecordTap(self._on_event))
        self.thread = threading.Thread(target=self.controller.run, daemon=True)

    def _on_event(self, event: dict[str, Any]) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def start(self) -> Rig:
        # The inputs only: no key fetch, no housekeeping (they write to the state folder).
        self.thread.start()
        for device in self.board.inputs:
            device.start(self.controller.emit)
        self.wait(lambda e: e["type"] == "mode")
        return self

    def stop(self) -> None:
        from kiosk.gate.inputs import Stop

        self.controller.emit(Stop())
        self.thread.join(timeout=10)
        self.model.close()
        self.board.close()
        self.store.close()
        self.core.close()

    def present(self, text: str | bytes, source: Source = Source.SCANNER) -> None:
        data = text.encode() if isinstance(text, str) else text
        self.controller.emit(CodeRead(data, source, time.monotonic()))

    def command(self, cmd: str, origin: str = "local") -> tuple[bool, str | None]:
        done = threading.Event()
        result: list[Any] = []

        def finished(ok: bool, error: str | None) -> None:
            result.extend([ok, error])
            done.set()

        self.controller.emit(Command(cmd, origin=origin, done=finished))
        assert done.wait(10), f"command {cmd} not executed"
        return result[0], result[1]

    def wait(self, pred, count: int = 1, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Wait until ``count`` recorded events match ``pred``; return them."""
        with self._cond:
            ok = self._cond.wait_for(
                lambda: len([e for e in self.events if pred(e)]) >= count, timeout
            )
            found = [e for e in self.events if pred(e)]
        assert ok, f"waited for {count} matching events; have {self.types()}"
        return found

    def decisions(self, count: int = 1) -> list[dict[str, Any]]:
        return self.wait(lambda e: e["type"] == "decision", count)

    def types(self) -> list[str]:
        with self._cond:
            return [e["type"] for e in self.events]

    def relay_levels(self) -> list[float]:
        return [state for _, state in self.relay_pin.states]


class FakeClockGate:
    """The same kiosk as :class:`Rig`, driven by hand with a fake clock and no threads:
    inputs go to ``controller.handle``, time moves with ``advance`` (which runs the timers),
    lookups run inline. Timing rules are tested here, deterministically."""

    def __init__(self, tmp_path: Path, url: str | None, **sections: dict[str, Any]) -> None:
        from kiosk.clock import FakeClock
        from kiosk.gate.lookups import InlineExecutor

        sections = {k: dict(v) for k, v in sections.items()}
        sections.setdefault("gpio", {}).setdefault("pin_factory", "mock")
        gate = {**FAST_GATE, **sections.pop("gate", {})}
        self.cfg = load_config(write_config(tmp_path, url, gate=gate, **sections))
        # Passes are minted with the real time: the fake clock starts there, then moves alone.
        self.clock = FakeClock(time.time())
        self.factory = SimPinFactory()
        self.kiosk = build_kiosk(
            self.cfg,
            far_ends=SimHardware(pin_factory=self.factory, clock_synchronised=lambda: True),
            clock=self.clock,
            lookup_executor=InlineExecutor(),
        )
        self.board = self.kiosk.hardware
        self.controller = self.kiosk.controller
        self.view = self.kiosk.view
        self.events: list[dict[str, Any]] = []
        self.view.subscribe(RecordTap(self.events.append))
        self.controller.start()

    def close(self) -> None:
        self.controller.shutdown()
        self.board.close()
        self.kiosk.store.close()
        self.kiosk.core.close()

    def handle(self, event: Any) -> None:
        """One input, and whatever it queued (a lookup's answer)."""
        self.controller.handle(event)
        self.controller.pump()

    def present(self, text: str | bytes, source: Source = Source.SCANNER) -> None:
        data = text.encode() if isinstance(text, str) else text
        self.handle(CodeRead(data, source, self.clock.monotonic()))

    def passage(self) -> None:
        from kiosk.gate.inputs import PassageSensed

        self.handle(PassageSensed(self.clock.monotonic()))

    def advance(self, seconds: float) -> None:
        """Move the clock and fire what fell due on the way, in order."""
        end = self.clock.monotonic() + seconds
        while True:
            due = self.controller.next_due()
            if due is None or due > end:
                break
            self.clock.advance(max(0.0, due - self.clock.monotonic()))
            self.controller.tick(self.clock.monotonic())
            self.controller.pump()
        self.clock.advance(max(0.0, end - self.clock.monotonic()))
        self.controller.tick(self.clock.monotonic())
        self.controller.pump()

    def of(self, type_: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == type_]

    def types(self) -> list[str]:
        return [e["type"] for e in self.events]
