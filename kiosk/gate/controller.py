"""The gate controller: the one owner of gate state (DEVELOPERS.md principle 2).

Device threads, network callbacks and timers only ``emit`` inputs; this loop decides,
actuates and records, one input at a time. ``handle(input)`` and ``tick(now)`` are the whole
of it and are deterministic given the clock: ``run`` only takes inputs from the queue and the
time from the clock. The rules live in small objects only this loop calls: the mode
(kiosk/gate/modes.py), the admission window (window.py), the waiting codes and lookups
(lookups.py), the commands (commands.py); what is recorded is typed (records.py); what the
gate does is published to a GateView (view.py) after every input and timer.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from concurrent.futures import Executor
from typing import Any

from kiosk.checker import Checked, Checker
from kiosk.clock import Clock
from kiosk.debounce import SightingFilter
from kiosk.decision import Verdict
from kiosk.devices import Light
from kiosk.gate import commands
from kiosk.gate.inputs import (
    CodeRead,
    Command,
    CommandRefused,
    DeviceStatus,
    Event,
    ExitSensed,
    FireAlarmInput,
    LookupDone,
    PassageSensed,
)
from kiosk.gate.lookups import TIMER_PREFIX, Lookups, offline_after
from kiosk.gate.loop import GateLoop
from kiosk.gate.modes import ModeMachine
from kiosk.gate.notes import FireNote, ForcedNote, ModeNote, TimeoutNote
from kiosk.gate.outputs import LIGHT_TIMER, GateOutputs
from kiosk.gate.parts import (
    GateDevices,
    GateMemory,
    GateTiming,
    Heartbeat,
    NoMemory,
    PolicyLoader,
    PolicySource,
    Restored,
)
from kiosk.gate.records import (
    AlarmRecord,
    CommandRecord,
    DecisionRecord,
    ForcedPassageRecord,
    ModeRecord,
    PassageRecord,
    PassageTimeoutRecord,
    Record,
    Recorder,
)
from kiosk.gate.view import GateView, LastDecision
from kiosk.gate.window import RELOCK_TIMER, UNLOCK_TIMER, Admission, AdmissionWindow, Beam
from kiosk.policy import VenuePolicy
from kiosk.reasons import Decision, Mode, Reason
from kiosk.status.answer import LookupResult

__all__ = ["GateController", "GateTiming", "Restored"]

log = logging.getLogger(__name__)

HOURS_CHECK_S = 15.0


class GateController(GateLoop):
    """Decides, actuates and records; hardware and services are passed in."""

    def __init__(
        self,
        *,
        checker: Checker,
        recorder: Recorder,
        devices: GateDevices,
        policy: PolicySource,
        timing: GateTiming,
        clock: Clock,
        view: GateView | None = None,
        memory: GateMemory | None = None,
        reload: PolicyLoader | None = None,
        heartbeat: Heartbeat | None = None,
        restored: Restored | None = None,
        lookup_timeout_s: float = 2.0,
        lookup_executor: Executor | None = None,
        version: str = "",
        present: Iterable[str] = (),
    ) -> None:
        super().__init__(clock=clock, heartbeat=heartbeat)
        self._checker = checker
        self._recorder = recorder
        self._turnstile = devices.turnstile
        self._policy = policy
        self._timing = timing
        self._memory = memory or NoMemory()
        self._reload = reload
        self._disk_ok: bool | None = None  # the event store's health, from each record
        self._version = version
        self._sightings = SightingFilter(
            left_view_s=timing.left_view_s, cooldown_s=timing.cooldown_s
        )
        self._lookups = Lookups(
            checker=checker,
            timers=self._timers,
            emit=self.emit,
            timeout_s=lookup_timeout_s,
            executor=lookup_executor,
        )
        self._window = AdmissionWindow(
            turnstile=self._turnstile,
            timers=self._timers,
            clock=clock,
            unlock_s=timing.unlock_s,
            relay_state=self._relay_relocked,
        )
        restored = restored or Restored()
        self._modes = ModeMachine(
            since=clock.time(), latched=restored.latched, lockdown=restored.lockdown
        )
        self._offline = False
        self.occupancy = restored.occupancy
        self._last: LastDecision | None = None
        self._out = GateOutputs(
            indicator=devices.indicator,
            sounder=devices.sounder,
            view=view or GateView(),
            timers=self._timers,
            deny_light_s=timing.deny_light_s,
            refer_light_s=timing.refer_light_s,
            log_error=self._log_error,
        )
        self.view = self._out.view
        # Built and configured devices count as working until they say otherwise (a driver
        # that cannot open its device says so at once): "off" is for what is not fitted.
        self._out.devices.update(dict.fromkeys(present, True))
        self._publish()  # the view shows the gate from the start (the state's first mode)

    # -- the loop's hooks -----------------------------------------------------------

    @property
    def mode(self) -> Mode:
        """The gate's mode (the loop's thread; others read ``view.snapshot()``)."""
        return self._modes.mode

    def start(self) -> None:
        """Release the relay, judge the mode, show it (the loop's first step)."""
        self._turnstile.release()
        self._update_mode("start")
        self._apply_mode_outputs()
        self._timers.set("hours", self._clock.monotonic() + HOURS_CHECK_S)
        self._publish()

    def shutdown(self) -> None:
        """Release the relay, put the light out, stop the lookup worker."""
        try:
            self._turnstile.release()
        finally:
            self._out.show(Light.OFF)
            self._lookups.shutdown()
            self._publish_quietly()

    def _stopping(self) -> None:
        if self._window.is_open:
            self._annul("stop")

    # -- inputs -----------------------------------------------------------------------

    def _dispatch(self, event: Event) -> None:
        if isinstance(event, CodeRead):
            self._on_code(event)
        elif isinstance(event, LookupDone):
            self._on_lookup_done(event)
        elif isinstance(event, PassageSensed):
            self._on_passage()
        elif isinstance(event, ExitSensed):
            self.occupancy = max(0, self.occupancy - 1)
            self._record(PassageRecord("exit", occupancy=self.occupancy))
        elif isinstance(event, FireAlarmInput):
            self._on_fire_input(event.open)
        elif isinstance(event, Command):
            commands.run(event, self, unlock_s=self._timing.unlock_s, view=self.view)
        elif isinstance(event, CommandRefused):
            self._record(CommandRecord(event.cmd, event.jti, event.origin, False, event.reason))
        elif isinstance(event, DeviceStatus):
            self._out.device(event.device, event.ok, event.detail)

    def _on_code(self, code: CodeRead) -> None:
        if not self._sightings.should_decide(code.data, self._clock.monotonic()):
            return
        if self.busy() and self.mode is not Mode.EMERGENCY:
            # One admission, one passage: the next person is decided once the gate is free.
            self._lookups.wait(code)
            return
        self._decide(code)

    def busy(self) -> bool:
        """Someone is being decided or passing."""
        return self._lookups.checking or self._window.is_open

    def _decide(self, code: CodeRead) -> None:
        self._update_mode("schedule", drain=False)  # opening time is judged now
        policy = self._policy.current(self._clock.time())
        started = self._checker.begin(
            code.data, policy=policy, mode=self.mode, occupancy=self._occupancy_for(policy)
        )
        if isinstance(started, Checked):
            self._conclude(started, code)
        else:
            self._lookups.start(started, code, self._clock.monotonic())

    def _on_lookup_done(self, done: LookupDone) -> None:
        entry = self._lookups.finish(done.ticket)
        if entry is None:
            return  # already decided when its lookup overran
        pending, code = entry
        policy = self._policy.current(self._clock.time())
        try:
            checked = self._checker.finish(
                pending,
                done.result,
                policy=policy,
                mode=self.mode,
                occupancy=self._occupancy_for(policy),
            )
        except Exception as exc:  # noqa: BLE001 - still one decision per code; unknown means locked
            self._log_error("finish", exc)
            checked = Checked(Verdict(Decision.REFER, Reason.BACKEND_UNAVAILABLE))
        self._conclude(checked, code)

    def _occupancy_for(self, policy: VenuePolicy) -> int | None:
        return self.occupancy if policy.capacity else None

    def _conclude(self, checked: Checked, code: CodeRead) -> None:
        v = checked.verdict
        latency_ms = round((self._clock.monotonic() - code.t_read) * 1000, 1)
        # Actuate first, record right after: the person is at the gate now.
        if v.decision is Decision.ADMIT:
            self._open_window(Admission(0, v.subject, checked.jti, checked.pass_exp, "decision"))
        else:
            self._out.decided(v, self.mode, self._clock.monotonic())
        record = DecisionRecord.of(v, code.source, latency_ms)
        event = self._record(record)
        self._last = record.shown(self._clock.time(), checked.masked, event)
        self._note_service(v)
        self._next_waiting()

    def _open_window(self, admission: Admission) -> None:
        self._window.open(admission)
        self._out.admitted()

    def _end_window(self) -> Admission | None:
        emergency = self.mode is Mode.EMERGENCY
        admission = self._window.close(relock=not emergency)
        if not emergency:
            self._out.show(self._idle_light())
        return admission

    def _annul(self, cause: str) -> None:
        """End an open window without a passage: the admission does not count."""
        admission = self._end_window()
        if admission is not None:
            self._record(PassageTimeoutRecord(admission.subject, cause))
            self.view.note(TimeoutNote(cause, self._timing.unlock_s))

    def _on_passage(self) -> None:
        beam = self._window.beam(self._clock.monotonic())
        if beam is Beam.HELD_OFF:
            return  # the same person still in the beam
        if beam is Beam.ADMITTED:
            admission = self._end_window()
            assert admission is not None
            self.occupancy += 1
            if admission.jti and admission.pass_exp is not None:
                self._memory.mark_used(admission.jti, admission.pass_exp + self._timing.leeway_s)
            if admission.subject:
                self._memory.record_passage(admission.subject, self._clock.time())
            self._record(PassageRecord.entry(admission, self.occupancy))
            self._next_waiting()
        elif self.mode is Mode.EMERGENCY:
            self._record(PassageRecord("entry", cause="emergency"))
        else:
            self._out.forced(self._clock.monotonic())
            self._record(ForcedPassageRecord(self.occupancy))
            self.view.note(ForcedNote())

    def _on_timer(self, name: str, token: Any) -> None:
        if name == UNLOCK_TIMER:
            if self._window.expired(token):
                # Annulled: the pass may be shown again, the occupancy does not change.
                assert self._window.admission is not None
                self._annul(self._window.admission.cause)
                self._next_waiting()
        elif name.startswith(TIMER_PREFIX):
            if self._lookups.overran(token):
                log.error("status lookup overran its deadline; the offline rule decides")
                self._on_lookup_done(LookupDone(token, LookupResult.no_answer("overran")))
        elif name == RELOCK_TIMER:
            if self.mode is not Mode.EMERGENCY and not self._window.is_open:
                self._window.relock()
        elif name == LIGHT_TIMER:
            if not self._window.is_open:
                self._out.show(self._idle_light())
        elif name == "hours":
            self._timers.set("hours", self._clock.monotonic() + HOURS_CHECK_S)
            self._sightings.prune(self._clock.monotonic())
            self._update_mode("schedule")

    def _next_waiting(self) -> None:
        while not self.busy():
            code = self._lookups.next_waiting()
            if code is None:
                return
            self._decide(code)

    # -- modes ------------------------------------------------------------------------

    def _on_fire_input(self, is_open: bool) -> None:
        if not self._modes.fire_input(is_open):
            return
        # Free the way out first; the record follows (and cannot undo it if it fails).
        changed = self._update_mode("fire_alarm") if is_open else False
        self._record(AlarmRecord(is_open))
        if not changed:  # a new emergency says so in its own mode line
            self.view.note(FireNote(is_open, self.mode))

    # commands.CommandTarget: what a command may do ---------------------------------------

    def record(self, record: Record) -> None:
        self._record(record)

    def resume(self) -> str | None:
        error = self._modes.resume()
        if error is None:
            self._update_mode("resume")
        return error

    def lockdown(self) -> None:
        self._modes.lockdown = True
        self._update_mode("lockdown")

    def open_once(self) -> None:
        self._open_window(Admission(0, None, None, None, "open_once"))

    def reset_occupancy(self) -> int:
        was, self.occupancy = self.occupancy, 0
        return was

    def reload_policy(self) -> float | None:
        if self._reload is None:
            return None
        return self._policy.propose(self._reload.load_policy(), self._clock.time())

    def _update_mode(self, cause: str, *, drain: bool = True) -> bool:
        """Judge the mode now; True when it changed (or at start)."""
        now = self._clock.time()
        change = self._modes.judge(
            now, is_open=self._policy.current(now).is_open(now), start=cause == "start"
        )
        reset = change.opened and self.occupancy != 0
        if change.opened:
            self.occupancy = 0  # a new day: whoever was counted in has long left
        if not change.changed:
            return False
        if self._window.is_open and change.mode is not Mode.NORMAL:
            self._annul(change.mode.value)
        self._apply_mode_outputs()
        self._record(ModeRecord(change.mode.value, change.previous.value, cause, self.occupancy))
        self.view.note(ModeNote(change.mode, change.previous, cause, occupancy_reset=reset))
        if drain:
            self._next_waiting()
        return True

    def _apply_mode_outputs(self) -> None:
        if self.mode is Mode.EMERGENCY:
            self._window.stop_relocking()
            self._turnstile.hold_free()
            self._out.show(Light.EMERGENCY)
        else:
            self._window.relock()
            self._out.show(self._idle_light())

    def _idle_light(self) -> Light:
        return self._modes.idle_light(offline=self._offline)

    def _note_service(self, v: Verdict) -> None:
        offline = offline_after(v) if self._checker.has_lookup else None
        if offline is not None and offline != self._offline:
            self._offline = offline
            # The journal line is the status client's (kiosk/status/breaker.py): it knows.
            if not self._window.is_open and not self._out.flashing:
                self._out.show(self._idle_light())

    def _relay_relocked(self, ok: bool, detail: str) -> None:
        self._out.relay(ok, detail)

    # -- outputs ----------------------------------------------------------------------

    def _record(self, record: Record) -> dict[str, Any] | None:
        try:
            event = self._recorder.record(record)
        except Exception as exc:  # noqa: BLE001 - the gate has acted already; a failing store must not undo it
            self._disk_ok = False
            ok, _ = self._throttle.allow(f"record:{type(exc).__name__}")
            if ok:
                log.critical("event store failed, %s not recorded: %s", record.type, exc)
            return None
        self._disk_ok = True
        # The snapshot first: whoever sees the record sees the gate as it is after it.
        self._publish()
        self.view.recorded(event)
        return event

    def _publish(self) -> None:
        """Tell the view what the gate does now (after every input and timer)."""
        policy = self._policy.current(self._clock.time())
        self._out.publish(
            status=not self._offline if self._checker.has_lookup else None,
            disk=self._disk_ok,
            mode=self.mode.value,
            since=self._modes.since,
            turnstile="free" if self._turnstile.is_free else "locked",
            occupancy=self.occupancy,
            capacity=policy.capacity or None,
            checking=self._lookups.checking,
            offline=self._offline,
            last_decision=self._last,
            kiosk_version=self._version,
        )

    def _publish_quietly(self) -> None:
        try:
            self._publish()
        except Exception as exc:  # noqa: BLE001 - on the way out: the relay is released already
            self._log_error("publish", exc)
