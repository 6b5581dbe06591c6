"""The retained state topic: online state on connect and on change, the Last Will when the
kiosk's connection dies abruptly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from kiosk.errors import KioskError
from kiosk.fleet.link import MqttLink
from kiosk.fleet.state import StatePublisher
from mosquitto import Mosquitto
from mqtt_support import WAIT, Observer, start_link, wait_until
from support import REPO

TOPIC = "ashyq/v1/kiosk/k1/state"
STATE = {
    "online": True,
    "mode": "normal",
    "version": "1.2.3",
    "since": "2021-05-21T09:30:00.000Z",
    "occupancy": None,
}
HEALTH_OFF = {
    "camera": "off",
    "scanner": "off",
    "status": "off",
    "clock": "off",
    "disk": "off",
    "relay": "off",
    "backlog": 0,
}


def retained(broker: Mosquitto) -> tuple[bool, dict]:
    """The retained state as an outside client (mosquitto_sub) sees it: (retain flag, JSON)."""
    out = subprocess.run(
        ["mosquitto_sub", "-V", "mqttv5", "-p", str(broker.port), "-t", TOPIC]
        + ["-C", "1", "-W", str(int(WAIT)), "-F", "%r %p"],
        capture_output=True,
        text=True,
        timeout=WAIT + 5,
        check=True,
    ).stdout
    flag, payload = out.strip().split(" ", 1)
    return flag == "1", json.loads(payload)


def test_state_is_published_retained_on_connect_and_on_change(mosquitto: Mosquitto) -> None:
    link = MqttLink(brokers=[mosquitto.url], client_id="kiosk-k1", kiosk_id="k1")
    publisher = StatePublisher(link, initial=STATE)
    link.start()
    try:
        assert link.wait_connected(WAIT)
        wait_until(lambda: retained(mosquitto) == (True, STATE), what="initial state")
        changed = {**STATE, "mode": "lockdown", "occupancy": 12, "extra": "dropped"}
        assert publisher.publish_state(changed)
        expected = {**STATE, "mode": "lockdown", "occupancy": 12}
        wait_until(lambda: retained(mosquitto) == (True, expected), what="changed state")
        assert publisher.payload == json.dumps(expected, separators=(",", ":")).encode()
    finally:
        link.stop()


def test_a_change_while_offline_goes_out_on_the_next_connect(mosquitto: Mosquitto) -> None:
    link = start_link(mosquitto, backoff_min_s=0.05, backoff_max_s=0.5)
    publisher = StatePublisher(link)
    try:
        mosquitto.kill()  # nothing retained survives
        wait_until(lambda: not link.connected, what="the link notices")
        assert publisher.publish_state({**STATE, "mode": "emergency"}) is False
        mosquitto.start()
        wait_until(
            lambda: retained(mosquitto) == (True, {**STATE, "mode": "emergency"}),
            what="state republished after reconnect",
        )
    finally:
        link.stop()


def test_state_that_is_not_json_is_refused(mosquitto: Mosquitto) -> None:
    link = MqttLink(brokers=[mosquitto.url], client_id="kiosk-k1", kiosk_id="k1")
    with pytest.raises(KioskError, match="JSON"):
        StatePublisher(link).publish_state({**STATE, "occupancy": float("nan")})


_CHILD = textwrap.dedent(
    """
    import sys, time
    from kiosk.fleet.link import MqttLink
    from kiosk.fleet.state import StatePublisher

    link = MqttLink(brokers=[sys.argv[1]], client_id="kiosk-k1", kiosk_id="k1")
    StatePublisher(link, initial={"mode": "normal", "version": "t", "since": "x"})
    link.start()
    assert link.wait_connected(20)
    print("connected", flush=True)
    time.sleep(600)
    """
)


def test_the_last_will_says_offline_when_the_kiosk_dies(mosquitto: Mosquitto) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, mosquitto.url],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert child.stdout is not None
    obs = Observer(mosquitto, TOPIC)
    try:
        assert child.stdout.readline().strip() == "connected"
        obs.wait_for(lambda p: p and json.loads(p[-1])["online"] is True, TOPIC)
        child.send_signal(signal.SIGKILL)  # no DISCONNECT: the broker publishes the Will
        child.wait(WAIT)
        obs.wait_for(lambda p: p[-1] == b'{"online":false}', TOPIC)
        assert retained(mosquitto) == (True, {"online": False})
    finally:
        if child.poll() is None:
            child.kill()
        obs.close()


def test_a_clean_stop_also_leaves_offline(mosquitto: Mosquitto) -> None:
    link = start_link(mosquitto)
    StatePublisher(link).publish_state(STATE)
    wait_until(lambda: retained(mosquitto)[1]["online"], what="online")
    link.stop()
    wait_until(lambda: retained(mosquitto) == (True, {"online": False}), what="offline")


def test_the_state_follows_the_gate_view_and_only_its_own_fields(mosquitto: Mosquitto) -> None:
    from kiosk.gate.view import GateSnapshot, GateView

    link = MqttLink(brokers=[mosquitto.url], client_id="kiosk-k1", kiosk_id="k1")
    view = GateView(GateSnapshot(mode="normal", since=1_621_589_400.0, kiosk_version="1.2.3"))
    publisher = StatePublisher(link, initial=view.snapshot())
    view.subscribe(publisher)
    sent: list[bytes] = []
    real_publish = link.publish

    def counting(topic, payload, **kw):
        if topic == TOPIC:
            sent.append(payload)
        return real_publish(topic, payload, **kw)

    link.publish = counting  # type: ignore[method-assign]
    link.start()
    try:
        assert link.wait_connected(WAIT)
        # From the view the state also carries the health and the two Home Assistant fields.
        seen = {**STATE, "health": HEALTH_OFF, "turnstile": "locked", "last_decision": None}
        wait_until(lambda: retained(mosquitto) == (True, seen), what="initial state")
        before = len(sent)
        view.publish(light="deny", sound="long", occupancy=3)  # no capacity: not the state's
        assert len(sent) == before
        view.publish(mode="lockdown", since=1_621_589_460.0)
        expected = {**seen, "mode": "lockdown", "since": "2021-05-21T09:31:00.000Z"}
        wait_until(lambda: retained(mosquitto) == (True, expected), what="lockdown state")
        view.publish(capacity=100)  # a venue with a capacity shows its occupancy
        expected = {**expected, "occupancy": 3}
        wait_until(lambda: retained(mosquitto) == (True, expected), what="occupancy")
        assert len(sent) == before + 2
        view.set_health("camera", "down")  # mqtt.md: republished on every change of health
        expected = {**expected, "health": {**HEALTH_OFF, "camera": "down"}}
        wait_until(lambda: retained(mosquitto) == (True, expected), what="camera down")
    finally:
        link.stop()
