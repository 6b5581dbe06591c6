"""The fleet simulation: many lightweight kiosks (no camera, no GPIO, no daemon) on one broker.

Each simulated kiosk runs the kiosk's own MQTT code, which is what is being measured: an
:class:`~kiosk.fleet.link.MqttLink` (one paho client, its network thread, the failover
supervisor), an :class:`~kiosk.status.mqtt.MqttStatusClient` for lookups, an
:class:`~kiosk.store.EventStore` (its own SQLite file, ``synchronous=FULL`` as in production)
and an :class:`~kiosk.fleet.outbox.Outbox`. A driver makes "decisions" at Poisson arrival times
(a seeded RNG per kiosk): look a random test person up with an 800 ms deadline, then record a
decision event. The driver loops run on a small thread pool; a kiosk's decisions are serial,
as at a real turnstile. Kiosks live in worker processes of at most ~150 (paho's select() loop
cannot watch file descriptors above 1023); the orchestrating process holds the observer.

An observer client subscribes to ``{prefix}/kiosk/+/events`` with a persistent session (so a
broker restart loses nothing queued for it) and collects (kiosk, seq, event id): after the run
and a drain period, a recorded event never received is lost, an event id received twice is a
duplicate, a missing seq is a gap.

::

    report = run_fleet(broker_url=broker.url, kiosks=200, duration_s=30, rate_per_kiosk=0.1)
    print(report.format())

``local_stack()`` starts its own mosquitto and a status responder in a separate process, so
that kiosk code, responder and broker show up as three processes with their own CPU time.
Nothing here logs a subject, a payload or a pseudonym.
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import json
import logging
import multiprocessing
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from kiosk.clock import SystemClock
from kiosk.errors import KioskError
from kiosk.fleet.link import MqttLink
from kiosk.fleet.outbox import Outbox
from kiosk.pseudonym import Pseudonymizer
from kiosk.reasons import Decision, Reason, Source, Via
from kiosk.status.answer import LookupResult, Outcome
from kiosk.status.mqtt import MqttStatusClient
from kiosk.store import EventStore
from simulators.broker import Broker
from simulators.mqtt_responder import DEFAULT_PREFIX, new_client, parse_broker_url
from simulators.population import Person, Population, load

log = logging.getLogger(__name__)

DEADLINE_S = 0.8  # status-api.md: the default lookup deadline
STORE_SYNCS = ("full", "normal", "tmpfs")
DEFAULT_WORKERS = 64
DEFAULT_DRAIN_S = 30.0
#: Statuses that may enter (gate.md); the others are denied.
_ADMITTED = frozenset({"green", "blue"})
#: The simulated venues' pseudonym key: events carry pseudonyms, never a subject.
_VENUE_SECRET = b"fleet-simulation-venue-secret"
_OBSERVER_SESSION_S = 600
_TICKS = os.sysconf("SC_CLK_TCK")


class FleetError(KioskError):
    """The fleet cannot run: a bad argument, or the broker or responder is unreachable."""


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


# --- one simulated kiosk ----------------------------------------------------------------


class _SimKiosk:
    """The kiosk's MQTT stack without a camera or a daemon; decisions come from the driver."""

    def __init__(
        self,
        *,
        index: int,
        kiosk_id: str,
        broker_url: str,
        prefix: str,
        folder: Path,
        store_sync: str,
        seed: int,
    ) -> None:
        self.index = index
        self.kiosk_id = kiosk_id
        self.store = EventStore(
            folder / f"{kiosk_id}.db", kiosk_id=kiosk_id, venue_id=f"venue-{index:05d}",
            clock=SystemClock(),
        )  # fmt: skip
        if store_sync == "normal":
            _relax_sync(self.store)
        self.link = MqttLink(
            brokers=[broker_url], client_id=kiosk_id, kiosk_id=kiosk_id, prefix=prefix
        )
        self.status = MqttStatusClient(self.link)
        self.outbox = Outbox(self.store, self.link)
        # Two streams, so that the arrival times do not depend on who was looked up.
        self.arrivals = random.Random(seed * 1_000_003 + 2 * index)
        self.choices = random.Random(seed * 1_000_003 + 2 * index + 1)
        self.recorded: list[tuple[int, str]] = []  # (seq, event_id), acknowledged by the store

    def start(self) -> None:
        self.link.start()
        self.outbox.start()

    def stop(self) -> None:
        self.outbox.stop()
        self.link.stop()
        self.store.close()


def _relax_sync(store: EventStore) -> None:
    """``synchronous=NORMAL`` for a measurement of what FULL costs. The store offers no switch
    (production must not have one), so this reaches into it; never for a real kiosk."""
    with store._lock:
        conn = store._conn
        assert conn is not None
        conn.execute("PRAGMA synchronous=NORMAL")


# --- the observer -------------------------------------------------------------------------


class _Observer:
    """Collects every event the fleet publishes: (kiosk id, seq, event id), by arrival time."""

    def __init__(self, broker_url: str, prefix: str, kiosk_prefix: str) -> None:
        self.topic = f"{prefix}/kiosk/+/events"
        self._kiosk_prefix = kiosk_prefix
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()  # event_id -> receptions
        self.seqs: dict[str, set[int]] = {}
        self.first_seen: dict[str, float] = {}  # event_id -> monotonic time of first reception
        self.undecodable = 0
        self._subscribed = threading.Event()
        address = parse_broker_url(broker_url)
        self._client = new_client(address, f"{kiosk_prefix}observer")
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = lambda *_a: self._subscribed.set()
        self._client.on_message = self._on_message
        self._address = address

    def start(self, timeout: float = 10.0) -> None:
        # A persistent session: events the broker accepted while this client was away (a
        # broker restart, a reconnect racing the kiosks') wait for it instead of vanishing.
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = _OBSERVER_SESSION_S
        self._client.connect_async(
            self._address.host, self._address.port, keepalive=30, clean_start=False,
            properties=props,
        )  # fmt: skip
        self._client.loop_start()
        if not self._subscribed.wait(timeout):
            self._client.loop_stop()
            raise FleetError(f"observer: no subscription on {self._address} within {timeout:g} s")

    def clear_retained(self, topics: list[str]) -> None:
        """Remove retained messages (the kiosks' Wills) the run left on the broker."""
        for topic in topics:
            self._client.publish(topic, b"", qos=1, retain=True)

    def stop(self) -> None:
        """Disconnect and end the session (expiry 0), so the broker keeps nothing for it."""
        props = Properties(PacketTypes.DISCONNECT)
        props.SessionExpiryInterval = 0
        with contextlib.suppress(Exception):
            self._client.disconnect(properties=props)
        self._client.loop_stop()

    def received(self) -> int:
        with self._lock:
            return len(self.counts)

    def has_all(self, event_ids: set[str]) -> bool:
        with self._lock:
            return all(e in self.counts for e in event_ids)

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if not reason.is_failure:
            client.subscribe(self.topic, qos=1)

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        now = time.monotonic()
        try:
            event = json.loads(msg.payload)
            kiosk_id, seq, event_id = event["kiosk_id"], event["seq"], event["event_id"]
        except (ValueError, TypeError, KeyError, UnicodeDecodeError):
            with self._lock:
                self.undecodable += 1
            return
        if not isinstance(kiosk_id, str) or not kiosk_id.startswith(self._kiosk_prefix):
            return  # another fleet or a real kiosk on the same broker
        with self._lock:
            self.counts[event_id] += 1
            self.seqs.setdefault(kiosk_id, set()).add(seq)
            self.first_seen.setdefault(event_id, now)


# --- process accounting -------------------------------------------------------------------


def _proc_cpu_s(pid: int | None) -> float | None:
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


class _Monitor:
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


def _percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank q-quantile (0..1) of sorted values; 0 for none."""
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(q * len(sorted_values)) - 1))
    return sorted_values[index]


# --- the driver ---------------------------------------------------------------------------


class _Driver:
    """Poisson decision arrivals for every kiosk, run on a thread pool.

    One scheduler thread keeps a heap of each kiosk's next arrival and hands due ones to the
    pool. A kiosk's next arrival is scheduled when its decision ends, so a kiosk never runs two
    decisions at once; an arrival that comes while the kiosk is busy starts late, and that
    lateness (the driver lag) is what a queue at the turnstile, or a saturated driver, shows.
    """

    def __init__(
        self,
        kiosks: list[_SimKiosk],
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

    def _decide(self, kiosk: _SimKiosk, due: float) -> None:
        try:
            self._decide_once(kiosk, due)
        except Exception as exc:  # one failed decision must not stop the kiosk's arrivals
            with self._stats_lock:
                self.errors[type(exc).__name__] += 1
        finally:
            nxt = due + kiosk.arrivals.expovariate(self._rate)
            with self._cond:
                self._running -= 1
                if nxt < self._end and not self._stopping:
                    heapq.heappush(self._heap, (nxt, kiosk.index))
                self._cond.notify_all()

    def _decide_once(self, kiosk: _SimKiosk, due: float) -> None:
        started = time.monotonic()
        person = kiosk.choices.choice(self._people)
        t0 = time.perf_counter()
        result = kiosk.status.lookup(person.sub, deadline_s=self._deadline_s)
        lookup_s = time.perf_counter() - t0
        decision, reason, via = _decide_on(result)
        t1 = time.perf_counter()
        event = kiosk.store.record(
            "decision",
            decision=decision.value,
            reason=reason.value,
            st=result.st,
            via=via.value,
            source=Source.SCANNER.value,
            subject=self._pseudonym(person.sub),
            latency_ms=round(lookup_s * 1000),
        )
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


# --- the run: worker processes ------------------------------------------------------------

#: paho's network loop uses select(), which refuses file descriptors above 1023, and a kiosk
#: holds about six (socket, paho's wake-up pair, SQLite's database, WAL and shared memory):
#: past ~160 kiosks in one process their connections fail silently. A real kiosk is one
#: process with one link, so the fleet runs its kiosks in worker processes of this many.
DEFAULT_KIOSKS_PER_PROCESS = 100
_REPLY_S = 120.0  # a worker that says nothing for this long is hung


def _parallel(fn: Callable[[_SimKiosk], None], kiosks: list[_SimKiosk]) -> None:
    # Starting and stopping 100 links one after the other would take seconds.
    with ThreadPoolExecutor(max_workers=32, thread_name_prefix="fleet-setup") as pool:
        for future in [pool.submit(fn, k) for k in kiosks]:
            with contextlib.suppress(Exception):
                future.result()


def _worker_main(conn: Connection, config: dict[str, Any]) -> None:
    """One worker process: its share of the kiosks, driven on the orchestrator's orders."""
    quiet_kiosk_logs()
    folder = Path(config["folder"])
    people: list[Person] = config["people"]
    fleet: list[_SimKiosk] = []
    monitor = _Monitor()
    try:
        t0 = time.monotonic()
        fleet = [
            _SimKiosk(
                index=i, kiosk_id=f"{config['kiosk_prefix']}{i:05d}",
                broker_url=config["broker_url"], prefix=config["prefix"], folder=folder,
                store_sync=config["store_sync"], seed=config["seed"],
            )
            for i in config["indices"]
        ]  # fmt: skip
        _parallel(_SimKiosk.start, fleet)
        deadline = time.monotonic() + config["connect_timeout_s"]
        connected = sum(
            k.link.wait_subscribed(max(0.0, deadline - time.monotonic())) for k in fleet
        )
        monitor.start()
        conn.send({"connected": connected, "startup_s": time.monotonic() - t0})

        order = conn.recv()  # {"start": monotonic, "end": monotonic}
        start, end = order["start"], order["end"]
        driver = _Driver(
            fleet, people, rate=config["rate"], deadline_s=config["deadline_s"],
            workers=config["workers"],
        )  # fmt: skip
        time.sleep(max(0.0, start - time.monotonic()))
        cpu0 = os.times()
        driver.start(start, end)
        time.sleep(max(0.0, end - time.monotonic()))
        cpu1 = os.times()
        backlog = sum(_undelivered(k) for k in fleet)
        driver.stop(timeout=config["deadline_s"] + 10.0)
        monitor.sample()
        conn.send(
            {
                "cpu_s": (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system),
                "backlog": backlog,
                "attempted": driver.attempted,
                "outcomes": dict(driver.outcomes),
                "errors": dict(driver.errors),
                "lookup_s": driver.lookup_s,
                "record_s": driver.record_s,
                "lag_s": driver.lag_s,
                "recorded": {k.kiosk_id: k.recorded for k in fleet},
                "threads_peak": monitor.threads_peak,
                "rss_kb_peak": monitor.rss_kb_peak,
            }
        )
        # The outboxes drain on their own until the orchestrator has seen every event (or
        # gave up) and says stop.
        conn.recv()
        conn.send({"undelivered": sum(_undelivered(k) for k in fleet)})
    except (EOFError, OSError):
        pass  # the orchestrator is gone: just clean up
    finally:
        monitor.stop()
        _parallel(_SimKiosk.stop, fleet)
        conn.close()


class _Workers:
    """The worker processes and their pipes, spoken to in lockstep."""

    def __init__(self, configs: list[dict[str, Any]]) -> None:
        ctx = multiprocessing.get_context("spawn")  # forking a threaded process is unsafe
        self.conns: list[Connection] = []
        self.procs: list[multiprocessing.process.BaseProcess] = []
        for config in configs:
            ours, theirs = ctx.Pipe()
            proc = ctx.Process(
                target=_worker_main, args=(theirs, config), name="fleet-worker", daemon=True
            )
            proc.start()
            theirs.close()
            self.conns.append(ours)
            self.procs.append(proc)

    def gather(self, timeout: float = _REPLY_S) -> list[dict[str, Any]]:
        replies = []
        for conn, proc in zip(self.conns, self.procs, strict=True):
            if not conn.poll(timeout):
                raise FleetError(f"fleet worker {proc.pid} did not answer within {timeout:g} s")
            try:
                replies.append(conn.recv())
            except EOFError:
                raise FleetError(f"fleet worker {proc.pid} died (exit {proc.exitcode})") from None
        return replies

    def send(self, message: dict[str, Any]) -> None:
        for conn in self.conns:
            with contextlib.suppress(OSError):
                conn.send(message)

    def cpu_s(self) -> float:
        return sum(_proc_cpu_s(p.pid) or 0.0 for p in self.procs)

    def close(self) -> None:
        # Closing our ends first ends a worker still waiting for orders (after an error).
        for conn in self.conns:
            conn.close()
        for proc in self.procs:
            proc.join(30)
            if proc.is_alive():
                proc.kill()
                proc.join()


def run_fleet(
    *,
    broker_url: str,
    kiosks: int,
    duration_s: float,
    rate_per_kiosk: float,
    prefix: str = DEFAULT_PREFIX,
    population: Population | None = None,
    seed: int = 1,
    state_dir: str | os.PathLike[str] | None = None,
    store_sync: str = "full",
    workers: int = DEFAULT_WORKERS,
    kiosks_per_process: int = DEFAULT_KIOSKS_PER_PROCESS,
    deadline_s: float = DEADLINE_S,
    drain_s: float = DEFAULT_DRAIN_S,
    broker_pid: int | None = None,
    responder_pid: int | None = None,
    on_running: Callable[[], None] | None = None,
) -> FleetReport:
    """Run ``kiosks`` simulated kiosks against ``broker_url`` for ``duration_s`` and report.

    A status responder must already answer on the broker (``local_stack()`` or ``kiosk
    status-responder``). Kiosks run in worker processes of ``kiosks_per_process``, each with
    ``workers`` driver threads. Stores go to ``state_dir`` (default: a temporary folder removed
    at the end); ``store_sync`` is ``full`` (production), ``normal`` or ``tmpfs`` (stores in
    /dev/shm, no disk), the last two only to measure what durability costs. ``broker_pid`` and
    ``responder_pid`` name processes whose CPU is reported. ``on_running`` is called once the
    measurement window has begun (tests use it).
    """
    if kiosks < 1 or duration_s <= 0 or rate_per_kiosk < 0 or workers < 1:
        raise FleetError("kiosks and workers must be >= 1, duration > 0, rate >= 0")
    if not 1 <= kiosks_per_process <= 150:
        raise FleetError("kiosks per process must be 1 to 150 (paho's select() limit)")
    if store_sync not in STORE_SYNCS:
        raise FleetError(f"store sync must be one of {', '.join(STORE_SYNCS)}")
    parse_broker_url(broker_url)  # a clear error before 1,000 links try it
    people = (population or load()).people
    if not people:
        raise FleetError("the population is empty")
    notes: list[str] = []
    # A tag per run: kiosk ids and the observer's filter never meet another run's.
    kiosk_prefix = f"fleet-{secrets.token_hex(3)}-"
    with contextlib.ExitStack() as stack:
        folder = _store_folder(stack, state_dir, store_sync)
        observer = _Observer(broker_url, prefix.rstrip("/"), kiosk_prefix)
        observer.start()
        stack.callback(observer.stop)
        monitor = _Monitor()
        monitor.broker_pid = broker_pid
        monitor.start()
        stack.callback(monitor.stop)

        t_setup = time.monotonic()
        shards = [
            list(range(i, min(i + kiosks_per_process, kiosks)))
            for i in range(0, kiosks, kiosks_per_process)
        ]
        base = {
            "kiosk_prefix": kiosk_prefix, "broker_url": broker_url, "prefix": prefix,
            "folder": str(folder), "store_sync": store_sync, "seed": seed, "people": people,
            "rate": rate_per_kiosk, "deadline_s": deadline_s, "workers": workers,
            "connect_timeout_s": 30.0 + kiosks_per_process * 0.05,
        }  # fmt: skip
        pool = _Workers([{**base, "indices": shard} for shard in shards])
        stack.callback(_clear_wills, observer, prefix.rstrip("/"), kiosk_prefix, kiosks)
        stack.callback(pool.close)
        ready = pool.gather()
        connected = sum(r["connected"] for r in ready)
        startup_s = time.monotonic() - t_setup
        if connected < kiosks:
            notes.append(f"{kiosks - connected} kiosks were not connected when the run began")

        # Every worker starts at the same instant (CLOCK_MONOTONIC is machine-wide).
        start = time.monotonic() + 0.5
        end = start + duration_s
        pool.send({"start": start, "end": end})
        time.sleep(max(0.0, start - time.monotonic()))
        own0, workers0 = _self_cpu_s(), pool.cpu_s()
        broker0, responder0 = _proc_cpu_s(broker_pid), _proc_cpu_s(responder_pid)
        if on_running is not None:
            on_running()
        time.sleep(max(0.0, end - time.monotonic()))
        own1, workers1 = _self_cpu_s(), pool.cpu_s()
        broker1, responder1 = _proc_cpu_s(broker_pid), _proc_cpu_s(responder_pid)
        window_s = duration_s
        results = pool.gather()

        # Drain: every recorded event seen by the observer, or time is up.
        t_drain = time.monotonic()
        recorded: dict[str, list[tuple[int, str]]] = {}
        for r in results:
            recorded.update(r["recorded"])
        recorded_ids = {eid for events in recorded.values() for _seq, eid in events}
        while time.monotonic() < t_drain + drain_s and not observer.has_all(recorded_ids):
            time.sleep(0.1)
        drained_s = time.monotonic() - t_drain
        if not observer.has_all(recorded_ids):
            notes.append(f"the drain did not finish within {drain_s:g} s")
        time.sleep(0.2)  # late duplicates of a resend show up here
        pool.send({"stop": True})
        undelivered = sum(r["undelivered"] for r in pool.gather())
        if undelivered:
            notes.append(f"{undelivered} events still undelivered in the kiosks' stores")
        monitor.sample()

        lost, duplicated, gaps, received, in_window = _tally(observer, recorded, end)
        outcomes: Counter[str] = Counter()
        errors: Counter[str] = Counter()
        lookups: list[float] = []
        records: list[float] = []
        lags: list[float] = []
        for r in results:
            outcomes.update(r["outcomes"])
            errors.update(r["errors"])
            lookups += r["lookup_s"]
            records += r["record_s"]
            lags += r["lag_s"]
        lookups.sort()
        records.sort()
        lags.sort()
        if errors:
            notes.append("decisions failed: " + ", ".join(f"{n} x{c}" for n, c in errors.items()))
        if store_sync != "full":
            notes.append(f"store sync {store_sync}: NOT the production setting (FULL)")
        busiest = max(r["cpu_s"] for r in results)

        def pct(a: float | None, b: float | None) -> float | None:
            return None if a is None or b is None else round(100.0 * (b - a) / window_s, 1)

        return FleetReport(
            kiosks=kiosks,
            kiosks_connected=connected,
            duration_s=round(window_s, 2),
            rate_per_kiosk=rate_per_kiosk,
            store_sync=store_sync,
            processes=len(shards),
            workers=workers,
            startup_s=round(startup_s, 2),
            decisions_attempted=sum(r["attempted"] for r in results),
            lookups_answered=outcomes["answered"],
            lookups_timed_out=outcomes["timed_out"],
            lookups_failed=outcomes["failed"],
            lookups_per_s=round(outcomes["answered"] / window_s, 2),
            lookup_p50_ms=round(_percentile(lookups, 0.50) * 1e3, 2),
            lookup_p95_ms=round(_percentile(lookups, 0.95) * 1e3, 2),
            lookup_p99_ms=round(_percentile(lookups, 0.99) * 1e3, 2),
            record_p50_ms=round(_percentile(records, 0.50) * 1e3, 3),
            record_p99_ms=round(_percentile(records, 0.99) * 1e3, 3),
            driver_lag_p99_ms=round(_percentile(lags, 0.99) * 1e3, 2),
            events_recorded=len(recorded_ids),
            events_received=received,
            events_per_s=round(in_window / window_s, 2),
            backlog_at_end=sum(r["backlog"] for r in results),
            drain_s=round(drained_s, 2),
            lost=lost,
            duplicated=duplicated,
            seq_gaps=gaps,
            process_cpu_pct=round(100.0 * ((own1 - own0) + (workers1 - workers0)) / window_s, 1),
            busiest_worker_cpu_pct=round(100.0 * busiest / window_s, 1),
            broker_cpu_pct=pct(broker0, broker1),
            responder_cpu_pct=pct(responder0, responder1),
            rss_mb=round((monitor.rss_kb_peak + sum(r["rss_kb_peak"] for r in results)) / 1024, 1),
            broker_rss_mb=(
                round(monitor.broker_rss_kb_peak / 1024, 1) if broker_pid is not None else None
            ),
            threads_peak=monitor.threads_peak + sum(r["threads_peak"] for r in results),
            notes=notes,
        )
    raise AssertionError("unreachable")  # pragma: no cover


def _self_cpu_s() -> float:
    t = os.times()
    return t.user + t.system


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _undelivered(kiosk: _SimKiosk) -> int:
    try:
        return kiosk.store.undelivered_count()
    except KioskError:
        return -1


def _store_folder(stack: contextlib.ExitStack, state_dir: Any, store_sync: str) -> Path:
    if state_dir is not None:
        folder = Path(state_dir) / "stores"
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    # tmpfs: the same SQLite code, but no disk under it (an upper bound for durability's cost).
    base = "/dev/shm" if store_sync == "tmpfs" and Path("/dev/shm").is_dir() else None
    return Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="fleet-", dir=base)))


def _tally(
    observer: _Observer, recorded: dict[str, list[tuple[int, str]]], window_end: float
) -> tuple[int, int, int, int, int]:
    """(lost, duplicated, seq gaps, unique received, first received within the window)."""
    with observer._lock:  # the observer is ours; its thread may still be delivering
        counts = dict(observer.counts)
        seqs = {k: set(v) for k, v in observer.seqs.items()}
        in_window = sum(1 for t in observer.first_seen.values() if t <= window_end)
    lost = gaps = 0
    for kiosk_id, events in recorded.items():
        lost += sum(1 for _seq, eid in events if eid not in counts)
        if events:
            last = max(seq for seq, _eid in events)
            gaps += last - len(seqs.get(kiosk_id, set()) & set(range(1, last + 1)))
    duplicated = sum(c - 1 for c in counts.values())
    return lost, duplicated, gaps, len(counts), in_window


def _clear_wills(observer: _Observer, prefix: str, kiosk_prefix: str, kiosks: int) -> None:
    # Each link left its Will ({"online": false}, retained) on the state topic of a kiosk that
    # will never exist again: on a shared broker, thousands of stale retained messages.
    time.sleep(0.2)
    observer.clear_retained([f"{prefix}/kiosk/{kiosk_prefix}{i:05d}/state" for i in range(kiosks)])
    time.sleep(0.5)


# --- a broker and a responder of our own --------------------------------------------------


@dataclass
class LocalStack:
    """A mosquitto and a status responder process started for one run."""

    broker: Broker
    responder: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        """The broker's URL."""
        return self.broker.url


@contextlib.contextmanager
def local_stack(
    folder: Path | None = None,
    *,
    prefix: str = DEFAULT_PREFIX,
    population_path: Path | None = None,
    timeout: float = 15.0,
) -> Iterator[LocalStack]:
    """Start mosquitto and ``kiosk status-responder`` (a separate process, so its CPU is its
    own), wait until the responder is subscribed, and stop both at the end."""
    with contextlib.ExitStack() as stack:
        if folder is None:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="fleet-mq-")))
        broker = Broker(Path(folder) / "broker")
        broker.start()
        stack.callback(broker.stop)
        root = Path(__file__).resolve().parent.parent
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
        cmd = [sys.executable, "-m", "kiosk.cli", "status-responder", "--broker", broker.url]
        cmd += ["--prefix", prefix]
        if population_path is not None:
            cmd += ["--population", str(population_path)]
        errors = open(Path(folder) / "responder.log", "wb")  # noqa: SIM115 (closed below)
        stack.callback(errors.close)
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errors, env=env)
        stack.callback(_end_process, proc)
        # The responder prints its request topic once subscribed.
        ready = threading.Event()

        def first_line() -> None:
            assert proc.stdout is not None
            if proc.stdout.readline():
                ready.set()

        threading.Thread(target=first_line, name="fleet-responder-ready", daemon=True).start()
        if not ready.wait(timeout) or proc.poll() is not None:
            raise FleetError(f"status responder did not start; see {Path(folder)}/responder.log")
        yield LocalStack(broker, proc)


def _end_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def quiet_kiosk_logs() -> None:
    """One 'connected' line per kiosk is noise at 1,000 kiosks: keep warnings only."""
    for name in ("kiosk.fleet.link", "kiosk.fleet.outbox", "kiosk.status.mqtt"):
        logging.getLogger(name).setLevel(logging.WARNING)


def have_mosquitto() -> bool:
    """Whether ``--start-broker`` can work here."""
    return shutil.which("mosquitto") is not None or Path("/usr/sbin/mosquitto").exists()


# --- the command ------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``kiosk fleet``."""
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--broker", metavar="URL", help="a broker with a status responder on it")
    where.add_argument(
        "--start-broker",
        action="store_true",
        help="start a mosquitto and a status responder process of our own",
    )
    parser.add_argument("--kiosks", type=int, default=100, help="simulated kiosks (100)")
    parser.add_argument("--duration-s", type=float, default=30.0, help="measurement window (30)")
    parser.add_argument(
        "--rate", type=float, default=0.1, help="decisions per second per kiosk (0.1)"
    )
    parser.add_argument("--prefix", default=DEFAULT_PREFIX, help="topic prefix")
    parser.add_argument("--seed", type=int, default=1, help="seed of arrivals and people (1)")
    parser.add_argument(
        "--store-sync",
        choices=STORE_SYNCS,
        default="full",
        help="event store durability: full (production), normal or tmpfs (measurement only)",
    )
    parser.add_argument(
        "--workers", type=int, default=DEFAULT_WORKERS, help="driver threads per process (64)"
    )
    parser.add_argument(
        "--kiosks-per-process",
        type=int,
        default=DEFAULT_KIOSKS_PER_PROCESS,
        help=f"kiosks per worker process, at most 150 ({DEFAULT_KIOSKS_PER_PROCESS})",
    )
    parser.add_argument(
        "--drain-s", type=float, default=DEFAULT_DRAIN_S, help="wait this long for delivery (30)"
    )
    parser.add_argument("--population", type=Path, default=None, help="population JSONL")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def run_command(args: argparse.Namespace) -> int:
    """``kiosk fleet``: print the report; exit 1 if any event was lost, 2 on bad usage."""
    quiet_kiosk_logs()
    try:
        population = load(args.population)
        with contextlib.ExitStack() as stack:
            broker_pid = responder_pid = None
            url = args.broker
            if args.start_broker:
                if not have_mosquitto():
                    print("error: mosquitto is not installed", file=sys.stderr)
                    return 2
                local = stack.enter_context(
                    local_stack(prefix=args.prefix, population_path=args.population)
                )
                url, broker_pid, responder_pid = local.url, local.broker.pid, local.responder.pid
            report = run_fleet(
                broker_url=url,
                kiosks=args.kiosks,
                duration_s=args.duration_s,
                rate_per_kiosk=args.rate,
                prefix=args.prefix,
                population=population,
                seed=args.seed,
                store_sync=args.store_sync,
                workers=args.workers,
                kiosks_per_process=args.kiosks_per_process,
                drain_s=args.drain_s,
                broker_pid=broker_pid,
                responder_pid=responder_pid,
            )
    except KioskError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.format())
    return 1 if report.lost else 0
