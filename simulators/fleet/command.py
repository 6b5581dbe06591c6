"""``kiosk fleet``: its options and the command."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

from kiosk.errors import KioskError
from simulators.fleet.run import DEFAULT_DRAIN_S, DEFAULT_WORKERS, STORE_SYNCS, run_fleet
from simulators.fleet.sim_kiosk import quiet_kiosk_logs
from simulators.fleet.stack import have_mosquitto, local_stack
from simulators.fleet.workers import DEFAULT_KIOSKS_PER_PROCESS
from simulators.mqtt_client import DEFAULT_PREFIX
from simulators.population import load


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
