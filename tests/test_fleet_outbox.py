"""The outbox against a real broker: at least once, in seq order, across outages, reconnects,
and a kiosk killed between its commit and the broker's PUBACK."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kiosk.clock import FakeClock, SystemClock
from kiosk.fleet.outbox import Outbox
from kiosk.store import EventStore
from mosquitto import Mosquitto
from mqtt_support import WAIT, Observer, start_link, wait_until
from support import REPO

TOPIC = "ashyq/v1/kiosk/k1/events"


def open_store(path: Path, clock: Any = None) -> EventStore:
    return EventStore(path, kiosk_id="k1", venue_id="v1", clock=clock or SystemClock())


def record(store: EventStore, outbox: Outbox | None, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        store.record("decision", decision="admit", reason="admitted", subject=None, n=i)
        if outbox is not None:
            outbox.wake()


def first_seen_seqs(payloads: list[bytes]) -> list[int]:
    """seqs in order of first arrival (consumers drop duplicates by event_id)."""
    seen: dict[str, int] = {}
    for p in payloads:
        event = json.loads(p)
        seen.setdefault(event["event_id"], event["seq"])
    return list(seen.values())


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EventStore]:
    s = open_store(tmp_path / "events.db")
    yield s
    s.close()


def test_events_go_out_in_order_and_are_marked_only_when_acknowledged(
    mosquitto: Mosquitto, store: EventStore
) -> None:
    # An outside client (mosquitto_sub) checks the topic and the exact payloads; its output is
    # line-buffered (stdbuf) so that the SUBACK line says when it is listening.
    sub = subprocess.Popen(
        [
            "stdbuf",
            "-oL",
            "mosquitto_sub",
            "-d",
            "-V",
            "mqttv5",
            "-p",
            str(mosquitto.port),
            "-q",
            "1",
        ]
        + ["-t", TOPIC, "-C", "3", "-W", str(int(WAIT)), "-F", "%t %p"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert sub.stdout is not None
    while "SUBACK" not in sub.stdout.readline():
        assert sub.poll() is None, "mosquitto_sub ended before subscribing"
    link = start_link(mosquitto)
    outbox = Outbox(store, link)
    try:
        record(store, None, 3)
        assert store.undelivered_count() == 3
        outbox.start()
        outbox.wake()
        assert outbox.flush(WAIT)
        out, _ = sub.communicate(timeout=WAIT)
        lines = [line for line in out.splitlines() if line.startswith(TOPIC + " ")]
        assert [json.loads(line.split(" ", 1)[1]) for line in lines] == store.events()
        assert lines[0].split(" ", 1)[1] == json.dumps(store.events()[0], separators=(",", ":"))
        stats = outbox.stats()
        assert (stats.sent, stats.acked, stats.backlog, stats.inflight) == (3, 3, 0, 0)
    finally:
        sub.kill()
        outbox.stop()
        link.stop()


@pytest.fixture
def persistent_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """A broker whose persistence works when the tests run as root: mosquitto would otherwise
    drop to user "mosquitto", which cannot write into pytest's private tmp folder, and every
    session would be forgotten across a restart."""
    with Mosquitto(tmp_path / "persistent-broker", extra_conf="") as broker:
        yield broker


def test_events_recorded_while_the_broker_is_down_arrive_after_it_returns(
    persistent_broker: Mosquitto, store: EventStore
) -> None:
    mosquitto = persistent_broker
    obs = Observer(mosquitto, TOPIC, persistent=True, name="consumer")
    link = start_link(mosquitto, backoff_min_s=0.05, backoff_max_s=0.5)
    outbox = Outbox(store, link, batch=20)
    outbox.start()
    try:
        record(store, outbox, 5)
        assert outbox.flush(WAIT)
        mosquitto.stop()  # clean stop: the consumer's session survives in the broker's store
        wait_until(lambda: not link.connected, what="the link notices")
        record(store, outbox, 300, start=5)
        assert store.undelivered_count() == 300
        mosquitto.start()
        assert outbox.flush(WAIT), "backlog drained after the broker returned"
        seqs = obs.wait_for(lambda p: len(set(first_seen_seqs(p))) == 305 and first_seen_seqs(p))
        assert seqs == list(range(1, 306)), "all of them, in order"
        assert outbox.stats().backlog == 0
    finally:
        outbox.stop()
        link.stop()
        obs.close()


def test_at_most_inflight_unacknowledged_and_resent_after_a_reconnect(
    mosquitto: Mosquitto, store: EventStore
) -> None:
    link = start_link(mosquitto, backoff_min_s=0.05, backoff_max_s=0.5, keepalive_s=60)
    outbox = Outbox(store, link, inflight=8, batch=5)
    outbox.start()
    assert mosquitto.proc is not None
    try:
        mosquitto.proc.send_signal(signal.SIGSTOP)  # no PUBACK will come
        record(store, outbox, 30)
        wait_until(lambda: outbox.stats().sent == 8, what="a full window")
        outbox.wake()
        assert outbox.stats().sent == 8 and outbox.stats().inflight == 8
        assert store.undelivered_count() == 30
        mosquitto.kill()  # a crash while paused: those 8 were never acknowledged
        obs = Observer(mosquitto.start(), TOPIC)
        wait_until(lambda: outbox.stats().resent >= 8, what="in-flight events re-sent")
        assert outbox.flush(WAIT)
        assert store.undelivered_count() == 0
        obs.close()
    finally:
        if mosquitto.proc is not None:
            mosquitto.proc.send_signal(signal.SIGCONT)
        outbox.stop()
        link.stop()


_CHILD = textwrap.dedent(
    """
    import sys, time
    from kiosk.clock import SystemClock
    from kiosk.fleet.link import MqttLink
    from kiosk.fleet.outbox import Outbox
    from kiosk.store import EventStore

    url, path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    store = EventStore(path, kiosk_id="k1", venue_id="v1", clock=SystemClock())
    link = MqttLink(brokers=[url], client_id="kiosk-k1", kiosk_id="k1", keepalive_s=60)
    outbox = Outbox(store, link)
    link.start()
    assert link.wait_connected(20)
    outbox.start()
    print("connected", flush=True)
    sys.stdin.readline()  # the broker is paused now
    for i in range(n):
        store.record("decision", decision="admit", reason="admitted", n=i)
        outbox.wake()
    end = time.monotonic() + 20
    while outbox.stats().sent < 16 and time.monotonic() < end:
        time.sleep(0.01)
    print("sent", outbox.stats().sent, flush=True)
    time.sleep(600)
    """
)


def test_a_kiosk_killed_between_commit_and_puback_resends_on_restart(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    n = 40
    path = tmp_path / "events.db"
    obs = Observer(mosquitto, TOPIC, persistent=True, name="consumer")
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, mosquitto.url, str(path), str(n)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert mosquitto.proc is not None and child.stdin and child.stdout
    try:
        assert child.stdout.readline().strip() == "connected"
        mosquitto.proc.send_signal(signal.SIGSTOP)
        child.stdin.write("go\n")
        child.stdin.flush()
        assert child.stdout.readline().split() == ["sent", "16"]
        child.send_signal(signal.SIGKILL)
        child.wait(WAIT)
    finally:
        mosquitto.proc.send_signal(signal.SIGCONT)
        if child.poll() is None:
            child.kill()
    store = open_store(path)
    try:
        assert store.undelivered_count() == n, "nothing is marked without a PUBACK"
        link = start_link(mosquitto)
        outbox = Outbox(store, link)
        outbox.start()
        assert outbox.flush(WAIT)
        seqs = obs.wait_for(lambda p: len(set(first_seen_seqs(p))) == n and first_seen_seqs(p))
        assert seqs == list(range(1, n + 1)), "every event arrives; duplicates allowed"
        outbox.stop()
        link.stop()
    finally:
        store.close()
        obs.close()


def test_delivered_events_are_pruned_after_retention(mosquitto: Mosquitto, tmp_path: Path) -> None:
    clock = FakeClock()
    store = open_store(tmp_path / "events.db", clock)
    link = start_link(mosquitto)
    outbox = Outbox(store, link, retention_s=3600, prune_every_s=0.05, poll_s=0.05)
    outbox.start()
    try:
        record(store, outbox, 10)
        assert outbox.flush(WAIT)
        clock.advance(1800)
        record(store, outbox, 1, start=10)  # young, and not yet delivered
        clock.advance(1801)
        wait_until(lambda: store.count() <= 1, what="old delivered events pruned")
        assert outbox.flush(WAIT)
        assert store.last_seq == 11
    finally:
        outbox.stop()
        link.stop()
        store.close()
