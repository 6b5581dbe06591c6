"""The run: start the observer and the worker processes, drive one measurement window,
drain, and tally what was lost or duplicated into a :class:`FleetReport`."""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from simulators.fleet.errors import FleetError
from simulators.fleet.observer import Observer, clear_wills, tally
from simulators.fleet.procstats import Monitor, proc_cpu_s, self_cpu_s
from simulators.fleet.report import FleetReport, percentile
from simulators.fleet.workers import DEFAULT_KIOSKS_PER_PROCESS, Workers
from simulators.mqtt_client import DEFAULT_PREFIX, parse_broker_url
from simulators.population import Population, load

DEADLINE_S = 0.8  # status-api.md: the default lookup deadline
STORE_SYNCS = ("full", "normal", "tmpfs")
DEFAULT_WORKERS = 64
DEFAULT_DRAIN_S = 30.0


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
        observer = Observer(broker_url, prefix.rstrip("/"), kiosk_prefix)
        observer.start()
        stack.callback(observer.stop)
        monitor = Monitor()
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
        pool = Workers([{**base, "indices": shard} for shard in shards])
        stack.callback(clear_wills, observer, prefix.rstrip("/"), kiosk_prefix, kiosks)
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
        own0, workers0 = self_cpu_s(), pool.cpu_s()
        broker0, responder0 = proc_cpu_s(broker_pid), proc_cpu_s(responder_pid)
        if on_running is not None:
            on_running()
        time.sleep(max(0.0, end - time.monotonic()))
        own1, workers1 = self_cpu_s(), pool.cpu_s()
        broker1, responder1 = proc_cpu_s(broker_pid), proc_cpu_s(responder_pid)
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

        lost, duplicated, gaps, received, in_window = tally(observer, recorded, end)
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
            lookup_p50_ms=round(percentile(lookups, 0.50) * 1e3, 2),
            lookup_p95_ms=round(percentile(lookups, 0.95) * 1e3, 2),
            lookup_p99_ms=round(percentile(lookups, 0.99) * 1e3, 2),
            record_p50_ms=round(percentile(records, 0.50) * 1e3, 3),
            record_p99_ms=round(percentile(records, 0.99) * 1e3, 3),
            driver_lag_p99_ms=round(percentile(lags, 0.99) * 1e3, 2),
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


def _store_folder(stack: contextlib.ExitStack, state_dir: Any, store_sync: str) -> Path:
    if state_dir is not None:
        folder = Path(state_dir) / "stores"
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    # tmpfs: the same SQLite code, but no disk under it (an upper bound for durability's cost).
    base = "/dev/shm" if store_sync == "tmpfs" and Path("/dev/shm").is_dir() else None
    return Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="fleet-", dir=base)))
