"""The gate controller: the one owner of gate state (DEVELOPERS.md principle 2).

Device threads, network callbacks and timers only ``emit`` events; this loop decides,
actuates and records, one event at a time, so every timing and safety rule of gate.md
reads top to bottom here. The only slow step, the status lookup, runs in a worker and comes
back as an event, so a fire alarm is never stuck behind a slow server.
"""

from __future__ import annotations

import itertools
import logging
import queue
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from kiosk.checker import Checked, Checker, Pending
from kiosk.clock import Clock, rfc3339_ms
from kiosk.debounce import SightingFilter
from kiosk.decision import Verdict
from kiosk.devices import Indicator, Light, Sound, Sounder, Turnstile
from kiosk.events import (
    CodeRead,
    Command,
    DeviceStatus,
    Event,
    ExitSensed,
    FireAlarmInput,
    LookupDone,
    PassageSensed,
    Stop,
)
from kiosk.journal import GateJournal
from kiosk.policy import PolicyHolder, VenuePolicy
from kiosk.reasons import Decision, Mode, Reason, Via
from kiosk.replay import jti_key
from kiosk.status.answer import LookupResult
from kiosk.throttle import LogThrottle
from kiosk.timers import Timers

log = logging.getLogger(__name__)

HOURS_CHECK_S = 15.0
MAX_WAITING_CODES = 32
RELOCK_RETRY_S = 0.2
# One person can break the beam twice (a bag, a hesitation): not a second, forced, passage.
PASSAGE_HOLDOFF_S = 0.5


@dataclass(frozen=True)
class GateTiming:
    """The [gate] keys the controller uses."""

    unlock_s: float = 5.0
    cooldown_s: float = 5.0
    left_view_s: float = 1.0
    deny_light_s: float = 2.0
    refer_light_s: float = 3.0
    leeway_s: float = 30.0

    @classmethod
    def from_config(cls, gate: Any, leeway_s: float) -> GateTiming:
        """From the validated [gate] section."""
        return cls(
            gate.unlock_s,
            gate.cooldown_s,
            gate.left_view_s,
            gate.deny_light_s,
            gate.refer_light_s,
            leeway_s,
        )


@dataclass
class Admission:
    """An open unlock window: one admission, one passage."""

    ticket: int
    subject: str | None
    jti: str | None
    pass_exp: int | None
    cause: str  # "decision" or "open_once"


class GateController:
    """Decides, actuates and records; hardware and services are passed in."""

    def __init__(
        self,
        *,
        checker: Checker,
        record: Callable[..., dict[str, Any]],
        turnstile: Turnstile,
        indicator: Indicator,
        sounder: Sounder,
        policy: PolicyHolder,
        timing: GateTiming,
        clock: Clock,
        mark_used: Callable[[str, float], None] = lambda jti, until: None,
        record_passage: Callable[[str, float], None] = lambda subject, at: None,
        reload_policy: Callable[[], VenuePolicy] | None = None,
        heartbeat: Callable[[], None] | None = None,
        on_event: Callable[[dict[str, Any]], None] | None = None,
        on_state: Callable[[dict[str, Any]], None] | None = None,
        occupancy: int = 0,
        version: str = "",
        lockdown: bool = False,
        latched: bool = False,
        lookup_timeout_s: float = 2.0,
        fire_input: str = "fire-alarm input",
    ) -> None:
        self._checker = checker
        self._record_fn = record
        self._turnstile = turnstile
        self._indicator = indicator
        self._sounder = sounder
        self._policy = policy
        self._timing = timing
        self._clock = clock
        self._mark_used = mark_used
        self._record_passage = record_passage
        self._reload_policy = reload_policy
        self._heartbeat = heartbeat
        self._on_event = on_event
        self._on_state = on_state
        self._version = version
        # The fire alarm goes ahead of everything waiting (priority 0), the rest in order.
        self._queue: queue.PriorityQueue[tuple[int, int, Any]] = queue.PriorityQueue()
        self._order = itertools.count()
        self._last_passage = float("-inf")
        self._timers = Timers()
        self._sightings = SightingFilter(
            left_view_s=timing.left_view_s, cooldown_s=timing.cooldown_s
        )
        self._lookups = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lookup")
        self._pending: dict[int, tuple[Pending, CodeRead]] = {}
        self._waiting: deque[CodeRead] = deque()
        self._admission: Admission | None = None
        self._tickets = 0
        self._fire_open = False
        # Restored from the record: a restart neither ends a lockdown nor an emergency.
        self._latched = latched
        self._lockdown = lockdown
        self._lookup_timeout_s = lookup_timeout_s
        self._closed = False
        self._offline = False
        self._mode = Mode.NORMAL
        self._since = clock.time()
        self.occupancy = occupancy
        self.devices: dict[str, bool] = {}
        self._throttle = LogThrottle(30.0)
        self._journal = GateJournal(
            fire_input=fire_input, unlock_s=timing.unlock_s, now=clock.monotonic
        )

    # -- producers' side -------------------------------------------------------------

    def emit(self, event: Event) -> None:
        """Hand an event to the controller (any thread)."""
        urgent = isinstance(event, FireAlarmInput | Stop)
        self._queue.put((0 if urgent else 1, next(self._order), event))

    @property
    def mode(self) -> Mode:
        """The gate's mode."""
        return self._mode

    def state(self) -> dict[str, Any]:
        """The retained state of mqtt.md."""
        return {
            "online": True,
            "mode": self._mode.value,
            "version": self._version,
            "since": rfc3339_ms(self._since),
            "occupancy": self._occupancy_for(self._policy.current(self._clock.time())),
        }

    # -- the loop ---------------------------------------------------------------------

    def run(self) -> None:
        """Run until a Stop event; the relay is released on the way out, whatever happens."""
        try:
            self._start()
            while True:
                if self._heartbeat is not None:
                    self._heartbeat()
                timeout = 1.0
                due = self._timers.next_due()
                if due is not None:
                    timeout = min(timeout, max(0.0, due - self._clock.monotonic()))
                try:
                    event = self._queue.get(timeout=timeout)[2]
                except queue.Empty:
                    event = None
                if isinstance(event, Stop):
                    self._guarded(self._drain_for_stop)
                    break
                if event is not None:
                    self._guarded(self._handle, event)
                for name, token in self._timers.pop_due(self._clock.monotonic()):
                    self._guarded(self._on_timer, name, token)
        finally:
            self._turnstile.release()
            self._quietly(self._indicator.show, Light.OFF)
            self._lookups.shutdown(wait=False, cancel_futures=True)

    def _guarded(self, fn: Callable[..., None], *args: Any) -> None:
        # Bad input never ends the loop: log (rate-limited) and go on with the next event.
        # Only the exception's type: a message could quote what a code said.
        try:
            fn(*args)
        except Exception as exc:
            self._log_error(f"{getattr(fn, '__name__', 'handler')}", exc)

    def _log_error(self, where: str, exc: BaseException) -> None:
        ok, held = self._throttle.allow(f"{where}:{type(exc).__name__}")
        if ok:
            log.error(
                "controller: %s failed: %s (%d like it held back)", where, type(exc).__name__, held
            )

    def _quietly(self, fn: Callable[..., None], *args: Any) -> None:
        """Lights and sounds are best effort: a broken LED must not keep a turnstile free."""
        try:
            fn(*args)
        except Exception as exc:
            self._log_error(getattr(fn, "__qualname__", "indicator"), exc)

    def _drain_for_stop(self) -> None:
        """Before stopping: what already happened is still handled and recorded (a passage,
        a command, a lookup's answer); codes not yet decided are left (shown again later)."""
        while True:
            try:
                event = self._queue.get_nowait()[2]
            except queue.Empty:
                break
            if not isinstance(event, CodeRead | Stop):
                self._guarded(self._handle, event)
        if self._admission is not None:
            self._annul("stop")

    def _start(self) -> None:
        self._turnstile.release()
        self._update_mode("start")
        self._apply_mode_outputs()
        self._timers.set("hours", self._clock.monotonic() + HOURS_CHECK_S)

    # -- events -----------------------------------------------------------------------

    def _handle(self, event: Event) -> None:
        if isinstance(event, CodeRead):
            self._on_code(event)
        elif isinstance(event, LookupDone):
            self._on_lookup_done(event)
        elif isinstance(event, PassageSensed):
            self._on_passage()
        elif isinstance(event, ExitSensed):
            self.occupancy = max(0, self.occupancy - 1)
            self._record("passage", direction="exit", subject=None, occupancy=self.occupancy)
            self._state_changed()
        elif isinstance(event, FireAlarmInput):
            self._on_fire_input(event.open)
        elif isinstance(event, Command):
            self._on_command(event)
        elif isinstance(event, DeviceStatus):
            self._on_device(event)

    def _on_code(self, code: CodeRead) -> None:
        if not self._sightings.should_decide(code.data, self._clock.monotonic()):
            return
        if self._busy() and self._mode is not Mode.EMERGENCY:
            # One admission, one passage: the next person is decided once the gate is free.
            if len(self._waiting) >= MAX_WAITING_CODES:
                self._waiting.popleft()
                log.warning(
                    "too many codes waiting; the oldest is dropped (shown again, it counts)"
                )
            self._waiting.append(code)
            return
        self._decide(code)

    def _busy(self) -> bool:
        return bool(self._pending) or self._admission is not None

    def _decide(self, code: CodeRead) -> None:
        self._update_mode("schedule", drain=False)  # opening time is judged now
        now = self._clock.time()
        policy = self._policy.current(now)
        started = self._checker.begin(
            code.data, policy=policy, mode=self._mode, occupancy=self._occupancy_for(policy)
        )
        if isinstance(started, Checked):
            self._conclude(started, code)
            return
        self._tickets += 1
        ticket = self._tickets
        self._pending[ticket] = (started, code)

        def work() -> None:
            try:
                result = self._checker.lookup(started)
            except Exception as exc:  # a transport bug must still end in an answer
                log.error("status lookup failed: %s", type(exc).__name__)
                result = LookupResult.no_answer(type(exc).__name__)
            self.emit(LookupDone(ticket, result))

        self._lookups.submit(work)
        # The transport keeps its own deadline; this one is for a transport that does not
        # (a DNS lookup hanging): the person still gets a decision, the gate goes on.
        self._timers.set(
            f"lookup:{ticket}", self._clock.monotonic() + self._lookup_timeout_s, ticket
        )

    def _on_lookup_done(self, done: LookupDone) -> None:
        entry = self._pending.pop(done.ticket, None)
        if entry is None:
            return  # already decided when its lookup overran
        self._timers.cancel(f"lookup:{done.ticket}")
        pending, code = entry
        policy = self._policy.current(self._clock.time())
        try:
            checked = self._checker.finish(
                pending,
                done.result,
                policy=policy,
                mode=self._mode,
                occupancy=self._occupancy_for(policy),
            )
        except Exception as exc:  # still one decision per code; unknown means locked
            self._log_error("finish", exc)
            checked = Checked(Verdict(Decision.REFER, Reason.BACKEND_UNAVAILABLE))
        self._conclude(checked, code)

    def _occupancy_for(self, policy: VenuePolicy) -> int | None:
        return self.occupancy if policy.capacity else None

    def _conclude(self, checked: Checked, code: CodeRead) -> None:
        v = checked.verdict
        latency_ms = round((self._clock.monotonic() - code.t_read) * 1000, 1)
        fields: dict[str, Any] = {
            "decision": v.decision.value,
            "reason": v.reason.value,
            "st": v.st,
            "via": v.via.value,
            "source": code.source.value,
            "subject": v.subject,
            "latency_ms": latency_ms,
        }
        if v.passback:
            fields["anti_passback"] = True
        # Actuate first, record right after: the person is at the gate now.
        if v.decision is Decision.ADMIT:
            self._open(Admission(0, v.subject, checked.jti, checked.pass_exp, "decision"))
        elif v.reason is Reason.EMERGENCY:
            pass  # the turnstile is already free; the amber flashing goes on
        elif self._mode in (Mode.LOCKDOWN, Mode.CLOSED):
            self._quietly(self._sounder.play, Sound.LONG)  # the mode's slow red flash stays
        elif v.decision is Decision.DENY:
            self._flash(Light.DENY, Sound.LONG, self._timing.deny_light_s)
        else:
            self._flash(Light.REFER, Sound.TWO_SHORT, self._timing.refer_light_s)
        self._record("decision", **fields)
        self._note_service(v)
        self._next_waiting()

    def _flash(self, light: Light, sound: Sound, seconds: float) -> None:
        self._timers.set("light", self._clock.monotonic() + seconds)
        self._quietly(self._indicator.show, light)
        self._quietly(self._sounder.play, sound)

    def _open(self, admission: Admission) -> None:
        assert self._admission is None, "one admission at a time"
        self._tickets += 1
        admission.ticket = self._tickets
        # The window's end is set before the relay moves: whatever fails next, it relocks.
        self._admission = admission
        self._timers.cancel("light")
        self._timers.set(
            "unlock", self._clock.monotonic() + self._timing.unlock_s, admission.ticket
        )
        self._turnstile.free(hold_s=self._timing.unlock_s)
        self._quietly(self._indicator.show, Light.ADMIT)
        self._quietly(self._sounder.play, Sound.SHORT)

    def _end_window(self) -> Admission | None:
        admission, self._admission = self._admission, None
        self._timers.cancel("unlock")
        if self._mode is not Mode.EMERGENCY:
            self._relock()
            self._quietly(self._indicator.show, self._idle_light())
        return admission

    def _relock(self) -> None:
        try:
            self._turnstile.lock()
            self._timers.cancel("relock")
        except Exception as exc:
            # Keep trying: a turnstile left free is the one thing that must not last.
            detail = f"could not lock the turnstile ({type(exc).__name__}); retrying"
            self._device_changed("relay", False, detail)
            self._timers.set("relock", self._clock.monotonic() + RELOCK_RETRY_S)
        else:
            if self.devices.get("relay") is False:
                self._device_changed("relay", True, "turnstile locked")

    def _annul(self, cause: str) -> None:
        """End an open window without a passage: the admission does not count."""
        admission = self._end_window()
        if admission is not None:
            self._record("passage_timeout", subject=admission.subject, cause=cause)
            self._journal.passage_timeout(cause)

    def _on_passage(self) -> None:
        now_m = self._clock.monotonic()
        if self._admission is None and now_m - self._last_passage < PASSAGE_HOLDOFF_S:
            return  # the same person still in the beam
        self._last_passage = now_m
        if self._admission is not None:
            admission = self._end_window()
            assert admission is not None
            self.occupancy += 1
            now = self._clock.time()
            if admission.jti and admission.pass_exp is not None:
                self._mark_used(admission.jti, admission.pass_exp + self._timing.leeway_s)
            if admission.subject:
                self._record_passage(admission.subject, now)
            self._record(
                "passage",
                direction="entry",
                subject=admission.subject,
                cause=admission.cause,
                occupancy=self.occupancy,
                # So a restart rebuilds the replay memory from the record (kiosk/memory.py).
                **(
                    {"pass_ref": jti_key(admission.jti), "pass_exp": admission.pass_exp}
                    if admission.jti
                    else {}
                ),
            )
            self._state_changed()
            self._next_waiting()
        elif self._mode is Mode.EMERGENCY:
            self._record("passage", direction="entry", subject=None, cause="emergency")
        else:
            self._flash(Light.DENY, Sound.ALARM, self._timing.deny_light_s)
            self._record("forced_passage", subject=None, occupancy=self.occupancy)
            self._journal.forced_passage()

    def _on_timer(self, name: str, token: Any) -> None:
        if name == "unlock":
            if self._admission is not None and self._admission.ticket == token:
                # Annulled: the pass may be shown again, the occupancy does not change.
                self._annul(self._admission.cause)
                self._next_waiting()
        elif name.startswith("lookup:"):
            if token in self._pending:
                log.error("status lookup overran its deadline; the offline rule decides")
                self._on_lookup_done(LookupDone(token, LookupResult.no_answer("overran")))
        elif name == "relock":
            if self._mode is not Mode.EMERGENCY and self._admission is None:
                self._relock()
        elif name == "light":
            if self._admission is None:
                self._quietly(self._indicator.show, self._idle_light())
        elif name == "hours":
            self._timers.set("hours", self._clock.monotonic() + HOURS_CHECK_S)
            self._sightings.prune(self._clock.monotonic())
            self._update_mode("schedule")

    def _next_waiting(self) -> None:
        while self._waiting and not self._busy():
            self._decide(self._waiting.popleft())

    # -- modes ------------------------------------------------------------------------

    def _on_fire_input(self, is_open: bool) -> None:
        was_open, self._fire_open = self._fire_open, is_open
        if is_open == was_open:
            return
        changed = False
        if is_open:
            # Free the way out first; the record follows (and cannot undo it if it fails).
            self._latched = True
            changed = self._update_mode("fire_alarm")
        self._record("alarm", alarm="fire", input="open" if is_open else "closed")
        if not changed:  # a new emergency says so in its own mode line
            self._journal.fire(is_open, mode=self._mode)

    def _on_command(self, cmd: Command) -> None:
        ok, error = True, None
        said = ""  # what the journal says of a command that changes no mode
        fields: dict[str, Any] = {}
        if cmd.cmd == "resume":
            if self._fire_open:
                ok, error = False, "fire_alarm_active"
            else:
                self._latched = False
                self._lockdown = False
                self._update_mode("resume")
        elif cmd.cmd == "lockdown":
            self._lockdown = True
            self._update_mode("lockdown")
        elif cmd.cmd == "open_once":
            if self._mode in (Mode.EMERGENCY, Mode.LOCKDOWN):
                ok, error = False, self._mode.value
            elif self._busy():
                ok, error = False, "busy"  # someone is being decided or passing
            else:
                self._open(Admission(0, None, None, None, "open_once"))
                said = f"turnstile free for one passage ({self._timing.unlock_s:g} s)"
        elif cmd.cmd == "reset_occupancy":
            # The count drifts (people leaving by another door): an operator sets it to 0.
            was, self.occupancy = self.occupancy, 0
            fields = {"occupancy": 0}
            said = f"occupancy reset to 0 (was {was})"
        elif cmd.cmd == "reload_config":
            if self._reload_policy is None:
                ok, error = False, "reload_not_available"
            else:
                try:
                    effective = self._policy.propose(self._reload_policy(), self._clock.time())
                    log.info("new venue policy takes effect at %s", rfc3339_ms(effective))
                except Exception as exc:
                    # The details (file, key) go to the log, not into the event.
                    log.error("reload_config refused: %s", exc)
                    ok, error = False, "config_error"
        else:
            ok, error = False, "unknown_command"
        who = {} if cmd.account is None else {"account": cmd.account}  # the console's user
        self._record(
            "command",
            cmd=cmd.cmd,
            jti=cmd.jti,
            origin=cmd.origin,
            via=cmd.origin,  # mqtt.md's name for where a command came from
            ok=ok,
            error=error,
            **fields,
            **who,
        )
        if error != "config_error":  # that one has its own line, naming file and key
            self._journal.command(cmd.cmd, cmd.origin, ok, error, said)
        if fields:
            self._state_changed()
        if cmd.done is not None:
            cmd.done(ok, error)

    def _update_mode(self, cause: str, *, drain: bool = True) -> bool:
        """Judge the mode now; True when it changed (or at start)."""
        now = self._clock.time()
        was_closed = self._closed
        self._closed = not self._policy.current(now).is_open(now)
        if self._latched:
            mode = Mode.EMERGENCY
        elif self._lockdown:
            mode = Mode.LOCKDOWN
        elif self._closed:
            mode = Mode.CLOSED
        else:
            mode = Mode.NORMAL
        reset = was_closed and not self._closed and self.occupancy != 0
        if was_closed and not self._closed:
            self.occupancy = 0  # a new day: whoever was counted in has long left
        if mode is self._mode and cause != "start":
            if reset:  # a new day in lockdown or emergency: the count starts afresh too
                self._state_changed()
            return False
        previous, self._mode, self._since = self._mode, mode, now
        if self._admission is not None and mode is not Mode.NORMAL:
            self._annul(mode.value)
        self._apply_mode_outputs()
        self._record(
            "mode", mode=mode.value, previous=previous.value, cause=cause, occupancy=self.occupancy
        )
        self._journal.mode(mode, previous, cause, occupancy_reset=reset)
        self._state_changed()
        if drain:
            self._next_waiting()
        return True

    def _apply_mode_outputs(self) -> None:
        if self._mode is Mode.EMERGENCY:
            self._timers.cancel("relock")
            self._turnstile.hold_free()
            self._quietly(self._indicator.show, Light.EMERGENCY)
        else:
            self._relock()
            self._quietly(self._indicator.show, self._idle_light())

    def _idle_light(self) -> Light:
        if self._mode is Mode.EMERGENCY:
            return Light.EMERGENCY
        if self._mode in (Mode.LOCKDOWN, Mode.CLOSED):
            return Light.LOCKED
        return Light.IDLE_OFFLINE if self._offline else Light.IDLE

    def _note_service(self, v: Verdict) -> None:
        if not self._checker.has_lookup:
            return  # no status service at all: nothing to be offline from
        if v.via is Via.ONLINE:
            self._set_offline(False)
        elif v.reason in (Reason.BACKEND_UNAVAILABLE, Reason.CLOCK_UNTRUSTED) or (
            v.via is Via.PASS and self._checker.has_lookup
        ):
            self._set_offline(True)

    def _set_offline(self, offline: bool) -> None:
        if offline != self._offline:
            self._offline = offline
            # The journal line is the status client's (kiosk/status/breaker.py): it knows.
            if self._admission is None and not self._timers.pending("light"):
                self._quietly(self._indicator.show, self._idle_light())

    def _on_device(self, status: DeviceStatus) -> None:
        self._device_changed(status.device, status.ok, status.detail)

    def _device_changed(self, device: str, ok: bool, detail: str) -> None:
        if self.devices.get(device) == ok:
            return  # no change: one line per loss, one per return
        self.devices[device] = ok
        self._journal.device(device, ok, detail)

    # -- records ----------------------------------------------------------------------

    def _state_changed(self) -> None:
        """mqtt.md: the retained state is republished on every change (mode, occupancy)."""
        if self._on_state is not None:
            self._quietly(self._on_state, self.state())

    def _record(self, type_: str, **fields: Any) -> None:
        try:
            event = self._record_fn(type_, **fields)
        except Exception as exc:
            # The gate has acted already; a failing store must not undo or stop that.
            ok, _ = self._throttle.allow(f"record:{type(exc).__name__}")
            if ok:
                log.critical("event store failed, %s not recorded: %s", type_, exc)
            return
        if self._on_event is not None:
            self._on_event(event)
