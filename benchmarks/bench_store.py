"""Event store throughput and latency on this machine (WAL, synchronous=FULL).

Prints figures only: speed is measured here, never asserted in tests (DEVELOPERS.md).

    .venv/bin/python benchmarks/bench_store.py [--events N] [--dir PATH]

Use --dir to measure the disk the kiosk really writes to (default: a temporary directory).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kiosk.clock import SystemClock  # noqa: E402
from kiosk.passback import PassbackMemory  # noqa: E402
from kiosk.replay import ReplayStore  # noqa: E402
from kiosk.store import EventStore  # noqa: E402


def percentile(sorted_values: list[float], q: float) -> float:
    """The q-quantile (0..1) of already-sorted values, nearest rank."""
    index = min(len(sorted_values) - 1, max(0, round(q * len(sorted_values)) - 1))
    return sorted_values[index]


def report(name: str, latencies_s: list[float], total_s: float) -> None:
    lat = sorted(latencies_s)
    print(
        f"{name:<28} {len(lat) / total_s:>10.0f}/s   "
        f"p50 {percentile(lat, 0.50) * 1e6:8.1f} µs   "
        f"p99 {percentile(lat, 0.99) * 1e6:8.1f} µs   "
        f"max {lat[-1] * 1e6:8.1f} µs"
    )


def bench_record(directory: Path, n: int) -> None:
    clock = SystemClock()
    with EventStore(directory / "events.db", kiosk_id="k-01", venue_id="v-1", clock=clock) as s:
        latencies = []
        start = time.perf_counter()
        for i in range(n):
            t0 = time.perf_counter()
            s.record(
                "decision",
                decision="admit",
                reason="admitted",
                st="green",
                via="online",
                source="camera",
                subject="0123456789abcdef0123",
                latency_ms=i % 100,
            )
            latencies.append(time.perf_counter() - t0)
        report("record() (1 fsync each)", latencies, time.perf_counter() - start)

        latencies = []
        start = time.perf_counter()
        while s.undelivered_count():
            t0 = time.perf_counter()
            batch = s.undelivered(limit=100)
            s.mark_delivered(e["seq"] for e in batch)
            latencies.append(time.perf_counter() - t0)
        total = time.perf_counter() - start
        print(
            f"{'undelivered+mark (x100)':<28} {n / total:>10.0f} events/s   "
            f"p50 {statistics.median(latencies) * 1e3:8.3f} ms per batch of 100"
        )


def bench_small_stores(directory: Path, n: int) -> None:
    clock = SystemClock()
    pseudonyms = [f"{i:020x}" for i in range(n)]
    with PassbackMemory(directory / "passback.db", clock=clock) as memory:
        for p in pseudonyms[: min(n, 200)]:
            memory.record_passage(p, clock.time())
        latencies = []
        start = time.perf_counter()
        for p in pseudonyms:
            t0 = time.perf_counter()
            memory.last_passage(p)
            latencies.append(time.perf_counter() - t0)
        report("passback last_passage()", latencies, time.perf_counter() - start)

    with ReplayStore(directory / "replay.db", clock=clock) as replay:
        for p in pseudonyms[: min(n, 200)]:
            replay.mark_used(p, clock.time() + 600)
        latencies = []
        start = time.perf_counter()
        for p in pseudonyms:
            t0 = time.perf_counter()
            replay.is_used(p)
            latencies.append(time.perf_counter() - t0)
        report("replay is_used()", latencies, time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000, help="events to record")
    parser.add_argument("--dir", type=Path, default=None, help="directory for the databases")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        print(f"{args.events} events in {tmp} (WAL, synchronous=FULL)")
        bench_record(Path(tmp), args.events)
        bench_small_stores(Path(tmp), args.events)


if __name__ == "__main__":
    main()
