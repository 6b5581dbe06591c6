"""Shared fixtures: the simulated status service and a pass issuer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from simulators.issuer import PassIssuer
from simulators.population import Population, load
from simulators.status_service import StatusService
from support import TOKEN


@pytest.fixture(scope="session")
def population() -> Population:
    """The shipped population of test people."""
    return load()


@pytest.fixture(scope="session")
def issuer() -> PassIssuer:
    """The simulators' pass issuer with the shipped test key."""
    return PassIssuer.load()


@pytest.fixture
def status_service(population: Population) -> Iterator[StatusService]:
    """A real HTTP status service on a free loopback port, healthy at start."""
    with StatusService(population, token=TOKEN) as service:
        yield service


@pytest.fixture
def mosquitto(tmp_path):
    """A real mosquitto broker on a free loopback port (Debian package `mosquitto`)."""
    from mosquitto import Mosquitto

    with Mosquitto(tmp_path / "broker") as broker:
        yield broker


@pytest.fixture
def observer(mosquitto):
    """An outside MQTT client watching the test broker (tests/mqtt_support.py)."""
    from mqtt_support import Observer

    obs = Observer(mosquitto)
    yield obs
    obs.close()
