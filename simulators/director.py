"""Plays a scenario (or an endless crowd) in the simulated world and watches the records.

The director acts only at the world's boundary (a code shown to the camera, a line on the
scanner's pseudo-terminal, a pin driven on the turnstile, a fault in the status service) and
learns what the kiosk did from its recorded events, like an outside observer would. Each
presentation waits for its decision (and passage) before the next step, so a scenario file
gives the same decisions and reasons on every run.
"""

from __future__ import annotations

import contextlib
import heapq
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from kiosk.clock import Clock, SystemClock
from kiosk.errors import KioskError
from kiosk.gate.inputs import Command, Event
from simulators.crowd import Crowd
from simulators.issuer import PassIssuer
from simulators.scenario import Step
from simulators.world import World

DECISION_WAIT_S = 15.0
RESCAN_S = 2.0


@dataclass
class Outcome:
    """What one presentation ended in."""

    step: Step
    decision: str | None
    reason: str | None
    passed: bool = False


@dataclass
class Watch:
    """The kiosk's recorded events as they come (fed by the daemon's ``on_event``)."""

    events: list[dict[str, Any]] = field(default_factory=list)
    _cond: threading.Condition = field(default_factory=threading.Condition)

    def add(self, event: dict[str, Any]) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def clear(self) -> None:
        """Forget what was seen (long runs keep memory flat)."""
        with self._cond:
            self.events.clear()

    def mark(self) -> int:
        with self._cond:
            return len(self.events)

    def wait(
        self, since: int, pred: Callable[[dict[str, Any]], bool], timeout: float
    ) -> dict[str, Any] | None:
        """The first event after ``since`` that matches, waiting up to ``timeout``."""

        def find() -> dict[str, Any] | None:
            return next((e for e in self.events[since:] if pred(e)), None)

        with self._cond:
            self._cond.wait_for(lambda: find() is not None, timeout)
            return find()


class Director:
    """Runs steps against a world and a running daemon (``emit`` reaches its controller)."""

    def __init__(
        self,
        world: World,
        watch: Watch,
        emit: Callable[[Event], None],
        *,
        unlock_s: float,
        seed: int = 1,
        speed: float = 1.0,
        stop: threading.Event | None = None,
        clock: Clock | None = None,
        stay_s: float | None = None,
    ) -> None:
        self.world = world
        self.clock = clock or SystemClock()
        self.watch = watch
        self.emit = emit
        self.unlock_s = unlock_s
        self.speed = speed
        self.stop = stop or threading.Event()
        self.issuer = PassIssuer.load()
        self.rng = random.Random(seed)
        self.outcomes: list[Outcome] = []
        self.mismatches: list[str] = []
        self.started = time.monotonic()
        # People inside leave after a stay (mean ``stay_s`` of scenario time, exponential):
        # the exit beam breaks for each. None: nobody leaves unless a step says so.
        self.stay_s = stay_s
        self._leaving: list[float] = []  # scenario times at which someone walks out
        self.exits = 0

    def play(self, steps: Iterator[Step] | list[Step]) -> None:
        """Run every step at its time (scaled by speed); stop early when asked."""
        self.started = time.monotonic()
        for n, step in enumerate(steps, 1):
            if not self._wait_until(step.at):
                return
            try:
                outcome = getattr(self, f"_do_{step.action}")(step)
            except (KioskError, ValueError) as exc:
                self.mismatches.append(f"step {n} at {step.at:g} s: cannot {step.action}: {exc}")
                continue
            if step.expect and outcome is not None:
                got = f"{outcome.decision}/{outcome.reason}"
                if got != step.expect:
                    self.mismatches.append(
                        f"step {n} at {step.at:g} s: expected {step.expect}, got {got}"
                    )

    def _now(self) -> float:
        """Scenario time: seconds since ``play`` began, scaled by the speed."""
        return (time.monotonic() - self.started) * self.speed

    def _wait_until(self, at: float) -> bool:
        """Wait for scenario time ``at``, letting people leave meanwhile (also those whose
        time came while the gate was slow); False when stopped."""
        while not self.stop.is_set():
            due = self._leaving[0] if self._leaving else None
            leaving = due is not None and due <= max(at, self._now())
            until = due if leaving and due is not None else at
            wait = self.started + until / self.speed - time.monotonic()
            if wait > 0 and self.stop.wait(wait):
                return False
            if not leaving:
                return True
            heapq.heappop(self._leaving)
            self._do_exit(None)
            self.exits += 1
        return False

    def _entered(self) -> None:
        """Someone walked in: with stays on, they will walk out again."""
        if self.stay_s is not None:
            heapq.heappush(self._leaving, self._now() + self.rng.expovariate(1 / self.stay_s))

    # -- people -----------------------------------------------------------------------

    def _do_present(self, step: Step) -> Outcome:
        a = step.args
        text = self._code(a)
        walk_after = max(0.05, a["walk_after_s"] / self.speed)
        if a["walk"]:
            self.world.turnstile.expect_walk(walk_after)
        else:
            self.world.turnstile.expect_walk_away()
        since = self.watch.mark()
        if a["source"] == "scanner":
            decision = self._scan_until_decided(text, since)
        else:
            self.world.camera.show(text, 30.0, inverted=a["inverted"])
            decision = self.watch.wait(since, lambda e: e["type"] == "decision", DECISION_WAIT_S)
        self.world.camera.clear()  # the light has answered: the phone comes down
        if decision is None:
            outcome = Outcome(step, None, None)
        else:
            outcome = Outcome(step, decision["decision"], decision["reason"])
        if decision is None or decision["decision"] != "admit":
            self.world.turnstile.forget_people()  # denied, they step aside
        else:
            end = self.watch.wait(
                since,
                lambda e: e["type"] in ("passage", "passage_timeout"),
                self.unlock_s + walk_after + DECISION_WAIT_S,
            )
            outcome.passed = bool(end and end["type"] == "passage")
            if outcome.passed:
                self._entered()
        self.outcomes.append(outcome)
        return outcome

    def _scan_until_decided(self, text: str, since: int) -> dict[str, Any] | None:
        # Nothing happens (a scanner just replugged): people scan again, as at a real gate.
        deadline = time.monotonic() + DECISION_WAIT_S
        while time.monotonic() < deadline:
            with contextlib.suppress(KioskError):
                self.world.scanner.scan(text)
            found = self.watch.wait(since, lambda e: e["type"] == "decision", RESCAN_S)
            if found is not None:
                return found
        return None

    def _code(self, a: dict[str, Any]) -> str:
        kind = a["present"]
        if kind == "text":
            text: str = a["text"]
            return text
        if kind == "unknown_iin":
            return "921029350851"
        people = self.world.population
        if a["person"] is not None:
            person = people.by_index(a["person"])
        elif kind == "bare_iin":
            person = self.rng.choice(
                [p for p in people.with_status(a["status"]) if p.sub.startswith("iin:")]
            )
        else:
            person = people.pick(a["status"], self.rng)
        if kind == "bare_iin":
            return person.sub[4:]
        now = int(self.clock.time())
        st = a["pass_status"] or person.st
        if kind == "expired_pass":
            return self.issuer.mint(person.sub, st, iat=now - 3600)
        age = int(a["pass_age_s"])
        # An old pass must still be within its lifetime (at most 600 s) to test its age alone.
        text = self.issuer.mint(
            person.sub, st, iat=now - age, valid_s=min(600, max(300, age + 300))
        )
        if kind == "forged_pass":
            head, claims, sig = text.split(".")
            text = f"{head}.{claims}.{sig[::-1]}"
        return text

    def _do_forced_passage(self, step: Step) -> None:
        since = self.watch.mark()
        self.world.turnstile.force_passage()
        self.watch.wait(since, lambda e: e["type"] in ("forced_passage", "passage"), 5)

    def _do_exit(self, step: Step | None) -> None:
        since = self.watch.mark()
        self.world.turnstile.exit_passage()
        self.watch.wait(since, lambda e: e.get("direction") == "exit", 5)

    # -- the building and the devices ---------------------------------------------------

    def _do_fire_alarm(self, step: Step) -> None:
        since = self.watch.mark()
        self.world.turnstile.fire_alarm(step.args["fire_alarm"])
        self.watch.wait(since, lambda e: e["type"] == "alarm", 5)

    def _do_command(self, step: Step) -> None:
        done = threading.Event()
        self.emit(Command(step.args["command"], origin="scenario", done=lambda ok, err: done.set()))
        done.wait(5)

    def _do_service(self, step: Step) -> None:
        faults = self.world.service.faults
        faults.reset()
        what = step.args["service"]
        if what == "down":
            faults.set(down=True)
        elif what == "slow":
            faults.set(latency_ms=step.args["latency_ms"])
        elif what == "errors":
            faults.set(error_rate=1.0)
        elif what == "garbage":
            faults.set(garbage=True)

    def _do_camera(self, step: Step) -> None:
        if step.args["camera"] == "unplug":
            self.world.camera.vanish()
        else:
            self.world.camera.reappear()

    def _do_scanner(self, step: Step) -> None:
        if step.args["scanner"] == "unplug":
            self.world.scanner.unplug()
        else:
            self.world.scanner.replug()


def crowd_steps(
    world: World, *, seed: int, rate: float, count: int | None, clock: Clock
) -> Iterator[Step]:
    """An endless (or ``count``-long) stream of mixed people, for `kiosk sim` without a scenario."""
    crowd = Crowd(world.population, PassIssuer.load(), seed=seed)
    rng = random.Random(seed)
    n = 0
    while count is None or n < count:
        shown = crowd.next(clock.time())
        yield Step(
            n / rate if rate > 0 else 0.0,
            "present",
            {
                "present": "text",
                "text": shown.text,
                "source": "scanner" if rng.random() < 0.3 else "camera",
                "inverted": rng.random() < 0.15,
                "walk": rng.random() < 0.9,
                "walk_after_s": rng.uniform(0.8, 2.0),
                "person": None,
                "status": None,
                "pass_status": None,
                "pass_age_s": 0,
            },
        )
        n += 1
