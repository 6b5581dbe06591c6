"""Status lookups over MQTT 5 request/response (status-api.md, MQTT).

The kiosk publishes ``{"sub": ...}`` to ``{prefix}/status/request`` with a Response Topic of
its own and 16 random bytes of Correlation Data; the responder answers on that topic with the
same Correlation Data. Responses are matched to waiting lookups by that data alone; anything
else on the topic is dropped.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from kiosk.errors import KioskError
from kiosk.fleet.link import MqttLink
from kiosk.status.answer import UNKNOWN, LookupResult, parse_answer, parse_error
from kiosk.status.breaker import Breaker
from kiosk.throttle import LogThrottle

log = logging.getLogger(__name__)

_CONFIGURATION_ERRORS = frozenset({"bad_request", "unauthorized"})
_KNOWN_ERRORS = _CONFIGURATION_ERRORS | {"unavailable"}


class _Pending:
    """One lookup waiting for its response; the subject stays in memory only."""

    __slots__ = ("subject", "done", "result")

    def __init__(self, subject: str) -> None:
        self.subject = subject
        self.done = threading.Event()
        self.result: LookupResult | None = None


class MqttStatusClient:
    """The :class:`~kiosk.status.answer.StatusLookup` over the shared :class:`MqttLink`.

    Thread-safe: any number of lookups may wait at once, each for its own correlation data.
    Deadlines are real time (``time.monotonic``). Not connected means no answer at once.

    A responder that stays silent would cost every person the whole deadline: after a lookup
    passes its deadline unanswered the :class:`Breaker` opens, and lookups end at once except
    one trial per probe interval (the API has no request without a subject to probe with).
    The first answer closes it; so does the link coming back after it was the cause.
    """

    def __init__(
        self, link: MqttLink, *, breaker: bool = True, now: Callable[[], float] = time.monotonic
    ) -> None:
        self._link = link
        self.breaker: Breaker | None = Breaker(now=now) if breaker else None
        self._link_was_down = False
        self._request_topic = f"{link.prefix}/status/request"
        self._response_topic = link.topic("status", "response")
        self._lock = threading.Lock()
        self._pending: dict[bytes, _Pending] = {}
        self._throttle = LogThrottle(60.0)
        link.subscribe(self._response_topic, self._on_response, qos=1)

    def lookup(self, subject: str, *, deadline_s: float) -> LookupResult:
        """Ask for ``subject``'s status; return within ``deadline_s`` whatever happens."""
        end = time.monotonic() + deadline_s
        if not self._link.connected:
            return self._down_link()
        if self.breaker is not None and not self.breaker.allow() and not self._link_was_down:
            return LookupResult.no_answer("status service down")
        self._link_was_down = False  # the link is back: this lookup is the trial
        correlation = secrets.token_bytes(16)
        slot = _Pending(subject)
        props = Properties(PacketTypes.PUBLISH)
        props.ResponseTopic = self._response_topic
        props.CorrelationData = correlation
        props.ContentType = "application/json"
        with self._lock:
            self._pending[correlation] = slot
        try:
            try:
                sent = self._link.publish(
                    self._request_topic,
                    json.dumps({"sub": subject}).encode(),
                    qos=1,
                    properties=props,
                )
            except KioskError as exc:
                self._warn("publish", "status request not sent: %s", type(exc).__name__)
                return LookupResult.no_answer("request not sent")
            if not sent:
                return self._down_link()
            if not slot.done.wait(max(0.0, end - time.monotonic())):
                if self.breaker is not None:
                    self.breaker.failed("no response within the deadline")
                return LookupResult.no_answer("deadline passed")
            assert slot.result is not None
            if self.breaker is not None and slot.result.detail != "closed":
                self.breaker.succeeded()  # the responder answered, whatever it said
            return slot.result
        finally:
            with self._lock:
                self._pending.pop(correlation, None)

    def _down_link(self) -> LookupResult:
        if self.breaker is not None:
            self._link_was_down = True
            self.breaker.failed("broker link down")
        return LookupResult.no_answer("not connected to the broker")

    def close(self) -> None:
        """Nothing to release: the link belongs to the daemon. Waiting lookups end unanswered."""
        with self._lock:
            pending, self._pending = list(self._pending.values()), {}
        for slot in pending:
            slot.result = LookupResult.no_answer("closed")
            slot.done.set()

    def _on_response(self, _topic: str, payload: bytes, props: Any) -> None:
        correlation = getattr(props, "CorrelationData", None)
        with self._lock:
            slot = self._pending.pop(correlation, None) if isinstance(correlation, bytes) else None
        if slot is None:
            # Late (after its deadline), foreign or forged: nobody waits for it.
            log.debug("dropped a status response that matches no pending lookup")
            return
        slot.result = self._interpret(payload, slot.subject)
        slot.done.set()

    def _interpret(self, payload: bytes, subject: str) -> LookupResult:
        error = parse_error(payload)
        if error == "unknown_subject":
            return UNKNOWN
        if error is not None:
            if error not in _KNOWN_ERRORS:
                error = "unrecognised"  # the responder's text is not ours to log
            if error in _CONFIGURATION_ERRORS:
                # The kiosk is misconfigured (credentials, ACLs): say it loudly.
                self._warn(error, "status responder refused the kiosk: %s", error, level=40)
            else:
                self._warn(error, "status responder error: %s", error)
            return LookupResult.no_answer(f"error {error}")
        result = parse_answer(payload, subject)
        if result.detail:
            self._warn("malformed", "status responder sent a malformed answer: %s", result.detail)
        return result

    def _warn(self, key: str, msg: str, *args: object, level: int = logging.WARNING) -> None:
        ok, held = self._throttle.allow(key)
        if ok:
            log.log(level, msg + (f" ({held} more like it)" if held else ""), *args)
