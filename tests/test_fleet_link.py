"""The MQTT link against real mosquitto brokers: URLs, TLS, subscriptions kept across restarts,
failover to the second broker and back, and errors that never escape paho's thread.

The helpers (``Observer``, ``wait_until``, ``start_link``) live in tests/mqtt_support.py.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import logging
import ssl
import threading
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kiosk.errors import KioskError
from kiosk.fleet.broker import build_ssl_context, parse_broker_url
from kiosk.fleet.link import MqttLink
from mosquitto import Mosquitto, free_port
from mqtt_support import WAIT, Observer, start_link, wait_until  # noqa: F401


def test_broker_urls_parse_with_default_ports() -> None:
    assert parse_broker_url("mqtt://broker.example").port == 1883
    tls = parse_broker_url("mqtts://broker.example")
    assert (tls.host, tls.port, tls.tls) == ("broker.example", 8883, True)
    assert parse_broker_url("mqtt://[::1]:1884").host == "::1"


@pytest.mark.parametrize(
    "url",
    ["http://h:1883", "mqtt://", "mqtt://h:99999", "mqtt://u:p@h", "mqtt://h/x", "h:1883"],
)
def test_bad_broker_urls_are_named(url: str) -> None:
    with pytest.raises(KioskError, match="broker URL"):
        parse_broker_url(url)


def test_link_refuses_bad_settings() -> None:
    with pytest.raises(KioskError, match="no broker"):
        MqttLink(brokers=[], client_id="c", kiosk_id="k1")
    with pytest.raises(KioskError, match="kiosk id"):
        MqttLink(brokers=["mqtt://127.0.0.1:1"], client_id="c", kiosk_id="k/#")
    with pytest.raises(KioskError, match="TLS"):
        MqttLink(
            brokers=["mqtts://127.0.0.1:1"], client_id="c", kiosk_id="k1", ca_file="/nonexistent"
        )


def _make_pki(folder: Path) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate (EC P-256: fast)."""
    now = datetime.datetime.now(datetime.UTC)

    def cert(name: str, key: Any, issuer: Any, issuer_key: Any, *, ca: bool, ip: bool) -> Any:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if ip:
            san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
            builder = builder.add_extension(san, critical=False)
        return builder.sign(issuer_key, hashes.SHA256())

    paths: dict[str, Path] = {}
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test ca")])
    ca_cert = cert("test ca", ca_key, ca_name, ca_key, ca=True, ip=False)
    for who, ip in (("server", True), ("client", False)):
        key = ec.generate_private_key(ec.SECP256R1())
        crt = cert(who, key, ca_name, ca_key, ca=False, ip=ip)
        paths[f"{who}_key"] = folder / f"{who}.key"
        paths[f"{who}_cert"] = folder / f"{who}.crt"
        paths[f"{who}_key"].write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        paths[f"{who}_cert"].write_bytes(crt.public_bytes(serialization.Encoding.PEM))
    paths["ca"] = folder / "ca.crt"
    paths["ca"].write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    return paths


def test_ssl_context_verifies_the_server_and_carries_the_client_certificate(
    tmp_path: Path,
) -> None:
    pki = _make_pki(tmp_path)
    ctx = build_ssl_context(
        ca_file=str(pki["ca"]),
        client_cert=str(pki["client_cert"]),
        client_key=str(pki["client_key"]),
    )
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    assert ctx.minimum_version >= ssl.TLSVersion.TLSv1_2
    with pytest.raises(KioskError, match="TLS"):
        build_ssl_context(ca_file=str(pki["ca"]), client_cert=str(pki["ca"]))  # no key in it


def test_mutual_tls_to_a_real_broker(tmp_path: Path) -> None:
    pki = _make_pki(tmp_path)
    tls_port = free_port()
    conf = (
        f"listener {tls_port} 127.0.0.1\n"
        f"cafile {pki['ca']}\ncertfile {pki['server_cert']}\nkeyfile {pki['server_key']}\n"
        "require_certificate true\n"
    )
    with Mosquitto(tmp_path / "broker", extra_conf=conf) as broker:
        url = f"mqtts://127.0.0.1:{tls_port}"
        link = start_link(
            url,
            ca_file=str(pki["ca"]),
            client_cert=str(pki["client_cert"]),
            client_key=str(pki["client_key"]),
        )
        try:
            obs = Observer(broker, "t/#")
            acked = threading.Event()
            assert link.publish("t/tls", b"over tls", on_ack=acked.set)
            assert acked.wait(WAIT)
            obs.wait_for(lambda p: p == [b"over tls"], "t/tls")
            assert link.broker == url
            obs.close()
        finally:
            link.stop()


# -- publishing and subscribing -------------------------------------------------------------


def test_publish_is_acknowledged_and_subscriptions_deliver(
    mosquitto: Mosquitto, observer: Observer
) -> None:
    link = start_link(mosquitto)
    try:
        assert link.topic("events") == "ashyq/v1/kiosk/k1/events"
        got: list[tuple[str, bytes]] = []
        link.subscribe(link.topic("inbox"), lambda t, p, props: got.append((t, p)))
        acks: list[int] = []
        for i in range(50):
            assert link.publish(link.topic("out"), b"%d" % i, on_ack=lambda i=i: acks.append(i))
        wait_until(lambda: len(acks) == 50, what="50 PUBACKs")
        assert sorted(acks) == list(range(50))
        observer.wait_for(lambda p: len(p) == 50, "ashyq/v1/kiosk/k1/out")
        assert observer.payloads("ashyq/v1/kiosk/k1/out") == [b"%d" % i for i in range(50)]
        assert link.wait_subscribed(WAIT)
        observer.publish(link.topic("inbox"), b"hello")
        wait_until(lambda: got, what="inbox message")
        assert got == [("ashyq/v1/kiosk/k1/inbox", b"hello")]
    finally:
        link.stop()


def test_publish_when_not_connected_says_so(mosquitto: Mosquitto) -> None:
    link = MqttLink(brokers=[mosquitto.url], client_id="kiosk-k1", kiosk_id="k1")
    assert not link.connected and link.broker is None
    assert link.publish(link.topic("x"), b"nobody hears") is False
    assert not link.wait_connected(0.01)


def test_subscriptions_are_renewed_after_a_broker_restart(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    link = start_link(mosquitto, backoff_min_s=0.05)
    listener_calls: list[int] = []
    link.add_connect_listener(lambda: listener_calls.append(1))
    got: list[bytes] = []
    link.subscribe(link.topic("inbox"), lambda t, p, props: got.append(p))
    try:
        mosquitto.kill()  # no persistence saved: the broker forgets the subscription
        wait_until(lambda: not link.connected, what="link notices the loss")
        mosquitto.start()
        wait_until(lambda: link.connects >= 2, what="reconnect")
        assert listener_calls, "connect listeners run on every connect"
        assert link.wait_subscribed(WAIT)
        obs = Observer(mosquitto, "unused/none")
        obs.publish(link.topic("inbox"), b"again")
        wait_until(lambda: got, what="message")
        assert got == [b"again"]
        obs.close()
    finally:
        link.stop()


def test_a_failing_handler_is_contained(mosquitto: Mosquitto, observer: Observer) -> None:
    link = start_link(mosquitto)
    good: list[bytes] = []

    def bad(_t: str, _p: bytes, _props: Any) -> None:
        raise ValueError("boom")

    link.subscribe(link.topic("bad"), bad)
    link.subscribe(link.topic("good"), lambda t, p, props: good.append(p))
    try:
        assert link.wait_subscribed(WAIT)
        for _ in range(3):
            observer.publish(link.topic("bad"), b"x")
        observer.publish(link.topic("good"), b"ok")
        wait_until(lambda: good, what="good")
        assert link.connected
        raising = threading.Event()

        def bad_ack() -> None:
            raising.set()
            raise RuntimeError("ack boom")

        assert link.publish(link.topic("y"), b"y", on_ack=bad_ack)
        assert raising.wait(WAIT)
        acked = threading.Event()
        assert link.publish(link.topic("y"), b"y", on_ack=acked.set)
        assert acked.wait(WAIT) and link.connected
    finally:
        link.stop()


# -- failover -------------------------------------------------------------------------------


def test_fails_over_to_the_second_broker_and_back(tmp_path: Path) -> None:
    with (
        Mosquitto(tmp_path / "first") as first,
        Mosquitto(tmp_path / "second") as second,
    ):
        link = start_link(first, second, backoff_min_s=0.05, failback_s=0.3)
        try:
            assert link.broker == first.url
            first.kill()
            wait_until(lambda: link.broker == second.url, what="failover to the second broker")
            obs = Observer(second, "ashyq/#")
            acked = threading.Event()
            assert link.publish(link.topic("events"), b"via second", on_ack=acked.set)
            assert acked.wait(WAIT)
            obs.wait_for(lambda p: b"via second" in p, "ashyq/v1/kiosk/k1/events")
            obs.close()
            first.start()
            wait_until(lambda: link.broker == first.url, what="back to the first broker")
        finally:
            link.stop()


def test_keeps_trying_while_every_broker_is_down(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path / "late")
    link = MqttLink(
        brokers=[f"mqtt://127.0.0.1:{free_port()}", broker.url],
        client_id="kiosk-k1",
        kiosk_id="k1",
        backoff_min_s=0.05,
        backoff_max_s=0.2,
    )
    link.start()
    try:
        assert not link.wait_connected(0.3)
        broker.start()
        assert link.wait_connected(WAIT)
        assert link.broker == broker.url
    finally:
        link.stop()
        broker.kill()


def test_stop_leaves_the_offline_state(mosquitto: Mosquitto) -> None:
    link = start_link(mosquitto)
    link.stop()
    assert not link.connected
    obs = Observer(mosquitto, "ashyq/v1/kiosk/k1/state")
    obs.wait_for(lambda p: p == [b'{"online":false}'], "ashyq/v1/kiosk/k1/state")
    assert json.loads(obs.payloads()[0]) == {"online": False}
    obs.close()


# -- the journal ----------------------------------------------------------------------------


def test_broker_lost_is_one_warning_and_back_one_info(
    mosquitto: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="kiosk.fleet.link")
    link = start_link(mosquitto, backoff_min_s=0.05, username="kiosk", password="s3cret-pw")
    where = f"127.0.0.1:{mosquitto.port}"
    try:
        wait_until(lambda: link.connected, what="connect")
        mosquitto.kill()
        wait_until(lambda: not link.connected, what="link notices the loss")
        # Retries while it is down stay quiet: the outage is one line.
        wait_until(lambda: _attempts(caplog) >= 2, what="retries")
        mosquitto.start()
        wait_until(lambda: link.connects >= 2, what="reconnect")
    finally:
        link.stop()
    lines = [(r.levelname, r.getMessage()) for r in caplog.records if r.levelno >= logging.INFO]
    assert lines[0] == ("INFO", f"connected to MQTT broker {where}")
    assert lines[1][0] == "WARNING"
    assert lines[1][1].startswith(f"MQTT broker {where} lost after ")
    assert lines[1][1].endswith("events wait in the store until a broker answers")
    assert lines[2][0] == "INFO"
    assert lines[2][1].startswith(f"MQTT link back (broker {where}) after ")
    assert len(lines) == 3, lines
    assert not any("s3cret-pw" in r.getMessage() for r in caplog.records)


def _attempts(caplog: pytest.LogCaptureFixture) -> int:
    return sum("still unreachable" in r.getMessage() for r in caplog.records)


def test_an_unreachable_broker_at_start_is_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="kiosk.fleet.link")
    port = free_port()
    link = MqttLink(
        brokers=[f"mqtt://127.0.0.1:{port}"],
        client_id="kiosk-k1",
        kiosk_id="k1",
        backoff_min_s=0.02,
        backoff_max_s=0.05,
    )
    link.start()
    try:
        wait_until(lambda: _attempts(caplog) >= 3, what="a few retries")
    finally:
        link.stop()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].startswith(f"cannot reach MQTT broker 127.0.0.1:{port}: ")
