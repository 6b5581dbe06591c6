"""`kiosk sim`: the real daemon in the simulated world, one JSON line per recorded event."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import statistics
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from kiosk.clock import Clock, FixedWallClock, SystemClock
from kiosk.config import load_config
from kiosk.daemon import Daemon
from simulators.director import Director, Watch, crowd_steps
from simulators.scenario import load_scenario
from simulators.world import World, remote_brokers, use_sim_prefix

REPO = Path(__file__).resolve().parents[1]
SIM_CONFIG = REPO / "config" / "sim.toml"
EXIT_USAGE = 2


def run_sim(args: argparse.Namespace) -> int:
    """Run a scenario, or a steady crowd until stopped; 1 when a scenario's expectation failed."""
    for flag, value in (("--speed", args.speed), ("--stay-s", args.stay_s)):
        if value is not None and value <= 0:
            print(f"kiosk sim: {flag} must be above 0", file=sys.stderr)
            return EXIT_USAGE
    scenario = load_scenario(args.scenario) if args.scenario else None
    config = args.config or (scenario and scenario.config) or SIM_CONFIG
    cfg = load_config(config)
    remote = remote_brokers(cfg)
    if remote and not args.allow_remote_broker:
        # Checked before anything connects: a simulation must not join a real fleet.
        print(
            f"kiosk sim: {cfg.path}: [mqtt] brokers: {', '.join(remote)} not on loopback; "
            "a simulation does not join a real fleet (--allow-remote-broker to use it anyway, "
            "under the sim/ topic prefix)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    # One line per simulated request or frame would drown the decisions.
    logging.getLogger("simulators").setLevel(logging.WARNING)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    clock: Clock = SystemClock()
    if scenario and scenario.start is not None:
        clock = FixedWallClock(scenario.start)
    world = World(cfg, seed=scenario.seed if scenario else args.seed)
    state_dir = Path(args.state_dir).resolve() if args.state_dir else None
    cfg = use_sim_prefix(world.simulated(cfg, state_dir=state_dir))
    prefix = cfg.mqtt.prefix
    watch = Watch()
    lock = threading.Lock()

    def on_event(event: dict[str, Any]) -> None:
        watch.add(event)
        with lock:
            try:
                print(json.dumps(event), flush=True)
            except BrokenPipeError:
                stop.set()  # `kiosk sim | head`: the reader has had enough

    daemon = Daemon(cfg, sim=world.hardware(), on_event=on_event, clock=clock)
    runner = threading.Thread(target=daemon.run, name="daemon")
    runner.start()
    director = Director(
        world,
        watch,
        daemon.controller.emit,
        unlock_s=cfg.gate.unlock_s,
        seed=scenario.seed if scenario else args.seed,
        speed=(args.speed or scenario.speed) if scenario else (args.speed or 1.0),
        stop=stop,
        clock=clock,
        # A steady crowd also leaves (through the exit beam), so the venue does not fill up
        # for good; a scenario says itself who leaves.
        stay_s=None if scenario or cfg.gpio.exit_sensor < 0 else args.stay_s,
    )
    what = f"scenario {scenario.name!r}" if scenario else "a steady crowd (Ctrl-C to stop)"
    print(f"kiosk sim: {cfg.kiosk.id} ({cfg.policy.name}) with {what}", file=sys.stderr)
    if cfg.mqtt.enabled:
        print(f"kiosk sim: MQTT topics under {prefix}/", file=sys.stderr)
    try:
        if scenario:
            director.play(scenario.steps[: args.count] if args.count else scenario.steps)
        else:
            director.play(
                crowd_steps(world, seed=args.seed, rate=args.rate, count=args.count, clock=clock)
            )
    finally:
        daemon.stop()
        runner.join(timeout=15)
        world.close()
    print(summary(watch.events, director), file=sys.stderr)
    if state_dir is not None:
        print(f"kiosk sim: state kept in {state_dir}", file=sys.stderr)
    for line in director.mismatches:
        print(f"kiosk sim: {line}", file=sys.stderr)
    return 1 if director.mismatches else 0


def summary(events: list[dict[str, Any]], director: Director) -> str:
    """One line: what happened, how fast."""
    decisions = [e for e in events if e["type"] == "decision"]
    kinds = Counter(e["decision"] for e in decisions)
    types = Counter(e["type"] for e in events)
    latencies = sorted(e["latency_ms"] for e in decisions if e["reason"] != "emergency")
    passages = [e for e in events if e["type"] == "passage" and e.get("direction") == "entry"]
    minutes = max(1e-9, (time.monotonic() - director.started) / 60)
    p50 = statistics.median(latencies) if latencies else 0.0
    p95 = (
        latencies[int(len(latencies) * 0.95) - 1] if len(latencies) >= 20 else max(latencies or [0])
    )
    return (
        f"kiosk sim: {len(decisions)} decisions: {kinds['admit']} admitted, "
        f"{kinds['deny']} denied, {kinds['refer']} referred; {len(passages)} passages, "
        f"{types['passage_timeout']} timeouts, {types['forced_passage']} forced, "
        f"{director.exits} left; "
        f"decision latency p50 {p50:.1f} ms p95 {p95:.1f} ms; "
        f"{len(passages) / minutes:.1f} passages/min"
    )
