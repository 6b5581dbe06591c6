"""Remote operator commands on ``{prefix}/kiosk/{kiosk_id}/command`` (mqtt.md, Commands).

A command can open a turnstile, so the broker's access lists are not trusted alone: each
payload is a compact JWS (EdDSA) signed by a key of the operator key set, addressed to this
kiosk or its venue, short-lived, and executed at most once (its ``jti`` is marked used,
durably, before the controller sees it).

Every command gets an answer on ``.../command/result``. Every command is recorded by the
controller: a verified one is handed over as a ``Command`` input, which it runs; a refused
one as a ``CommandRefused`` input, which it records (so nothing is written to disk on paho's
network thread).
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable
from typing import Any

from kiosk.clock import Clock
from kiosk.errors import KioskError
from kiosk.fleet.jwt import Refused, check_lifetime, check_time, verify_compact
from kiosk.fleet.link import MqttLink
from kiosk.gate.inputs import Command, CommandRefused, Event
from kiosk.jwks import KeySet
from kiosk.reasons import Reason
from kiosk.replay import ReplayStore
from kiosk.throttle import LogThrottle

log = logging.getLogger(__name__)

# reset_occupancy goes beyond mqtt.md's list (an operator resets a drifted count).
COMMANDS = frozenset({"open_once", "lockdown", "resume", "reload_config", "reset_occupancy"})
#: mqtt.md: ``exp - iat <= 60``.
MAX_COMMAND_LIFETIME_S = 60
#: Far more than any signed command needs; bigger payloads are refused before parsing.
MAX_COMMAND_BYTES = 4096
#: A pass must never pass for a command, even if someone put one key in both sets.
_PASS_TYP = frozenset({"ashyq-pass+jwt"})
#: An unknown ``cmd`` from a trusted operator is recorded only if it looks like a name.
_CMD_NAME = re.compile(r"[a-z_]{1,32}")

# Refusal names beyond credentials.md's reasons.
WRONG_AUDIENCE = "wrong_audience"
UNKNOWN_COMMAND = "unknown_command"
INTERNAL_ERROR = "internal_error"


class CommandReceiver:
    """Verifies operator commands and hands the good ones to ``execute``.

    ``execute`` receives a :class:`~kiosk.gate.inputs.Command` (origin ``mqtt``) whose ``done``
    publishes the result, or a :class:`~kiosk.gate.inputs.CommandRefused` to be recorded; the
    assembly passes ``controller.emit``. ``operator_keys`` is called for the current operator
    key set. ``replay`` is a ReplayStore on its own file; marks are kept until
    ``exp + leeway_s`` (that mark is the one write on paho's thread: it must be durable
    before the command runs).

    Runs in paho's network thread; never raises on a payload.
    """

    def __init__(
        self,
        link: MqttLink,
        *,
        venue_id: str,
        operator_keys: Callable[[], KeySet],
        replay: ReplayStore,
        execute: Callable[[Event], None],
        clock: Clock,
        leeway_s: float = 30.0,
    ) -> None:
        self._link = link
        self._audiences = frozenset({link.kiosk_id, f"venue:{venue_id}"})
        self._keys = operator_keys
        self._replay = replay
        self._execute = execute
        self._clock = clock
        self._leeway = leeway_s
        self._result_topic = link.topic("command", "result")
        # Check-and-mark of a jti is one step: a duplicate delivery must see the mark.
        self._lock = threading.Lock()
        self._throttle = LogThrottle(60.0)
        link.subscribe(link.topic("command"), self._on_message, qos=1)

    def _on_message(self, _topic: str, payload: bytes, _props: Any) -> None:
        try:
            cmd, jti = self._verify_and_mark(payload)
        except _Refusal as refusal:
            self._refuse(refusal.reason, cmd=refusal.cmd, jti=refusal.jti)
            return
        except KioskError as exc:  # the replay store failed: at most once beats at least once
            log.error("command refused: replay store unavailable: %s", exc)
            self._refuse(INTERNAL_ERROR, cmd=None, jti=None)
            return
        log.debug("executing remote command %s", cmd)  # the controller says what it did
        try:
            self._execute(Command(cmd, jti=jti, origin="mqtt", done=self._done_for(jti)))
        except Exception as exc:  # noqa: BLE001 - a full queue or a bug: the sender still gets an answer
            log.error("remote command %s could not be handed over: %s", cmd, type(exc).__name__)
            self._refuse(INTERNAL_ERROR, cmd=cmd, jti=jti)

    def _verify_and_mark(self, payload: bytes) -> tuple[str, str]:
        """(cmd, jti) of a command that may run now, its jti already marked used."""
        if len(payload) > MAX_COMMAND_BYTES:
            raise _Refusal(Reason.INVALID_PAYLOAD)
        try:
            text = payload.decode("ascii")
        except UnicodeDecodeError:
            raise _Refusal(Reason.INVALID_PAYLOAD) from None
        try:
            claims = verify_compact(text, self._keys(), refused_typ=_PASS_TYP)
        except Refused as refusal:
            raise _Refusal(refusal.reason) from None
        # The signature holds: from here a refusal may name the operator's cmd and jti.
        cmd = claims.get("cmd")
        name = cmd if isinstance(cmd, str) and _CMD_NAME.fullmatch(cmd) else None
        try:
            _iat, exp, jti = check_lifetime(claims, max_lifetime_s=MAX_COMMAND_LIFETIME_S)
        except Refused as refusal:
            raise _Refusal(refusal.reason, name) from None
        aud = claims.get("aud")
        if not isinstance(aud, str) or not isinstance(cmd, str):
            raise _Refusal(Reason.INVALID_PAYLOAD, name, jti)
        if aud not in self._audiences:
            raise _Refusal(WRONG_AUDIENCE, name, jti)
        if cmd not in COMMANDS:
            raise _Refusal(UNKNOWN_COMMAND, name, jti)
        try:
            check_time(claims, self._clock.time(), self._leeway)
        except Refused as refusal:
            raise _Refusal(refusal.reason, name, jti) from None
        with self._lock:
            if self._replay.is_used(jti):
                raise _Refusal(Reason.REPLAYED, name, jti)
            self._replay.mark_used(jti, exp + self._leeway)
        return cmd, jti

    def _done_for(self, jti: str) -> Callable[[bool, str | None], None]:
        def done(ok: bool, error: str | None) -> None:
            self._answer(jti, ok, error)

        return done

    def _refuse(self, reason: str, *, cmd: str | None, jti: str | None) -> None:
        ok, held = self._throttle.allow(reason)
        if ok:
            log.warning("refused a remote command: %s%s", reason, f" ({held} more)" if held else "")
        try:
            self._execute(CommandRefused(reason, cmd=cmd, jti=jti, origin="mqtt"))
        except Exception as exc:  # noqa: BLE001 - the controller's queue failing: answered all the same
            log.error("cannot hand over a refused command: %s", type(exc).__name__)
        self._answer(jti, False, reason)

    def _answer(self, jti: str | None, ok: bool, error: str | None) -> None:
        doc: dict[str, Any] = {"jti": jti, "ok": ok}
        if not ok:
            doc["error"] = error or "failed"
        try:
            sent = self._link.publish(
                self._result_topic, json.dumps(doc, separators=(",", ":")).encode(), qos=1
            )
        except KioskError as exc:
            log.warning("cannot publish a command result: %s", exc)
            return
        if not sent:
            log.warning("command result not published: not connected to the broker")


class _Refusal(Exception):
    """A refused command; ``cmd`` and ``jti`` only once the operator's signature vouches."""

    def __init__(self, reason: str, cmd: str | None = None, jti: str | None = None) -> None:
        super().__init__(str(reason))
        self.reason = str(reason)
        self.cmd = cmd
        self.jti = jti
