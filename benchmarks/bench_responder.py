"""Benchmark of the MQTT status responder: answers per second and latency over loopback.

Prints figures; asserts nothing. A real mosquitto (started here, or ``--broker``) carries
the traffic; the responder runs in its own process and the requesters in others, so the
responder's figures are not those of a process sharing its GIL with the load. Each
requester is one MQTT 5 client playing a kiosk: it keeps ``--window`` requests in flight
(QoS 1, Response Topic + Correlation Data, as status-api.md says) and sends the next one as
soon as an answer comes back. Latency is from publishing a request to receiving its answer.

    .venv/bin/python benchmarks/bench_responder.py [--clients 1,10,50] [--seconds 3]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]  # the repo and the tests' broker helper

from paho.mqtt.packettypes import PacketTypes  # noqa: E402
from paho.mqtt.properties import Properties  # noqa: E402

from mosquitto import Mosquitto  # noqa: E402
from simulators.mqtt_client import DEFAULT_PREFIX, new_client, parse_broker_url  # noqa: E402
from simulators.mqtt_responder import MqttStatusResponder  # noqa: E402
from simulators.population import load  # noqa: E402

WARMUP_S = 0.5
DRAIN_S = 10.0


# --- the responder's process -------------------------------------------------------------


def responder_process(
    broker_url: str, ready: Any, stop: Any, results: Any, latency_ms: float
) -> None:
    """Run the responder until ``stop``; report its counters and CPU seconds on ``results``."""
    responder = MqttStatusResponder(load(), broker_url=broker_url, max_age_s=0)
    responder.faults.set(latency_ms=latency_ms)
    with responder:
        cpu0 = time.process_time()
        ready.set()
        stop.wait()
        results.put({**responder.stats.snapshot(), "cpu_s": time.process_time() - cpu0})


# --- the requesters' processes -----------------------------------------------------------


class Requester:
    """One simulated kiosk keeping ``window`` requests in flight until ``stop_at``."""

    def __init__(self, broker_url: str, name: str, subs: list[str], window: int) -> None:
        self.topic = f"{DEFAULT_PREFIX}/kiosk/{name}/status/response"
        self.subs = subs
        self.window = window
        self.stop_at = float("inf")
        self.pending: dict[bytes, float] = {}
        self.samples: list[tuple[float, float]] = []  # (sent at, latency s)
        self.mismatched = 0
        self._count = 0
        self._lock = threading.Lock()
        self.subscribed = threading.Event()
        address = parse_broker_url(broker_url)
        self.client = new_client(address, f"bench-{name}")
        self.client.on_connect = lambda c, *_: c.subscribe(self.topic, qos=1)
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(address.host, address.port)
        self.client.loop_start()

    def start(self, stop_at: float) -> None:
        self.stop_at = stop_at
        for _ in range(self.window):
            self._send()

    def _send(self) -> None:
        with self._lock:
            self._count += 1
            n = self._count
            corr = n.to_bytes(16, "big")
            self.pending[corr] = time.monotonic()
        props = Properties(PacketTypes.PUBLISH)
        props.ResponseTopic = self.topic
        props.CorrelationData = corr
        props.ContentType = "application/json"
        body = json.dumps({"sub": self.subs[n % len(self.subs)]}).encode()
        self.client.publish(f"{DEFAULT_PREFIX}/status/request", body, qos=1, properties=props)

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        now = time.monotonic()
        with self._lock:
            sent = self.pending.pop(message.properties.CorrelationData, None)
            if sent is None:
                self.mismatched += 1
                return
            self.samples.append((sent, now - sent))
        if now < self.stop_at:
            self._send()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def requester_process(
    broker_url: str, names: list[str], window: int, ready: Any, go: Any, results: Any
) -> None:
    """Run some requesters for one measurement; report their samples on ``results``."""
    subs = [p.sub for p in load().people]
    requesters = [Requester(broker_url, name, subs, window) for name in names]
    for r in requesters:
        r.subscribed.wait(30)
    ready.release()
    start_at, stop_at = go.get()
    for r in requesters:
        r.start(stop_at)
    drain_until = stop_at + DRAIN_S
    while time.monotonic() < drain_until and any(r.pending for r in requesters):
        time.sleep(0.05)
    samples = [s for r in requesters for s in r.samples]
    results.put(
        {
            "samples": samples,
            "lost": sum(len(r.pending) for r in requesters),
            "mismatched": sum(r.mismatched for r in requesters),
        }
    )
    for r in requesters:
        r.close()


# --- one measurement ---------------------------------------------------------------------


@dataclass
class Figures:
    clients: int
    window: int
    rate: float
    p50_ms: float
    p99_ms: float
    lost: int
    mismatched: int


def measure(
    ctx: Any, broker_url: str, clients: int, window: int, seconds: float, procs: int
) -> Figures:
    """One run with ``clients`` requesters spread over ``procs`` processes."""
    procs = max(1, min(procs, clients))
    names = [f"k{i:04d}" for i in range(clients)]
    ready, go, results = ctx.Semaphore(0), ctx.Queue(), ctx.Queue()
    workers = [
        ctx.Process(
            target=requester_process,
            args=(broker_url, names[i::procs], window, ready, go, results),
        )
        for i in range(procs)
    ]
    for w in workers:
        w.start()
    for _ in workers:
        ready.acquire()
    start_at = time.monotonic() + 0.2
    stop_at = start_at + WARMUP_S + seconds
    for _ in workers:
        go.put((start_at, stop_at))
    parts = [results.get() for _ in workers]
    for w in workers:
        w.join()
    # Only requests sent after the warm-up and before the end count.
    window_start = start_at + WARMUP_S
    latencies = sorted(
        lat for part in parts for sent, lat in part["samples"] if window_start <= sent < stop_at
    )
    n = len(latencies)
    return Figures(
        clients=clients,
        window=window,
        rate=n / seconds,
        p50_ms=statistics.median(latencies) * 1000 if n else float("nan"),
        p99_ms=latencies[max(0, int(n * 0.99) - 1)] * 1000 if n else float("nan"),
        lost=sum(p["lost"] for p in parts),
        mismatched=sum(p["mismatched"] for p in parts),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--clients", default="1,10,50", help="requester counts, comma-separated")
    ap.add_argument("--window", type=int, default=1, help="requests in flight per requester")
    ap.add_argument("--seconds", type=float, default=3.0, help="measured time per run")
    ap.add_argument("--procs", type=int, default=2, help="processes the requesters run in")
    ap.add_argument("--latency-ms", type=float, default=0, help="inject responder latency")
    ap.add_argument("--broker", default=None, help="use this broker instead of starting one")
    args = ap.parse_args()
    counts = [int(c) for c in args.clients.split(",")]
    ctx = mp.get_context("spawn")  # no inherited paho threads or sockets

    with tempfile.TemporaryDirectory() as tmp:
        broker = None
        if args.broker is None:
            # Nagle on the broker's sockets holds small answers back for a delayed ACK.
            broker = Mosquitto(Path(tmp) / "broker", extra_conf="set_tcp_nodelay true\n").start()
        broker_url = args.broker or broker.url  # type: ignore[union-attr]
        print(
            f"responder over {broker_url} (mosquitto), {os.cpu_count()} CPUs, "
            f"requesters in {args.procs} processes, window {args.window}, "
            f"{args.seconds:g} s per run after {WARMUP_S:g} s warm-up, "
            f"injected latency {args.latency_ms:g} ms"
        )
        print(
            f"{'clients':>7} {'in flight':>9} {'answers/s':>10} {'p50 ms':>8} {'p99 ms':>8} "
            f"{'lost':>5} {'wrong':>5} {'responder CPU/answer':>21}"
        )
        try:
            for clients in counts:
                ready, stop, results = ctx.Event(), ctx.Event(), ctx.Queue()
                responder = ctx.Process(
                    target=responder_process,
                    args=(broker_url, ready, stop, results, args.latency_ms),
                )
                responder.start()
                if not ready.wait(30):
                    raise SystemExit("responder did not start")
                fig = measure(ctx, broker_url, clients, args.window, args.seconds, args.procs)
                stop.set()
                stats = results.get()
                responder.join()
                cpu_ms = stats["cpu_s"] / max(1, stats["answered"]) * 1000
                print(
                    f"{fig.clients:>7} {fig.clients * fig.window:>9} {fig.rate:>10.0f} "
                    f"{fig.p50_ms:>8.2f} {fig.p99_ms:>8.2f} {fig.lost:>5} {fig.mismatched:>5} "
                    f"{cpu_ms:>18.3f} ms"
                )
        finally:
            if broker is not None:
                broker.kill()


if __name__ == "__main__":
    main()
