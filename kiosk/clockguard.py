"""Whether the wall clock can be trusted for decisions that rest on it alone.

A pass decided offline depends only on the kiosk's clock. A Pi has no battery clock: after a
power cut it may boot with an old time until NTP answers, and an old screenshot would then
look fresh. The guard keeps a high-water mark of the wall clock across restarts and asks the
kernel whether the clock is synchronised; when either fails, offline pass decisions are
referred to staff instead (and the log says why).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from kiosk.clock import Clock

log = logging.getLogger(__name__)

HWM_FILE = "clock.hwm"
_TIME_ERROR = 5  # adjtimex(2): the clock is not synchronised


class _Timex(ctypes.Structure):
    _fields_ = [  # noqa: RUF012 - ctypes wants a class attribute
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time_sec", ctypes.c_long),
        ("time_usec", ctypes.c_long),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        # The kernel reserves eleven ints; more room guards against a larger C library struct.
        ("_reserved", ctypes.c_int * 32),
    ]


TIMESYNCD_RUN = Path("/run/systemd/timesync")


def kernel_clock_synchronised() -> bool | None:
    """Whether the clock is synchronised: True, False, or None when nobody can tell.

    systemd-timesyncd's flag file first: the service's ProtectClock forbids adjtimex(2),
    even to read. Then the kernel's own state (adjtimex with no changes).
    """
    if (TIMESYNCD_RUN / "synchronized").exists():
        return True
    synced, _ = kernel_clock_state()
    if synced is None and TIMESYNCD_RUN.is_dir():
        return False  # not allowed to ask the kernel, and timesyncd has not synchronised
    return synced


def kernel_clock_state() -> tuple[bool | None, float | None]:
    """adjtimex(2) with no changes: (synchronised, maximum error in ms), None where unknown."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        timex = _Timex()
        state = libc.adjtimex(ctypes.byref(timex))
    except (OSError, AttributeError):
        return None, None  # not Linux
    if state < 0:
        return None, None  # forbidden (ProtectClock) or failed
    return state != _TIME_ERROR, timex.maxerror / 1000.0


class ClockGuard:
    """High-water mark of the wall clock (in ``state_dir/clock.hwm``) plus the sync state."""

    def __init__(
        self,
        path: Path | None,
        *,
        clock: Clock,
        leeway_s: float,
        synchronised: Callable[[], bool | None] | None = None,
    ) -> None:
        self._path = path
        self._clock = clock
        self._leeway = leeway_s
        # Looked up at each call, not bound here, so a test can stand in for the kernel.
        self._synchronised = synchronised or (lambda: kernel_clock_synchronised())
        self._hwm = self._load()
        self._last_kind: str | None = None
        # The controller's checker and the housekeeping thread both ask and move the mark.
        self._lock = threading.Lock()

    def _load(self) -> float:
        if self._path is None:
            return 0.0
        try:
            return float(self._path.read_text().strip())
        except (OSError, ValueError):
            return 0.0

    @property
    def high_water_mark(self) -> float:
        """The latest wall time this kiosk has seen (0 when never)."""
        with self._lock:
            return self._hwm

    def problem(self) -> str | None:
        """Why the clock cannot be trusted now (``went back by N s``, ``never
        synchronised``), or None. Each change of trust is one journal line."""
        synchronised = self._synchronised()  # a kernel call: outside the lock
        with self._lock:
            return self._judge(self._clock.time(), synchronised)

    def _judge(self, now: float, synchronised: bool | None) -> str | None:
        if synchronised and now < self._hwm - self._leeway:
            # NTP says this is the time: the mark was saved from a clock running ahead.
            log.warning("the clock is synchronised and behind the saved mark: mark reset")
            self._hwm = now
        problem: str | None
        if self._hwm and now < self._hwm - self._leeway:
            kind, problem = "back", f"went back by {self._hwm - now:.0f} s"
        elif synchronised is False:
            kind, problem = "unsynchronised", "never synchronised"
        else:
            kind, problem = None, None
            self._hwm = max(self._hwm, now)
        # The kind, not the text: "went back by N s" changes with every second that passes.
        if kind != self._last_kind:
            if problem:
                log.warning("clock untrusted: %s; offline pass decisions are referred", problem)
            else:
                log.warning("clock trusted again")
            self._last_kind = kind
        return problem

    def trusted(self) -> bool:
        """Whether offline pass decisions may rest on the clock."""
        return self.problem() is None

    def save(self) -> None:
        """Write the high-water mark (rarely: an SD card wears with every write)."""
        with self._lock:
            hwm = self._hwm
        if self._path is None or not hwm:
            return
        self._path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self._path.parent, prefix=".hwm-")
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(f"{hwm:.3f}\n")
            os.replace(tmp, self._path)
        except OSError as exc:
            log.warning("cannot save the clock high-water mark: %s", exc.strerror)
            Path(tmp).unlink(missing_ok=True)
