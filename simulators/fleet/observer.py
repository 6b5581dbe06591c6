"""The observer: one client that sees every event the fleet publishes, and the tally of
what was lost, duplicated or left a gap."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import Counter
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from simulators.fleet.errors import FleetError
from simulators.mqtt_client import new_client, parse_broker_url

_OBSERVER_SESSION_S = 600


class Observer:
    """Collects every event the fleet publishes: (kiosk id, seq, event id), by arrival time."""

    def __init__(self, broker_url: str, prefix: str, kiosk_prefix: str) -> None:
        self.topic = f"{prefix}/kiosk/+/events"
        self._kiosk_prefix = kiosk_prefix
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()  # event_id -> receptions
        self.seqs: dict[str, set[int]] = {}
        self.first_seen: dict[str, float] = {}  # event_id -> monotonic time of first reception
        self.undecodable = 0
        self._subscribed = threading.Event()
        address = parse_broker_url(broker_url)
        self._client = new_client(address, f"{kiosk_prefix}observer")
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = lambda *_a: self._subscribed.set()
        self._client.on_message = self._on_message
        self._address = address

    def start(self, timeout: float = 10.0) -> None:
        # A persistent session: events the broker accepted while this client was away (a
        # broker restart, a reconnect racing the kiosks') wait for it instead of vanishing.
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = _OBSERVER_SESSION_S
        self._client.connect_async(
            self._address.host, self._address.port, keepalive=30, clean_start=False,
            properties=props,
        )  # fmt: skip
        self._client.loop_start()
        if not self._subscribed.wait(timeout):
            self._client.loop_stop()
            raise FleetError(f"observer: no subscription on {self._address} within {timeout:g} s")

    def clear_retained(self, topics: list[str]) -> None:
        """Remove retained messages (the kiosks' Wills) the run left on the broker."""
        for topic in topics:
            self._client.publish(topic, b"", qos=1, retain=True)

    def stop(self) -> None:
        """Disconnect and end the session (expiry 0), so the broker keeps nothing for it."""
        props = Properties(PacketTypes.DISCONNECT)
        props.SessionExpiryInterval = 0
        with contextlib.suppress(Exception):
            self._client.disconnect(properties=props)
        self._client.loop_stop()

    def received(self) -> int:
        with self._lock:
            return len(self.counts)

    def has_all(self, event_ids: set[str]) -> bool:
        with self._lock:
            return all(e in self.counts for e in event_ids)

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if not reason.is_failure:
            client.subscribe(self.topic, qos=1)

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        now = time.monotonic()
        try:
            event = json.loads(msg.payload)
            kiosk_id, seq, event_id = event["kiosk_id"], event["seq"], event["event_id"]
        except (ValueError, TypeError, KeyError, UnicodeDecodeError):
            with self._lock:
                self.undecodable += 1
            return
        if not isinstance(kiosk_id, str) or not kiosk_id.startswith(self._kiosk_prefix):
            return  # another fleet or a real kiosk on the same broker
        with self._lock:
            self.counts[event_id] += 1
            self.seqs.setdefault(kiosk_id, set()).add(seq)
            self.first_seen.setdefault(event_id, now)


def tally(
    observer: Observer, recorded: dict[str, list[tuple[int, str]]], window_end: float
) -> tuple[int, int, int, int, int]:
    """(lost, duplicated, seq gaps, unique received, first received within the window)."""
    with observer._lock:  # the observer is ours; its thread may still be delivering
        counts = dict(observer.counts)
        seqs = {k: set(v) for k, v in observer.seqs.items()}
        in_window = sum(1 for t in observer.first_seen.values() if t <= window_end)
    lost = gaps = 0
    for kiosk_id, events in recorded.items():
        lost += sum(1 for _seq, eid in events if eid not in counts)
        if events:
            last = max(seq for seq, _eid in events)
            gaps += last - len(seqs.get(kiosk_id, set()) & set(range(1, last + 1)))
    duplicated = sum(c - 1 for c in counts.values())
    return lost, duplicated, gaps, len(counts), in_window


def clear_wills(observer: Observer, prefix: str, kiosk_prefix: str, kiosks: int) -> None:
    """Remove the retained Wills the run's kiosks left on their state topics."""
    # Each link left its Will ({"online": false}, retained) on the state topic of a kiosk that
    # will never exist again: on a shared broker, thousands of stale retained messages.
    time.sleep(0.2)
    observer.clear_retained([f"{prefix}/kiosk/{kiosk_prefix}{i:05d}/state" for i in range(kiosks)])
    time.sleep(0.5)
