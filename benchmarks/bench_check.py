"""Benchmark of `check` in-process: decisions per second and latency, bare IINs and passes.

Prints figures; asserts nothing. The status service runs on loopback in this process's
threads (so "CPU per decision" online includes the server's share too).

    .venv/bin/python benchmarks/bench_check.py [--n 2000]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from pathlib import Path

from kiosk.clock import SystemClock
from kiosk.config import load_config
from kiosk.core import build_core
from kiosk.secret import reveal
from kiosk.status.http import HttpStatusClient
from simulators.issuer import PassIssuer
from simulators.population import load
from simulators.status_service import StatusService

REPO = Path(__file__).resolve().parents[1]


def measure(label: str, core, texts: list[str]) -> None:
    policy = core.config.policy
    lat: list[float] = []
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for text in texts:
        t0 = time.perf_counter()
        core.checker.check(text, policy=policy)
        lat.append((time.perf_counter() - t0) * 1000)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    lat.sort()
    n = len(texts)
    print(
        f"{label:<38} {n / wall:8.0f}/s  p50 {statistics.median(lat):6.3f} ms  "
        f"p99 {lat[int(n * 0.99) - 1]:6.3f} ms  CPU {cpu / n * 1000:6.3f} ms/decision"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=2000)
    args = ap.parse_args()
    population = load()
    issuer = PassIssuer.load()
    cfg = load_config(REPO / "config" / "sim.toml")
    now = int(time.time())
    people = [population.by_index(i % len(population)) for i in range(args.n)]
    iin_people = [p for p in population.people if p.sub.startswith("iin:")]
    bare = [iin_people[i % len(iin_people)].sub[4:] for i in range(args.n)]
    passes = [issuer.mint(p.sub, p.st, iat=now, jti=f"bench{i:08d}") for i, p in enumerate(people)]

    with tempfile.TemporaryDirectory() as state:
        # Offline: signature, claims, time, replay and decision, no network at all.
        cfg = dataclasses.replace(
            cfg,
            kiosk=dataclasses.replace(cfg.kiosk, state_dir=state),
            status=dataclasses.replace(cfg.status, backend="none"),
        )
        core = build_core(cfg, clock=SystemClock(), persistent=True, lookup=None)
        measure("pass, verify + decide (no service)", core, passes)
        core.close()
        # Online: max_age 0 so every decision really asks the service.
        with StatusService(population, token=reveal(cfg.token), max_age_s=0) as service:
            lookup = HttpStatusClient(service.url, token=reveal(cfg.token))
            core = build_core(cfg, clock=SystemClock(), persistent=True, lookup=lookup)
            measure("bare IIN, online over loopback", core, bare)
            measure("pass, online over loopback", core, passes)
            print(f"connections opened to the service: {service.stats.connections}")
            core.close()


if __name__ == "__main__":
    main()
