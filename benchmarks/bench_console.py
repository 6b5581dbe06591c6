"""Benchmark the technician console's costs; prints figures, asserts nothing.

    .venv/bin/python benchmarks/bench_console.py [--logins 5] [--states 200]

- a login's password check: scrypt with the kiosk's cost (kiosk/web/auth.py), mean over
  ``--logins`` checks (one runs at a time on the kiosk, so this is also how long a burst
  of logins queues per attempt);
- the console's state (the page's JSON, also each server-push message): time to build and
  encode it with 200 records in the gate's view, and its size.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kiosk.clock import SystemClock, rfc3339_ms  # noqa: E402  (the repo root is put on the path)
from kiosk.gate.view import GateView  # noqa: E402
from kiosk.web.auth import SCRYPT_N, SCRYPT_P, SCRYPT_R, hash_password, verify_password  # noqa: E402
from kiosk.web.console_state import ConsoleStats, console_state  # noqa: E402


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--logins", type=int, default=5)
    p.add_argument("--states", type=int, default=200)
    args = p.parse_args(argv)

    hashed = hash_password("a long enough password")
    t0 = time.perf_counter()
    for _ in range(args.logins):
        verify_password("a long enough password", hashed)
    check_ms = (time.perf_counter() - t0) / args.logins * 1000
    print(f"password check (scrypt n={SCRYPT_N} r={SCRYPT_R} p={SCRYPT_P}): {check_ms:.0f} ms")

    view = GateView()
    zone = ZoneInfo("Asia/Almaty")
    stats = ConsoleStats(zone=zone, clock=SystemClock())
    view.subscribe(stats)
    now = time.time()
    for i in range(200):
        view.recorded(
            {
                "type": "decision",
                "seq": i,
                "ts": rfc3339_ms(now - 200 + i),
                "decision": "admit",
                "reason": "admitted",
                "st": "green",
                "via": "online",
                "source": "camera",
                "subject": f"{i:020x}",
                "latency_ms": 100.0 + i,
            }
        )
    t0 = time.perf_counter()
    for _ in range(args.states):
        body = json.dumps(console_state(view, stats, simulation=False, zone_name="Asia/Almaty"))
    state_ms = (time.perf_counter() - t0) / args.states * 1000
    print(f"console state with 50 decisions shown: {state_ms:.2f} ms, {len(body)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
