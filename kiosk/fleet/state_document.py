"""The retained state document on ``{prefix}/kiosk/{kiosk_id}/state`` (mqtt.md, State).

Contract of :func:`state_document`:

- Input: one :class:`~kiosk.gate.view.GateSnapshot` (the observable gate), nothing else. The
  function is pure: the same snapshot gives the same document, and a snapshot that differs in
  anything the document shows (mode, its start, occupancy, a health part, the backlog, the
  turnstile, the last decision, the software version) gives a different one. Fields the
  document does not show (light, sound, ``snapshot.version``, the holder) change nothing, so
  a publisher may compare documents to skip a republish.
- Output: a JSON-ready dict with mqtt.md's fields, in its order: ``online``, ``mode``,
  ``version`` (the kiosk's software version), ``since`` (RFC 3339 UTC with milliseconds),
  ``occupancy`` (int or null) and ``health``: ``camera``, ``scanner``, ``status``, ``clock``,
  ``disk``, ``relay`` each ``ok``/``down``/``off``, plus ``backlog`` (int). Then, for Home
  Assistant (kiosk/fleet/discovery.py), two additions to mqtt.md's state: ``turnstile``
  (``free``/``locked``) and ``last_decision`` (``{"decision", "reason", "at"}`` or null).
- Privacy (DEVELOPERS.md principle 5): the last decision carries neither the subject's
  pseudonym nor the masked holder: the retained state is read by every fleet client.
- A health value other than ``ok``/``down``/``off`` is shown as ``down``: unknown means not
  healthy. A missing part is ``off``. The broker's own health is not shown: a kiosk that
  cannot reach the broker cannot say so there (the Last Will does).
"""

from __future__ import annotations

from typing import Any

from kiosk.clock import rfc3339_ms
from kiosk.gate.view import DOWN, OFF, OK, GateSnapshot

#: mqtt.md's health entries, in its order (the gate view's "broker" is not one of them).
STATE_HEALTH_PARTS = ("camera", "scanner", "status", "clock", "disk", "relay")
TURNSTILE_STATES = ("free", "locked")


def state_document(snapshot: GateSnapshot, *, online: bool = True) -> dict[str, Any]:
    """The state document of ``snapshot`` (see the module's contract)."""
    health: dict[str, Any] = {}
    for part in STATE_HEALTH_PARTS:
        value = snapshot.health.get(part, OFF)
        health[part] = value if value in (OK, DOWN, OFF) else DOWN
    health["backlog"] = int(snapshot.backlog)
    last = snapshot.last_decision
    return {
        "online": online,
        "mode": snapshot.mode,
        "version": snapshot.kiosk_version,
        "since": rfc3339_ms(snapshot.since),
        # Counted against a capacity only (mqtt.md: int or null); the view has it either way.
        "occupancy": (
            None if snapshot.occupancy is None or not snapshot.capacity else int(snapshot.occupancy)
        ),
        "health": health,
        # Unknown means locked (DEVELOPERS.md principle 3): only "free" is shown as free.
        "turnstile": "free" if snapshot.turnstile == "free" else "locked",
        "last_decision": (
            None
            if last is None
            else {"decision": last.decision, "reason": last.reason, "at": rfc3339_ms(last.at)}
        ),
    }
