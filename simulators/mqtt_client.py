"""The simulators' MQTT clients: one broker URL, one paho client recipe.

Shared by the status responder, the technician's command signer, the fleet observer and the
benchmarks. Broker URLs are parsed by the kiosk's own parser (kiosk.fleet.broker), so a
simulator refuses what the kiosk refuses; unlike the kiosk, whose credentials live in
[mqtt], a simulator's URL may carry ``user[:password]@`` (its only broker option).
"""

from __future__ import annotations

from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from kiosk.errors import KioskError
from kiosk.fleet.broker import BrokerUrl, BrokerUrlError, build_ssl_context, no_delay
from kiosk.fleet.broker import parse_broker_url as parse_url

DEFAULT_PREFIX = "ashyq/v1"
# QoS 1 answers waiting for the broker's PUBACK. paho's default of 20 caps a responder
# serving thousands of kiosks at 20 answers per round trip.
MAX_INFLIGHT = 1000


class MqttSimError(KioskError):
    """A simulator cannot use its broker: a bad URL, or the broker is unreachable."""


def parse_broker_url(url: str) -> BrokerUrl:
    """``mqtt://[user[:password]@]host[:port]`` (or ``mqtts``); MqttSimError naming what is
    wrong (the password masked)."""
    try:
        return parse_url(url, credentials=True)
    except BrokerUrlError as exc:
        raise MqttSimError(str(exc)) from None


def new_client(address: BrokerUrl, client_id: str) -> mqtt.Client:
    """A paho MQTT 5 client (callback API 2) for ``address``, not yet connected.

    ``mqtts`` verifies the broker against the system trust store with the kiosk's TLS
    context (TLS 1.2 at least). MqttSimError if that context cannot be made.
    """
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5,
    )
    if address.tls:
        try:
            client.tls_set_context(build_ssl_context())
        except KioskError as exc:
            raise MqttSimError(str(exc)) from exc
    if address.username is not None:
        client.username_pw_set(address.username, address.password)
    client.max_inflight_messages_set(MAX_INFLIGHT)
    client.reconnect_delay_set(min_delay=1, max_delay=5)
    client.on_socket_open = _no_delay
    return client


def _no_delay(client: mqtt.Client, userdata: Any, sock: Any) -> None:
    # paho leaves Nagle on: an answer written right after a PUBACK would then wait for the
    # broker's delayed ACK (up to 40 ms on Linux), longer than a whole lookup should take.
    no_delay(sock)
