"""Benchmark: how long a person waits for a decision while the status service is down.

Before the breaker every lookup waited out the whole deadline (800 ms by default) before the
offline rule decided; with it, the first lookup after the service goes down still does, and
every later one is decided at once while a background probe waits for the service. Both are
measured here, "before" with the breaker turned off (``breaker=False``), on bare IINs in
process (`kiosk check`'s path), offline rule as configured in config/sim.toml.

The service is down in four ways: a refused connection (nothing listens), a blackhole (a
socket that listens and never answers: every attempt times out), the simulated service
closing connections unanswered (``down``) and answering 503 to everything.

Prints figures; asserts nothing.

    .venv/bin/python benchmarks/bench_offline.py [--n-before 15] [--n-after 2000]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import socket
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from kiosk.clock import SystemClock
from kiosk.config import load_config
from kiosk.core import build_core
from kiosk.secret import reveal
from kiosk.status.http import HttpStatusClient
from simulators.population import load
from simulators.status_service import StatusService

REPO = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def refused() -> Iterator[str]:
    """A loopback port nobody listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    yield f"http://127.0.0.1:{port}"


@contextlib.contextmanager
def blackhole() -> Iterator[str]:
    """A socket that listens (the kernel completes handshakes) but never reads or answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1024)
        yield f"http://127.0.0.1:{s.getsockname()[1]}"


Server = Callable[[], contextlib.AbstractContextManager[str]]


def simulated(fault: dict, token: str | None) -> Server:
    """The simulated status service with ``fault`` switched on."""

    @contextlib.contextmanager
    def run() -> Iterator[str]:
        with StatusService(load(), token=token, max_age_s=0) as service:
            service.faults.set(**fault)
            yield service.url

    return run


def measure(cfg, url: str, texts: list[str], *, breaker: bool) -> tuple[float, float, float]:
    """(p50, p99, max) decision latency in ms over ``texts``."""
    lookup = HttpStatusClient(url, token=reveal(cfg.token), breaker=breaker)
    core = build_core(cfg, clock=SystemClock(), persistent=False, lookup=lookup)
    lat: list[float] = []
    try:
        for text in texts:
            t0 = time.perf_counter()
            core.checker.check(text, policy=cfg.policy)
            lat.append((time.perf_counter() - t0) * 1000)
    finally:
        core.close()
    lat.sort()
    p99 = lat[max(0, int(len(lat) * 0.99) - 1)]
    return statistics.median(lat), p99, lat[-1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n-before", type=int, default=15, help="decisions without the breaker")
    ap.add_argument("--n-after", type=int, default=2000, help="decisions with the breaker")
    args = ap.parse_args()
    cfg = load_config(REPO / "config" / "sim.toml")
    population = load()
    iins = [p.sub[4:] for p in population.people if p.sub.startswith("iin:")]
    n = max(args.n_before, args.n_after)
    texts = [iins[i % len(iins)] for i in range(n)]
    scenarios = {
        "connection refused": refused,
        "blackhole (listens, never answers)": blackhole,
        "service closes unanswered (down)": simulated({"down": True}, reveal(cfg.token)),
        "service answers 503": simulated({"error_rate": 1.0}, reveal(cfg.token)),
    }
    print(
        f"deadline {cfg.status.deadline_ms} ms, offline rule {cfg.policy.offline_rule.value}; "
        f"latency per decision, before: {args.n_before} decisions, after: {args.n_after}"
    )
    with tempfile.TemporaryDirectory() as state:
        cfg = dataclasses.replace(cfg, kiosk=dataclasses.replace(cfg.kiosk, state_dir=state))
        for label, server in scenarios.items():
            for breaker, count in ((False, args.n_before), (True, args.n_after)):
                with server() as url:
                    p50, p99, worst = measure(cfg, url, texts[:count], breaker=breaker)
                when = "after (breaker)" if breaker else "before (no breaker)"
                print(
                    f"{label:<36} {when:<20} p50 {p50:8.3f} ms  p99 {p99:8.3f} ms  "
                    f"max {worst:8.1f} ms"
                )
    for down_s in (0.5, 10.0):
        took = time_to_online(cfg, iins[0], down_s)
        print(f"back online {took:5.2f} s after the service returned (it was down {down_s} s)")


def time_to_online(cfg, text: str, down_s: float) -> float:
    """Seconds from the service coming back to the client being online again, after it was
    down for ``down_s`` (the probe has backed off by then)."""
    with StatusService(load(), token=reveal(cfg.token), max_age_s=0) as service:
        lookup = HttpStatusClient(service.url, token=reveal(cfg.token))
        service.faults.set(down=True)
        lookup.lookup(f"iin:{text}", deadline_s=cfg.status.deadline_ms / 1000)
        time.sleep(down_s)
        service.faults.reset()
        t0 = time.monotonic()
        assert lookup.breaker is not None
        while not lookup.breaker.online and time.monotonic() - t0 < 60:
            time.sleep(0.01)
        took = time.monotonic() - t0
        lookup.close()
        return took


if __name__ == "__main__":
    main()
