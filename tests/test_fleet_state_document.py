"""The retained state document built from the observable gate (mqtt.md, State)."""

from __future__ import annotations

import json
from types import MappingProxyType

import pytest

from kiosk.fleet.state_document import STATE_HEALTH_PARTS, state_document
from kiosk.gate.view import HEALTH_PARTS, GateSnapshot, GateView, LastDecision

T0 = 1_621_589_400.0  # 2021-05-21T09:30:00Z
DECISION = LastDecision(
    decision="admit",
    reason="ok",
    st="green",
    via="online",
    source="camera",
    latency_ms=120.0,
    at=T0 + 1.5,
    holder_masked="92********51",
    seq=7,
)


def healthy(**over: str) -> MappingProxyType[str, str]:
    return MappingProxyType({**dict.fromkeys(HEALTH_PARTS, "ok"), **over})


def test_the_document_has_mqtt_md_fields_in_order_and_the_two_additions() -> None:
    snap = GateSnapshot(
        mode="normal",
        since=T0,
        occupancy=3,
        capacity=50,
        health=healthy(),
        backlog=2,
        kiosk_version="1.4.0",
    )
    doc = state_document(snap)
    assert list(doc) == [
        "online",
        "mode",
        "version",
        "since",
        "occupancy",
        "health",
        "turnstile",
        "last_decision",
    ]
    assert doc == {
        "online": True,
        "mode": "normal",
        "version": "1.4.0",
        "since": "2021-05-21T09:30:00.000Z",
        "occupancy": 3,
        "health": {
            "camera": "ok",
            "scanner": "ok",
            "status": "ok",
            "clock": "ok",
            "disk": "ok",
            "relay": "ok",
            "backlog": 2,
        },
        "turnstile": "locked",
        "last_decision": None,
    }
    json.dumps(doc, allow_nan=False)  # JSON-ready


def test_the_morning_of_the_issue_shows_what_is_down() -> None:
    """Status service down, camera and scanner unplugged: 'normal' no longer hides it."""
    snap = GateSnapshot(since=T0, health=healthy(status="down", camera="down", scanner="down"))
    health = state_document(snap)["health"]
    assert (health["status"], health["camera"], health["scanner"]) == ("down",) * 3
    assert health["relay"] == "ok"


def test_the_last_decision_has_no_subject_and_no_holder() -> None:
    doc = state_document(GateSnapshot(since=T0, last_decision=DECISION, turnstile="free"))
    assert doc["last_decision"] == {
        "decision": "admit",
        "reason": "ok",
        "at": "2021-05-21T09:30:01.500Z",
    }
    assert doc["turnstile"] == "free"
    assert "92" not in json.dumps(doc["last_decision"])


def test_unknown_values_are_not_shown_as_healthy_or_free() -> None:
    snap = GateSnapshot(since=T0, turnstile="jammed", health=MappingProxyType({"camera": "weird"}))
    doc = state_document(snap)
    assert doc["turnstile"] == "locked"
    assert doc["health"]["camera"] == "down"
    assert doc["health"]["disk"] == "off"  # a part never reported is not configured


def test_offline_and_the_broker_part() -> None:
    snap = GateSnapshot(since=T0, health=healthy(broker="down"))
    doc = state_document(snap, online=False)
    assert doc["online"] is False
    assert "broker" not in doc["health"]


@pytest.mark.parametrize("part", STATE_HEALTH_PARTS)
@pytest.mark.parametrize("state", ["down", "off"])
def test_any_health_change_in_the_gate_view_changes_the_document(part: str, state: str) -> None:
    view = GateView(GateSnapshot(since=T0, health=healthy()))
    before = state_document(view.snapshot())
    view.set_health(part, state)
    after = state_document(view.snapshot())
    assert after != before
    assert after["health"][part] == state


@pytest.mark.parametrize(
    "change",
    [
        {"mode": "lockdown"},
        {"since": T0 + 60},
        {"occupancy": 4},
        {"occupancy": None},
        {"backlog": 9},
        {"turnstile": "free"},
        {"last_decision": DECISION},
        {"kiosk_version": "1.5.0"},
    ],
)
def test_every_shown_field_changes_the_document(change: dict) -> None:
    view = GateView(GateSnapshot(since=T0, occupancy=3, capacity=50, health=healthy()))
    before = state_document(view.snapshot())
    view.publish(**change)
    assert state_document(view.snapshot()) != before


def test_the_occupancy_is_shown_only_against_a_capacity() -> None:
    """mqtt.md: int or null; a venue without a capacity has no figure worth showing."""
    assert state_document(GateSnapshot(since=T0, occupancy=7))["occupancy"] is None
    assert state_document(GateSnapshot(since=T0, occupancy=7, capacity=9))["occupancy"] == 7


def test_fields_the_document_does_not_show_leave_it_equal() -> None:
    view = GateView(GateSnapshot(since=T0, health=healthy()))
    before = state_document(view.snapshot())
    view.publish(light="green", sound="admit", checking=True)
    assert view.snapshot().version > 0
    assert state_document(view.snapshot()) == before
