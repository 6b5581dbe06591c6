"""Broker URLs, parsed once for everyone: the kiosk's link, the doctor and the simulators
refuse the same URLs, and no error or printed form shows a password."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiosk.config import Config, load_config
from kiosk.doctor import network
from kiosk.errors import ConfigError, KioskError
from kiosk.fleet.broker import BrokerUrlError, masked, parse_broker_url, reachable
from kiosk.fleet.link import MqttLink
from mosquitto import Mosquitto, free_port
from simulators.mqtt_client import MqttSimError
from simulators.mqtt_client import parse_broker_url as sim_parse
from support import write_config

PORT = free_port()  # nobody listens there: good URLs get as far as connecting

GOOD = [
    f"mqtt://127.0.0.1:{PORT}",
    f"mqtts://127.0.0.1:{PORT}",
    f"mqtt://localhost:{PORT}",
    f"MQTT://127.0.0.1:{PORT}",  # the scheme is case-insensitive (RFC 3986)
    f"mqtt://127.0.0.1:{PORT}/",
]
BAD = [
    ("http://127.0.0.1:1883", "scheme must be mqtt:// or mqtts://"),
    ("127.0.0.1:1883", "scheme must be"),
    ("mqtt://", "no host"),
    ("mqtt://127.0.0.1:99999", "out of range"),
    ("mqtt://127.0.0.1:0", "port 0"),
    ("mqtt://127.0.0.1:x", "Port could not be cast"),
    ("mqtt://[::1", "Invalid IPv6 URL"),
    ("mqtt://127.0.0.1:1883/topic", "without a path"),
    ("mqtt://127.0.0.1:1883?x=1", "without a path or query"),
    ("mqtt://127.0.0.1:1883#x", "without a path or query"),
    ("mqtt://kiosk:s3cret@127.0.0.1:1883", "set [mqtt] username and password"),
    ("mqtt://kiosk@127.0.0.1:1883", "no user name or password in the URL"),
]


@pytest.fixture(scope="module")
def cfg(tmp_path_factory: pytest.TempPathFactory) -> Config:
    tmp = tmp_path_factory.mktemp("broker")
    path = write_config(tmp, mqtt={"enabled": True, "brokers": [f"mqtt://127.0.0.1:{PORT}"]})
    return load_config(path)


def link_refuses(url: str) -> str | None:
    """The link's reason for refusing ``url``, or None if it takes it."""
    try:
        MqttLink(brokers=[url], client_id="c", kiosk_id="k1")  # not started: no connection
    except KioskError as exc:
        return str(exc)
    return None


def test_default_ports_ipv6_and_the_printed_form() -> None:
    plain, tls = parse_broker_url("mqtt://broker.example"), parse_broker_url("mqtts://b.example")
    assert (plain.port, plain.tls, tls.port, tls.tls) == (1883, False, 8883, True)
    v6 = parse_broker_url("mqtt://[::1]:1884")
    assert (v6.host, v6.where, str(v6)) == ("::1", "::1:1884", "mqtt://[::1]:1884")


def test_credentials_only_where_asked_for_and_never_shown() -> None:
    url = "mqtts://op%40x:s3cret@broker.example:8884"
    with pytest.raises(BrokerUrlError) as refused:
        parse_broker_url(url)
    assert "s3cret" not in str(refused.value) and "op%40x:***@" in str(refused.value)
    broker = parse_broker_url(url, credentials=True)
    assert (broker.username, broker.password, broker.port) == ("op@x", "s3cret", 8884)
    assert "s3cret" not in str(broker) and "s3cret" not in repr(broker)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mqtt://u:p@h", "mqtt://u:***@h"),
        ("mqtt://u:p@ss@h:1", "mqtt://u:***@h:1"),  # the netloc ends at its last @
        ("mqtt://:p@h", "mqtt://:***@h"),
        ("mqtt://u@h", "mqtt://u@h"),
        ("mqtt://h:1883", "mqtt://h:1883"),
    ],
)
def test_masked(url: str, expected: str) -> None:
    assert masked(url) == expected


@pytest.mark.parametrize(("url", "problem"), BAD)
def test_bad_urls_are_refused_by_link_doctor_and_simulators_alike(
    url: str, problem: str, cfg: Config
) -> None:
    with pytest.raises(BrokerUrlError, match="broker URL") as parsed:
        parse_broker_url(url)
    assert problem in parsed.value.problem
    assert link_refuses(url) == str(parsed.value)
    up, detail, fix = network._probe_broker(cfg, url)
    assert not up and detail.endswith(parsed.value.problem) and fix == "check [mqtt] brokers"
    if "@" not in url:  # the simulators' URLs may carry credentials; nothing else differs
        with pytest.raises(MqttSimError, match="broker URL"):
            sim_parse(url)


@pytest.mark.parametrize("url", GOOD)
def test_good_urls_are_taken_by_link_doctor_and_simulators_alike(url: str, cfg: Config) -> None:
    assert link_refuses(url) is None
    up, detail, _fix = network._probe_broker(cfg, url)
    # The doctor got as far as connecting: nobody listens on that port.
    assert not up and detail.startswith(f"cannot connect to {parse_broker_url(url).where}")
    assert sim_parse(url) == parse_broker_url(url)


@pytest.mark.parametrize("url", GOOD + [url for url, _problem in BAD])
def test_a_configuration_loads_with_exactly_the_urls_the_link_takes(
    url: str, tmp_path: Path
) -> None:
    path = write_config(tmp_path, mqtt={"enabled": True, "brokers": [url]})
    try:
        load_config(path)
    except ConfigError as exc:
        [problem] = exc.problems
        assert "[mqtt] brokers: " in problem and "s3cret" not in problem
        assert link_refuses(url) is not None
    else:
        assert link_refuses(url) is None


def test_reachable(mosquitto: Mosquitto) -> None:
    assert reachable(parse_broker_url(mosquitto.url), timeout=2.0)
    assert not reachable(parse_broker_url(f"mqtt://127.0.0.1:{free_port()}"), timeout=2.0)


def test_doctor_names_a_tls_set_up_failure(tmp_path: Path) -> None:
    bad_ca = tmp_path / "ca.pem"
    bad_ca.write_text("not a certificate\n")
    url = f"mqtts://127.0.0.1:{PORT}"
    cfg = load_config(
        write_config(tmp_path, mqtt={"enabled": True, "brokers": [url], "ca_file": str(bad_ca)})
    )
    up, detail, fix = network._probe_broker(cfg, url)
    assert not up and "MQTT TLS set-up failed" in detail
    assert "ca_file" in fix
