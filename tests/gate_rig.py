"""A gate on mock pins for tests: real drivers, real core, real status service, real store.

Only the far end of the pins is simulated (gpiozero mock pins and the turnstile model).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from drivers.gpio import GpioBoard
from kiosk.clock import Clock, SystemClock
from kiosk.config import load_config
from kiosk.controller import GateController, GateTiming
from kiosk.core import EVENTS_DB, build_core
from kiosk.events import CodeRead, Command
from kiosk.policy import PolicyHolder
from kiosk.reasons import Source
from kiosk.store import EventStore
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
        **sections: dict[str, Any],
    ) -> None:
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
        self.board = GpioBoard.from_config(
            gpio.as_dict(), self.cfg.gate.as_dict(), pin_factory=self.factory
        )
        self.core = build_core(self.cfg, clock=SystemClock(), persistent=True)
        self.store = EventStore(
            self.cfg.state_dir / EVENTS_DB, kiosk_id="k1", venue_id="v1", clock=SystemClock()
        )
        self.events: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self.policy = PolicyHolder(self.cfg.policy)
        self.controller = GateController(
            checker=self.core.checker,
            record=self.store.record,
            turnstile=self.board.turnstile,
            indicator=self.board.indicator,
            sounder=self.board.sounder,
            policy=self.policy,
            timing=GateTiming.from_config(self.cfg.gate, self.cfg.kiosk.leeway_s),
            clock=clock or SystemClock(),
            mark_used=self.core.replay.mark_used,
            record_passage=self.core.passback.record_passage,
            on_event=self._on_event,
            fire_input=f"fire-alarm contact on GPIO{gpio.fire_alarm}",
        )
        self.thread = threading.Thread(target=self.controller.run, daemon=True)

    def _on_event(self, event: dict[str, Any]) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def start(self) -> Rig:
        self.thread.start()
        self.board.inputs.start(self.controller.emit)
        self.wait(lambda e: e["type"] == "mode")
        return self

    def stop(self) -> None:
        from kiosk.events import Stop

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
