"""`kiosk sim`: the real daemon in the simulated world, one JSON line per recorded event
(``--json``, the default when standard output is not a terminal) or one readable line per
decision (``--pretty``, simulators/pretty.py); with ``--web`` also its display and console
(simulators/web/serve.py), the simulated world driven from the console."""

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
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiosk.clock import Clock, FixedWallClock, SystemClock
from kiosk.config import load_config
from kiosk.daemon import Daemon
from simulators.director import Director, Watch, crowd_steps
from simulators.pretty import GateLook, event_line
from simulators.scenario import Step, load_scenario
from simulators.web.camera_view import FrameTap
from simulators.web.controls import WorldControls
from simulators.world import World, remote_brokers, use_sim_prefix

if TYPE_CHECKING:
    from simulators.web.serve import Login

REPO = Path(__file__).resolve().parents[1]
SIM_CONFIG = REPO / "config" / "sim.toml"
EXIT_USAGE = 2


def run_sim(args: argparse.Namespace) -> int:
    """Run a scenario, or a steady crowd until stopped; 1 when a scenario's expectation failed."""
    for flag, value in (("--speed", args.speed), ("--stay-s", args.stay_s)):
        if value is not None and value <= 0:
            print(f"kiosk sim: {flag} must be above 0", file=sys.stderr)
            return EXIT_USAGE
    web_listen: str | None = args.web
    if web_listen is not None:
        from kiosk.config.values import is_loopback
        from simulators.web.serve import parse_listen

        try:
            host, _ = parse_listen(web_listen)
        except ValueError as exc:
            print(f"kiosk sim: {exc}", file=sys.stderr)
            return EXIT_USAGE
        if not is_loopback(host):
            # Plain HTTP, a throwaway password and the world's controls: this machine only.
            print(f"kiosk sim: --web {web_listen}: serve on loopback only", file=sys.stderr)
            return EXIT_USAGE
    output = args.output or ("pretty" if sys.stdout.isatty() else "json")
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
    steps = _NoteKeeper()
    daemon: Daemon | None = None
    colour = output == "pretty" and sys.stdout.isatty()

    def on_event(event: dict[str, Any]) -> None:
        watch.add(event)
        if output == "json":
            text: str | None = json.dumps(event)
        else:
            look = _look(daemon) if daemon is not None else None
            text = event_line(event, gate=look, note=steps.note, colour=colour)
        if text is None:
            return
        with lock:
            try:
                print(text, flush=True)
            except BrokenPipeError:
                stop.set()  # `kiosk sim | head`: the reader has had enough

    login = None
    if web_listen is not None:
        from simulators.web.serve import web_config

        cfg, login = web_config(cfg, web_listen)
        # The simulation's own first line says where the server listens.
        logging.getLogger("kiosk.web.app").setLevel(logging.WARNING)
    else:
        # Without --web a simulation serves nothing (and takes no port from the machine).
        cfg = replace(cfg, web=replace(cfg.web, enabled=False))
    hardware = world.hardware()
    tap = None
    if login is not None:
        # The console's camera view: what the capture driver is given (it runs unchanged).
        tap = FrameTap(world.camera)
        hardware = replace(hardware, frame_sources={"default": tap})
    daemon = Daemon(cfg, sim=hardware, on_event=on_event, clock=clock)
    controls = None
    if login is not None:
        controls = WorldControls(world, watch=watch, tap=tap, clock=clock, seed=args.seed)
        daemon.web.console_options["sim"] = controls
    runner = threading.Thread(target=daemon.run, name="daemon")
    if login is None:
        runner.start()
    elif not _start_with_web(daemon, runner, login, lock):
        stop.set()  # no server: nothing to look at; the journal line above says why
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
            director.play(
                steps.keep(scenario.steps[: args.count] if args.count else scenario.steps)
            )
        else:
            director.play(
                steps.keep(
                    crowd_steps(
                        world, seed=args.seed, rate=args.rate, count=args.count, clock=clock
                    )
                )
            )
        if login is not None and not stop.is_set():
            steps.note = None
            print("kiosk sim: the steps are done; the web stays up until Ctrl-C", file=sys.stderr)
            stop.wait()
    finally:
        if controls is not None:
            controls.close()
        daemon.stop()
        runner.join(timeout=15)
        world.close()
    print(summary(watch.events, director), file=sys.stderr)
    if state_dir is not None:
        print(f"kiosk sim: state kept in {state_dir}", file=sys.stderr)
    for line in director.mismatches:
        print(f"kiosk sim: {line}", file=sys.stderr)
    return 1 if director.mismatches else 0


def _start_with_web(
    daemon: Daemon, runner: threading.Thread, login: Login, lock: threading.Lock
) -> bool:
    """Start the daemon and print where its web server listens as the first lines (the
    records wait for them: the daemon starts its server before it records anything)."""
    from simulators.web.serve import lines, wait_for_server

    with lock:
        runner.start()
        server = wait_for_server(daemon.web, runner.is_alive)
        if server is None:
            print("kiosk sim: the web server did not start", file=sys.stderr)
            return False
        for line in lines(server, login):
            print(line, flush=True)
    return True


class _NoteKeeper:
    """The note of the step being played (a scenario's ``note``), for the readable lines."""

    def __init__(self) -> None:
        self.note: str | None = None

    def keep(self, steps: Iterable[Step]) -> Iterator[Step]:
        for step in steps:
            self.note = step.args.get("note")
            yield step


def _look(daemon: Daemon) -> GateLook | None:
    # The daemon's observable gate (kiosk/gate/view.py); a daemon built before the
    # controller published into it has none, and the line goes without relay and light.
    view = getattr(daemon, "view", None)
    if view is None:
        return None
    snap = view.snapshot()
    return GateLook(snap.turnstile, snap.light, snap.occupancy, snap.capacity)


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
