"""One MQTT 5 connection to the fleet's brokers, with failover, shared by everything fleet-wide.

mqtt.md: the kiosk accepts a list of broker URLs (``mqtt://`` or ``mqtts://``), fails over
between them, and leaves a Last Will of ``{"online": false}`` retained on its state topic.

Each connection attempt uses a fresh client (kiosk.fleet.connection): a message handed to one
connection is either acknowledged on it or forgotten with it, and the callers that need
delivery (the outbox) re-send after a reconnect. Broker URLs, the TLS context and the
reachability probe are kiosk.fleet.broker's, shared with the doctor and the simulators.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from kiosk.errors import KioskError
from kiosk.fleet.broker import BrokerUrl, build_ssl_context, parse_broker_url, reachable
from kiosk.fleet.connection import Connection
from kiosk.throttle import LogThrottle

log = logging.getLogger(__name__)

DEFAULT_PREFIX = "ashyq/v1"
#: The Last Will, and what a clean stop leaves behind too (mqtt.md, State).
OFFLINE_PAYLOAD = json.dumps({"online": False}, separators=(",", ":")).encode()
#: A connection that lasted this long was healthy: the next failure starts the back-off afresh.
_STABLE_S = 10.0
_POLL_S = 0.2

#: A subscription handler: (topic, payload, MQTT 5 properties or None).
Handler = Callable[[str, bytes, Properties | None], None]


class MqttLink:
    """The kiosk's one MQTT 5 connection, kept up in a background thread.

    Brokers are tried in order; on a loss the next one is tried after a back-off (``0.2 s``
    doubling to ``10 s``). While connected to any but the first, the first is probed every
    ``failback_s`` and the link returns to it once it accepts connections. Sessions are not
    kept (session expiry 0): subscriptions are made again on every connect, and callers
    re-send what was not acknowledged.

    Handlers, acknowledgement callbacks and connect listeners run in paho's network thread:
    they must be short and must not block on the broker. No payload is ever logged.
    """

    def __init__(
        self,
        *,
        brokers: list[str],
        client_id: str,
        kiosk_id: str,
        prefix: str = DEFAULT_PREFIX,
        username: str | None = None,
        password: str | None = None,
        ca_file: str | None = None,
        client_cert: str | None = None,
        client_key: str | None = None,
        keepalive_s: int = 30,
        connect_timeout_s: float = 5.0,
        backoff_min_s: float = 0.2,
        backoff_max_s: float = 10.0,
        failback_s: float = 300.0,
    ) -> None:
        if not brokers:
            raise KioskError("MQTT: no broker URL configured")
        for name, value in (("kiosk id", kiosk_id), ("topic prefix", prefix)):
            if not value or any(c in value for c in "+#\0"):
                raise KioskError(f"MQTT {name} {value!r} cannot be part of a topic")
        self._brokers = [parse_broker_url(url) for url in brokers]
        self._ssl: ssl.SSLContext | None = None
        if any(b.tls for b in self._brokers):
            self._ssl = build_ssl_context(
                ca_file=ca_file, client_cert=client_cert, client_key=client_key
            )
        self.client_id = client_id
        self.kiosk_id = kiosk_id
        self.prefix = prefix.rstrip("/")
        self._username = username
        self._password = password
        self._keepalive = keepalive_s
        self._connect_timeout = connect_timeout_s
        self._backoff_min = backoff_min_s
        self._backoff_max = backoff_max_s
        self._failback_s = failback_s
        self._lock = threading.RLock()
        self._conn: Connection | None = None
        self._connected = threading.Event()
        self._subs_cond = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._subs: dict[str, tuple[Handler, int]] = {}
        self._listeners: list[Callable[[], None]] = []
        self._thread: threading.Thread | None = None
        self._throttle = LogThrottle(60.0)
        # The journal says "lost" once per outage and "back" once: retries in between are
        # quiet (debug). Brokers already said to be unreachable in this outage:
        self._told_down: set[str] = set()
        self._down_since: float | None = None  # when the link was lost (None: up, or never)
        self._failing_back = False
        #: Successful connections so far (for tests and the doctor).
        self.connects = 0

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Start connecting in the background; returns at once."""
        if self._thread is not None:
            raise KioskError("MQTT link already started")
        self._thread = threading.Thread(target=self._run, name="mqtt-link", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Disconnect (the broker publishes the Will: the kiosk is offline) and end the thread."""
        self._stopping.set()
        with self._lock:
            conn = self._conn
        if conn is not None:
            conn.ended.set()  # wakes the supervisor, which says goodbye
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def connected(self) -> bool:
        """True between a successful CONNACK and the loss of that connection."""
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        """Wait until connected; False if ``timeout`` passed first."""
        return self._connected.wait(timeout)

    def wait_subscribed(self, timeout: float) -> bool:
        """Wait until connected with every kept subscription acknowledged by the broker (SUBACK):
        from then on, messages published by others on those topics reach this kiosk."""
        end = time.monotonic() + timeout
        with self._subs_cond:
            while True:
                conn = self._conn
                if conn is not None and conn.up and not conn.unacked_subs:
                    return True
                remaining = end - time.monotonic()
                if remaining <= 0:
                    return False
                self._subs_cond.wait(min(remaining, _POLL_S))

    @property
    def broker(self) -> str | None:
        """URL of the broker currently connected, or None."""
        with self._lock:
            conn = self._conn
        return conn.broker.url if conn is not None and conn.up else None

    def topic(self, *parts: str) -> str:
        """``{prefix}/kiosk/{kiosk_id}/parts...``."""
        return "/".join((self.prefix, "kiosk", self.kiosk_id, *parts))

    def add_connect_listener(self, fn: Callable[[], None]) -> None:
        """Call ``fn()`` after every successful connect, once subscriptions are renewed."""
        with self._lock:
            self._listeners.append(fn)

    # -- messages -----------------------------------------------------------------------

    def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        qos: int = 1,
        retain: bool = False,
        properties: Properties | None = None,
        on_ack: Callable[[], None] | None = None,
    ) -> bool:
        """Send one message on the current connection; False (nothing sent) when not connected.

        ``on_ack`` is called once the broker acknowledged a QoS 1 message (PUBACK) on this same
        connection, normally from paho's network thread. If the connection is lost first it is
        never called: the caller re-sends after the next connect.
        """
        with self._lock:
            conn = self._conn
        if conn is None or not conn.up:
            return False
        try:
            sent, acked = conn.send(topic, payload, qos, retain, properties, on_ack)
        except (ValueError, TypeError) as exc:
            raise KioskError(f"MQTT publish to {topic}: {exc}") from exc
        if acked and on_ack is not None:
            self._call(on_ack, "acknowledgement callback")
        return sent

    def subscribe(self, topic: str, handler: Handler, qos: int = 1) -> None:
        """Keep a subscription: made now if connected, and again after every reconnect."""
        if not topic:
            raise KioskError("MQTT subscribe: empty topic")
        with self._lock:
            self._subs[topic] = (handler, qos)
            conn = self._conn
        if conn is not None and conn.up:
            self._subscribe(conn, topic, qos)

    # -- the connection supervisor ------------------------------------------------------

    def _run(self) -> None:
        index, delay = 0, self._backoff_min
        while not self._stopping.is_set():
            try:
                lasted, failback = self._session(index)
            except Exception as exc:  # noqa: BLE001 - a bug here must not end the link for good
                log.warning("MQTT link: unexpected %s: %s", type(exc).__name__, exc)
                lasted, failback = None, False
            if self._stopping.is_set():
                break
            if failback:
                index, delay = 0, self._backoff_min
                continue
            if lasted is not None and lasted >= _STABLE_S:
                delay = self._backoff_min
            index = (index + 1) % len(self._brokers)
            if self._stopping.wait(delay):
                break
            delay = min(delay * 2, self._backoff_max)

    def _session(self, index: int) -> tuple[float | None, bool]:
        """One connection to ``brokers[index]``: (seconds it was up or None, failback wanted)."""
        broker = self._brokers[index]
        conn = self._new_connection(broker)
        try:
            conn.open(self._keepalive)
        except (OSError, ssl.SSLError, ValueError) as exc:
            self._unreachable(broker, str(exc))
            return None, False
        with self._lock:
            self._conn = conn
        conn.loop_start()
        started = time.monotonic()
        up_since: float | None = None
        next_probe = started + self._failback_s
        failback = False
        try:
            while not self._stopping.is_set() and not conn.ended.wait(_POLL_S):
                now = time.monotonic()
                if up_since is None:
                    if conn.up:
                        up_since = now
                    elif now - started > self._connect_timeout:
                        self._unreachable(broker, "no answer to CONNECT")
                        break
                if index and up_since is not None and now >= next_probe:
                    next_probe = now + self._failback_s
                    if reachable(self._brokers[0], timeout=min(1.0, self._connect_timeout)):
                        log.info(
                            "first MQTT broker %s is back; leaving %s",
                            self._brokers[0].where,
                            broker.where,
                        )
                        self._failing_back = True
                        failback = True
                        break
        finally:
            self._end(conn)
        # A connection lost within one poll was up all the same: CONNACK says since when.
        up_since = up_since if up_since is not None else conn.up_at
        lasted = None if up_since is None else time.monotonic() - up_since
        if lasted is not None and not self._stopping.is_set() and not failback:
            log.warning(
                "MQTT broker %s lost after %.1f s connected; events wait in the store until a "
                "broker answers",
                broker.where,
                lasted,
            )
            with self._lock:
                self._down_since = time.monotonic()
                self._told_down = {b.url for b in self._brokers}
        return lasted, failback

    def _unreachable(self, broker: BrokerUrl, why: str) -> None:
        """A connection attempt failed: a warning once per broker per outage, then quiet."""
        if broker.url in self._told_down:
            log.debug("MQTT broker %s still unreachable: %s", broker.where, why)
            return
        self._told_down.add(broker.url)
        log.warning(
            "cannot reach MQTT broker %s: %s; retrying, events wait in the store",
            broker.where,
            why,
        )

    def _new_connection(self, broker: BrokerUrl) -> Connection:
        conn = Connection(
            broker,
            client_id=self.client_id,
            connect_timeout_s=self._connect_timeout,
            username=self._username,
            password=self._password,
            ssl_context=self._ssl,
            will_topic=self.topic("state"),
            will_payload=OFFLINE_PAYLOAD,
        )
        conn.on_connect = self._on_connect
        conn.on_disconnect = self._on_disconnect
        conn.on_message = self._on_message
        conn.on_publish = self._on_publish
        conn.on_subscribe = self._on_subscribe
        return conn

    def _end(self, conn: Connection) -> None:
        """Close ``conn``: on stop with the Will (the kiosk is offline), else plainly."""
        with self._lock:
            if self._conn is conn:
                self._conn = None
            self._connected.clear()
        conn.close(with_will=self._stopping.is_set())

    # -- paho callbacks (network thread) ------------------------------------------------

    def _on_connect(
        self, client: Any, _userdata: Any, _flags: Any, reason: ReasonCode, _props: Any
    ) -> None:
        conn: Connection = client
        if reason.is_failure:
            self._warn(
                conn.broker.url,
                "MQTT broker %s refused the connection: %s",
                conn.broker.where,
                reason,
            )
            return
        with self._lock:
            if self._conn is not conn or self._stopping.is_set():
                return
            listeners = list(self._listeners)
            conn.up = True
            conn.up_at = time.monotonic()
            self.connects += 1
            # Subscriptions first (under the lock, so wait_subscribed() sees them pending): a
            # request published after wait_connected() finds them in place at the broker.
            for topic, (_handler, qos) in self._subs.items():
                self._subscribe(conn, topic, qos)
        self._connected.set()
        with self._lock:
            down_since, self._down_since = self._down_since, None
            self._told_down = set()
            failing_back, self._failing_back = self._failing_back, False
        if down_since is not None:
            log.info(
                "MQTT link back (broker %s) after %.1f s without a broker",
                conn.broker.where,
                time.monotonic() - down_since,
            )
        elif failing_back:
            log.debug("connected to MQTT broker %s again", conn.broker.where)
        else:
            log.info("connected to MQTT broker %s", conn.broker.where)
        for fn in listeners:
            self._call(fn, "connect listener")

    def _on_disconnect(
        self, client: Any, _userdata: Any, _flags: Any, reason: ReasonCode, _props: Any
    ) -> None:
        conn: Connection = client
        conn.up = False
        with self._lock:
            if self._conn is conn:
                self._connected.clear()
        conn.ended.set()
        log.debug("MQTT connection to %s closed: %s", conn.broker.where, reason)

    def _on_publish(
        self, client: Any, _userdata: Any, mid: int, reason: ReasonCode, _props: Any
    ) -> None:
        conn: Connection = client
        ok = not reason.is_failure
        entry = conn.acknowledged(mid, ok)
        if entry is None:
            return
        on_ack, topic = entry
        if not ok:
            # The message stays unacknowledged; the outbox keeps it until a later connection.
            self._warn("refused:" + topic, "MQTT broker refused a message on %s: %s", topic, reason)
            return
        if on_ack is not None:
            self._call(on_ack, "acknowledgement callback")

    def _on_subscribe(
        self, client: Any, _userdata: Any, mid: int, reasons: list[ReasonCode], _props: Any
    ) -> None:
        conn: Connection = client
        for reason in reasons:
            if reason.is_failure:
                self._warn("suback", "MQTT broker refused a subscription: %s", reason)
        with self._subs_cond:
            conn.unacked_subs.discard(mid)
            self._subs_cond.notify_all()

    def _on_message(self, client: Any, _userdata: Any, msg: paho.MQTTMessage) -> None:
        try:
            topic = msg.topic
        except UnicodeDecodeError:
            log.debug("dropped an MQTT message whose topic is not UTF-8")
            return
        with self._lock:
            handlers = [h for f, (h, _q) in self._subs.items() if paho.topic_matches_sub(f, topic)]
        props = getattr(msg, "properties", None)
        for handler in handlers:
            try:
                handler(topic, bytes(msg.payload), props)
            except Exception as exc:  # noqa: BLE001 - a handler's bug is logged by its type only
                # Only the type: an exception's text may quote the payload.
                self._warn(
                    "handler:" + topic, "handler for %s failed: %s", topic, type(exc).__name__
                )

    # -- helpers ------------------------------------------------------------------------

    def _subscribe(self, conn: Connection, topic: str, qos: int) -> None:
        # Held across the call so that a fast SUBACK cannot arrive before its mid is noted.
        with self._lock:
            try:
                rc = conn.subscribe_noted(topic, qos)
            except ValueError as exc:
                raise KioskError(f"MQTT subscribe to {topic}: {exc}") from exc
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            log.debug("subscribe to %s deferred to the next connect: %s", topic, rc)

    def _call(self, fn: Callable[[], None], what: str) -> None:
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 - a callback's bug is logged by its type only
            # Only the type: the text of an exception may quote a payload.
            self._warn(what, "MQTT %s failed: %s", what, type(exc).__name__)

    def _warn(self, key: str, msg: str, *args: object) -> None:
        ok, held = self._throttle.allow(key)
        if ok:
            suffix = f" ({held} more like it)" if held else ""
            log.warning(msg + suffix, *args)
