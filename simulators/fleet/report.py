"""What a fleet run measured (:class:`FleetReport`), and the percentile its figures use."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class FleetReport:
    """What a fleet run measured. CPU figures are percent of one core over the measurement
    window (``None``: not a process this run started); latencies are milliseconds.

    Lookup percentiles cover every lookup attempted, a timed-out one counting as its deadline,
    so that a saturated responder cannot hide behind the answered ones.
    """

    kiosks: int
    kiosks_connected: int
    duration_s: float
    rate_per_kiosk: float
    store_sync: str
    processes: int
    workers: int
    startup_s: float
    decisions_attempted: int
    lookups_answered: int
    lookups_timed_out: int
    lookups_failed: int
    lookups_per_s: float
    lookup_p50_ms: float
    lookup_p95_ms: float
    lookup_p99_ms: float
    record_p50_ms: float
    record_p99_ms: float
    driver_lag_p99_ms: float
    events_recorded: int
    events_received: int
    events_per_s: float
    backlog_at_end: int
    drain_s: float
    lost: int
    duplicated: int
    seq_gaps: int
    process_cpu_pct: float
    busiest_worker_cpu_pct: float
    broker_cpu_pct: float | None
    responder_cpu_pct: float | None
    rss_mb: float
    broker_rss_mb: float | None
    threads_peak: int
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    def format(self) -> str:
        """A readable multi-line report."""

        def cpu(value: float | None) -> str:
            return "n/a (not started here)" if value is None else f"{value:.0f} %"

        sync = self.store_sync + (
            "" if self.store_sync == "full" else " (NOT the production setting)"
        )
        lines = [
            f"fleet: {self.kiosks} kiosks ({self.kiosks_connected} connected in "
            f"{self.startup_s:.1f} s), {self.duration_s:g} s at {self.rate_per_kiosk:g} "
            f"decisions/s per kiosk, store sync {sync}; {self.processes} kiosk processes with "
            f"{self.workers} driver threads each",
            f"  decisions attempted  {self.decisions_attempted}",
            f"  lookups              {self.lookups_answered} answered, {self.lookups_timed_out} "
            f"timed out, {self.lookups_failed} failed; {self.lookups_per_s:.1f} answered/s",
            f"  lookup latency       p50 {self.lookup_p50_ms:.1f} ms, p95 {self.lookup_p95_ms:.1f}"
            f" ms, p99 {self.lookup_p99_ms:.1f} ms",
            f"  event record         p50 {self.record_p50_ms:.2f} ms, p99 "
            f"{self.record_p99_ms:.2f} ms (durable commit)",
            f"  driver lag p99       {self.driver_lag_p99_ms:.1f} ms (decision start after its "
            "arrival)",
            f"  events               {self.events_recorded} recorded, {self.events_received} "
            f"received, {self.events_per_s:.1f}/s delivered in the window, "
            f"{self.backlog_at_end} undelivered at the end of the window, drained in "
            f"{self.drain_s:.1f} s",
            f"  lost {self.lost}, duplicated {self.duplicated}, seq gaps {self.seq_gaps}",
            f"  CPU                  fleet {cpu(self.process_cpu_pct)} (busiest kiosk process "
            f"{cpu(self.busiest_worker_cpu_pct)}), broker {cpu(self.broker_cpu_pct)}, responder "
            f"{cpu(self.responder_cpu_pct)} (100 % = one core; {os.cpu_count()} cores)",
            f"  memory               fleet RSS {self.rss_mb:.0f} MB (all processes)"
            + ("" if self.broker_rss_mb is None else f", broker RSS {self.broker_rss_mb:.0f} MB")
            + f"; peak threads {self.threads_peak} (all fleet processes)",
        ]
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank q-quantile (0..1) of sorted values; 0 for none."""
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(q * len(sorted_values)) - 1))
    return sorted_values[index]
