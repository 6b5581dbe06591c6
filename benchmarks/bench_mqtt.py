"""MQTT figures on this machine, over loopback against a real mosquitto started here.

Prints figures only: speed is measured here, never asserted in tests (DEVELOPERS.md).

1. Status lookup latency (MQTT 5 request/response) against a minimal responder inside this
   script (a paho client answering from a dict), idle and while a backlog drains.
2. Drain of an event backlog after an outage (default 10,000 events) while the kiosk goes on
   deciding: new events are recorded at 5/s from another thread, and their record latency
   (the controller's durable commit, sharing the store with the draining outbox) is reported.

    .venv/bin/python benchmarks/bench_mqtt.py [--lookups N] [--backlog N] [--dir PATH]
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the tests' mosquitto runner

import paho.mqtt.client as paho  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402
from paho.mqtt.packettypes import PacketTypes  # noqa: E402
from paho.mqtt.properties import Properties  # noqa: E402

from kiosk.clock import SystemClock  # noqa: E402
from kiosk.fleet import outbox as outbox_module  # noqa: E402
from kiosk.fleet.link import MqttLink  # noqa: E402
from kiosk.fleet.outbox import Outbox  # noqa: E402
from kiosk.status.mqtt import MqttStatusClient  # noqa: E402
from kiosk.store import EventStore  # noqa: E402
from mosquitto import Mosquitto  # noqa: E402

PREFIX = "ashyq/v1"
AS_OF = "2021-05-21T09:30:00Z"


def percentile(sorted_values: list[float], q: float) -> float:
    """The q-quantile (0..1) of already-sorted values, nearest rank."""
    index = min(len(sorted_values) - 1, max(0, round(q * len(sorted_values)) - 1))
    return sorted_values[index]


def report(name: str, latencies_s: list[float], total_s: float | None = None) -> None:
    lat = sorted(latencies_s)
    rate = f"{len(lat) / total_s:>8.0f}/s" if total_s else f"{len(lat):>6d} samples"
    print(
        f"  {name:<34} {rate}   p50 {percentile(lat, 0.50) * 1e3:7.3f} ms   "
        f"p99 {percentile(lat, 0.99) * 1e3:7.3f} ms   max {lat[-1] * 1e3:7.3f} ms"
    )


class Responder:
    """A minimal status responder: answers every request from a dict of subjects."""

    def __init__(self, broker: Mosquitto, statuses: dict[str, str]) -> None:
        self.statuses = statuses
        ready = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
        self.client.on_connect = lambda c, *a: c.subscribe(f"{PREFIX}/status/request", qos=1)
        self.client.on_subscribe = lambda *a: ready.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", broker.port)
        # Like the kiosk: no Nagle delay on small responses.
        self.client.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.client.loop_start()
        ready.wait(10)

    def _on_message(self, client: Any, _u: Any, msg: Any) -> None:
        sub = json.loads(msg.payload)["sub"]
        st = self.statuses.get(sub)
        doc = (
            {"sub": sub, "st": st, "as_of": AS_OF, "max_age": 300}
            if st
            else {"error": "unknown_subject"}
        )
        props = Properties(PacketTypes.PUBLISH)
        props.CorrelationData = msg.properties.CorrelationData
        client.publish(msg.properties.ResponseTopic, json.dumps(doc), qos=1, properties=props)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Consumer:
    """Counts distinct events arriving on the kiosk's events topic (a fleet back end)."""

    def __init__(self, broker: Mosquitto) -> None:
        self.seqs: set[int] = set()
        self.messages = 0
        ready = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
        self.client.on_connect = lambda c, *a: c.subscribe(f"{PREFIX}/kiosk/k1/events", qos=1)
        self.client.on_subscribe = lambda *a: ready.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        ready.wait(10)

    def _on_message(self, _c: Any, _u: Any, msg: Any) -> None:
        self.messages += 1
        self.seqs.add(json.loads(msg.payload)["seq"])

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def new_link(broker: Mosquitto) -> MqttLink:
    return MqttLink(brokers=[broker.url], client_id="kiosk-k1", kiosk_id="k1")


def record_one(store: EventStore, i: int) -> None:
    store.record(
        "decision",
        decision="admit",
        reason="admitted",
        st="green",
        via="online",
        source="camera",
        subject="0123456789abcdef0123",
        latency_ms=i % 100,
    )


def bench_lookups(broker: Mosquitto, n: int, label: str) -> None:
    subjects = [f"iin:{900000000000 + i:012d}" for i in range(100)]
    responder = Responder(broker, {s: "green" for s in subjects})
    link = new_link(broker)
    status = MqttStatusClient(link)
    link.start()
    link.wait_subscribed(10)
    for s in subjects[:20]:  # warm up
        status.lookup(s, deadline_s=1.0)
    latencies, misses = [], 0
    start = time.perf_counter()
    for i in range(n):
        t0 = time.perf_counter()
        result = status.lookup(subjects[i % len(subjects)], deadline_s=0.8)
        latencies.append(time.perf_counter() - t0)
        misses += result.st != "green"
    total = time.perf_counter() - start
    print(f"MQTT status lookups, one at a time, broker {label} ({n}, {misses} unanswered):")
    report("lookup (request -> response)", latencies, total)
    status.close()
    link.stop()
    responder.close()


def bench_drain(broker: Mosquitto, directory: Path, backlog: int, live_rate: float) -> None:
    store = EventStore(directory / "events.db", kiosk_id="k1", venue_id="v1", clock=SystemClock())
    print(f"\nDrain of a {backlog:,}-event backlog after an outage:")
    t0 = time.perf_counter()
    for i in range(backlog):  # recorded while the broker was unreachable
        record_one(store, i)
    print(f"  (backlog recorded in {time.perf_counter() - t0:.1f} s)")
    idle: list[float] = []
    for i in range(200):  # the same record() with nothing else going on, for comparison
        t = time.perf_counter()
        record_one(store, i)
        idle.append(time.perf_counter() - t)
    report("record() latency, no drain", idle)
    consumer = Consumer(broker)
    subjects = [f"iin:{900000000000 + i:012d}" for i in range(100)]
    responder = Responder(broker, {s: "green" for s in subjects})
    link = new_link(broker)
    outbox = Outbox(store, link)
    status = MqttStatusClient(link)
    stop = threading.Event()
    record_lat: list[float] = []
    lookup_lat: list[float] = []

    def live_decisions() -> None:
        # The controller's side: a decision's lookup, then its durable record, at live_rate.
        i = 0
        while not stop.wait(1.0 / live_rate):
            t = time.perf_counter()
            status.lookup(subjects[i % len(subjects)], deadline_s=0.8)
            lookup_lat.append(time.perf_counter() - t)
            t = time.perf_counter()
            record_one(store, i)
            record_lat.append(time.perf_counter() - t)
            outbox.wake()
            i += 1

    outbox.start()
    link.start()
    link.wait_subscribed(10)
    live = threading.Thread(target=live_decisions, daemon=True)
    start = time.perf_counter()
    live.start()
    while store.undelivered_count() > 0:
        time.sleep(0.01)
    drained = time.perf_counter() - start
    stop.set()
    live.join()
    outbox.flush(10)
    stats = outbox.stats()
    deadline = time.monotonic() + 10
    while len(consumer.seqs) < store.last_seq and time.monotonic() < deadline:
        time.sleep(0.01)
    rate = stats.acked / drained
    print(
        f"  drained {stats.acked:,} events in {drained:.2f} s: {rate:,.0f} events/s"
        f" (sent {stats.sent:,}, re-sent {stats.resent}); consumer got "
        f"{len(consumer.seqs):,} of {store.last_seq:,} distinct events"
    )
    print(f"  live decisions during the drain ({live_rate:g}/s):")
    report("record() latency", record_lat)
    report("lookup latency", lookup_lat)
    outbox.stop()
    status.close()
    link.stop()
    responder.close()
    consumer.close()
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lookups", type=int, default=2000)
    parser.add_argument("--backlog", type=int, default=10_000)
    parser.add_argument("--live-rate", type=float, default=5.0, help="decisions/s during drain")
    parser.add_argument("--dir", type=Path, default=None, help="folder for the event store")
    parser.add_argument(
        "--yield-ms", type=float, default=None, help="experiment: the outbox's pause between turns"
    )
    args = parser.parse_args()
    if args.yield_ms is not None:
        outbox_module._YIELD_S = args.yield_ms / 1000
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.dir or Path(tmp)
        with Mosquitto(Path(tmp) / "plain") as broker:
            bench_lookups(broker, args.lookups // 10, "set_tcp_nodelay false (the default)")
        # The broker, too, must not hold small packets back (Nagle): recommended for the fleet.
        nodelay = "set_tcp_nodelay true\n"
        with Mosquitto(Path(tmp) / "broker", extra_conf=nodelay) as broker:
            bench_lookups(broker, args.lookups, "set_tcp_nodelay true")
            bench_drain(broker, folder, args.backlog, args.live_rate)


if __name__ == "__main__":
    main()
