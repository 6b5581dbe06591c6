"""What the gate shows: the light and sound of each decision and state (gate.md,
Indicators), the devices' health, and the published view.

Lights and sounds are best effort: a broken LED must not keep a turnstile free, so a failing
indicator is logged (where, rate-limited) and the gate goes on. Only the controller's loop
calls this; the view it publishes to may be read from any thread (kiosk/gate/view.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from kiosk.decision import Verdict
from kiosk.devices import Indicator, Light, Sound, Sounder
from kiosk.gate.notes import DeviceNote
from kiosk.gate.view import DOWN, OK, GateView
from kiosk.reasons import Decision, Mode, Reason
from kiosk.timers import Timers

log = logging.getLogger(__name__)

LIGHT_TIMER = "light"


class GateOutputs:
    """The light and sound shown, the devices known, and the view they are published to."""

    def __init__(
        self,
        *,
        indicator: Indicator,
        sounder: Sounder,
        view: GateView,
        timers: Timers,
        deny_light_s: float,
        refer_light_s: float,
        log_error: Callable[[str, BaseException], None],
    ) -> None:
        self._timers = timers
        self._deny_s = deny_light_s
        self._refer_s = refer_light_s
        self._indicator = indicator
        self._sounder = sounder
        self.view = view
        self._log_error = log_error
        self.light = Light.OFF
        self.sound = Sound.NONE
        self.devices: dict[str, bool] = {}

    # -- gate.md's indicators -----------------------------------------------------------

    def admitted(self) -> None:
        """Green for the unlock window, one short beep."""
        self._timers.cancel(LIGHT_TIMER)
        self.show(Light.ADMIT)
        self.play(Sound.SHORT)

    def decided(self, v: Verdict, mode: Mode, now: float) -> None:
        """A decision other than admit, at monotonic ``now``."""
        if v.reason is Reason.EMERGENCY:
            return  # the turnstile is already free; the amber flashing goes on
        if mode in (Mode.LOCKDOWN, Mode.CLOSED):
            self.play(Sound.LONG)  # the mode's slow red flash stays
        elif v.decision is Decision.DENY:
            self._flash(Light.DENY, Sound.LONG, now + self._deny_s)
        else:
            self._flash(Light.REFER, Sound.TWO_SHORT, now + self._refer_s)

    def forced(self, now: float) -> None:
        """A forced passage: red and the alarm."""
        self._flash(Light.DENY, Sound.ALARM, now + self._deny_s)

    @property
    def flashing(self) -> bool:
        """A decision's light is still shown (the idle light waits for its end)."""
        return self._timers.pending(LIGHT_TIMER)

    def _flash(self, light: Light, sound: Sound, until: float) -> None:
        self._timers.set(LIGHT_TIMER, until)
        self.show(light)
        self.play(sound)

    # -- the devices ------------------------------------------------------------------

    def show(self, light: Light) -> None:
        """Show ``light`` (best effort)."""
        self.light = light
        try:
            self._indicator.show(light)
        except Exception as exc:  # noqa: BLE001 - any indicator failure: logged, the gate goes on
            self._log_error("indicator.show", exc)

    def play(self, sound: Sound) -> None:
        """Play ``sound`` (best effort)."""
        self.sound = sound
        try:
            self._sounder.play(sound)
        except Exception as exc:  # noqa: BLE001 - any sounder failure: logged, the gate goes on
            self._log_error("sounder.play", exc)

    def device(self, device: str, ok: bool, detail: str) -> None:
        """A device was lost or is back: one note (a journal line) per change."""
        if self.devices.get(device) == ok:
            return  # no change: one line per loss, one per return
        self.devices[device] = ok
        self.view.note(DeviceNote(device, ok, detail))

    def relay(self, ok: bool, detail: str) -> None:
        """Told of every relock attempt: a failure is a loss, a lock after one a return."""
        if ok and self.devices.get("relay") is not False:
            return  # locked as usual: nothing to say
        self.device("relay", ok, detail)

    def publish(self, *, status: bool | None, disk: bool | None, **fields: Any) -> None:
        """Publish the snapshot's fields and the health of what the controller knows:
        ``status`` is the status service's (None: the venue has none), ``disk`` the event
        store's (None: nothing recorded yet); the devices' from their DeviceStatus inputs."""
        parts = {part: OK if ok else DOWN for part, ok in self.devices.items()}
        if status is not None:
            parts["status"] = OK if status else DOWN
        if disk is not None:
            parts["disk"] = OK if disk else DOWN
        self.view.publish(
            light=self.light.value, sound=self.sound.value, health_parts=parts, **fields
        )
