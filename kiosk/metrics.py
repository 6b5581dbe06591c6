"""The kiosk's Prometheus metrics (display.md, Metrics): names, kinds and labels fixed there.

Fed as an observer of the gate (kiosk/gate/view.py): each recorded event counts (decisions,
passages, forced passages, passage timeouts), and the newest snapshot gives the gauges
(occupancy, capacity, mode, devices, backlog), read at scrape time. The registry is the
kiosk's own, not prometheus_client's global one, so nothing else in the process adds to it.

No label ever carries a subject, a code or a pseudonym: every label value is checked against
the small set of values it may have (a decision, a reason, a device) and anything else
counts as ``other``. A bug elsewhere that put a subject into ``reason`` thus cannot put it
into the fleet's monitoring.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    write_to_textfile,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from kiosk.gate.view import GateSnapshot
from kiosk.logs import log_bug
from kiosk.reasons import Decision, Mode, Reason, Source, Via

log = logging.getLogger(__name__)

# The "_created" series prometheus_client adds to every counter and histogram are names
# display.md does not list; a kiosk has one process, so the library-wide switch is ours.
disable_created_metrics()  # type: ignore[no-untyped-call]  # (unannotated upstream)

DEVICES = ("camera", "scanner", "status", "broker", "clock", "relay")
DIRECTIONS = ("entry", "exit")
MODES = tuple(m.value for m in Mode)
OTHER = "other"
_DECISIONS = frozenset(d.value for d in Decision)
_REASONS = frozenset(r.value for r in Reason)
_VIAS = frozenset(v.value for v in Via)
_SOURCES = frozenset(s.value for s in Source)
_WORD = re.compile(r"[a-z][a-z0-9_]{0,31}")
#: Seconds: a decision is quick (a pass decides on its own in milliseconds), a lookup is
#: bounded by [status] deadline_ms (800 ms by default, at most 10 s).
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.8, 1.0, 2.0, 5.0, 10.0)

CameraStats = Callable[[], tuple[int, int]]
"""Returns the camera's totals since start: (frames read, codes decoded)."""


def _known(value: Any, allowed: frozenset[str]) -> str:
    return value if isinstance(value, str) and value in allowed else OTHER


def _word(value: Any) -> str:
    """A free label (a backend, an outcome) reduced to a short lower-case word."""
    return value if isinstance(value, str) and _WORD.fullmatch(value) else OTHER


class Metrics:
    """The kiosk's metrics; subscribe it to the GateView (``view.subscribe(metrics)``)."""

    def __init__(self, *, version: str, camera_stats: CameraStats | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.decisions = Counter(
            "ashyq_decisions",
            "Decisions made, by decision, reason, how (via) and code source.",
            ["decision", "reason", "via", "source"],
            registry=r,
        )
        self.decision_latency = Histogram(
            "ashyq_decision_latency_seconds",
            "Time from reading a code to the decision.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.lookup_seconds = Histogram(
            "ashyq_status_lookup_seconds",
            "Status lookups, by backend and outcome.",
            ["backend", "outcome"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.passages = Counter(
            "ashyq_passages", "Passages through the turnstile.", ["direction"], registry=r
        )
        self.forced = Counter("ashyq_forced_passages", "Passages without an admission.", registry=r)
        self.timeouts = Counter(
            "ashyq_passage_timeouts", "Admissions that ended without a passage.", registry=r
        )
        build = Gauge("ashyq_build_info", "The kiosk's version.", ["version"], registry=r)
        build.labels(version=_version_label(version)).set(1)
        self._lock = threading.Lock()
        self._snapshot: GateSnapshot | None = None
        self._camera_stats = camera_stats
        r.register(_GateCollector(self))

    # -- fed by the gate (GateObserver) ------------------------------------------------

    def gate_changed(self, snapshot: GateSnapshot) -> None:
        """Keep the newest snapshot; the gauges are read from it at scrape time."""
        with self._lock:
            self._snapshot = snapshot

    def recorded(self, event: Mapping[str, Any]) -> None:
        """Count one recorded event (a decision, a passage, a forced passage, a timeout)."""
        kind = event.get("type")
        if kind == "decision":
            self.decisions.labels(
                decision=_known(event.get("decision"), _DECISIONS),
                reason=_known(event.get("reason"), _REASONS),
                via=_known(event.get("via"), _VIAS),
                source=_known(event.get("source"), _SOURCES),
            ).inc()
            latency = event.get("latency_ms")
            if isinstance(latency, int | float) and not isinstance(latency, bool) and latency >= 0:
                self.decision_latency.observe(latency / 1000.0)
        elif kind == "passage":
            direction = event.get("direction")
            if direction in DIRECTIONS:
                self.passages.labels(direction=direction).inc()
        elif kind == "forced_passage":
            self.forced.inc()
        elif kind == "passage_timeout":
            self.timeouts.inc()

    # -- fed by others -----------------------------------------------------------------

    def lookup_observed(self, backend: str, outcome: str, seconds: float) -> None:
        """One status lookup took ``seconds`` and ended in ``outcome`` (an Outcome value)."""
        self.lookup_seconds.labels(backend=_word(backend), outcome=_word(outcome)).observe(
            max(0.0, seconds)
        )

    def set_camera_stats(self, stats: CameraStats | None) -> None:
        """Where the camera's (frames, decodes) totals come from (read at scrape time)."""
        self._camera_stats = stats

    # -- read --------------------------------------------------------------------------

    def snapshot(self) -> GateSnapshot | None:
        """The newest snapshot seen (None before the first)."""
        with self._lock:
            return self._snapshot

    def camera_totals(self) -> tuple[int, int]:
        """The camera's (frames, decodes) so far; (0, 0) without a camera or on its error."""
        stats = self._camera_stats
        if stats is None:
            return 0, 0
        try:
            frames, decodes = stats()
        except Exception as exc:  # a driver's bug must not break the scrape: say where
            log_bug(log, "camera statistics for the metrics", exc)
            return 0, 0
        return max(0, int(frames)), max(0, int(decodes))

    def exposition(self) -> bytes:
        """The Prometheus text of every metric."""
        return generate_latest(self.registry)

    def write_textfile(self, path: str) -> None:
        """Write the metrics for node_exporter's textfile collector (atomic rename)."""
        write_to_textfile(path, self.registry)


class _GateCollector(Collector):
    """The gauges of the newest snapshot and the camera's counters, built per scrape."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def describe(self) -> Iterable[Metric]:
        return self._families(None, (0, 0))

    def collect(self) -> Iterable[Metric]:
        return self._families(self._metrics.snapshot(), self._metrics.camera_totals())

    @staticmethod
    def _families(snap: GateSnapshot | None, camera: tuple[int, int]) -> list[Metric]:
        occupancy = GaugeMetricFamily("ashyq_occupancy", "People inside (capacity venues).")
        capacity = GaugeMetricFamily("ashyq_capacity", "The venue's capacity (0: no limit).")
        mode = GaugeMetricFamily("ashyq_mode", "1 for the gate's current mode.", labels=["mode"])
        up = GaugeMetricFamily(
            "ashyq_device_up", "1 when the device works, 0 when down.", labels=["device"]
        )
        backlog = GaugeMetricFamily("ashyq_outbox_backlog_events", "Events waiting for the broker.")
        if snap is not None:
            occupancy.add_metric([], snap.occupancy or 0)
            capacity.add_metric([], snap.capacity or 0)
            for name in MODES:
                mode.add_metric([name], 1 if snap.mode == name else 0)
            for device in DEVICES:
                state = snap.health.get(device, "off")
                if state != "off":  # not configured: no series, so no "down" alert either
                    up.add_metric([device], 1 if state == "ok" else 0)
            backlog.add_metric([], snap.backlog)
        frames = CounterMetricFamily("ashyq_camera_frames", "Frames the camera delivered.")
        decodes = CounterMetricFamily("ashyq_camera_decodes", "Codes decoded from frames.")
        frames.add_metric([], camera[0])
        decodes.add_metric([], camera[1])
        return [occupancy, capacity, mode, up, backlog, frames, decodes]


def _version_label(version: str) -> str:
    """The version as a label: printable, short (it comes from the package, not a person)."""
    clean = "".join(c for c in version if c.isprintable())[:64]
    return clean or "unknown"


class TimedLookup:
    """A status lookup that reports its time and outcome to the metrics (display.md's
    ``ashyq_status_lookup_seconds``): wrap the transport where the core is built."""

    def __init__(self, inner: Any, metrics: Metrics, backend: str) -> None:
        self._inner = inner
        self._metrics = metrics
        self._backend = backend

    def lookup(self, subject: str, *, deadline_s: float) -> Any:
        """The inner lookup, timed."""
        start = time.monotonic()
        result = self._inner.lookup(subject, deadline_s=deadline_s)
        outcome = getattr(getattr(result, "outcome", None), "value", OTHER)
        self._metrics.lookup_observed(self._backend, outcome, time.monotonic() - start)
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)  # close(), keys and probes of the transport


class TextfileWriter:
    """Writes the metrics to node_exporter's textfile every ``period_s`` in a thread."""

    def __init__(self, metrics: Metrics, path: str, *, period_s: float) -> None:
        self._metrics = metrics
        self._path = path
        self._period_s = period_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False

    def write_once(self) -> bool:
        """One write; a failure is one journal line (until it works again), never a crash."""
        try:
            self._metrics.write_textfile(self._path)
        except OSError as exc:
            if not self._failing:
                log.error("metrics textfile %s cannot be written: %s", self._path, exc)
            self._failing = True
            return False
        if self._failing:
            log.info("metrics textfile %s written again", self._path)
        self._failing = False
        return True

    def start(self) -> TextfileWriter:
        """Write now, then every period until ``stop``."""
        self._thread = threading.Thread(target=self._run, name="metrics-textfile", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while True:
            self.write_once()
            if self._stop.wait(self._period_s):
                return

    def stop(self) -> None:
        """Stop writing (the last file stays: node_exporter reports its age)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
