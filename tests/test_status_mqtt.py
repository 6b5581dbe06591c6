"""Status lookups over MQTT 5 request/response against a real broker and a responder client."""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterator
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from kiosk.fleet.link import MqttLink
from kiosk.status.answer import Outcome
from kiosk.status.mqtt import MqttStatusClient
from mosquitto import Mosquitto
from mqtt_support import WAIT, wait_until

SUBJECT = "iin:921029350851"
ANSWER = {"sub": SUBJECT, "st": "green", "as_of": "2021-05-21T09:30:00Z", "max_age": 300}
REQUESTS = "ashyq/v1/status/request"
RESPONSES = "ashyq/v1/kiosk/k1/status/response"


class Responder:
    """A minimal status responder: answers each request from ``answers`` (subject -> JSON
    document, or None for silence), optionally preceded by a foreign-correlation response."""

    def __init__(self, broker: Mosquitto) -> None:
        self.answers: dict[str, Any] = {}
        self.requests: list[tuple[bytes, Any]] = []
        self.foreign_first: Any = None
        self._ready = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
        self.client.on_connect = lambda c, *a: c.subscribe(REQUESTS, qos=1)
        self.client.on_subscribe = lambda *a: self._ready.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        assert self._ready.wait(WAIT)

    def _on_message(self, client: Any, _u: Any, msg: Any) -> None:
        self.requests.append((msg.payload, msg.properties))
        doc = self.answers.get(json.loads(msg.payload)["sub"])
        if doc is None:
            return
        if self.foreign_first is not None:
            self._respond(msg.properties.ResponseTopic, os.urandom(16), self.foreign_first)
        self._respond(msg.properties.ResponseTopic, msg.properties.CorrelationData, doc)

    def _respond(self, topic: str, correlation: bytes, doc: Any) -> None:
        props = Properties(PacketTypes.PUBLISH)
        props.CorrelationData = correlation
        body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
        self.client.publish(topic, body, qos=1, properties=props)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def responder(mosquitto: Mosquitto) -> Iterator[Responder]:
    r = Responder(mosquitto)
    yield r
    r.close()


@pytest.fixture
def client(mosquitto: Mosquitto) -> Iterator[MqttStatusClient]:
    link = MqttLink(brokers=[mosquitto.url], client_id="kiosk-k1", kiosk_id="k1")
    status = MqttStatusClient(link)
    link.start()
    assert link.wait_subscribed(WAIT)
    yield status
    status.close()
    link.stop()


def test_an_answer_comes_back_by_correlation(responder: Responder, client: MqttStatusClient):
    responder.answers[SUBJECT] = ANSWER
    result = client.lookup(SUBJECT, deadline_s=WAIT)
    assert (result.outcome, result.st, result.max_age_s) == (Outcome.ANSWER, "green", 300.0)
    payload, props = responder.requests[0]
    assert json.loads(payload) == {"sub": SUBJECT}
    assert props.ResponseTopic == RESPONSES
    assert props.ContentType == "application/json"
    assert isinstance(props.CorrelationData, bytes) and len(props.CorrelationData) == 16


def test_unknown_subject_and_errors(responder: Responder, client: MqttStatusClient) -> None:
    responder.answers[SUBJECT] = {"error": "unknown_subject"}
    assert client.lookup(SUBJECT, deadline_s=WAIT).outcome is Outcome.UNKNOWN
    for doc in ({"error": "unavailable"}, {"error": "unauthorized"}, {"error": "x" * 500}):
        responder.answers[SUBJECT] = doc
        result = client.lookup(SUBJECT, deadline_s=WAIT)
        assert result.outcome is Outcome.NO_ANSWER and "x" * 20 not in result.detail


@pytest.mark.parametrize(
    "doc",
    [
        b"not json",
        {**ANSWER, "sub": "iin:061211600012"},  # another person's answer
        {**ANSWER, "st": "purple"},
        {**ANSWER, "max_age": -1},
    ],
)
def test_a_malformed_answer_is_no_answer(
    responder: Responder, client: MqttStatusClient, doc: Any
) -> None:
    responder.answers[SUBJECT] = doc
    assert client.lookup(SUBJECT, deadline_s=WAIT).outcome is Outcome.NO_ANSWER


def test_no_response_ends_in_no_answer_within_the_deadline(
    responder: Responder, client: MqttStatusClient
) -> None:
    result = client.lookup(SUBJECT, deadline_s=0.3)  # the responder stays silent
    assert result.outcome is Outcome.NO_ANSWER and result.detail == "deadline passed"
    wait_until(lambda: responder.requests, what="the request reached the responder")


def test_a_response_with_a_foreign_correlation_is_dropped(
    responder: Responder, client: MqttStatusClient
) -> None:
    responder.foreign_first = {**ANSWER, "st": "red"}
    responder.answers[SUBJECT] = ANSWER
    result = client.lookup(SUBJECT, deadline_s=WAIT)
    assert (result.outcome, result.st) == (Outcome.ANSWER, "green")


def test_only_a_foreign_response_is_no_answer(
    responder: Responder, client: MqttStatusClient, mosquitto: Mosquitto
) -> None:
    # A stranger answers on our response topic with its own correlation data.
    responder.client.on_message = lambda c, u, msg: responder._respond(
        msg.properties.ResponseTopic, os.urandom(16), ANSWER
    )
    assert client.lookup(SUBJECT, deadline_s=0.5).outcome is Outcome.NO_ANSWER


def test_concurrent_lookups_each_get_their_own_answer(
    responder: Responder, client: MqttStatusClient
) -> None:
    subjects = [f"passport:KAZ:N{i:07d}" for i in range(8)]
    for i, sub in enumerate(subjects):
        responder.answers[sub] = {**ANSWER, "sub": sub, "st": ("green", "red")[i % 2]}
    results: dict[str, Any] = {}

    def ask(sub: str) -> None:
        results[sub] = client.lookup(sub, deadline_s=WAIT)

    threads = [threading.Thread(target=ask, args=(s,)) for s in subjects]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT + 5)
    assert {s: r.st for s, r in results.items()} == {
        s: ("green", "red")[i % 2] for i, s in enumerate(subjects)
    }


def test_not_connected_is_no_answer_at_once(mosquitto: Mosquitto) -> None:
    link = MqttLink(brokers=[mosquitto.url], client_id="kiosk-k1", kiosk_id="k1")
    status = MqttStatusClient(link)  # never started
    result = status.lookup(SUBJECT, deadline_s=60.0)  # would hang the test if it waited
    assert result.outcome is Outcome.NO_ANSWER and result.detail == "not connected to the broker"


def test_close_ends_waiting_lookups(responder: Responder, client: MqttStatusClient) -> None:
    results: list[Any] = []
    t = threading.Thread(target=lambda: results.append(client.lookup(SUBJECT, deadline_s=60.0)))
    t.start()
    wait_until(lambda: responder.requests, what="request sent")
    client.close()
    t.join(WAIT)
    assert results[0].outcome is Outcome.NO_ANSWER


class FakeMonotonic:
    """The breaker's clock, moved by the test."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_a_silent_responder_is_known_down_and_one_trial_brings_it_back(
    responder: Responder, mosquitto: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeMonotonic()
    link = MqttLink(brokers=[mosquitto.url], client_id="kiosk-k1", kiosk_id="k1")
    status = MqttStatusClient(link, now=clock)
    link.start()
    assert link.wait_subscribed(WAIT)
    with caplog.at_level(logging.INFO):
        assert status.lookup(SUBJECT, deadline_s=0.3).detail == "deadline passed"
        wait_until(lambda: responder.requests, what="the request reached the responder")
        # Down: answered at once, nothing published (a published request would carry the
        # person's subject to a broker for nothing).
        for _ in range(3):
            assert status.lookup(SUBJECT, deadline_s=60.0).detail == "status service down"
        responder.answers[SUBJECT] = ANSWER
        clock.t += 1.0  # the first probe interval: one real lookup is the trial
        assert status.lookup(SUBJECT, deadline_s=WAIT).outcome is Outcome.ANSWER
        assert len(responder.requests) == 2
        assert status.breaker is not None and status.breaker.online
    lines = [r.getMessage() for r in caplog.records if r.name == "kiosk.status.breaker"]
    assert lines == [
        "status service unreachable (no response within the deadline); deciding offline",
        "status service reachable again",
    ]
    assert "921029350851" not in caplog.text
    status.close()
    link.stop()


def test_link_down_is_said_once(mosquitto: Mosquitto, caplog: pytest.LogCaptureFixture) -> None:
    link = MqttLink(brokers=[mosquitto.url], client_id="kiosk-k1", kiosk_id="k1")
    status = MqttStatusClient(link)  # never started: the link is down
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            assert status.lookup(SUBJECT, deadline_s=60.0).outcome is Outcome.NO_ANSWER
    lines = [r.getMessage() for r in caplog.records if r.name == "kiosk.status.breaker"]
    assert lines == ["status service unreachable (broker link down); deciding offline"]


def test_the_link_coming_back_is_online_at_once(
    responder: Responder, mosquitto: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeMonotonic()  # never moved: no probe interval needs to pass
    link = MqttLink(brokers=[mosquitto.url], client_id="kiosk-k1", kiosk_id="k1")
    status = MqttStatusClient(link, now=clock)
    with caplog.at_level(logging.INFO):
        assert status.lookup(SUBJECT, deadline_s=60.0).detail == "not connected to the broker"
        link.start()
        assert link.wait_subscribed(WAIT)
        responder.answers[SUBJECT] = ANSWER
        assert status.lookup(SUBJECT, deadline_s=WAIT).outcome is Outcome.ANSWER
    lines = [r.getMessage() for r in caplog.records if r.name == "kiosk.status.breaker"]
    assert lines == [
        "status service unreachable (broker link down); deciding offline",
        "status service reachable again",
    ]
    status.close()
    link.stop()
