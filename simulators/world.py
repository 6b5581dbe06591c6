"""`kiosk sim`: the kiosk in a simulated world, printing each decision as a JSON line."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from kiosk.clock import SystemClock
from kiosk.config import load_config
from kiosk.core import build_core
from kiosk.status.http import HttpStatusClient
from simulators.crowd import Crowd
from simulators.issuer import PassIssuer
from simulators.population import load
from simulators.status_service import StatusService

REPO = Path(__file__).resolve().parents[1]
SIM_CONFIG = REPO / "config" / "sim.toml"


def run_sim(args: argparse.Namespace) -> int:
    """Play a stream of people against the core until stopped or ``--count`` is reached."""
    cfg = load_config(args.config or SIM_CONFIG)
    # One line per simulated request would drown the decisions.
    logging.getLogger("simulators").setLevel(logging.WARNING)
    population = load()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with StatusService(population, token=cfg.token) as service:
        lookup = HttpStatusClient(service.url, token=cfg.token)
        # The simulation keeps its state apart from any real kiosk's.
        with tempfile.TemporaryDirectory(prefix="kiosk-sim-") as state:
            cfg.sections["kiosk"]["state_dir"] = state
            core = build_core(cfg, clock=SystemClock(), persistent=True, lookup=lookup)
            crowd = Crowd(population, PassIssuer.load(), seed=args.seed)
            print(f"kiosk sim: status service at {service.url}; Ctrl-C to stop", file=sys.stderr)
            counts: Counter[str] = Counter()
            latencies: list[float] = []
            try:
                n = 0
                while not stop.is_set() and (args.count is None or n < args.count):
                    n += 1
                    shown = crowd.next(time.time())
                    t0 = time.perf_counter()
                    checked = core.checker.check(shown.text, policy=cfg.policy)
                    latency = (time.perf_counter() - t0) * 1000
                    latencies.append(latency)
                    v = checked.verdict
                    counts[v.decision.value] += 1
                    line = {
                        "n": n,
                        "shows": shown.kind,
                        "decision": v.decision.value,
                        "reason": v.reason.value,
                        "st": v.st,
                        "via": v.via.value,
                        "subject": v.subject,
                        "holder": checked.masked,
                        "latency_ms": round(latency, 2),
                    }
                    print(json.dumps(line), flush=True)
                    if args.rate > 0:
                        stop.wait(1.0 / args.rate)
            except KeyboardInterrupt:
                pass
            finally:
                core.close()
    total = sum(counts.values())
    p50 = statistics.median(latencies) if latencies else 0.0
    print(
        f"kiosk sim: {total} people: {counts['admit']} admitted, {counts['deny']} denied, "
        f"{counts['refer']} referred; median decision {p50:.1f} ms",
        file=sys.stderr,
    )
    return 0
