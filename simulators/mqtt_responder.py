"""The simulated status authority over MQTT 5 request/response (status-api.md, MQTT section).

A real paho-mqtt client on a real broker: it subscribes to ``{prefix}/status/request`` and
answers every request on the request's Response Topic with the request's Correlation Data,
so the kiosk's own MQTT lookup code always runs against the broker. The answers are the
HTTP service's (``simulators.answers``), and so are the faults (``simulators.faults``)::

    with MqttStatusResponder(population, broker_url=broker.url) as responder:
        responder.faults.set(latency_ms=300)   # answer later, without holding up others
        responder.wrong_correlation = True     # answer with Correlation Data nobody asked

``python -m simulators.mqtt_responder --broker mqtt://127.0.0.1:1883`` (or
``kiosk status-responder``) runs it in the foreground. Logs name the broker and counts
only: never a subject, a payload or a topic carrying a kiosk id. Broker URLs and clients
are simulators.mqtt_client's, shared with the command signer and the fleet simulation.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import secrets
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from simulators.answers import GARBAGE_BODY, UNAVAILABLE, fault_outcome, status_answer
from simulators.counters import Counters
from simulators.delays import DelayedCalls
from simulators.faults import Faults
from simulators.mqtt_client import DEFAULT_PREFIX, MqttSimError, new_client, parse_broker_url
from simulators.population import Population, PopulationError, default_population_path, load

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10.0


class ResponderStats(Counters):
    """Counters of status requests (thread-safe).

    ``requests`` counts every message on the request topic; each is either ``answered``
    (one publish on its response topic, tallied in ``by_answer`` by kind: ``status``,
    ``unknown_subject``, ``bad_request``, ``unavailable``, ``garbage``) or ``dropped``
    (no Response Topic or Correlation Data, an unusable Response Topic, ``down``, or a
    delayed answer still pending at stop), or still waiting out an injected latency.
    """

    def __init__(self) -> None:
        super().__init__("requests", "answered", "dropped", tally="by_answer")

    @property
    def requests(self) -> int:
        """Messages received on the request topic."""
        return self.total("requests")

    @property
    def answered(self) -> int:
        """Answers published."""
        return self.total("answered")

    @property
    def dropped(self) -> int:
        """Requests that will never be answered."""
        return self.total("dropped")

    @property
    def by_answer(self) -> dict[str, int]:
        """Answers published, by kind."""
        return self.tally()

    def _count(self, *, request: bool = False, dropped: int = 0, answer: str = "") -> None:
        self.add(answer or None, requests=request, dropped=dropped, answered=bool(answer))


class MqttStatusResponder:
    """The simulated status authority answering MQTT 5 requests; use as a context manager.

    Subscribes (QoS 1) to ``{prefix}/status/request``, or with ``share_group`` to the shared
    subscription ``$share/{share_group}/...`` so several responders split the requests.
    ``population`` answers and may change live; ``max_age_s`` goes into every answer;
    ``faults`` (shared with the HTTP service, switchable live) injects ``latency_ms``,
    ``down`` (no answer), ``error_rate`` and ``status_429`` (``{"error": "unavailable"}``)
    and ``garbage`` (not JSON); ``wrong_correlation`` (test only, switchable live) answers
    with Correlation Data that matches no request. ``seed`` drives ``error_rate``; ``clock``
    gives ``as_of``.
    """

    def __init__(
        self,
        population: Population,
        *,
        broker_url: str,
        prefix: str = DEFAULT_PREFIX,
        max_age_s: int = 300,
        faults: Faults | None = None,
        client_id: str | None = None,
        wrong_correlation: bool = False,
        share_group: str | None = None,
        seed: int = 2021,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.population = population
        self.broker = parse_broker_url(broker_url)
        self.prefix = prefix.rstrip("/")
        self.max_age_s = max_age_s
        self.faults = faults if faults is not None else Faults()
        self.client_id = client_id or f"ashyq-sim-responder-{secrets.token_hex(4)}"
        self.wrong_correlation = wrong_correlation
        self.share_group = share_group
        self.clock = clock
        self.stats = ResponderStats()
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()
        self._client: mqtt.Client | None = None
        self._timers: DelayedCalls | None = None
        self._subscribed = threading.Event()
        self._refused: str | None = None

    @property
    def request_topic(self) -> str:
        """The topic kiosks publish their requests to."""
        return f"{self.prefix}/status/request"

    @property
    def subscription(self) -> str:
        """The topic filter subscribed to (shared when ``share_group`` is set)."""
        if self.share_group:
            return f"$share/{self.share_group}/{self.request_topic}"
        return self.request_topic

    @property
    def running(self) -> bool:
        """True between start() and stop()."""
        return self._client is not None

    def start(self, timeout: float = CONNECT_TIMEOUT_S) -> MqttStatusResponder:
        """Connect and subscribe; returns once requests are being received.

        MqttSimError if the broker cannot be reached, refuses us, or refuses the subscription
        within ``timeout`` seconds.
        """
        if self._client is not None:
            raise RuntimeError("status responder already running")
        self._subscribed.clear()
        self._refused = None
        client = new_client(self.broker, self.client_id)
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        self._timers = DelayedCalls("sim-mqtt-timers")
        self._client = client
        # connect_async: the network thread keeps retrying until the broker comes up, so a
        # responder started alongside its broker does not lose the race.
        client.connect_async(self.broker.host, self.broker.port, keepalive=30, clean_start=True)
        client.loop_start()
        if not self._subscribed.wait(timeout) or self._refused is not None:
            reason = self._refused or f"no connection within {timeout:g} s"
            self.stop()
            raise MqttSimError(f"status responder: broker {self.broker}: {reason}")
        return self

    def stop(self) -> None:
        """Disconnect; delayed answers still pending are dropped (and counted so)."""
        client, self._client = self._client, None
        timers, self._timers = self._timers, None
        if timers is not None:
            self.stats._count(dropped=timers.close())
        if client is not None:
            client.disconnect()
            client.loop_stop()

    def __enter__(self) -> MqttStatusResponder:
        # Idempotent, so ``with responder.start():`` works as well as ``with responder:``.
        return self if self.running else self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- paho callbacks (the network thread) ----------------------------------------------

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            log.warning("status responder: broker %s refused: %s", self.broker, reason_code)
            self._refused = f"refused: {reason_code}"
            self._subscribed.set()  # wakes start(), which reports the refusal
            return
        log.info("status responder: connected to %s", self.broker)
        # A clean session forgets the subscription, so every (re)connection subscribes.
        client.subscribe(self.subscription, qos=1)

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        if reason_codes and reason_codes[0].is_failure:
            self._refused = f"subscription refused: {reason_codes[0]}"
        self._subscribed.set()

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if self._client is not None:  # not our own stop()
            log.warning("status responder: lost %s (%s), reconnecting", self.broker, reason_code)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self.stats._count(request=True)
        try:
            self._handle(message)
        except Exception as exc:  # noqa: BLE001 - a paho callback must never raise (it would stop the loop)
            # An exception escaping a paho callback would stop the network loop, and with it
            # every kiosk's answers; the type alone is logged, since a message could carry
            # request content.
            log.error("status responder: request dropped: %s", type(exc).__name__)
            self.stats._count(dropped=1)

    def _handle(self, message: mqtt.MQTTMessage) -> None:
        props = message.properties
        response_topic = getattr(props, "ResponseTopic", None)
        correlation = getattr(props, "CorrelationData", None)
        if not response_topic or not correlation:
            # Nowhere to answer, or an answer nobody could match: status-api.md drops it.
            self.stats._count(dropped=1)
            return
        faults = self.faults.snapshot()
        outcome = fault_outcome(faults, self._roll)
        if outcome == "down":
            self.stats._count(dropped=1)
            return
        kind, payload = self._answer(outcome, bytes(message.payload))
        if self.wrong_correlation:
            # Same length, every byte different: matches no request the kiosk has pending.
            correlation = bytes(b ^ 0xFF for b in correlation)
        if faults["latency_ms"] and self._timers is not None:
            self._timers.call_later(
                faults["latency_ms"] / 1000,
                lambda: self._publish(response_topic, correlation, kind, payload),
            )
        else:
            self._publish(response_topic, correlation, kind, payload)

    # -- answering ------------------------------------------------------------------------

    def _answer(self, outcome: str | None, request: bytes) -> tuple[str, bytes]:
        """(kind of answer for the stats, payload) for a request and its fault outcome."""
        if outcome == "garbage":
            return "garbage", GARBAGE_BODY
        if outcome is not None:  # error_rate or status_429: MQTT has no Retry-After
            return "unavailable", _dumps(UNAVAILABLE)
        answer = status_answer(self.population, request, now=self.clock(), max_age_s=self.max_age_s)
        kind = "status" if answer.code == 200 else str(answer.body["error"])
        return kind, _dumps(answer.body)

    def _publish(self, topic: str, correlation: bytes, kind: str, payload: bytes) -> None:
        client = self._client
        if client is None:  # stopped while the answer waited out its latency
            self.stats._count(dropped=1)
            return
        props = Properties(PacketTypes.PUBLISH)
        props.CorrelationData = correlation
        props.ContentType = "application/json"
        try:
            info = client.publish(topic, payload, qos=1, properties=props)
        except ValueError:
            # A Response Topic with wildcards or bad UTF-8 cannot be published to.
            self.stats._count(dropped=1)
            return
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            self.stats._count(dropped=1)  # NO_CONN is queued and sent on reconnection
            return
        self.stats._count(answer=kind)

    def _roll(self) -> float:
        with self._rng_lock:
            return self._rng.random()


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode("utf-8")


# --- running it standalone ---------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of a standalone responder (shared with ``simulators.cli``)."""
    parser.add_argument(
        "--broker", required=True, metavar="URL", help="broker, mqtt://host:port or mqtts://"
    )
    parser.add_argument("--prefix", default=DEFAULT_PREFIX, help="topic prefix")
    parser.add_argument(
        "--population", type=Path, default=None, help="population JSONL (default: shipped)"
    )
    parser.add_argument("--latency-ms", type=float, default=0, help="delay every answer")
    parser.add_argument(
        "--error-rate", type=float, default=0.0, help="share of 'unavailable' answers"
    )
    parser.add_argument("--max-age-s", type=int, default=300, help="max_age of answers")
    parser.add_argument("--seed", type=int, default=2021, help="seed of the error-rate dice")
    parser.add_argument(
        "--share-group", default=None, help="MQTT 5 shared subscription group (load sharing)"
    )
    parser.add_argument("--client-id", default=None, help="MQTT client id (default: random)")


def run_foreground(args: argparse.Namespace) -> int:
    """Answer until Ctrl-C or SIGTERM; prints the request topic on stdout once subscribed."""
    try:
        population = load(args.population)
        faults = Faults(latency_ms=args.latency_ms, error_rate=args.error_rate)
        responder = MqttStatusResponder(
            population,
            broker_url=args.broker,
            prefix=args.prefix,
            max_age_s=args.max_age_s,
            faults=faults,
            client_id=args.client_id,
            share_group=args.share_group,
            seed=args.seed,
        )
    except (PopulationError, MqttSimError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in _STOP_SIGNALS}
    try:
        try:
            responder.start()
        except MqttSimError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(responder.request_topic, flush=True)
        source = args.population or default_population_path()
        print(
            f"status responder: {len(population)} people from {source}, "
            f"answering {responder.subscription} on {responder.broker}",
            file=sys.stderr,
        )
        while not stop.wait(0.5):
            pass
        stats = responder.stats.snapshot()
        print(
            f"status responder: {stats['requests']} requests, {stats['answered']} answered",
            file=sys.stderr,
        )
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        responder.stop()
    return 0


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m simulators.mqtt_responder --broker mqtt://127.0.0.1:1883``."""
    parser = argparse.ArgumentParser(
        prog="python -m simulators.mqtt_responder",
        description="Answer status requests over MQTT 5 from a test population.",
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    return run_foreground(args)


if __name__ == "__main__":
    sys.exit(main())
