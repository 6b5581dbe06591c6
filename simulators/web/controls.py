"""The simulated world's controls, as the console drives them (POST /api/sim/world).

Every action acts at the world's boundary, as the scenario director does: a code shown to
the simulated camera or typed into the simulated scanner, a camera or scanner unplugged, the
status service's faults, the fire panel's contact, a person jumping the turnstile or walking
out. The kiosk learns of them as it would at a real entrance; nothing here reaches into it.

`WorldControls.act` takes the request's JSON object and returns a short JSON answer, or
raises `ControlError` with a sentence saying what is wrong (the route answers 400 with it).
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
from simulators.cli import mask_subject
from simulators.issuer import PassIssuer
from simulators.population import STATUSES, Person

log = logging.getLogger(__name__)

KINDS = ("pass", "bare_iin", "passport_pass")
SOURCES = ("camera", "scanner")
ACTIONS = ("present", "camera", "scanner", "service", "fire_alarm", "forced_passage", "exit")
SHOW_S = 4.0  # how long a phone is held up to the camera
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
    """Applies console actions to a running `simulators.world.World`."""

    def __init__(
        self,
        world: Any,
        *,
        watch: Decisions,
        clock: Clock | None = None,
        issuer: PassIssuer | None = None,
        seed: int = 0,
    ) -> None:
        self.world = world
        self.watch = watch
        self.clock = clock or SystemClock()
        self.issuer = issuer or PassIssuer.load()
        self._rng = random.Random(seed)
        self._lock = threading.Lock()  # one presentation at a time, like one person at a time

    def act(self, body: Mapping[str, Any], *, by: str = "console") -> dict[str, Any]:
        """Do what ``body`` says; the answer's ``said`` is a plain line (holder masked)."""
        action = body.get("action")
        if action not in ACTIONS:
            raise ControlError(f"action must be one of {', '.join(ACTIONS)}, got {action!r}")
        try:
            said = getattr(self, f"_{action}")(body)
        except ControlError:
            raise
        except (ValueError, KioskError) as exc:  # a part this world lacks; a scanner unplugged
            raise ControlError(str(exc)) from exc
        log.info("sim world: %s (by %s)", said, by)
        return {"ok": True, "action": action, "said": said}

    # -- people -------------------------------------------------------------------------

    def _present(self, body: Mapping[str, Any]) -> str:
        kind = _choice(body, "kind", KINDS, "pass")
        status = _choice(body, "status", STATUSES, "green")
        source = _choice(body, "source", SOURCES, "camera")
        walk = body.get("walk", True)
        if not isinstance(walk, bool):
            raise ControlError("walk must be true or false")
        person = self._person(kind, status)
        if kind == "bare_iin":
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
        threading.Thread(target=self._after, args=(since,), name="sim-person", daemon=True).start()
        what = {"pass": "pass", "bare_iin": "bare IIN", "passport_pass": "passport pass"}[kind]
        to = "the camera" if source == "camera" else "the scanner"
        return f"{status} {what} of {mask_subject(person.sub)} shown to {to}"

    def _person(self, kind: str, status: str) -> Person:
        people: list[Person] = self.world.population.with_status(status)
        if kind == "passport_pass":
            people = [p for p in people if p.sub.startswith("passport:")]
        elif kind == "bare_iin":
            people = [p for p in people if p.iin is not None]
        if not people:
            raise ControlError(f"nobody in the test population fits: {kind}, {status}")
        return self._rng.choice(people)

    def _after(self, since: int) -> None:
        # As the director does: once the light has answered the phone comes down, and a
        # person who was not let in turns round (so the next one is not taken for them).
        decided = self.watch.wait(since, lambda e: e["type"] == "decision", DECISION_WAIT_S)
        with contextlib.suppress(Exception):  # the world may be closing under us
            self.world.camera.clear()
            if decided is None or decided["decision"] != "admit":
                self.world.turnstile.forget_people()

    def _forced_passage(self, body: Mapping[str, Any]) -> str:
        self.world.turnstile.force_passage()
        return "someone jumped the turnstile"

    def _exit(self, body: Mapping[str, Any]) -> str:
        self.world.turnstile.exit_passage()
        return "someone walked out through the exit"

    # -- devices, services, the building ---------------------------------------------------

    def _camera(self, body: Mapping[str, Any]) -> str:
        if _choice(body, "state", ("unplug", "replug"), None) == "unplug":
            self.world.camera.vanish()
            return "camera unplugged"
        self.world.camera.reappear()
        return "camera plugged back in"

    def _scanner(self, body: Mapping[str, Any]) -> str:
        if _choice(body, "state", ("unplug", "replug"), None) == "unplug":
            self.world.scanner.unplug()
            return "scanner unplugged"
        self.world.scanner.replug()
        return "scanner plugged back in"

    def _service(self, body: Mapping[str, Any]) -> str:
        state = _choice(body, "state", ("up", "down", "slow"), None)
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
        state = _choice(body, "state", ("open", "closed"), None)
        self.world.turnstile.fire_alarm(state == "open")
        return "fire alarm contact open (alarm)" if state == "open" else "fire alarm contact closed"


def _choice(
    body: Mapping[str, Any], key: str, choices: tuple[str, ...], default: str | None
) -> str:
    value = body.get(key, default)
    if value not in choices:
        raise ControlError(f"{key} must be one of {', '.join(choices)}, got {value!r}")
    assert isinstance(value, str)
    return value
