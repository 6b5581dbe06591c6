"""Benchmark the display's server push; prints figures, asserts nothing.

    .venv/bin/python benchmarks/bench_display.py [--pages 1 10] [--count 200]

For each number of open display pages (Server-Sent Event streams on a real server on
loopback): the time from a new gate snapshot being published (a decision's result, the
light back to idle, alternating) to its ``screen`` frame arriving at every page,
p50/p95/p99/max over ``--count`` changes, and the CPU share of the whole process while the
pages sit idle for ``--idle-s`` seconds (the pings). display.md asks for 200 ms.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import MappingProxyType

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kiosk.gate.view import HEALTH_PARTS, GateView, LastDecision  # noqa: E402
from kiosk.report.glossary import glossary  # noqa: E402
from kiosk.web.display import Screens  # noqa: E402
from kiosk.web.pages import register_display  # noqa: E402
from kiosk.web.server import Routes, WebServer  # noqa: E402


class Page:
    """One display page: a stream reader thread noting when each version's frame came."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.sock = socket.create_connection(address, timeout=30)
        self.sock.sendall(b"GET /api/display/stream HTTP/1.1\r\nHost: kiosk\r\n\r\n")
        self.file = self.sock.makefile("rb")
        self.seen: dict[int, float] = {}
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        version = None
        try:
            for raw in self.file:
                line = raw.decode().rstrip("\r\n")
                if line.startswith("id: "):
                    version = int(line[4:])
                elif line.startswith("event: screen"):
                    pass
                elif line == "" and version is not None:
                    with self.cond:
                        self.seen.setdefault(version, time.perf_counter())
                        self.cond.notify_all()
                    version = None
        except (OSError, ValueError):
            return

    def wait(self, version: int, timeout: float = 10.0) -> float:
        with self.cond:
            self.cond.wait_for(lambda: version in self.seen, timeout)
            return self.seen.get(version, float("nan"))

    def close(self) -> None:
        self.sock.close()


def run(pages: int, count: int, idle_s: float) -> None:
    view = GateView()
    view.publish(health=MappingProxyType(dict.fromkeys(HEALTH_PARTS, "ok")), light="idle")
    routes = Routes()
    register_display(routes, view=view, screens=Screens(glossary()), now=time.time)
    server = WebServer(routes, host="127.0.0.1", port=0).start()
    open_pages = [Page(server.address) for _ in range(pages)]
    for page in open_pages:
        page.wait(view.snapshot().version)
    latencies: list[float] = []
    for i in range(count):
        if i % 2 == 0:
            last = LastDecision("admit", "admitted", "green", "online", "camera", 5, time.time())
            changes: dict[str, object] = {"light": "admit", "last_decision": last}
        else:
            changes = {"light": "idle"}
        t0 = time.perf_counter()
        snap = view.publish(**changes)
        latencies.append(max(page.wait(snap.version) for page in open_pages) - t0)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    time.sleep(idle_s)
    cpu = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
    for page in open_pages:
        page.close()
    server.stop()
    ms = sorted(x * 1000 for x in latencies)
    q = statistics.quantiles(ms, n=100)
    print(
        f"pages {pages:3d}: push to every page p50 {q[49]:.2f} ms, p95 {q[94]:.2f} ms, "
        f"p99 {q[98]:.2f} ms, max {ms[-1]:.2f} ms over {count} changes; "
        f"idle CPU {cpu * 100:.2f} % of one core"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--idle-s", type=float, default=5.0)
    args = parser.parse_args(argv)
    for pages in args.pages:
        run(pages, args.count, args.idle_s)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
