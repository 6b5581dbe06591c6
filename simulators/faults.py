"""Faults of the simulated status services (HTTP and MQTT), switchable while they run."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, fields
from typing import Any


def _check_fault(name: str, value: Any) -> Any:
    """``value`` if it is acceptable for fault ``name``; ValueError naming the problem."""
    if name in ("status_429", "down", "garbage"):
        if not isinstance(value, bool):
            raise ValueError(f"fault {name} must be true or false")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"fault {name} must be a number")
    if name == "latency_ms":
        if not 0 <= value <= 600_000:
            raise ValueError("fault latency_ms must be between 0 and 600000")
        return value
    if name == "error_rate":
        if not 0.0 <= value <= 1.0:
            raise ValueError("fault error_rate must be between 0 and 1")
        return float(value)
    if name == "retry_after_s":
        if not isinstance(value, int) or value < 0:
            raise ValueError("fault retry_after_s must be a non-negative integer")
        return value
    known = ", ".join(f.name for f in fields(Faults) if f.init)
    raise ValueError(f"unknown fault {name!r} (known: {known})")


@dataclass
class Faults:
    """What goes wrong, switchable while the service runs (thread-safe through ``set``).

    ``latency_ms`` delays every answer; ``down`` closes connections without answering;
    ``status_429`` answers 429 with ``Retry-After: retry_after_s``; ``error_rate`` answers
    503 with that probability; ``garbage`` answers 200 with a body that is not JSON.
    """

    latency_ms: float = 0
    error_rate: float = 0.0
    status_429: bool = False
    retry_after_s: int = 1
    down: bool = False
    garbage: bool = False
    _lock: threading.Lock = field(
        default_factory=threading.Lock, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        for name, value in self.snapshot().items():
            _check_fault(name, value)

    def set(self, **changes: Any) -> None:
        """Change some faults at once; ValueError (and no change) if any value is wrong."""
        checked = {name: _check_fault(name, value) for name, value in changes.items()}
        with self._lock:
            for name, value in checked.items():
                setattr(self, name, value)

    def reset(self) -> None:
        """Back to a healthy service."""
        self.set(**{f.name: f.default for f in fields(self) if f.init})

    def snapshot(self) -> dict[str, Any]:
        """A consistent copy of all faults, as a JSON-ready dict."""
        with self._lock:
            return {f.name: getattr(self, f.name) for f in fields(self) if f.init}
