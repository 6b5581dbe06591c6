"""The simulated world as the console drives it (POST /api/sim/world, GET /api/sim/camera.png).

Every action acts at the world's boundary, as the scenario director does: a code shown to
the simulated camera or typed into the simulated scanner, a camera or scanner unplugged, the
status service's faults, the fire panel's contact, a person jumping the turnstile or walking
out. The kiosk learns of them as it would at a real entrance; nothing here reaches into it.

`WorldControls` is the console's ``SimWorld`` (kiosk/web/sim_controls.py): the console owns
the routes and their checks (session, CSRF, operator role) and hands each checked action to
``act``, which answers (ok, error) with a sentence saying what is wrong; ``camera_png`` is
the camera's view (simulators/web/camera_view.py). The actions (the console's shapes):

- ``{"action": "present", "kind": "pass|iin|passport", "status": "green|blue|yellow|red"}``,
  and ``"source": "camera|scanner"`` (default camera): a code shown or scanned;
- ``{"action": "camera" | "scanner", "plugged": bool}``;
- ``{"action": "status_service", "mode": "up|down|slow"}`` (slow: ``latency_ms``, 2000);
- ``{"action": "fire_alarm", "open": bool}`` (the panel's contact opens on alarm);
- ``{"action": "forced_passage"}``, ``{"action": "leave"}`` (someone walks out).
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
from collections.abc import Mapping
from typing import Any, Protocol

from kiosk.clock import Clock, SystemClock
from kiosk.errors import KioskError
from simulators.issuer import PassIssuer
from simulators.population import STATUSES, Person
from simulators.web.camera_view import FrameTap, render_png
from simulators.world import World

log = logging.getLogger(__name__)

KINDS = ("pass", "iin", "passport")
SOURCES = ("camera", "scanner")
ACTIONS = (
    "present",
    "camera",
    "scanner",
    "status_service",
    "fire_alarm",
    "forced_passage",
    "leave",
)
SHOW_S = 4.0  # the longest a phone is held up to the camera
LOWER_AFTER_S = 1.5  # a person lowers the phone this long after the light answered
WALK_AFTER_S = 1.0  # an admitted person walks through this long after the turnstile frees
DECISION_WAIT_S = 15.0
DEFAULT_SLOW_MS = 2000
MAX_SLOW_MS = 60_000


class ControlError(KioskError):
    """A world action that cannot be done as asked (the message says why)."""


class Decisions(Protocol):
    """The kiosk's recorded events as they come (simulators.director.Watch)."""

    def mark(self) -> int: ...
    def wait(self, since: int, pred: Any, timeout: float) -> dict[str, Any] | None: ...


class WorldControls:
    """Applies console actions to a running `simulators.world.World`; ``tap`` is the
    camera's frame tap (None: no camera view)."""

    def __init__(
        self,
        world: World,
        *,
        watch: Decisions,
        tap: FrameTap | None = None,
        clock: Clock | None = None,
        issuer: PassIssuer | None = None,
        seed: int = 0,
    ) -> None:
        self.world = world
        self.watch = watch
        self.tap = tap
        self.clock = clock or SystemClock()
        self.issuer = issuer or PassIssuer.load()
        self._rng = random.Random(seed)
        self._lock = threading.Lock()  # one presentation at a time, like one person at a time
        self._shown = 0  # presentations so far: a person lowers only their own phone
        self._lowered = threading.Event()  # set on close: people waiting to lower go

    def act(self, action: Mapping[str, Any]) -> tuple[bool, str | None]:
        """Do one action; (True, None) once done, (False, why) when it cannot be done."""
        try:
            said = self.do(action)
        except ControlError as exc:
            return False, str(exc)
        log.info("sim world: %s", said)
        return True, None

    def do(self, body: Mapping[str, Any]) -> str:
        """Do what ``body`` says and say what happened in a plain line (nobody named);
        `ControlError` saying why when it cannot be done."""
        action = body.get("action")
        if action not in ACTIONS:
            raise ControlError(f"action must be one of {', '.join(ACTIONS)}, got {action!r}")
        try:
            said: str = getattr(self, f"_{action}")(body)
        except ControlError:
            raise
        except (ValueError, KioskError) as exc:  # a part this world lacks; a scanner unplugged
            raise ControlError(str(exc)) from exc
        return said

    def camera_png(self) -> bytes | None:
        """The camera's view as PNG: the last frame the capture driver read, the code found
        in it outlined; None before the first frame (or without a tap)."""
        if self.tap is None:
            return None
        frame, age = self.tap.last()
        if frame is None:
            return None
        return render_png(frame, age_s=age)[0]

    # -- people -------------------------------------------------------------------------

    def _present(self, body: Mapping[str, Any]) -> str:
        kind = _choice(body, "kind", KINDS, "pass")
        status = _choice(body, "status", STATUSES, "green")
        source = _choice(body, "source", SOURCES, "camera")
        walk = _flag(body, "walk", True)
        person = self._person(kind, status)
        if kind == "iin":
            assert person.iin is not None
            text = person.iin
        else:
            text = self.issuer.mint(person.sub, status, iat=int(self.clock.time()))
        with self._lock:
            turnstile = self.world.turnstile
            turnstile.forget_people()
            if walk:
                turnstile.expect_walk(WALK_AFTER_S)
            else:
                turnstile.expect_walk_away()
            since = self.watch.mark()
            if source == "scanner":
                self.world.scanner.scan(text)
            else:
                self.world.camera.show(text, SHOW_S)
            self._shown += 1
            shown = self._shown
        person_thread = threading.Thread(
            target=self._after, args=(since, shown), name="sim-person", daemon=True
        )
        person_thread.start()
        what = {"pass": "pass", "iin": "bare IIN", "passport": "passport pass"}[kind]
        to = "the camera" if source == "camera" else "the scanner"
        # Who it was stays out of the journal: a test person's number is still a number.
        return f"{status} {what} shown to {to}"

    def _person(self, kind: str, status: str) -> Person:
        people: list[Person] = self.world.population.with_status(status)
        if kind == "passport":
            people = [p for p in people if p.sub.startswith("passport:")]
        elif kind == "iin":
            people = [p for p in people if p.iin is not None]
        if not people:
            raise ControlError(f"nobody in the test population fits: {kind}, {status}")
        return self._rng.choice(people)

    def _after(self, since: int, shown: int) -> None:
        # As the director does: a person who was not let in turns round (so the next one is
        # not taken for them), and once the light has answered the phone comes down, a
        # moment later (the console's camera view shows the code found meanwhile; the
        # kiosk's debounce keeps it from being decided twice).
        decided = self.watch.wait(since, lambda e: e["type"] == "decision", DECISION_WAIT_S)
        with contextlib.suppress(Exception):  # the world may be closing under us
            if decided is None or decided["decision"] != "admit":
                self.world.turnstile.forget_people()
        self._lowered.wait(LOWER_AFTER_S)
        with self._lock, contextlib.suppress(Exception):
            if self._shown == shown:  # nobody else stepped up meanwhile
                self.world.camera.clear()

    def close(self) -> None:
        """The people waiting to lower their phones go at once (the run is ending)."""
        self._lowered.set()

    def _forced_passage(self, body: Mapping[str, Any]) -> str:
        self.world.turnstile.force_passage()
        return "someone jumped the turnstile"

    def _leave(self, body: Mapping[str, Any]) -> str:
        self.world.turnstile.exit_passage()
        return "someone walked out through the exit"

    # -- devices, services, the building ---------------------------------------------------

    def _camera(self, body: Mapping[str, Any]) -> str:
        if not _flag(body, "plugged"):
            self.world.camera.vanish()
            return "camera unplugged"
        self.world.camera.reappear()
        return "camera plugged back in"

    def _scanner(self, body: Mapping[str, Any]) -> str:
        if not _flag(body, "plugged"):
            self.world.scanner.unplug()
            return "scanner unplugged"
        self.world.scanner.replug()
        return "scanner plugged back in"

    def _status_service(self, body: Mapping[str, Any]) -> str:
        state = _choice(body, "mode", ("up", "down", "slow"), None)
        faults = self.world.service.faults
        if state == "slow":
            latency = body.get("latency_ms", DEFAULT_SLOW_MS)
            if isinstance(latency, bool) or not isinstance(latency, int) or latency < 0:
                raise ControlError("latency_ms must be a whole number of milliseconds")
            if latency > MAX_SLOW_MS:
                raise ControlError(f"latency_ms must be at most {MAX_SLOW_MS}")
            faults.reset()
            faults.set(latency_ms=latency)
            return f"status service slow ({latency} ms)"
        faults.reset()
        if state == "down":
            faults.set(down=True)
            return "status service down"
        return "status service up"

    def _fire_alarm(self, body: Mapping[str, Any]) -> str:
        is_open = _flag(body, "open")
        self.world.turnstile.fire_alarm(is_open)
        return "fire alarm contact open (alarm)" if is_open else "fire alarm contact closed"


def _choice(
    body: Mapping[str, Any], key: str, choices: tuple[str, ...], default: str | None
) -> str:
    value = body.get(key, default)
    if value not in choices:
        raise ControlError(f"{key} must be one of {', '.join(choices)}, got {value!r}")
    assert isinstance(value, str)
    return value


def _flag(body: Mapping[str, Any], key: str, default: bool | None = None) -> bool:
    value = body.get(key, default)
    if not isinstance(value, bool):
        raise ControlError(f"{key} must be true or false, got {value!r}")
    return value
