"""A technician's remote commands: signed as mqtt.md says, optionally sent to a kiosk.

A command can open a turnstile, so its payload is a JWS (EdDSA) signed with an operator key,
claims ``aud`` (a kiosk id or ``venue:<venue_id>``), ``cmd``, ``iat``, ``exp`` (at most 60 s
later) and ``jti``. Written from the spec, not from the kiosk's verifier, so the two check
each other. ``publish_command`` sends one to ``{prefix}/kiosk/{kiosk_id}/command`` and waits
for the kiosk's answer on ``.../command/result``.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from pathlib import Path
from typing import Any

from paho.mqtt.enums import MQTTErrorCode

from kiosk.errors import KioskError
from simulators.issuer import SIM_OPERATOR_KEY, SIM_OPERATOR_KID, load_private_key, sign_compact
from simulators.mqtt_client import DEFAULT_PREFIX, MqttSimError, new_client, parse_broker_url

COMMANDS = ("open_once", "lockdown", "resume", "reload_config", "reset_occupancy")
MAX_VALID_S = 60  # mqtt.md: exp - iat <= 60
RESULT_TIMEOUT_S = 10.0
_JTI_RE = re.compile(r"[A-Za-z0-9_-]{8,64}")


class CommandError(KioskError):
    """A command cannot be signed as asked (the message names the field)."""


def sign_command(
    cmd: str,
    *,
    aud: str,
    key_path: str | Path = SIM_OPERATOR_KEY,
    kid: str = SIM_OPERATOR_KID,
    valid_s: int = 30,
    jti: str | None = None,
    iat: int | None = None,
) -> str:
    """A command ``cmd`` for ``aud`` as a JWS compact string, valid ``valid_s`` from ``iat``.

    ``iat`` defaults to now and ``jti`` to 12 random characters. ``cmd`` is not checked
    against ``COMMANDS``, so tests can sign commands the kiosk must refuse; a lifetime the
    spec forbids (``valid_s`` outside 1..60) or an empty ``aud`` is a CommandError.
    """
    if isinstance(valid_s, bool) or not isinstance(valid_s, int) or not 0 < valid_s <= MAX_VALID_S:
        raise CommandError(f"valid_s must be 1 to {MAX_VALID_S} seconds (mqtt.md), not {valid_s}")
    if not aud:
        raise CommandError("aud must name a kiosk id or venue:<venue_id>")
    if iat is None:
        iat = int(time.time())
    if jti is None:
        jti = secrets.token_urlsafe(9)  # 9 random bytes: exactly 12 base64url characters
    header = {"alg": "EdDSA", "kid": kid}
    claims = {"aud": aud, "cmd": cmd, "iat": iat, "exp": iat + valid_s, "jti": jti}
    return sign_compact(header, claims, load_private_key(key_path))


def is_valid_jti(jti: str) -> bool:
    """True for 8-64 characters of ``A-Z a-z 0-9 _ -`` (credentials.md)."""
    return _JTI_RE.fullmatch(jti) is not None


def command_topic(prefix: str, kiosk_id: str) -> str:
    """Where a kiosk listens for commands."""
    return f"{prefix.rstrip('/')}/kiosk/{kiosk_id}/command"


def publish_command(
    token: str,
    *,
    jti: str,
    broker_url: str,
    kiosk_id: str,
    prefix: str = DEFAULT_PREFIX,
    timeout: float = RESULT_TIMEOUT_S,
) -> dict[str, Any] | None:
    """Send the signed command ``token`` to ``kiosk_id``; the kiosk's result, or None.

    Subscribes to the result topic before publishing (QoS 1 both ways), then waits up to
    ``timeout`` seconds in all for the result object whose ``jti`` is ``jti``; results of
    other commands and payloads that are not JSON objects are ignored. MqttSimError if the
    broker cannot be reached or refuses us.
    """
    address = parse_broker_url(broker_url)
    topic = command_topic(prefix, kiosk_id)
    deadline = time.monotonic() + timeout
    subscribed = threading.Event()
    answered = threading.Event()
    result: dict[str, Any] = {}
    refused: list[str] = []

    client = new_client(address, f"ashyq-sim-technician-{secrets.token_hex(4)}")

    def on_connect(client: Any, userdata: Any, flags: Any, reason_code: Any, props: Any) -> None:
        if reason_code.is_failure:
            refused.append(str(reason_code))
            subscribed.set()
        else:
            client.subscribe(f"{topic}/result", qos=1)

    def on_subscribe(client: Any, userdata: Any, mid: int, codes: Any, props: Any) -> None:
        if codes and codes[0].is_failure:
            refused.append(f"subscription refused: {codes[0]}")
        subscribed.set()

    def on_message(client: Any, userdata: Any, message: Any) -> None:
        try:
            doc = json.loads(message.payload.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            return
        if isinstance(doc, dict) and doc.get("jti") == jti and not answered.is_set():
            result.update(doc)
            answered.set()

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.connect_async(address.host, address.port, keepalive=30, clean_start=True)
    client.loop_start()
    try:
        if not subscribed.wait(max(0.0, deadline - time.monotonic())):
            raise MqttSimError(f"broker {address}: no connection within {timeout:g} s")
        if refused:
            raise MqttSimError(f"broker {address}: {refused[0]}")
        info = client.publish(topic, token.encode("ascii"), qos=1)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            raise MqttSimError(f"broker {address}: publish failed ({info.rc.name})")
        if answered.wait(max(0.0, deadline - time.monotonic())):
            return dict(result)
        return None
    finally:
        client.disconnect()
        client.loop_stop()
