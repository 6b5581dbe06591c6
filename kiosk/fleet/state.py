"""The kiosk's retained state on ``{prefix}/kiosk/{kiosk_id}/state`` (mqtt.md, State).

Published retained, QoS 1, on every connect (it replaces the Last Will's ``{"online": false}``)
and whenever the state changes. The publisher observes the gate's view (kiosk/gate/view.py):
it is told of every snapshot on the controller's thread and publishes only when the state
document changed; paho's publish only queues the message (its network thread sends it), so
the controller never waits for the broker.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from typing import Any

from kiosk.errors import KioskError
from kiosk.fleet.link import MqttLink
from kiosk.fleet.state_document import state_document
from kiosk.gate.view import GateSnapshot

log = logging.getLogger(__name__)

#: The fields of mqtt.md's state, in its order, always present.
STATE_FIELDS = ("online", "mode", "version", "since", "occupancy")
#: Published when the gate gives them: ``health`` (mqtt.md), and for Home Assistant the
#: turnstile and the last decision (kiosk/fleet/state_document.py).
OPTIONAL_FIELDS = ("health", "turnstile", "last_decision")


class StatePublisher:
    """Keeps the latest state and publishes it retained: now if connected, else on connect.

    ``initial`` is the state to announce before the gate reports a change (the assembly
    passes the view's first snapshot). As a view observer (``gate_changed``) it follows the
    gate from then on.
    """

    def __init__(
        self, link: MqttLink, *, initial: Mapping[str, Any] | GateSnapshot | None = None
    ) -> None:
        self._link = link
        self._topic = link.topic("state")
        self._lock = threading.Lock()
        self._payload: bytes | None = None
        if isinstance(initial, GateSnapshot):
            initial = state_of(initial)
        if initial is not None:
            self._payload = _encode(initial)
        link.add_connect_listener(self._republish)

    def gate_changed(self, snapshot: GateSnapshot) -> None:
        """A new snapshot (the controller's thread): published if the state document changed."""
        payload = _encode(state_of(snapshot))
        with self._lock:
            if payload == self._payload:
                return  # a light or a sound changed, not the state
        self.publish_state(state_of(snapshot))

    def recorded(self, event: Mapping[str, Any]) -> None:
        """Records go out through the outbox, not the state."""

    def publish_state(self, state: Mapping[str, Any]) -> bool:
        """Remember ``state`` and publish it; False if not connected (it goes out on connect).

        Safe from any thread (the controller calls it through ``on_state``).
        """
        payload = _encode(state)
        # Held while sending: a reconnect's re-publish cannot overtake a newer state.
        with self._lock:
            self._payload = payload
            return self._send(payload)

    @property
    def payload(self) -> bytes | None:
        """The last state, as published (compact JSON), or None before the first."""
        with self._lock:
            return self._payload

    def _republish(self) -> None:
        with self._lock:
            if self._payload is not None:
                self._send(self._payload)

    def _send(self, payload: bytes) -> bool:
        try:
            return self._link.publish(self._topic, payload, qos=1, retain=True)
        except KioskError as exc:
            log.warning("cannot publish the kiosk state: %s", exc)
            return False


def state_of(snapshot: GateSnapshot) -> dict[str, Any]:
    """mqtt.md's state of a snapshot (kiosk/fleet/state_document.py), health included."""
    return state_document(snapshot)


def _encode(state: Mapping[str, Any]) -> bytes:
    """The state document as published: mqtt.md's fields (``online`` always true: the Will
    says false) and, when given, ``health`` and the two additions for Home Assistant;
    anything else a caller passes is left out."""
    doc = {key: state.get(key) for key in STATE_FIELDS}
    doc.update({key: state[key] for key in OPTIONAL_FIELDS if key in state})
    doc["online"] = True
    try:
        return json.dumps(doc, separators=(",", ":"), allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        raise KioskError(f"kiosk state is not JSON-serialisable: {exc}") from exc
