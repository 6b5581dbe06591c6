"""Helpers shared by the MQTT tests: an outside observer client, waiting on conditions, and a
kiosk link started against test brokers."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from kiosk.fleet.link import MqttLink
from mosquitto import Mosquitto
from support import wait_until  # noqa: F401  (the tests import it from here too)

WAIT = 20.0  # generous: a busy 2-core machine; tests wait on conditions, never on durations


class Observer:
    """An outside MQTT 5 client that records what it receives (topic, payload, props, retain).

    ``persistent`` keeps its session across broker restarts (session expiry one hour), so that
    messages published while it was away are queued for it by the broker.
    """

    def __init__(
        self, broker: Mosquitto, topic: str = "#", *, persistent: bool = False, name: str = ""
    ) -> None:
        self.messages: list[tuple[str, bytes, Any, bool]] = []
        self._cond = threading.Condition()
        self._subscribed = threading.Event()
        self._topic = topic
        self._persistent = persistent
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=name or f"observer-{id(self)}",
            protocol=paho.MQTTv5,
        )
        self.client.reconnect_delay_set(0.05, 0.2)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.on_message = self._on_message
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600 if persistent else 0
        self.client.connect(
            "127.0.0.1", broker.port, 60, clean_start=not persistent, properties=props
        )
        self.client.loop_start()
        assert self._subscribed.wait(WAIT), "observer did not subscribe"

    def _on_connect(self, client: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if not reason.is_failure:
            client.subscribe(self._topic, qos=1)

    def _on_message(self, _c: Any, _u: Any, msg: Any) -> None:
        with self._cond:
            self.messages.append((msg.topic, msg.payload, msg.properties, bool(msg.retain)))
            self._cond.notify_all()

    def payloads(self, topic: str | None = None) -> list[bytes]:
        with self._cond:
            return [p for t, p, _pr, _r in self.messages if topic is None or t == topic]

    def wait_for(self, predicate: Callable[[list[bytes]], Any], topic: str | None = None) -> Any:
        return wait_until(lambda: predicate(self.payloads(topic)), what=f"messages on {topic}")

    def publish(self, topic: str, payload: bytes, **kw: Any) -> None:
        self.client.publish(topic, payload, qos=1, **kw).wait_for_publish(WAIT)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def start_link(*brokers: Mosquitto | str, **kw: Any) -> MqttLink:
    """A started link for kiosk ``k1`` that is connected (to the first broker that answers)."""
    urls = [b if isinstance(b, str) else b.url for b in brokers]
    kw.setdefault("client_id", "kiosk-k1")
    kw.setdefault("kiosk_id", "k1")
    link = MqttLink(brokers=urls, **kw)
    link.start()
    assert link.wait_connected(WAIT), "link did not connect"
    return link
