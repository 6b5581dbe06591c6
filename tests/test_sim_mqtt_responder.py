"""The simulated status authority over MQTT 5: answers, correlation, dropped requests, faults.

Everything goes through a real mosquitto: an outside paho client plays the kiosk, and one
check watches the response topic with the ``mosquitto_sub`` command line client.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from mosquitto import Mosquitto
from simulators.answers import GARBAGE_BODY, MAX_REQUEST_BYTES
from simulators.mqtt_client import MqttSimError, parse_broker_url
from simulators.mqtt_responder import MqttStatusResponder
from simulators.population import Population, generate, save
from simulators.status_service import Faults
from support import REPO, wait_until

FIXED_NOW = 1_621_589_400.0  # 2021-05-21T09:30:00Z, the spec's example
PREFIX = "ashyq/v1"
REQUEST_TOPIC = f"{PREFIX}/status/request"
WAIT_S = 20.0  # generous: the suite runs on a busy 2-core machine


@pytest.fixture
def population() -> Population:
    return Population(generate(40, seed=11))


@pytest.fixture
def responder(population: Population, mosquitto: Mosquitto) -> Iterator[MqttStatusResponder]:
    with MqttStatusResponder(population, broker_url=mosquitto.url, clock=lambda: FIXED_NOW) as r:
        yield r


class Kiosk:
    """An outside MQTT 5 client asking for statuses the way status-api.md says."""

    def __init__(self, broker: Mosquitto, kiosk_id: str = "k-test") -> None:
        self.response_topic = f"{PREFIX}/kiosk/{kiosk_id}/status/response"
        self.answers: dict[bytes, mqtt.MQTTMessage] = {}
        self.seen: list[mqtt.MQTTMessage] = []  # everything under {prefix}/kiosk/
        self._cond = threading.Condition()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"test-kiosk-{secrets.token_hex(4)}",
            protocol=mqtt.MQTTv5,
        )
        self.client.max_inflight_messages_set(1000)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        self.client.subscribe(f"{PREFIX}/kiosk/#", qos=1)
        assert self._subscribed.wait(WAIT_S)

    def _on_message(self, client: Any, userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self._cond:
            self.seen.append(message)
            corr = getattr(message.properties, "CorrelationData", None)
            if corr is not None:
                self.answers[corr] = message
            self._cond.notify_all()

    def send(
        self,
        payload: bytes | dict[str, Any],
        *,
        correlation: bytes | None = None,
        response_topic: str | None = None,
        with_response_topic: bool = True,
    ) -> bytes:
        """Publish a request; returns its correlation data."""
        corr = correlation if correlation is not None else secrets.token_bytes(16)
        props = Properties(PacketTypes.PUBLISH)
        if with_response_topic:
            props.ResponseTopic = response_topic or self.response_topic
        if corr:
            props.CorrelationData = corr
        props.ContentType = "application/json"
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.client.publish(REQUEST_TOPIC, body, qos=1, properties=props).wait_for_publish(WAIT_S)
        return corr

    def wait(self, corr: bytes, timeout: float = WAIT_S) -> mqtt.MQTTMessage:
        with self._cond:
            assert self._cond.wait_for(lambda: corr in self.answers, timeout), "no answer"
            return self.answers[corr]

    def ask(self, payload: bytes | dict[str, Any]) -> tuple[mqtt.MQTTMessage, Any]:
        """Request and wait: (the response message, its JSON)."""
        message = self.wait(self.send(payload))
        return message, json.loads(message.payload)

    def responses(self) -> list[mqtt.MQTTMessage]:
        with self._cond:
            return [m for m in self.seen if m.topic.endswith("/status/response")]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def kiosk(mosquitto: Mosquitto) -> Iterator[Kiosk]:
    k = Kiosk(mosquitto)
    yield k
    k.close()


def unknown_subject(population: Population) -> str:
    return next(p.sub for p in generate(50, seed=99) if population.by_sub(p.sub) is None)


# --- answers -------------------------------------------------------------------------------


def test_known_person_gets_the_spec_answer(responder, kiosk, population) -> None:
    person = population.by_index(3)
    message, answer = kiosk.ask({"sub": person.sub})
    assert answer == {
        "sub": person.sub,
        "st": person.st,
        "as_of": "2021-05-21T09:30:00Z",
        "max_age": 300,
    }
    assert message.topic == kiosk.response_topic
    assert message.qos == 1
    assert message.properties.ContentType == "application/json"


def test_every_status_is_answered_as_held(responder, kiosk, population) -> None:
    for i, st in enumerate(("green", "blue", "yellow", "red")):
        person = population.set_status(population.by_index(i).sub, st)
        _, answer = kiosk.ask({"sub": person.sub})
        assert answer["st"] == st


def test_status_change_is_seen_live(responder, kiosk, population) -> None:
    person = population.with_status("green")[0]
    population.set_status(person.sub, "red")
    _, answer = kiosk.ask({"sub": person.sub})
    assert answer["st"] == "red"


def test_unknown_subject(responder, kiosk, population) -> None:
    _, answer = kiosk.ask({"sub": unknown_subject(population)})
    assert answer == {"error": "unknown_subject"}


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b"\xff\xfe",
        b"[]",
        b"{}",
        b'{"sub": 42}',
        b'{"sub": "iin:123"}',
        b'{"sub": "iin:921029350850"}',  # bad check digit
        b'{"sub": "passport:kaz:N1"}',
        b'{"sub": "' + b"9" * MAX_REQUEST_BYTES + b'"}',
        b"",
    ],
    ids=lambda p: repr(p[:24]),
)
def test_bad_request(responder, kiosk, payload) -> None:
    _, answer = kiosk.ask(payload)
    assert answer == {"error": "bad_request"}


def test_max_age_is_configurable(population, mosquitto, kiosk) -> None:
    with MqttStatusResponder(population, broker_url=mosquitto.url, max_age_s=0):
        _, answer = kiosk.ask({"sub": population.by_index(0).sub})
    assert answer["max_age"] == 0


def test_custom_prefix(population, mosquitto) -> None:
    with MqttStatusResponder(population, broker_url=mosquitto.url, prefix="venue9/v1") as r:
        assert r.request_topic == "venue9/v1/status/request"
    # Talk to it on the custom prefix, answering on a topic outside the kiosk's tree.
    with MqttStatusResponder(population, broker_url=mosquitto.url, prefix="venue9/v1"):
        got = threading.Event()
        client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=5)
        client.on_message = lambda *_: got.set()
        client.connect("127.0.0.1", mosquitto.port)
        client.loop_start()
        try:
            client.subscribe("elsewhere/answer", qos=1)
            props = Properties(PacketTypes.PUBLISH)
            props.ResponseTopic = "elsewhere/answer"
            props.CorrelationData = b"\x01" * 16
            # Retried until answered: the subscription may not be active on the first send.
            for _ in range(int(WAIT_S / 0.2)):
                body = json.dumps({"sub": population.by_index(0).sub})
                client.publish("venue9/v1/status/request", body, qos=1, properties=props)
                if got.wait(0.2):
                    break
            assert got.is_set()
        finally:
            client.disconnect()
            client.loop_stop()


# --- correlation and dropped requests ------------------------------------------------------


def test_correlation_data_is_echoed_for_each_of_many_requests(responder, kiosk, population) -> None:
    people = population.people
    sent = {kiosk.send({"sub": people[i % len(people)].sub}): i for i in range(300)}
    for corr, i in sent.items():
        answer = json.loads(kiosk.wait(corr).payload)
        assert answer["sub"] == people[i % len(people)].sub
    assert wait_until(lambda: responder.stats.answered == 300)
    assert responder.stats.requests == 300


def test_binary_correlation_data_comes_back_byte_for_byte(responder, kiosk, population) -> None:
    corr = bytes(range(256))
    kiosk.send({"sub": population.by_index(1).sub}, correlation=corr)
    assert kiosk.wait(corr).properties.CorrelationData == corr


def test_requests_without_response_topic_or_correlation_are_dropped(
    responder, kiosk, population
) -> None:
    sub = population.by_index(0).sub
    kiosk.send({"sub": sub}, with_response_topic=False)
    kiosk.send({"sub": sub}, correlation=b"")
    # Wildcards make a topic nobody can publish to: dropped, not a crash.
    kiosk.send({"sub": sub}, response_topic=f"{PREFIX}/kiosk/+/status/response")
    # The responder handles requests in order, so this answer means the others were seen.
    _, answer = kiosk.ask({"sub": sub})
    assert answer["sub"] == sub
    assert wait_until(lambda: responder.stats.dropped == 3)
    assert responder.stats.snapshot() == {
        "requests": 4,
        "answered": 1,
        "dropped": 3,
        "by_answer": {"status": 1},
    }
    assert len(kiosk.responses()) == 1


def test_a_failing_lookup_drops_one_request_and_keeps_answering(
    population, mosquitto, kiosk
) -> None:
    class Broken(Population):
        def by_sub(self, sub: str):  # type: ignore[override]
            if sub == population.by_index(0).sub:
                raise RuntimeError("database on fire")
            return super().by_sub(sub)

    broken = Broken(population.people)
    with MqttStatusResponder(broken, broker_url=mosquitto.url) as responder:
        lost = kiosk.send({"sub": population.by_index(0).sub})
        _, answer = kiosk.ask({"sub": population.by_index(1).sub})
        assert answer["sub"] == population.by_index(1).sub
        assert wait_until(lambda: responder.stats.dropped == 1)
    assert lost not in kiosk.answers


# --- faults --------------------------------------------------------------------------------


def test_down_answers_nothing_until_up_again(responder, kiosk, population) -> None:
    sub = population.by_index(0).sub
    responder.faults.set(down=True)
    lost = kiosk.send({"sub": sub})
    assert wait_until(lambda: responder.stats.dropped == 1)
    responder.faults.set(down=False)
    _, answer = kiosk.ask({"sub": sub})
    assert answer["sub"] == sub
    assert lost not in kiosk.answers
    assert len(kiosk.responses()) == 1


def test_error_rate_answers_unavailable(responder, kiosk, population) -> None:
    responder.faults.set(error_rate=1.0)
    _, answer = kiosk.ask({"sub": population.by_index(0).sub})
    assert answer == {"error": "unavailable"}
    assert responder.stats.by_answer == {"unavailable": 1}


def test_error_rate_is_a_share_of_requests(population, mosquitto, kiosk) -> None:
    with MqttStatusResponder(population, broker_url=mosquitto.url, seed=5) as responder:
        responder.faults.set(error_rate=0.5)
        corrs = [kiosk.send({"sub": population.by_index(0).sub}) for _ in range(200)]
        answers = [json.loads(kiosk.wait(c).payload) for c in corrs]
    errors = sum(a == {"error": "unavailable"} for a in answers)
    assert 50 < errors < 150  # seeded dice: both kinds of answer, roughly half each


def test_status_429_answers_unavailable(responder, kiosk, population) -> None:
    responder.faults.set(status_429=True)
    _, answer = kiosk.ask({"sub": population.by_index(0).sub})
    assert answer == {"error": "unavailable"}


def test_garbage_is_not_json(responder, kiosk, population) -> None:
    responder.faults.set(garbage=True)
    message = kiosk.wait(kiosk.send({"sub": population.by_index(0).sub}))
    assert message.payload == GARBAGE_BODY
    with pytest.raises(ValueError):
        json.loads(message.payload)


def test_latency_delays_one_answer_without_holding_up_others(responder, kiosk, population) -> None:
    sub = population.by_index(0).sub
    responder.faults.set(latency_ms=600_000)  # the answer would come in 10 minutes
    slow = kiosk.send({"sub": sub})
    assert wait_until(lambda: responder.stats.requests == 1)
    responder.faults.set(latency_ms=0)
    _, answer = kiosk.ask({"sub": sub})
    assert answer["sub"] == sub
    assert slow not in kiosk.answers
    responder.stop()  # the pending answer is dropped, not sent
    assert responder.stats.dropped == 1
    assert slow not in kiosk.answers


def test_latency_answer_arrives(responder, kiosk, population) -> None:
    responder.faults.set(latency_ms=50)
    corrs = [kiosk.send({"sub": p.sub}) for p in population.people[:20]]
    for corr, person in zip(corrs, population.people[:20], strict=True):
        assert json.loads(kiosk.wait(corr).payload)["sub"] == person.sub


def test_wrong_correlation_matches_no_request(responder, kiosk, population) -> None:
    responder.wrong_correlation = True
    corr = kiosk.send({"sub": population.by_index(0).sub})
    assert wait_until(lambda: len(kiosk.responses()) == 1)
    message = kiosk.responses()[0]
    assert message.properties.CorrelationData != corr
    assert len(message.properties.CorrelationData) == len(corr)
    assert corr not in kiosk.answers
    # The answer itself is a true one: only the correlation is wrong.
    assert json.loads(message.payload)["sub"] == population.by_index(0).sub


def test_faults_can_be_shared_and_are_checked(population, mosquitto) -> None:
    faults = Faults(error_rate=0.25)
    responder = MqttStatusResponder(population, broker_url=mosquitto.url, faults=faults)
    assert responder.faults is faults
    with pytest.raises(ValueError, match="latency_ms"):
        responder.faults.set(latency_ms=-1)


# --- the broker and the outside world ------------------------------------------------------


def test_mosquitto_sub_sees_the_answer(responder, kiosk, population, mosquitto) -> None:
    topic = f"{PREFIX}/kiosk/k-observer/status/response"
    watcher = subprocess.Popen(
        ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(mosquitto.port), "-V", "mqttv5"]
        + ["-q", "1", "-t", topic, "-C", "1", "-W", str(int(WAIT_S)), "-F", "%C|%D|%p"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    person = population.by_index(2)
    sent: set[bytes] = set()
    try:
        # mosquitto_sub does not say when its subscription is active, so ask again until it
        # has seen an answer (it exits after one).
        while watcher.poll() is None and len(sent) < WAIT_S / 0.1:
            corr = b"corr-%03d" % len(sent)
            sent.add(kiosk.send({"sub": person.sub}, correlation=corr, response_topic=topic))
            time.sleep(0.1)
        out, err = watcher.communicate(timeout=WAIT_S)
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()
    assert watcher.returncode == 0, err
    content_type, corr_text, payload = out.decode().rstrip("\n").split("|", 2)
    assert content_type == "application/json"
    assert corr_text.encode() in sent
    assert json.loads(payload) == {
        "sub": person.sub,
        "st": person.st,
        "as_of": "2021-05-21T09:30:00Z",
        "max_age": 300,
    }


def test_answers_again_after_broker_restart(responder, kiosk, population, mosquitto) -> None:
    sub = population.by_index(0).sub
    kiosk.ask({"sub": sub})
    mosquitto.restart()
    # Both clients reconnect by themselves; ask until the resubscribed responder answers.
    k2 = Kiosk(mosquitto, "k-after-restart")
    try:
        answered = False
        for _ in range(int(WAIT_S / 0.25)):
            corr = k2.send({"sub": sub})
            with k2._cond:
                if k2._cond.wait_for(lambda c=corr: c in k2.answers, 0.25):
                    answered = True
                    break
        assert answered
    finally:
        k2.close()


def test_logs_carry_no_subject_or_payload(population, mosquitto, kiosk, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    person = population.by_index(0)
    with MqttStatusResponder(population, broker_url=mosquitto.url) as responder:
        kiosk.ask({"sub": person.sub})
        kiosk.ask(b"garbage " + person.sub.encode())
        responder.faults.set(garbage=True)
        kiosk.wait(kiosk.send({"sub": person.sub}))
    number = person.sub.split(":")[-1]
    assert number not in caplog.text
    assert "garbage" not in caplog.text


def test_start_fails_clearly_when_no_broker(population) -> None:
    from mosquitto import free_port

    responder = MqttStatusResponder(population, broker_url=f"mqtt://127.0.0.1:{free_port()}")
    with pytest.raises(MqttSimError, match="no connection"):
        responder.start(timeout=0.5)
    assert not responder.running


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://127.0.0.1:1883", "mqtt://"),
        ("mqtt://", "no host"),
        ("mqtt://host:99999", "out of range"),
        ("mqtt://host:1883/topic", "without a path"),
    ],
)
def test_bad_broker_urls_are_refused(population, url, problem) -> None:
    with pytest.raises(MqttSimError, match=problem):
        MqttStatusResponder(population, broker_url=url)


def test_broker_url_parts() -> None:
    a = parse_broker_url("mqtts://op%40x:s3cret@broker.example")
    assert (a.host, a.port, a.tls, a.username, a.password) == (
        "broker.example",
        8883,
        True,
        "op@x",
        "s3cret",
    )
    assert "s3cret" not in str(a)
    assert parse_broker_url("mqtt://10.0.0.1").port == 1883


# --- the command line ---------------------------------------------------------------------


def test_cli_runs_until_sigterm(mosquitto, kiosk, tmp_path) -> None:
    people = generate(10, seed=3)
    save(people, tmp_path / "people.jsonl")
    proc = subprocess.Popen(
        [sys.executable, "-m", "kiosk.cli", "status-responder", "--broker", mosquitto.url]
        + ["--population", str(tmp_path / "people.jsonl"), "--max-age-s", "7"],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == REQUEST_TOPIC  # printed once subscribed
        _, answer = kiosk.ask({"sub": people[4].sub})
        assert answer["sub"] == people[4].sub and answer["max_age"] == 7
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=WAIT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert "1 requests, 1 answered" in err
    assert people[4].sub.split(":")[-1] not in err


def test_cli_refuses_bad_options(capsys) -> None:
    from kiosk.cli import main

    assert main(["status-responder", "--broker", "http://x", "--error-rate", "0"]) == 2
    assert main(["status-responder", "--broker", "mqtt://x", "--error-rate", "2"]) == 2
    err = capsys.readouterr().err
    assert "mqtt://" in err and "error_rate" in err
