"""Remote commands over a real broker: signed by the operator key set, addressed, short-lived,
executed at most once; every refusal answered with its reason and recorded."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.clock import FakeClock
from kiosk.fleet.commands import CommandReceiver
from kiosk.fleet.link import MqttLink
from kiosk.gate.inputs import Command, CommandRefused
from kiosk.gate.records import CommandRecord
from kiosk.jwks import KeySet
from kiosk.replay import ReplayStore
from mosquitto import Mosquitto
from mqtt_support import Observer
from simulators.issuer import (
    OMIT,
    SIM_OPERATOR_JWKS,
    SIM_OPERATOR_KEY,
    SIM_OPERATOR_KID,
    load_private_key,
    sign_compact,
)

PREFIX = "ashyq/v1/kiosk/k1"
NOW = 1_700_000_000


@dataclass
class Rig:
    """A kiosk's command receiver, an operator console (observer) and what happened."""

    link: MqttLink
    console: Observer
    clock: FakeClock
    replay_path: Path
    executed: list[Command] = field(default_factory=list)
    recorded: list[dict[str, Any]] = field(default_factory=list)
    key: Ed25519PrivateKey = field(default_factory=lambda: load_private_key(SIM_OPERATOR_KEY))
    n: int = 0

    def sign(self, header: dict | None = None, key: Ed25519PrivateKey | None = None, **claims):
        self.n += 1
        full = {
            "aud": "k1",
            "cmd": "lockdown",
            "iat": NOW,
            "exp": NOW + 60,
            "jti": f"cmd-{self.n:08d}",
        }
        full.update(claims)
        full = {k: v for k, v in full.items() if v is not OMIT}
        return sign_compact(
            header or {"alg": "EdDSA", "kid": SIM_OPERATOR_KID}, full, key or self.key
        )

    def send(self, payload: str | bytes) -> dict[str, Any]:
        """Publish a command and return its result (the next one on the result topic)."""
        before = len(self.console.payloads(f"{PREFIX}/command/result"))
        data = payload.encode() if isinstance(payload, str) else payload
        self.console.publish(f"{PREFIX}/command", data)
        results = self.console.wait_for(lambda p: len(p) > before and p, f"{PREFIX}/command/result")
        return json.loads(results[before])


@pytest.fixture
def rig(mosquitto: Mosquitto, tmp_path: Path) -> Iterator[Rig]:
    console = Observer(mosquitto, f"{PREFIX}/command/result")
    link = MqttLink(brokers=[mosquitto.url], client_id="kiosk-k1", kiosk_id="k1")
    clock = FakeClock(NOW)
    r = Rig(link, console, clock, tmp_path / "replay.db")
    replay = ReplayStore(r.replay_path, clock=clock)
    keys = KeySet.load(SIM_OPERATOR_JWKS)

    def execute(cmd: Command | CommandRefused) -> None:
        # The controller's part, in short: record a refusal; run a command, say how it went.
        if isinstance(cmd, CommandRefused):
            rec = CommandRecord(cmd.cmd, cmd.jti, cmd.origin, False, cmd.reason)
            r.recorded.append({"type": rec.type, **rec.fields()})
            return
        r.executed.append(cmd)
        assert cmd.done is not None
        cmd.done(cmd.cmd != "open_once", None if cmd.cmd != "open_once" else "busy")

    CommandReceiver(
        link,
        venue_id="v1",
        operator_keys=lambda: keys,
        replay=replay,
        execute=execute,
        clock=clock,
    )
    link.start()
    assert link.wait_subscribed(20)
    yield r
    link.stop()
    console.close()
    replay.close()


def test_a_signed_command_is_executed_and_answered(rig: Rig) -> None:
    result = rig.send(rig.sign(cmd="lockdown", jti="lock-0001"))
    assert result == {"jti": "lock-0001", "ok": True}
    assert [(c.cmd, c.jti, c.origin) for c in rig.executed] == [("lockdown", "lock-0001", "mqtt")]
    assert rig.recorded == []  # executed commands are recorded by the controller


def test_reset_occupancy_is_a_remote_command(rig: Rig) -> None:
    # An extension of mqtt.md's list: the count drifts, an operator resets it.
    result = rig.send(rig.sign(cmd="reset_occupancy", jti="reset-0001"))
    assert result == {"jti": "reset-0001", "ok": True}
    assert [c.cmd for c in rig.executed] == ["reset_occupancy"]


def test_the_venue_audience_is_accepted_and_a_failed_execution_is_answered(rig: Rig) -> None:
    result = rig.send(rig.sign(aud="venue:v1", cmd="open_once", jti="open-0001"))
    assert result == {"jti": "open-0001", "ok": False, "error": "busy"}
    assert rig.executed[0].cmd == "open_once"


def test_a_replayed_jti_is_refused_and_recorded_even_after_a_restart(rig: Rig) -> None:
    token = rig.sign(jti="once-only")
    assert rig.send(token)["ok"] is True
    assert rig.send(token) == {"jti": "once-only", "ok": False, "error": "replayed"}
    assert rig.recorded == [
        {
            "type": "command",
            "cmd": "lockdown",
            "jti": "once-only",
            "ok": False,
            "error": "replayed",
            "origin": "mqtt",
            "via": "mqtt",  # mqtt.md's name for where a command came from
        }
    ]
    assert len(rig.executed) == 1
    with ReplayStore(rig.replay_path, clock=rig.clock) as again:
        assert again.is_used("once-only")


@pytest.mark.parametrize(
    ("how", "error"),
    [
        ("bad_signature", "bad_signature"),
        ("untrusted_kid", "untrusted_key"),
        ("alg_none", "bad_signature"),
        ("wrong_aud", "wrong_audience"),
        ("other_venue", "wrong_audience"),
        ("expired", "expired"),
        ("not_yet_valid", "not_yet_valid"),
        ("too_long_lived", "invalid_payload"),
        ("unknown_cmd", "unknown_command"),
        ("no_jti", "invalid_payload"),
        ("pass_typ", "invalid_payload"),
    ],
)
def test_bad_commands_are_refused_with_a_named_error_and_recorded(
    rig: Rig, how: str, error: str
) -> None:
    other_key = Ed25519PrivateKey.generate()
    token = {
        "bad_signature": lambda: rig.sign(key=other_key),
        "untrusted_kid": lambda: rig.sign(header={"alg": "EdDSA", "kid": "nobody"}),
        "alg_none": lambda: rig.sign(header={"alg": "none", "kid": SIM_OPERATOR_KID}),
        "wrong_aud": lambda: rig.sign(aud="k2"),
        "other_venue": lambda: rig.sign(aud="venue:v2"),
        "expired": lambda: rig.sign(iat=NOW - 200, exp=NOW - 140),
        "not_yet_valid": lambda: rig.sign(iat=NOW + 100, exp=NOW + 120),
        "too_long_lived": lambda: rig.sign(exp=NOW + 61),
        "unknown_cmd": lambda: rig.sign(cmd="self_destruct"),
        "no_jti": lambda: rig.sign(jti=OMIT),
        "pass_typ": lambda: rig.sign(
            header={"alg": "EdDSA", "kid": SIM_OPERATOR_KID, "typ": "ashyq-pass+jwt"}
        ),
    }[how]()
    result = rig.send(token)
    assert result["ok"] is False and result["error"] == error
    assert rig.executed == []
    (event,) = rig.recorded
    assert event["type"] == "command" and event["ok"] is False and event["error"] == error
    assert event["origin"] == "mqtt"
    signed_by_operator = how not in ("bad_signature", "untrusted_kid", "alg_none", "pass_typ")
    if signed_by_operator and how not in ("too_long_lived", "no_jti"):
        assert event["jti"] == result["jti"] is not None
    else:
        assert event["jti"] is None and result["jti"] is None


def test_the_leeway_applies_at_both_ends(rig: Rig) -> None:
    assert rig.send(rig.sign(iat=NOW + 29, exp=NOW + 60))["ok"] is True  # clock 29 s behind
    assert rig.send(rig.sign(iat=NOW - 89, exp=NOW - 29))["ok"] is True  # 29 s past exp


@pytest.mark.parametrize(
    "payload",
    [b"", b"\xff\xfe", b"not a jws", b"a.b.c", b"x" * 10_000, b"{}", "é.é.é".encode()],
)
def test_garbage_never_crashes_the_receiver(rig: Rig, payload: bytes) -> None:
    assert rig.send(payload) == {"jti": None, "ok": False, "error": "invalid_payload"}
    assert rig.recorded[0]["cmd"] is None
    assert rig.link.connected
    assert rig.send(rig.sign())["ok"] is True  # and it still works


def test_duplicate_deliveries_execute_once(rig: Rig) -> None:
    token = rig.sign(jti="dup-00001").encode()
    for _ in range(2):
        rig.console.publish(f"{PREFIX}/command", token)
    results = rig.console.wait_for(lambda p: len(p) >= 2 and p, f"{PREFIX}/command/result")
    assert [json.loads(r) for r in results] == [
        {"jti": "dup-00001", "ok": True},
        {"jti": "dup-00001", "ok": False, "error": "replayed"},
    ]
    assert len(rig.executed) == 1
