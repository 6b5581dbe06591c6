"""The technician's command signer: JWS as mqtt.md says, and sending one to a (fake) kiosk."""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
from collections.abc import Iterator
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from paho.mqtt.enums import CallbackAPIVersion

from kiosk.cli import main
from mosquitto import Mosquitto, free_port
from simulators.command_signer import COMMANDS, CommandError, command_topic, sign_command
from simulators.issuer import SIM_OPERATOR_JWKS

WAIT_S = 20.0  # generous: the suite runs on a busy 2-core machine
NOW = 1_700_000_000


def b64decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def operator_key(kid: str) -> Ed25519PublicKey:
    jwks = json.loads(SIM_OPERATOR_JWKS.read_text("utf-8"))
    jwk = next(k for k in jwks["keys"] if k["kid"] == kid)
    assert (jwk["kty"], jwk["crv"]) == ("OKP", "Ed25519")
    return Ed25519PublicKey.from_public_bytes(b64decode(jwk["x"]))


def verify(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(header, claims) of a command, after checking its signature with the operator JWKS."""
    header_b64, claims_b64, signature_b64 = token.split(".")
    header = json.loads(b64decode(header_b64))
    operator_key(header["kid"]).verify(
        b64decode(signature_b64), f"{header_b64}.{claims_b64}".encode("ascii")
    )
    return header, json.loads(b64decode(claims_b64))


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# --- signing -------------------------------------------------------------------------------


@pytest.mark.parametrize("cmd", COMMANDS)
def test_claims_and_header_as_specified(cmd: str) -> None:
    token = sign_command(cmd, aud="kiosk-7", iat=NOW, valid_s=45, jti="jti-0001-abc")
    header, claims = verify(token)
    assert header == {"alg": "EdDSA", "kid": "op1"}
    assert claims == {
        "aud": "kiosk-7",
        "cmd": cmd,
        "iat": NOW,
        "exp": NOW + 45,
        "jti": "jti-0001-abc",
    }
    assert list(claims) == ["aud", "cmd", "iat", "exp", "jti"]


def test_defaults_now_30_s_and_a_fresh_jti() -> None:
    _, first = verify(sign_command("lockdown", aud="venue:gym-3"))
    _, second = verify(sign_command("lockdown", aud="venue:gym-3"))
    assert first["aud"] == "venue:gym-3"
    assert first["exp"] - first["iat"] == 30
    assert re.fullmatch(r"[A-Za-z0-9_-]{12}", first["jti"])
    assert first["jti"] != second["jti"]


def test_signature_covers_the_claims() -> None:
    token = sign_command("open_once", aud="kiosk-7", iat=NOW)
    header_b64, claims_b64, signature_b64 = token.split(".")
    claims = json.loads(b64decode(claims_b64))
    claims["aud"] = "kiosk-8"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(InvalidSignature):
        verify(f"{header_b64}.{forged}.{signature_b64}")


def test_other_key_and_kid(tmp_path) -> None:
    key = Ed25519PrivateKey.generate()
    pem = tmp_path / "other.pem"
    pem.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    token = sign_command("resume", aud="kiosk-7", key_path=pem, kid="op9")
    header_b64, claims_b64, signature_b64 = token.split(".")
    assert json.loads(b64decode(header_b64))["kid"] == "op9"
    key.public_key().verify(b64decode(signature_b64), f"{header_b64}.{claims_b64}".encode())


@pytest.mark.parametrize("valid_s", [61, 3600, 0, -5])
def test_lifetime_outside_the_spec_is_refused(valid_s: int) -> None:
    with pytest.raises(CommandError, match="valid_s"):
        sign_command("open_once", aud="kiosk-7", valid_s=valid_s)


def test_sixty_seconds_is_the_longest_allowed() -> None:
    _, claims = verify(sign_command("open_once", aud="kiosk-7", valid_s=60, iat=NOW))
    assert claims["exp"] == NOW + 60


def test_empty_audience_is_refused() -> None:
    with pytest.raises(CommandError, match="aud"):
        sign_command("open_once", aud="")


# --- the command line: printing ------------------------------------------------------------


def test_cli_prints_a_verifiable_jws(capsys) -> None:
    code, out, err = run(
        capsys, "sign-command", "reload_config", "--aud", "kiosk-7", "--jti", "abcdefgh12"
    )
    assert code == 0
    header, claims = verify(out.strip())
    assert header == {"alg": "EdDSA", "kid": "op1"}
    assert claims["cmd"] == "reload_config" and claims["aud"] == "kiosk-7"
    assert claims["jti"] == "abcdefgh12" and claims["exp"] - claims["iat"] == 30
    assert "reload_config" in err  # the description goes to stderr, stdout is the JWS only
    assert out.count("\n") == 1


def test_cli_options(capsys) -> None:
    code, out, _ = run(
        capsys,
        "sign-command",
        "open_once",
        "--aud",
        "venue:v1",
        "--valid-s",
        "10",
        "--iat",
        str(NOW),
    )
    assert code == 0
    _, claims = verify(out.strip())
    assert (claims["aud"], claims["iat"], claims["exp"]) == ("venue:v1", NOW, NOW + 10)


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["open_once", "--aud", "k1", "--valid-s", "61"], "valid_s"),
        (["open_once", "--aud", "k1", "--jti", "short"], "--jti"),
        (["open_once", "--aud", "k1", "--kiosk", "k1"], "--publish"),
        (["open_once", "--aud", "venue:v1", "--publish", "mqtt://127.0.0.1:1"], "--kiosk"),
        (["open_once", "--aud", "k1", "--key", "/nonexistent.pem"], "nonexistent"),
    ],
)
def test_cli_usage_errors_exit_2(capsys, argv: list[str], problem: str) -> None:
    code, out, err = run(capsys, "sign-command", *argv)
    assert code == 2
    assert out == ""
    assert problem in err


def test_cli_refuses_unknown_command(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["sign-command", "self_destruct", "--aud", "k1"])
    assert exc.value.code == 2


# --- the command line: publishing to a kiosk -----------------------------------------------


class FakeKiosk:
    """A paho client standing in for a kiosk: verifies commands and answers on command/result.

    ``answer(claims)`` returns the result object; ``noise`` results for other commands are
    sent first, so the signer must pick its own by jti.
    """

    def __init__(self, broker: Mosquitto, kiosk_id: str, prefix: str = "ashyq/v1") -> None:
        self.topic = command_topic(prefix, kiosk_id)
        self.received: list[dict[str, Any]] = []
        self.ok = True
        self.silent = False
        self._subscribed = threading.Event()
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"fake-kiosk-{secrets.token_hex(4)}",
            protocol=mqtt.MQTTv5,
        )
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        self.client.subscribe(self.topic, qos=1)
        assert self._subscribed.wait(WAIT_S)

    def _on_message(self, client: Any, userdata: Any, message: mqtt.MQTTMessage) -> None:
        _, claims = verify(message.payload.decode("ascii"))
        self.received.append({"claims": claims, "qos": message.qos})
        if self.silent:
            return
        result_topic = f"{self.topic}/result"
        client.publish(result_topic, json.dumps({"jti": "someone-elses", "ok": True}), qos=1)
        client.publish(result_topic, b"not json", qos=1)
        result = {"jti": claims["jti"], "ok": self.ok}
        if not self.ok:
            result["error"] = "replayed"
        client.publish(result_topic, json.dumps(result), qos=1)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def fake_kiosk(mosquitto: Mosquitto) -> Iterator[FakeKiosk]:
    k = FakeKiosk(mosquitto, "kiosk-7")
    yield k
    k.close()


def test_publish_prints_the_kiosks_result(capsys, mosquitto, fake_kiosk) -> None:
    code, out, err = run(
        capsys,
        "sign-command",
        "open_once",
        "--aud",
        "kiosk-7",
        "--jti",
        "open-once-0001",
        "--publish",
        mosquitto.url,
    )
    assert code == 0, err
    assert json.loads(out) == {"jti": "open-once-0001", "ok": True}
    [received] = fake_kiosk.received
    assert received["qos"] == 1
    assert received["claims"]["cmd"] == "open_once"
    assert received["claims"]["aud"] == "kiosk-7"


def test_publish_venue_command_to_a_named_kiosk(capsys, mosquitto, fake_kiosk) -> None:
    code, out, _ = run(
        capsys,
        "sign-command",
        "lockdown",
        "--aud",
        "venue:gym-3",
        "--publish",
        mosquitto.url,
        "--kiosk",
        "kiosk-7",
    )
    assert code == 0
    assert json.loads(out)["ok"] is True
    assert fake_kiosk.received[0]["claims"]["aud"] == "venue:gym-3"


def test_publish_with_custom_prefix(capsys, mosquitto) -> None:
    kiosk = FakeKiosk(mosquitto, "k2", prefix="site9/v1")
    try:
        code, out, _ = run(
            capsys,
            "sign-command",
            "resume",
            "--aud",
            "k2",
            "--publish",
            mosquitto.url,
            "--prefix",
            "site9/v1",
        )
    finally:
        kiosk.close()
    assert code == 0
    assert json.loads(out)["ok"] is True


def test_publish_refused_command_exits_1(capsys, mosquitto, fake_kiosk) -> None:
    fake_kiosk.ok = False
    code, out, _ = run(
        capsys, "sign-command", "open_once", "--aud", "kiosk-7", "--publish", mosquitto.url
    )
    assert code == 1
    result = json.loads(out)
    assert result["ok"] is False and result["error"] == "replayed"


def test_publish_without_result_exits_1(capsys, mosquitto, fake_kiosk) -> None:
    fake_kiosk.silent = True
    code, out, err = run(
        capsys,
        "sign-command",
        "open_once",
        "--aud",
        "kiosk-7",
        "--publish",
        mosquitto.url,
        "--timeout-s",
        "1",
    )
    assert code == 1
    assert out == ""
    assert "no result" in err
    assert len(fake_kiosk.received) == 1  # it was delivered; the kiosk just never answered


def test_publish_without_broker_exits_1(capsys) -> None:
    code, out, err = run(
        capsys,
        "sign-command",
        "open_once",
        "--aud",
        "kiosk-7",
        "--publish",
        f"mqtt://127.0.0.1:{free_port()}",
        "--timeout-s",
        "0.5",
    )
    assert code == 1
    assert out == ""
    assert "no connection" in err
