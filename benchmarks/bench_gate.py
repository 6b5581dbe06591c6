"""Benchmarks of the whole gate in the simulated world (real daemon, real drivers).

    .venv/bin/python benchmarks/bench_gate.py latency [--n 200]   # phone in view to unlock
    .venv/bin/python benchmarks/bench_gate.py idle [--seconds 20]  # CPU with nobody in view
    .venv/bin/python benchmarks/bench_gate.py rush [--n 60]       # persons per minute
    .venv/bin/python benchmarks/bench_gate.py memory [--n 1800]   # RSS over an hour's traffic

Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kiosk.config import Config, load_config
from kiosk.daemon import Daemon
from simulators.director import Director, Watch
from simulators.issuer import PassIssuer
from simulators.scenario import load_scenario
from simulators.world import World

REPO = Path(__file__).resolve().parents[1]


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(p / 100 * len(values)) - 1))]


@contextmanager
def running(
    cfg: Config, width: int = 1280, height: int = 720
) -> Iterator[tuple[World, Daemon, Watch]]:
    camera = dataclasses.replace(cfg.camera, width=width, height=height, fps=30)
    cfg = dataclasses.replace(cfg, camera=camera)
    world = World(cfg)
    cfg = world.simulated(cfg)
    watch = Watch()
    daemon = Daemon(cfg, sim=world.hardware(), on_event=watch.add)
    runner = threading.Thread(target=daemon.run, daemon=True)
    runner.start()
    time.sleep(1.0)  # camera open, keys fetched
    try:
        yield world, daemon, watch
    finally:
        daemon.stop()
        runner.join(15)
        world.close()


def sim_config() -> Config:
    cfg = load_config(REPO / "config" / "sim.toml")
    # Measure the gate, not the venue filling up.
    return dataclasses.replace(cfg, policy=dataclasses.replace(cfg.policy, capacity=None))


SIZES = ((640, 480), (1280, 720), (1920, 1080))


def latency(n: int) -> None:
    """From the phone coming into view (the exposure start of the first frame showing it, so
    the camera's one frame of exposure and transfer counts) to the relay letting go."""
    issuer = PassIssuer.load()
    for width, height in SIZES:
        cfg = sim_config()
        with running(cfg, width, height) as (world, _daemon, watch):
            greens = world.population.with_status("green")
            lat: list[float] = []
            missed = 0
            for i in range(n):
                person = greens[i % len(greens)]
                text = issuer.mint(person.sub, "green", jti=f"bench{width}x{i:05d}")
                before = len(world.turnstile.relay_free_times)
                world.turnstile.expect_walk(0.05)
                since = watch.mark()
                world.camera.show(text, 10.0)
                ok = watch.wait(since, lambda e: e["type"] == "passage", 10)
                world.camera.clear()
                frees = world.turnstile.relay_free_times
                shown = world.camera.first_in_view_at(text)
                if not ok or len(frees) <= before or shown is None:
                    missed += 1
                    world.turnstile.forget_people()
                    continue
                lat.append((frees[before] - shown) * 1000)
                time.sleep(0.05)
            print(
                f"phone in view to unlock {width}x{height} @30fps, online: n={len(lat)} "
                f"(missed {missed})  p50 {pct(lat, 50):.1f} ms  p95 {pct(lat, 95):.1f} ms  "
                f"p99 {pct(lat, 99):.1f} ms  max {max(lat):.1f} ms"
            )


def idle(seconds: float) -> None:
    """The whole daemon's CPU with nobody in view, against merely reading the camera.

    Process CPU time (not wall time: other programs load the machine) over ``seconds``:
    the daemon in the simulated world; the simulated camera alone (a bare loop reading it,
    the simulator's own cost, subtracted from both); and merely reading the camera, a bare
    loop decoding each MJPG frame to colour, as cv2.VideoCapture does by default.
    """
    for width, height in SIZES:
        cfg = sim_config()
        with running(cfg, width, height) as (world, _daemon, _watch):
            time.sleep(2.0)  # the motion gate has learnt the empty entrance
            total = cpu_share(seconds)
        feed_share = bare_camera(width, height, seconds / 2, decode=False)
        reading = bare_camera(width, height, seconds / 2, decode=True) - feed_share
        daemon = total - feed_share
        print(
            f"idle {width}x{height} @30fps: daemon {daemon:.1f} % of one core, merely reading "
            f"the camera {reading:.1f} %: ratio {daemon / reading:.2f} (simulated camera "
            f"{feed_share:.1f} %, subtracted)"
        )


def cpu_share(seconds: float) -> float:
    """This process's share of one core (%) over the next ``seconds``."""
    c0, t0 = time.process_time(), time.monotonic()
    time.sleep(seconds)
    return (time.process_time() - c0) / (time.monotonic() - t0) * 100


def bare_camera(width: int, height: int, seconds: float, *, decode: bool) -> float:
    """CPU share (%) of a bare loop reading the simulated camera, decoding when asked."""
    import cv2

    from simulators.camera_feed import SimFrameSource

    feed = SimFrameSource(width, height, 30)
    feed.open()
    c0, t0 = time.process_time(), time.monotonic()
    while time.monotonic() - t0 < seconds:
        frame = feed.read()
        if decode:
            cv2.imdecode(frame.data, cv2.IMREAD_COLOR)
    share = (time.process_time() - c0) / (time.monotonic() - t0) * 100
    feed.close()
    return share


def rush(n: int) -> None:
    scenario = load_scenario(REPO / "simulators" / "scenarios" / "airport-rush.toml")
    cfg = load_config(scenario.config)
    with running(cfg) as (world, daemon, watch):
        director = Director(world, watch, daemon.controller.emit, unlock_s=cfg.gate.unlock_s)
        t0 = time.monotonic()
        director.play(scenario.steps[:n])
        minutes = (time.monotonic() - t0) / 60
        passages = [e for e in watch.events if e["type"] == "passage"]
        decisions = [e for e in watch.events if e["type"] == "decision"]
        lat = [e["latency_ms"] for e in decisions]
    print(
        f"rush hour (airport, 1.5 s to pass): {len(decisions)} travellers, {len(passages)} "
        f"through in {minutes * 60:.0f} s: {len(passages) / minutes:.1f} persons/min; "
        f"decision p50 {statistics.median(lat):.1f} ms p99 {pct(lat, 99):.1f} ms "
        f"(of {60 / 1.5:.0f}/min that walking alone allows)"
    )


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def memory(n: int) -> None:
    issuer = PassIssuer.load()
    cfg = sim_config()
    with running(cfg) as (world, _daemon, watch):
        people = world.population.people
        marks: list[tuple[int, float]] = []
        for i in range(n):
            person = people[i % len(people)]
            src_scanner = i % 3 == 0
            text = issuer.mint(person.sub, person.st, jti=f"mem{i:07d}")
            watch.clear()  # the benchmark's copy of the events must not count
            world.turnstile.expect_walk(0.02)
            since = watch.mark()
            if src_scanner:
                world.scanner.scan(text)
            else:
                world.camera.show(text, 10.0)
            d = watch.wait(since, lambda e: e["type"] == "decision", 10)
            world.camera.clear()
            if d is None or d["decision"] != "admit":
                world.turnstile.forget_people()
            else:
                watch.wait(since, lambda e: e["type"] in ("passage", "passage_timeout"), 10)
            if i in (100, n // 2, n - 1):
                marks.append((i + 1, rss_mb()))
    (a, ra), (_, rb), (c, rc) = marks
    print(
        f"memory over {n} people (an hour at one per 2 s): RSS {ra:.1f} MB after {a}, "
        f"{rb:.1f} MB half way, {rc:.1f} MB after {c}: growth "
        f"{(rc - ra) / (c - a) * 1000:.2f} MB per 1000 decisions (benchmark process, incl. the "
        f"simulated world)"
    )


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("what", choices=("latency", "idle", "rush", "memory", "all"))
    ap.add_argument("--n", type=int, default=None)
    ap.add_argument("--seconds", type=float, default=20.0)
    args = ap.parse_args()
    if args.what in ("latency", "all"):
        latency(args.n or 200)
    if args.what in ("idle", "all"):
        idle(args.seconds)
    if args.what in ("rush", "all"):
        rush(args.n or 60)
    if args.what in ("memory", "all"):
        memory(args.n or 1800)


if __name__ == "__main__":
    main()
