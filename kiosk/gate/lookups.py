"""Codes waiting their turn and the status lookups under way (gate.md, one admission, one
passage; status-api.md, deadlines).

A lookup is the one slow step: it runs on ``executor`` (a one-thread pool by default; tests
pass an inline one) and comes back to the controller as a ``LookupDone`` input, so a fire
alarm is never stuck behind a slow server. The controller keeps its own deadline beyond the
transport's, for a transport that has none (a DNS lookup hanging).

Only the controller's loop calls this, except ``work``, which runs on the executor.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Any

from kiosk.checker import Checker, Pending
from kiosk.decision import Verdict
from kiosk.gate.inputs import CodeRead, Emit, LookupDone
from kiosk.logs import log_bug
from kiosk.reasons import Reason, Via
from kiosk.status.answer import LookupResult
from kiosk.timers import Timers

log = logging.getLogger(__name__)

MAX_WAITING_CODES = 32
TIMER_PREFIX = "lookup:"


def offline_after(v: Verdict) -> bool | None:
    """Whether a decision shows the status service offline (True), online (False), or says
    nothing of it (None). A pass decided on its own means the service did not answer."""
    if v.via is Via.ONLINE:
        return False
    if v.reason in (Reason.BACKEND_UNAVAILABLE, Reason.CLOCK_UNTRUSTED) or v.via is Via.PASS:
        return True
    return None


class InlineExecutor(Executor):
    """Runs the work at once on the caller's thread (tests driving the controller by hand)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - handed back in the future, as a pool would
            future.set_exception(exc)
        return future


class Lookups:
    """The waiting codes and the pending lookups, by ticket."""

    def __init__(
        self,
        *,
        checker: Checker,
        timers: Timers,
        emit: Emit,
        timeout_s: float,
        executor: Executor | None = None,
    ) -> None:
        self._checker = checker
        self._timers = timers
        self._emit = emit
        self.timeout_s = timeout_s
        self._executor = executor or ThreadPoolExecutor(max_workers=1, thread_name_prefix="lookup")
        self._pending: dict[int, tuple[Pending, CodeRead]] = {}
        self._waiting: deque[CodeRead] = deque()
        self._tickets = 0

    @property
    def checking(self) -> bool:
        """Whether a lookup is under way for someone at the gate."""
        return bool(self._pending)

    def wait(self, code: CodeRead) -> None:
        """Keep a code until the gate is free; the oldest goes when too many wait."""
        if len(self._waiting) >= MAX_WAITING_CODES:
            self._waiting.popleft()
            log.warning("too many codes waiting; the oldest is dropped (shown again, it counts)")
        self._waiting.append(code)

    def next_waiting(self) -> CodeRead | None:
        """The oldest waiting code, or None."""
        return self._waiting.popleft() if self._waiting else None

    def start(self, started: Pending, code: CodeRead, now: float) -> None:
        """Ask the status for ``started`` (monotonic ``now``); the answer comes as an input."""
        self._tickets += 1
        ticket = self._tickets
        self._pending[ticket] = (started, code)
        # The deadline first: an inline executor answers before submit returns.
        self._timers.set(f"{TIMER_PREFIX}{ticket}", now + self.timeout_s, ticket)
        self._executor.submit(self._work, ticket, started)

    def _work(self, ticket: int, started: Pending) -> None:
        try:
            result = self._checker.lookup(started)
        except Exception as exc:  # noqa: BLE001 - a transport bug must still end in an answer
            log_bug(log, "status lookup", exc)
            result = LookupResult.no_answer(type(exc).__name__)
        self._emit(LookupDone(ticket, result))

    def finish(self, ticket: int) -> tuple[Pending, CodeRead] | None:
        """The lookup ``ticket`` ended: what it was for, or None when already decided."""
        entry = self._pending.pop(ticket, None)
        if entry is not None:
            self._timers.cancel(f"{TIMER_PREFIX}{ticket}")
        return entry

    def overran(self, ticket: object) -> bool:
        """Whether the deadline timer carrying ``ticket`` is for a lookup still pending."""
        return ticket in self._pending

    def shutdown(self) -> None:
        """Stop the workers (a hanging lookup is left to die with the process)."""
        self._executor.shutdown(wait=False, cancel_futures=True)
