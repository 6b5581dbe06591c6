"""Process accounting from /proc: CPU seconds, and peaks of threads and RSS."""

from __future__ import annotations

import os
import threading
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def proc_cpu_s(pid: int | None) -> float | None:
    """User + system CPU seconds of a process from /proc/PID/stat; None if unreadable."""
    if pid is None:
        return None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may contain spaces; the fields after it are fixed.
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _proc_status(pid: int | str, key: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


class Monitor:
    """Samples this process's thread count and RSS once a second (peaks)."""

    def __init__(self) -> None:
        self.threads_peak = 0
        self.rss_kb_peak = 0
        self.broker_rss_kb_peak = 0
        self.broker_pid: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fleet-monitor", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def sample(self) -> None:
        self.threads_peak = max(self.threads_peak, _proc_status("self", "Threads") or 0)
        self.rss_kb_peak = max(self.rss_kb_peak, _proc_status("self", "VmRSS") or 0)
        if self.broker_pid is not None:
            rss = _proc_status(self.broker_pid, "VmRSS") or 0
            self.broker_rss_kb_peak = max(self.broker_rss_kb_peak, rss)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sample()

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            self.sample()


def self_cpu_s() -> float:
    """User + system CPU seconds of this process."""
    t = os.times()
    return t.user + t.system
