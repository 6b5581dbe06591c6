"""Home Assistant MQTT discovery (mqtt.md, Home Assistant discovery; `[homeassistant]`).

With discovery on, every connect publishes one retained config per entity under
``<prefix>/<component>/<node>/<object>/config`` (Home Assistant's discovery convention; the
node is the kiosk id with anything but letters, digits, ``_`` and ``-`` replaced by ``_``,
as Home Assistant allows no more there). Every entity reads the kiosk's retained state
topic (kiosk/fleet/state_document.py) through a value template, and is available while that
state says ``"online": true`` (the Last Will's ``{"online": false}`` makes it unavailable):

- ``binary_sensor`` ``turnstile``: device class ``lock`` (on = free, off = locked);
- ``sensor`` ``occupancy``, ``mode``, ``last_decision`` (its reason and time as attributes),
  ``backlog`` (events waiting for the broker);
- ``binary_sensor`` per health entry (``camera``, ``scanner``, ``status``, ``clock``,
  ``disk``, ``relay``): device class ``problem``, on when the part is ``down``.

No entity takes a command: opening a turnstile stays behind a signed command.

Removal: the kiosk remembers the config topics it published in ``homeassistant.json`` in its
state folder, written before it publishes. At every connect it clears (empty retained
payload) each remembered topic it no longer wants: all of them once discovery is turned off,
the old ones after a change of prefix or id. A topic is forgotten once the broker has
acknowledged its removal. A kiosk that never published sends nothing under the prefix, so
thousands of kiosks without Home Assistant never touch its topics.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import re
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from kiosk.errors import KioskError
from kiosk.fleet.state_document import STATE_HEALTH_PARTS

log = logging.getLogger(__name__)

MEMORY_FILE = "homeassistant.json"
DEFAULT_PREFIX = "homeassistant"
MODES = ("normal", "lockdown", "emergency", "closed")
DECISIONS = ("admit", "deny", "refer")
AVAILABILITY_TEMPLATE = "{{ 'online' if value_json.online else 'offline' }}"
_NOT_NODE = re.compile(r"[^A-Za-z0-9_-]")


class Publisher(Protocol):
    """What discovery needs of the MQTT link (kiosk.fleet.link.MqttLink)."""

    kiosk_id: str

    def topic(self, *parts: str) -> str: ...

    def add_connect_listener(self, fn: Callable[[], None]) -> None: ...

    def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        qos: int = 1,
        retain: bool = False,
        on_ack: Callable[[], None] | None = None,
    ) -> bool: ...


def node_id(kiosk_id: str) -> str:
    """The kiosk id as a discovery topic level Home Assistant accepts ([A-Za-z0-9_-])."""
    return _NOT_NODE.sub("_", kiosk_id)


def _when_present(field: str, expression: str) -> str:
    """A template that renders ``expression`` if the state has ``field``, else nothing: the
    Last Will's ``{"online": false}`` leaves the entity as it was (and unavailable)."""
    return f"{{% if value_json.{field} is defined %}}{{{{ {expression} }}}}{{% endif %}}"


def _entities() -> list[tuple[str, str, dict[str, Any]]]:
    """(component, object id, the entity's own keys) of every entity."""
    entities: list[tuple[str, str, dict[str, Any]]] = [
        (
            "binary_sensor",
            "turnstile",
            {
                "name": "Turnstile",
                "device_class": "lock",  # Home Assistant: on means open (unlocked)
                "value_template": _when_present("turnstile", "value_json.turnstile"),
                "payload_on": "free",
                "payload_off": "locked",
            },
        ),
        (
            "sensor",
            "occupancy",
            {
                "name": "Occupancy",
                # null (no counting) renders "None", which Home Assistant shows as unknown.
                "value_template": _when_present("occupancy", "value_json.occupancy"),
                "state_class": "measurement",
                "unit_of_measurement": "people",
                "icon": "mdi:account-group",
            },
        ),
        (
            "sensor",
            "mode",
            {
                "name": "Mode",
                "device_class": "enum",
                "options": list(MODES),
                "value_template": _when_present("mode", "value_json.mode"),
                "icon": "mdi:gate",
            },
        ),
        (
            "sensor",
            "last_decision",
            {
                "name": "Last decision",
                "device_class": "enum",
                "options": list(DECISIONS),
                "value_template": _when_present(
                    "last_decision",
                    "value_json.last_decision.decision if value_json.last_decision else None",
                ),
                "json_attributes_topic": None,  # the state topic, filled in below
                "json_attributes_template": _when_present(
                    "last_decision",
                    "(value_json.last_decision or {}) | tojson",
                ),
                "icon": "mdi:account-check",
            },
        ),
        (
            "sensor",
            "backlog",
            {
                "name": "Event backlog",
                "value_template": _when_present("health", "value_json.health.backlog"),
                "state_class": "measurement",
                "unit_of_measurement": "events",
                "entity_category": "diagnostic",
                "icon": "mdi:tray-full",
            },
        ),
    ]
    for part in STATE_HEALTH_PARTS:
        entities.append(
            (
                "binary_sensor",
                part,
                {
                    "name": part.capitalize(),
                    "device_class": "problem",  # on means a problem
                    "entity_category": "diagnostic",
                    "value_template": _when_present(
                        "health", f"'ON' if value_json.health.{part} == 'down' else 'OFF'"
                    ),
                },
            )
        )
    return entities


def discovery_configs(
    *, prefix: str, kiosk_id: str, state_topic: str, version: str
) -> dict[str, dict[str, Any]]:
    """Every discovery config topic and its JSON document, for one kiosk."""
    node = node_id(kiosk_id)
    device = {
        "identifiers": [f"ashyq-kiosk:{kiosk_id}"],
        "name": f"Ashyq kiosk {kiosk_id}",
        "model": "Ashyq entrance kiosk",
        "manufacturer": "Ashyq kiosk project",
        "sw_version": version,
    }
    configs: dict[str, dict[str, Any]] = {}
    for component, object_id, own in _entities():
        doc: dict[str, Any] = {
            "name": own.pop("name"),
            "unique_id": f"ashyq-kiosk:{kiosk_id}:{object_id}",
            "state_topic": state_topic,
            **own,
            "availability": [{"topic": state_topic, "value_template": AVAILABILITY_TEMPLATE}],
            "device": device,
            "origin": {"name": "ashyq-kiosk", "sw_version": version},
            "qos": 1,
        }
        if "json_attributes_topic" in doc:
            doc["json_attributes_topic"] = state_topic
        configs[f"{prefix}/{component}/{node}/{object_id}/config"] = doc
    return configs


class HomeAssistantDiscovery:
    """Publishes (or removes) the discovery configs on every connect; see the module."""

    def __init__(
        self,
        link: Publisher,
        *,
        enabled: bool,
        state_dir: Path,
        version: str,
        prefix: str = DEFAULT_PREFIX,
    ) -> None:
        self._link = link
        self._enabled = enabled
        self._memory_path = Path(state_dir) / MEMORY_FILE
        self._lock = threading.Lock()
        self._wanted: dict[str, bytes] = {}
        if enabled:
            configs = discovery_configs(
                prefix=prefix,
                kiosk_id=link.kiosk_id,
                state_topic=link.topic("state"),
                version=version,
            )
            self._wanted = {t: _encode(doc) for t, doc in configs.items()}
        self._remembered = self._load()
        self._told = False

    @property
    def topics(self) -> list[str]:
        """The config topics this kiosk publishes (none with discovery off)."""
        return sorted(self._wanted)

    def remembered(self) -> set[str]:
        """The config topics published and not yet known to be removed."""
        with self._lock:
            return set(self._remembered)

    def start(self) -> None:
        """Publish on every connect from now on (call before the link starts)."""
        self._link.add_connect_listener(self.on_connect)

    def on_connect(self) -> None:
        """Publish the wanted configs and clear the stale ones (paho's thread; short)."""
        with self._lock:
            stale = sorted(self._remembered - set(self._wanted))
            if self._wanted and not set(self._wanted) <= self._remembered:
                self._remembered |= set(self._wanted)
                self._save()  # before publishing: a crash now still knows what to remove
        if not self._told and (self._wanted or stale):
            self._told = True
            if self._wanted:
                log.info(
                    "Home Assistant discovery: %d entities published under %s",
                    len(self._wanted),
                    self.topics[0].rsplit("/", 3)[0],
                )
            if stale:
                log.info(
                    "Home Assistant discovery: removing %d configs no longer wanted", len(stale)
                )
        for topic, payload in self._wanted.items():
            self._send(topic, payload, None)
        for topic in stale:
            self._send(topic, b"", functools.partial(self._removed, topic))

    def _removed(self, topic: str) -> None:
        with self._lock:
            if topic in self._wanted or topic not in self._remembered:
                return
            self._remembered.discard(topic)
            self._save()

    def _send(self, topic: str, payload: bytes, on_ack: Callable[[], None] | None) -> None:
        try:
            self._link.publish(topic, payload, qos=1, retain=True, on_ack=on_ack)
        except KioskError as exc:
            log.warning("Home Assistant discovery: cannot publish %s: %s", topic, exc)

    def _load(self) -> set[str]:
        try:
            doc = json.loads(self._memory_path.read_text(encoding="utf-8"))
            topics = doc["topics"]
            if not isinstance(topics, list) or not all(isinstance(t, str) for t in topics):
                raise ValueError("topics is not a list of strings")
            return set(topics)
        except FileNotFoundError:
            return set()
        except (OSError, ValueError, KeyError, TypeError) as exc:
            # Unreadable memory: the configs it named cannot be removed; say so once.
            log.warning(
                "Home Assistant discovery: %s unreadable (%s): configs published before it "
                "cannot be removed automatically",
                self._memory_path,
                exc,
            )
            return set()

    def _save(self) -> None:
        """Write the remembered topics atomically; remove the file when there are none."""
        path = self._memory_path
        try:
            if not self._remembered:
                path.unlink(missing_ok=True)
                return
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".homeassistant-")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    json.dump({"topics": sorted(self._remembered)}, fh)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        except OSError as exc:
            log.warning("Home Assistant discovery: cannot write %s: %s", path, exc)


def _encode(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()
