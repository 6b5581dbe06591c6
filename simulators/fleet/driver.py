"""The driver: Poisson decision arrivals for a process's kiosks, run on a thread pool."""

from __future__ import annotations

import heapq
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from kiosk.gate.records import DecisionRecord
from kiosk.pseudonym import Pseudonymizer
from kiosk.reasons import Decision, Reason, Source, Via
from kiosk.status.answer import LookupResult, Outcome
from simulators.fleet.sim_kiosk import SimKiosk
from simulators.population import Person

#: Statuses that may enter (gate.md); the others are denied.
_ADMITTED = frozenset({"green", "blue"})
#: The simulated venues' pseudonym key: events carry pseudonyms, never a subject.
_VENUE_SECRET = b"fleet-simulation-venue-secret"


class Driver:
    """Poisson decision arrivals for every kiosk, run on a thread pool.

    One scheduler thread keeps a heap of each kiosk's next arrival and hands due ones to the
    pool. A kiosk's next arrival is scheduled when its decision ends, so a kiosk never runs two
    decisions at once; an arrival that comes while the kiosk is busy starts late, and that
    lateness (the driver lag) is what a queue at the turnstile, or a saturated driver, shows.
    """

    def __init__(
        self,
        kiosks: list[SimKiosk],
        people: list[Person],
        *,
        rate: float,
        deadline_s: float,
        workers: int,
    ) -> None:
        self._kiosks = kiosks
        self._by_index = {k.index: k for k in kiosks}
        self._people = people
        self._rate = rate
        self._deadline_s = deadline_s
        self._pseudonym = Pseudonymizer(_VENUE_SECRET)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fleet-driver")
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int]] = []
        self._running = 0
        self._end = 0.0
        self._stopping = False
        self._thread = threading.Thread(target=self._schedule, name="fleet-scheduler", daemon=True)
        self._stats_lock = threading.Lock()
        self.attempted = 0
        self.outcomes: Counter[str] = Counter()
        self.lookup_s: list[float] = []
        self.record_s: list[float] = []
        self.lag_s: list[float] = []
        self.errors: Counter[str] = Counter()

    def start(self, start: float, end: float) -> None:
        self._end = end
        if self._rate > 0:
            for kiosk in self._kiosks:
                due = start + kiosk.arrivals.expovariate(self._rate)
                heapq.heappush(self._heap, (due, kiosk.index))
        self._thread.start()

    def stop(self, timeout: float) -> None:
        """Stop scheduling and wait for decisions under way (each ends within its deadline)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            deadline = time.monotonic() + timeout
            while self._running and time.monotonic() < deadline:
                self._cond.wait(0.1)
        self._thread.join(timeout)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _schedule(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._stopping:
                        return
                    now = time.monotonic()
                    if self._heap and self._heap[0][0] <= now:
                        due, index = heapq.heappop(self._heap)
                        self._running += 1
                        break
                    wait = self._heap[0][0] - now if self._heap else None
                    self._cond.wait(wait)
            self._pool.submit(self._decide, self._by_index[index], due)

    def _decide(self, kiosk: SimKiosk, due: float) -> None:
        try:
            self._decide_once(kiosk, due)
        except Exception as exc:  # noqa: BLE001 - one failed decision must not stop the kiosk's arrivals
            with self._stats_lock:
                self.errors[type(exc).__name__] += 1
        finally:
            nxt = due + kiosk.arrivals.expovariate(self._rate)
            with self._cond:
                self._running -= 1
                if nxt < self._end and not self._stopping:
                    heapq.heappush(self._heap, (nxt, kiosk.index))
                self._cond.notify_all()

    def _decide_once(self, kiosk: SimKiosk, due: float) -> None:
        started = time.monotonic()
        person = kiosk.choices.choice(self._people)
        t0 = time.perf_counter()
        result = kiosk.status.lookup(person.sub, deadline_s=self._deadline_s)
        lookup_s = time.perf_counter() - t0
        decision, reason, via = _decide_on(result)
        t1 = time.perf_counter()
        rec = DecisionRecord(
            decision.value,
            reason.value,
            result.st,
            via.value,
            Source.SCANNER.value,
            self._pseudonym(person.sub),
            round(lookup_s * 1000),
        )
        event = kiosk.store.record(rec.type, **rec.fields())
        record_s = time.perf_counter() - t1
        kiosk.recorded.append((event["seq"], event["event_id"]))
        kiosk.outbox.wake()
        if result.outcome is Outcome.NO_ANSWER:
            kind = "timed_out" if result.detail == "deadline passed" else "failed"
        else:
            kind = "answered"
        with self._stats_lock:
            self.attempted += 1
            self.outcomes[kind] += 1
            self.lookup_s.append(lookup_s)
            self.record_s.append(record_s)
            self.lag_s.append(started - due)


def _decide_on(result: LookupResult) -> tuple[Decision, Reason, Via]:
    """The gate's rule, reduced to what a lookup can give (no pass, no cache, locked offline)."""
    if result.outcome is Outcome.ANSWER:
        if result.st in _ADMITTED:
            return Decision.ADMIT, Reason.ADMITTED, Via.ONLINE
        return Decision.DENY, Reason.STATUS_NOT_ALLOWED, Via.ONLINE
    if result.outcome is Outcome.UNKNOWN:
        return Decision.DENY, Reason.UNKNOWN_SUBJECT, Via.ONLINE
    return Decision.DENY, Reason.BACKEND_UNAVAILABLE, Via.NONE
