"""Home Assistant MQTT discovery: the configs, their templates, and publishing and removing
them on a real mosquitto, read back by an outside client."""

from __future__ import annotations

import json
import logging
import subprocess
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from jinja2.sandbox import ImmutableSandboxedEnvironment

from kiosk.fleet.discovery import (
    AVAILABILITY_TEMPLATE,
    MEMORY_FILE,
    HomeAssistantDiscovery,
    discovery_configs,
    node_id,
)
from kiosk.fleet.link import MqttLink
from kiosk.fleet.state_document import STATE_HEALTH_PARTS, state_document
from kiosk.gate.view import HEALTH_PARTS, GateSnapshot, LastDecision
from mosquitto import Mosquitto
from mqtt_support import WAIT, wait_until

STATE_TOPIC = "ashyq/v1/kiosk/k1/state"
OBJECTS = {
    "binary_sensor": {"turnstile", *STATE_HEALTH_PARTS},
    "sensor": {"occupancy", "mode", "last_decision", "backlog"},
}
T0 = 1_621_589_400.0


def configs(**kw: Any) -> dict[str, dict[str, Any]]:
    args = {"prefix": "homeassistant", "kiosk_id": "k1", "state_topic": STATE_TOPIC}
    return discovery_configs(**{**args, "version": "1.4.0", **kw})


# -- the configs ------------------------------------------------------------------------


def test_one_config_per_entity_under_the_discovery_convention() -> None:
    topics = set(configs())
    assert topics == {
        f"homeassistant/{component}/k1/{obj}/config"
        for component, objects in OBJECTS.items()
        for obj in objects
    }


def test_every_config_reads_the_state_topic_and_names_the_device() -> None:
    docs = list(configs().values())
    unique_ids = [d["unique_id"] for d in docs]
    assert len(set(unique_ids)) == len(docs)
    for doc in docs:
        assert doc["state_topic"] == STATE_TOPIC
        assert doc["availability"] == [
            {"topic": STATE_TOPIC, "value_template": AVAILABILITY_TEMPLATE}
        ]
        assert doc["device"] == {
            "identifiers": ["ashyq-kiosk:k1"],
            "name": "Ashyq kiosk k1",
            "model": "Ashyq entrance kiosk",
            "manufacturer": "Ashyq kiosk project",
            "sw_version": "1.4.0",
        }
        assert doc["qos"] == 1
        # No entity takes a command: opening stays behind a signed command.
        assert not [k for k in doc if "command" in k]


def test_device_classes() -> None:
    by_object = {t.split("/")[3]: d for t, d in configs().items()}
    turnstile = by_object["turnstile"]
    assert (turnstile["device_class"], turnstile["payload_on"], turnstile["payload_off"]) == (
        "lock",
        "free",
        "locked",
    )
    for part in STATE_HEALTH_PARTS:
        assert by_object[part]["device_class"] == "problem"
        assert by_object[part]["entity_category"] == "diagnostic"
    assert by_object["mode"]["options"] == ["normal", "lockdown", "emergency", "closed"]
    assert by_object["last_decision"]["json_attributes_topic"] == STATE_TOPIC


def test_a_kiosk_id_home_assistant_cannot_take_as_a_node_is_made_one() -> None:
    assert node_id("gate-12.terminal:b") == "gate-12_terminal_b"
    topics = configs(kiosk_id="gate-12.terminal:b")
    assert "homeassistant/sensor/gate-12_terminal_b/mode/config" in topics
    doc = topics["homeassistant/sensor/gate-12_terminal_b/mode/config"]
    assert doc["unique_id"] == "ashyq-kiosk:gate-12.terminal:b:mode"  # the id as it is


# -- the templates, rendered as Home Assistant renders them (sandboxed Jinja) --------------

JINJA = ImmutableSandboxedEnvironment()


def render(template: str, payload: dict[str, Any]) -> str:
    return JINJA.from_string(template).render(value_json=payload, value=json.dumps(payload))


def entity_states(payload: dict[str, Any]) -> dict[str, str]:
    """What each entity's value template makes of one state message."""
    return {t.split("/")[3]: render(d["value_template"], payload) for t, d in configs().items()}


def test_templates_on_a_healthy_gate() -> None:
    snap = GateSnapshot(
        since=T0,
        occupancy=12,
        capacity=50,
        health=MappingProxyType(dict.fromkeys(HEALTH_PARTS, "ok")),
        backlog=3,
    )
    doc = state_document(snap)
    states = entity_states(doc)
    assert states == {
        "turnstile": "locked",
        "occupancy": "12",
        "mode": "normal",
        "last_decision": "None",  # Home Assistant's "None": unknown
        "backlog": "3",
        **dict.fromkeys(STATE_HEALTH_PARTS, "OFF"),
    }
    assert render(AVAILABILITY_TEMPLATE, doc) == "online"


def test_templates_on_the_morning_of_the_issue() -> None:
    """Status service down, camera and scanner unplugged, someone just admitted."""
    health = dict.fromkeys(HEALTH_PARTS, "ok") | {"status": "down", "camera": "down"}
    health["scanner"] = "down"
    decision = LastDecision("refer", "backend_unavailable", None, "none", "scanner", 9.0, T0)
    snap = GateSnapshot(
        since=T0,
        mode="lockdown",
        turnstile="free",
        health=MappingProxyType(health),
        last_decision=decision,
    )
    doc = state_document(snap)
    states = entity_states(doc)
    assert (states["status"], states["camera"], states["scanner"]) == ("ON", "ON", "ON")
    assert (states["relay"], states["clock"], states["disk"]) == ("OFF", "OFF", "OFF")
    assert (states["turnstile"], states["mode"], states["occupancy"]) == (
        "free",
        "lockdown",
        "None",
    )
    assert states["last_decision"] == "refer"
    attrs_template = configs()["homeassistant/sensor/k1/last_decision/config"][
        "json_attributes_template"
    ]
    assert json.loads(render(attrs_template, doc)) == {
        "decision": "refer",
        "reason": "backend_unavailable",
        "at": "2021-05-21T09:30:00.000Z",
    }


def test_the_last_will_makes_every_entity_unavailable_and_changes_no_state() -> None:
    will = {"online": False}
    assert render(AVAILABILITY_TEMPLATE, will) == "offline"
    assert set(entity_states(will).values()) == {""}  # nothing: Home Assistant ignores it


# -- publishing and removing, on a real broker, read back by mosquitto_sub ------------------


def retained_configs(broker: Mosquitto, prefix: str = "homeassistant") -> dict[str, Any]:
    """Every retained message under ``prefix/#``, as an outside client sees it."""
    run = subprocess.run(
        ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(broker.port), "-t", f"{prefix}/#"]
        + ["-v", "-W", "2", "--retained-only"],
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,  # -W ends it with status 27 once the retained messages are read
    )
    assert run.returncode in (0, 27), run.stderr
    out: dict[str, Any] = {}
    for line in run.stdout.splitlines():
        topic, _, payload = line.partition(" ")
        out[topic] = json.loads(payload)
    return out


class Kiosk:
    """A link and its discovery, as the daemon runs them; a new one per 'start'."""

    def __init__(self, broker: Mosquitto, state_dir: Path, **kw: Any) -> None:
        self.link = MqttLink(brokers=[broker.url], client_id="kiosk-k1", kiosk_id="k1")
        kw.setdefault("version", "1.4.0")
        self.discovery = HomeAssistantDiscovery(self.link, state_dir=state_dir, **kw)
        self.discovery.start()
        self.link.start()
        assert self.link.wait_connected(WAIT)

    def stop(self) -> None:
        self.link.stop()


def test_published_retained_on_connect_then_removed_when_turned_off(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    kiosk = Kiosk(mosquitto, tmp_path, enabled=True)
    try:
        expected = configs()
        wait_until(lambda: set(retained_configs(mosquitto)) == set(expected), what="the configs")
        assert retained_configs(mosquitto) == expected
        assert json.loads((tmp_path / MEMORY_FILE).read_text())["topics"] == sorted(expected)
    finally:
        kiosk.stop()
    # The next start has discovery off: the configs are cleared, the memory forgotten.
    kiosk = Kiosk(mosquitto, tmp_path, enabled=False)
    try:
        assert kiosk.discovery.topics == []
        wait_until(lambda: not kiosk.discovery.remembered(), what="the removals acknowledged")
        assert retained_configs(mosquitto) == {}
        assert not (tmp_path / MEMORY_FILE).exists()
    finally:
        kiosk.stop()


def test_every_connect_publishes_again(mosquitto: Mosquitto, tmp_path: Path) -> None:
    """A broker that lost its retained messages gets them again at the reconnect."""
    kiosk = Kiosk(mosquitto, tmp_path, enabled=True)
    try:
        wait_until(lambda: len(retained_configs(mosquitto)) == 11, what="the configs")
        for topic in list(retained_configs(mosquitto)):  # an outside client wipes them
            subprocess.run(
                ["mosquitto_pub", "-p", str(mosquitto.port), "-t", topic, "-r", "-n"], check=True
            )
        assert retained_configs(mosquitto) == {}
        connects = kiosk.link.connects
        mosquitto.restart()
        wait_until(lambda: kiosk.link.connects > connects, what="the reconnect")
        wait_until(lambda: len(retained_configs(mosquitto)) == 11, what="the configs again")
    finally:
        kiosk.stop()


def test_a_new_prefix_removes_the_old_configs(mosquitto: Mosquitto, tmp_path: Path) -> None:
    kiosk = Kiosk(mosquitto, tmp_path, enabled=True)
    wait_until(lambda: len(retained_configs(mosquitto)) == 11, what="the configs")
    kiosk.stop()
    kiosk = Kiosk(mosquitto, tmp_path, enabled=True, prefix="ha/site-b")
    try:
        wait_until(lambda: len(retained_configs(mosquitto, "ha")) == 11, what="the new configs")
        wait_until(lambda: not retained_configs(mosquitto), what="the old ones removed")
        assert kiosk.discovery.remembered() == set(configs(prefix="ha/site-b"))
    finally:
        kiosk.stop()


def test_off_from_the_start_publishes_nothing(mosquitto: Mosquitto, tmp_path: Path) -> None:
    kiosk = Kiosk(mosquitto, tmp_path, enabled=False)
    try:
        kiosk.link.publish("homeassistant/marker", b"{}", retain=True)  # proves the read works
        wait_until(lambda: retained_configs(mosquitto), what="the marker")
        assert list(retained_configs(mosquitto)) == ["homeassistant/marker"]
        assert not (tmp_path / MEMORY_FILE).exists()
    finally:
        kiosk.stop()


class FakeLink:
    """Only for the memory-file cases: what was published, acknowledged at once."""

    kiosk_id = "k1"

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    def topic(self, *parts: str) -> str:
        return "/".join(("ashyq/v1/kiosk/k1", *parts))

    def add_connect_listener(self, fn: Any) -> None:
        pass

    def publish(self, topic: str, payload: bytes, **kw: Any) -> bool:
        self.sent.append((topic, payload))
        if kw.get("on_ack"):
            kw["on_ack"]()
        return True


@pytest.mark.parametrize("text", ["not json", '{"topics": 5}', '{"other": []}', "[1]"])
def test_an_unreadable_memory_is_said_and_harms_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, text: str
) -> None:
    (tmp_path / MEMORY_FILE).write_text(text)
    link = FakeLink()
    with caplog.at_level(logging.WARNING, "kiosk.fleet.discovery"):
        discovery = HomeAssistantDiscovery(link, enabled=False, state_dir=tmp_path, version="1")
    assert "cannot be removed automatically" in caplog.text
    discovery.on_connect()
    assert link.sent == []


def test_the_memory_is_written_before_the_configs_go_out(tmp_path: Path) -> None:
    link = FakeLink()
    written: list[bool] = []
    real_publish = link.publish

    def publish(topic: str, payload: bytes, **kw: Any) -> bool:
        written.append((tmp_path / MEMORY_FILE).exists())
        return real_publish(topic, payload, **kw)

    link.publish = publish  # type: ignore[method-assign]
    HomeAssistantDiscovery(link, enabled=True, state_dir=tmp_path, version="1").on_connect()
    assert written and all(written)
