"""The worker processes: each runs its share of the kiosks, on the orchestrator's orders."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from simulators.fleet.driver import Driver
from simulators.fleet.errors import FleetError
from simulators.fleet.procstats import Monitor, proc_cpu_s
from simulators.fleet.sim_kiosk import SimKiosk, quiet_kiosk_logs, undelivered
from simulators.population import Person

#: paho's network loop uses select(), which refuses file descriptors above 1023, and a kiosk
#: holds about six (socket, paho's wake-up pair, SQLite's database, WAL and shared memory):
#: past ~160 kiosks in one process their connections fail silently. A real kiosk is one
#: process with one link, so the fleet runs its kiosks in worker processes of this many.
DEFAULT_KIOSKS_PER_PROCESS = 100
_REPLY_S = 120.0  # a worker that says nothing for this long is hung


def _parallel(fn: Callable[[SimKiosk], None], kiosks: list[SimKiosk]) -> None:
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
    fleet: list[SimKiosk] = []
    monitor = Monitor()
    try:
        t0 = time.monotonic()
        fleet = [
            SimKiosk(
                index=i, kiosk_id=f"{config['kiosk_prefix']}{i:05d}",
                broker_url=config["broker_url"], prefix=config["prefix"], folder=folder,
                store_sync=config["store_sync"], seed=config["seed"],
            )
            for i in config["indices"]
        ]  # fmt: skip
        _parallel(SimKiosk.start, fleet)
        deadline = time.monotonic() + config["connect_timeout_s"]
        connected = sum(
            k.link.wait_subscribed(max(0.0, deadline - time.monotonic())) for k in fleet
        )
        monitor.start()
        conn.send({"connected": connected, "startup_s": time.monotonic() - t0})

        order = conn.recv()  # {"start": monotonic, "end": monotonic}
        start, end = order["start"], order["end"]
        driver = Driver(
            fleet, people, rate=config["rate"], deadline_s=config["deadline_s"],
            workers=config["workers"],
        )  # fmt: skip
        time.sleep(max(0.0, start - time.monotonic()))
        cpu0 = os.times()
        driver.start(start, end)
        time.sleep(max(0.0, end - time.monotonic()))
        cpu1 = os.times()
        backlog = sum(undelivered(k) for k in fleet)
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
        conn.send({"undelivered": sum(undelivered(k) for k in fleet)})
    except (EOFError, OSError):
        pass  # the orchestrator is gone: just clean up
    finally:
        monitor.stop()
        _parallel(SimKiosk.stop, fleet)
        conn.close()


class Workers:
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
        return sum(proc_cpu_s(p.pid) or 0.0 for p in self.procs)

    def close(self) -> None:
        # Closing our ends first ends a worker still waiting for orders (after an error).
        for conn in self.conns:
            conn.close()
        for proc in self.procs:
            proc.join(30)
            if proc.is_alive():
                proc.kill()
                proc.join()
