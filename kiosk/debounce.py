"""Same-code debounce (gate.md): a code that stays in view is decided once."""

from __future__ import annotations

import hashlib


class SightingFilter:
    """Says whether a sighting of a code should be decided.

    The same text is not decided again until it has left the view for at least
    ``left_view_s`` or ``cooldown_s`` has passed since it was decided. Codes are kept only
    as short hashes, and only for as long as they matter.
    """

    def __init__(self, *, left_view_s: float, cooldown_s: float) -> None:
        self._left_view_s = left_view_s
        self._cooldown_s = cooldown_s
        self._seen: dict[bytes, tuple[float, float]] = {}  # key -> (decided_at, last_seen)

    def should_decide(self, data: bytes, now: float) -> bool:
        """Record a sighting at monotonic ``now``; True when it must be decided."""
        key = hashlib.blake2b(data, digest_size=16).digest()
        seen = self._seen.get(key)
        if seen is not None:
            decided_at, last_seen = seen
            if now - last_seen < self._left_view_s and now - decided_at < self._cooldown_s:
                self._seen[key] = (decided_at, now)
                return False
        self._seen[key] = (now, now)
        return True

    def prune(self, now: float) -> None:
        """Forget codes that can no longer suppress anything."""
        horizon = max(self._left_view_s, self._cooldown_s)
        self._seen = {k: v for k, v in self._seen.items() if now - v[1] < horizon}

    def __len__(self) -> int:
        return len(self._seen)
