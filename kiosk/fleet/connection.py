"""One paho client for exactly one connection to one broker, with its acknowledgement book.

kiosk.fleet.link makes a fresh one for every connection attempt: a message handed to it is
either acknowledged on this connection or forgotten with it, so no paho-internal queue
outlives its socket and no stale message id can be mistaken for a new one.
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Callable

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from kiosk.fleet.broker import BrokerUrl, no_delay

# What a connection says is part of the link's journal: one logger for both.
log = logging.getLogger("kiosk.fleet.link")

#: MQTT 5 DISCONNECT reason 0x04: the broker publishes the Will even though we said goodbye.
_DISCONNECT_WITH_WILL = 4

#: What to call once the broker acknowledged a message, and the message's topic.
AckEntry = tuple[Callable[[], None] | None, str]


class Connection(paho.Client):
    """A paho MQTT 5 client used for exactly one connection, with its own acknowledgement book.

    ``up`` is set by the link on CONNACK; ``ended`` once the connection is over, whoever
    ended it. The Will (``will_topic``, ``will_payload``, retained) says the kiosk is offline.
    """

    def __init__(
        self,
        broker: BrokerUrl,
        *,
        client_id: str,
        connect_timeout_s: float,
        username: str | None,
        password: str | None,
        ssl_context: ssl.SSLContext | None,
        will_topic: str,
        will_payload: bytes,
    ) -> None:
        super().__init__(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=paho.MQTTv5,
            reconnect_on_failure=False,
        )
        self.broker = broker
        self.up = False
        self.up_at: float | None = None  # when CONNACK came (monotonic)
        self.ended = threading.Event()
        self.ack_lock = threading.Lock()
        # mid -> (on_ack, topic); an ack that overtakes its registration lands in ``early``.
        self.acks: dict[int, AckEntry] = {}
        self.early: dict[int, bool] = {}
        self.unacked_subs: set[int] = set()  # SUBSCRIBE mids awaiting their SUBACK
        # Exceptions from our callbacks are caught by paho and logged, never re-raised.
        self.suppress_exceptions = True
        self.connect_timeout = connect_timeout_s
        if username is not None:
            self.username_pw_set(username, password)
        if broker.tls:
            assert ssl_context is not None, "mqtts:// needs the link's TLS context"
            self.tls_set_context(ssl_context)
        self.will_set(will_topic, will_payload, qos=1, retain=True)

    def open(self, keepalive_s: int) -> None:
        """Connect (blocking until the socket is up) with a clean, unkept session; raises
        ``OSError``, ``ssl.SSLError`` or ``ValueError`` when that fails."""
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 0
        self.connect(
            self.broker.host, self.broker.port, keepalive_s, clean_start=True, properties=props
        )
        no_delay(self.socket())

    def subscribe_noted(self, topic: str, qos: int) -> MQTTErrorCode:
        """Send SUBSCRIBE and note its mid in ``unacked_subs`` until the SUBACK; ValueError
        for a topic paho refuses. The caller holds the lock its SUBACK handler takes, so a
        fast SUBACK cannot overtake the note."""
        rc, mid = self.subscribe(topic, qos=qos)
        if rc == MQTTErrorCode.MQTT_ERR_SUCCESS and mid is not None:
            self.unacked_subs.add(mid)
        return rc

    def send(
        self,
        topic: str,
        payload: bytes,
        qos: int,
        retain: bool,
        properties: Properties | None,
        on_ack: Callable[[], None] | None,
    ) -> tuple[bool, bool]:
        """Publish on this connection: (handed to paho, already acknowledged).

        A QoS 1 message is noted in the acknowledgement book with ``on_ack``; if its PUBACK
        overtook this call it is reported acknowledged here instead. ValueError or TypeError
        for a topic or payload paho refuses.
        """
        info = self.publish(topic, payload, qos=qos, retain=retain, properties=properties)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            return False, False
        if qos == 0:
            return True, False
        with self.ack_lock:
            ok = self.early.pop(info.mid, None)
            if ok is None:
                self.acks[info.mid] = (on_ack, topic)
        return True, bool(ok)

    def acknowledged(self, mid: int, ok: bool) -> AckEntry | None:
        """The PUBACK of ``mid`` came: its entry, or None when it overtook its registration
        (which then finds it in ``early``)."""
        with self.ack_lock:
            entry = self.acks.pop(mid, None)
            if entry is None:
                self.early[mid] = ok
        return entry

    def close(self, *, with_will: bool) -> None:
        """Disconnect and stop the network thread; ``with_will`` has the broker publish the
        Will all the same (a clean stop: the kiosk is offline)."""
        self.up = False
        try:
            if with_will:
                self.disconnect(
                    reasoncode=ReasonCode(PacketTypes.DISCONNECT, identifier=_DISCONNECT_WITH_WILL)
                )
            else:
                self.disconnect()
            self.loop_stop()
        except Exception as exc:  # noqa: BLE001 - closing a broken socket: nothing left to save
            log.debug("closing MQTT connection: %s", type(exc).__name__)

    def _thread_main(self) -> None:
        # paho's network thread: whatever escapes it ends this connection, never the daemon.
        try:
            super()._thread_main()
        except Exception as exc:  # noqa: BLE001 - whatever escapes paho ends this connection, never the daemon
            log.warning("MQTT network thread for %s failed: %s", self.broker.where, exc)
        finally:
            self.up = False
            self.ended.set()
