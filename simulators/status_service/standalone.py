"""Running the simulated status service standalone: ``python -m simulators.status_service``."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from simulators.population import PopulationError, default_population_path, load
from simulators.status_service.service import StatusService


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of a standalone status service (shared with ``simulators.cli``)."""
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8080, help="port (0 = any free port)")
    parser.add_argument(
        "--population", type=Path, default=None, help="population JSONL (default: shipped)"
    )
    parser.add_argument("--token", default=None, help="bearer token kiosks must send")
    parser.add_argument("--latency-ms", type=float, default=0, help="delay every answer")
    parser.add_argument("--error-rate", type=float, default=0.0, help="share of 503 answers")
    parser.add_argument("--max-age-s", type=int, default=300, help="max_age of answers")
    parser.add_argument("--seed", type=int, default=2021, help="seed of the error-rate dice")


def run_foreground(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C or SIGTERM; prints the URL on stdout once listening."""
    try:
        population = load(args.population)
    except PopulationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    service = StatusService(
        population,
        host=args.host,
        port=args.port,
        token=args.token,
        max_age_s=args.max_age_s,
        seed=args.seed,
    )
    try:
        service.faults.set(latency_ms=args.latency_ms, error_rate=args.error_rate)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        service.start()
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in _STOP_SIGNALS}
    try:
        print(service.url, flush=True)
        source = args.population or default_population_path()
        auth = "token required" if args.token else "no token"
        print(f"status service: {len(population)} people from {source}, {auth}", file=sys.stderr)
        while not stop.wait(0.5):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        service.stop()
    return 0


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m simulators.status_service --port 8080 --population FILE --token TOKEN``."""
    parser = argparse.ArgumentParser(
        prog="python -m simulators.status_service", description="Run the simulated authority."
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    return run_foreground(args)
