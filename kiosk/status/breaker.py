"""Knowing that the status service is down, so nobody waits at the turnstile for it.

Without this, every person presented while the service is down waits the whole lookup
deadline (800 ms by default) before the offline rule decides: a queue at an airport. After
a lookup fails for want of the service (refused, timeout, 5xx, 429), the breaker opens and
lookups end at once with no answer (the offline rule decides, reason ``backend_unavailable``)
until a probe finds the service answering again.

Two ways to probe, chosen by the transport:

- a ``probe`` callable (HTTP: a request that carries no subject), run by one background
  thread that the breaker owns, every ``PROBE_FIRST_S`` backing off to ``PROBE_MAX_S``;
  the first success closes the breaker;
- no probe (MQTT: the API has no request without a subject): once per probe interval one
  real lookup is let through as a trial; its answer closes the breaker.

The breaker writes the journal's two lines about the service: "unreachable ...; deciding
offline" when it opens and "reachable again" when it closes, one each per change.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from kiosk.throttle import LogThrottle

log = logging.getLogger(__name__)

PROBE_FIRST_S = 1.0  # the first probe after a failure: a service back within a second is online
PROBE_MAX_S = 5.0  # the probe interval doubles up to this: cheap for a service that is down
# A flapping service must not flood the journal: at most one line per direction per interval.
CHANGE_LOG_S = 30.0


class Breaker:
    """Whether to ask the status service now; thread-safe.

    ``now`` is the monotonic clock (injectable, so tests drive it). With ``background``
    False the probe never runs by itself: tests call :meth:`tick`.
    """

    def __init__(
        self,
        *,
        probe: Callable[[], bool] | None = None,
        now: Callable[[], float] = time.monotonic,
        background: bool = True,
        first_s: float = PROBE_FIRST_S,
        max_s: float = PROBE_MAX_S,
    ) -> None:
        self._probe = probe
        self._now = now
        self._background = background and probe is not None
        self._first_s = first_s
        self._max_s = max_s
        self._lock = threading.Lock()
        self._open = False
        self._next_try = 0.0  # monotonic time of the next probe or trial lookup
        self._interval = first_s
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None
        self._throttle = LogThrottle(CHANGE_LOG_S, now=now)

    @property
    def online(self) -> bool:
        """Whether lookups go to the service (the breaker is closed)."""
        return not self._open

    def allow(self) -> bool:
        """Whether this lookup may ask the service (False: answer "no answer" at once).

        Without a probe, one lookup per probe interval is let through as the trial.
        """
        with self._lock:
            if not self._open:
                return True
            if self._probe is None and self._now() >= self._next_try:
                self._interval = min(self._interval * 2, self._max_s)
                self._next_try = self._now() + self._interval
                return True
            return False

    def failed(self, cause: str, *, not_before_s: float = 0.0) -> None:
        """A lookup got no answer for want of the service; ``cause`` names why (no subject).

        ``not_before_s``: the service asked not to be asked again for this long (Retry-After).
        """
        with self._lock:
            was_open = self._open
            self._open = True
            now = self._now()
            if not was_open:
                self._interval = self._first_s
                self._next_try = now + self._first_s
            self._next_try = max(self._next_try, now + not_before_s)
            if self._background and self._thread is None and not self._closed.is_set():
                self._thread = threading.Thread(target=self._run, name="status-probe", daemon=True)
                self._thread.start()
        if not was_open:
            self._say("down", "status service unreachable (%s); deciding offline", cause)
        self._wake.set()

    def succeeded(self) -> None:
        """The service answered (an answer, an unknown subject, even a refusal)."""
        with self._lock:
            was_open = self._open
            self._open = False
            self._interval = self._first_s
        if was_open:
            self._say("up", "status service reachable again")
            self._wake.set()

    def due_in(self) -> float | None:
        """Seconds until the next probe or trial (0 when due), None while online."""
        with self._lock:
            return max(0.0, self._next_try - self._now()) if self._open else None

    def tick(self) -> bool:
        """Probe if one is due (what the background thread does); True when online after it."""
        due = self.due_in()
        if due is None:
            return True
        if due > 0 or self._probe is None:
            return False
        if self._safe_probe():
            self.succeeded()
            return True
        with self._lock:
            self._interval = min(self._interval * 2, self._max_s)
            self._next_try = max(self._next_try, self._now() + self._interval)
        return False

    def close(self) -> None:
        """Stop the probe thread."""
        self._closed.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5.0)

    def _run(self) -> None:
        while not self._closed.is_set():
            with self._lock:
                if not self._open:
                    # Under the lock: a failure from now on starts a new thread.
                    self._thread = None
                    return
            if self.tick():
                continue
            due = self.due_in()
            if due:
                self._wake.wait(min(due, self._max_s))
                self._wake.clear()

    def _safe_probe(self) -> bool:
        assert self._probe is not None
        try:
            return self._probe()
        except Exception as exc:  # noqa: BLE001 - a probe bug must not kill the thread: stay offline, say so
            log.error("status service probe failed: %s", type(exc).__name__)
            return False

    def _say(self, key: str, msg: str, *args: object) -> None:
        ok, held = self._throttle.allow(key)
        if ok:
            suffix = f" (service changed state {held} more times)" if held else ""
            log.warning(msg + suffix, *args)
