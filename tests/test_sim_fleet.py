"""The fleet simulation against a real mosquitto and an in-process status responder.

Only counts are asserted (no rates, no durations): the figures are benchmarks/bench_fleet.py's.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mosquitto import Mosquitto
from simulators.fleet import FleetReport, run_fleet
from simulators.mqtt_responder import MqttStatusResponder
from simulators.population import Population, generate


@pytest.fixture(scope="module")
def population() -> Population:
    return Population(generate(200, seed=7))


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    folder = tmp_path / "broker"
    with Mosquitto(folder) as broker:
        yield broker


@pytest.fixture
def responder(broker: Mosquitto, population: Population) -> Iterator[MqttStatusResponder]:
    with MqttStatusResponder(population, broker_url=broker.url) as responder:
        yield responder


def test_small_fleet_loses_and_repeats_nothing(
    broker: Mosquitto, responder: MqttStatusResponder, population: Population, tmp_path: Path
) -> None:
    report = run_fleet(
        broker_url=broker.url,
        kiosks=5,
        duration_s=4.0,
        rate_per_kiosk=2.0,
        population=population,
        seed=3,
        state_dir=tmp_path / "state",
    )
    assert isinstance(report, FleetReport)
    assert report.kiosks_connected == 5
    assert report.lookups_answered > 0
    assert report.events_recorded == report.decisions_attempted > 0
    assert report.events_received == report.events_recorded
    assert (report.lost, report.duplicated, report.seq_gaps) == (0, 0, 0)
    assert report.notes == []
    assert responder.stats.requests >= report.lookups_answered
    # Every kiosk's store is a real SQLite file in the state folder.
    assert len(list((tmp_path / "state" / "stores").glob("*.db"))) == 5


def test_broker_restart_mid_run_loses_nothing(
    broker: Mosquitto, responder: MqttStatusResponder, population: Population, tmp_path: Path
) -> None:
    restarted = threading.Event()

    def restart_soon() -> None:
        def restart() -> None:
            # Once some lookups went through, so the outage falls inside the window.
            deadline = time.monotonic() + 10
            while responder.stats.answered < 5 and time.monotonic() < deadline:
                time.sleep(0.05)
            broker.stop()  # a clean stop: the observer's persistent session is saved
            time.sleep(0.5)
            broker.start()
            restarted.set()

        threading.Thread(target=restart, daemon=True).start()

    report = run_fleet(
        broker_url=broker.url,
        kiosks=5,
        duration_s=6.0,
        rate_per_kiosk=3.0,
        population=population,
        seed=4,
        state_dir=tmp_path / "state",
        on_running=restart_soon,
    )
    assert restarted.is_set()
    assert report.events_recorded > 0
    # Lookups during the outage fail or time out; no event may be lost (duplicates allowed).
    assert report.lost == 0
    assert report.seq_gaps == 0
    assert report.events_received == report.events_recorded
