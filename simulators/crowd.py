"""A stream of simulated people presenting codes: passes, bare IINs, and the odd bad code.

Deterministic for a given seed and start time, so a run can be replayed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from simulators.issuer import PassIssuer
from simulators.population import Person, Population


@dataclass(frozen=True)
class Presentation:
    """What one person shows: the code's text and a label for the printout (never the ID)."""

    text: str
    kind: str
    person: Person | None


class Crowd:
    """Draws people and what they present; the mix is typical of a busy entrance."""

    # (kind, weight): most people show the app's pass, some type or scan a bare IIN,
    # a few show an old screenshot or a damaged or foreign code.
    MIX = (
        ("pass", 62),
        ("bare_iin", 25),
        ("expired_pass", 5),
        ("unknown_iin", 3),
        ("garbage", 3),
        ("forged_pass", 2),
    )

    def __init__(self, population: Population, issuer: PassIssuer, *, seed: int = 1) -> None:
        self._people = population.people
        self._iin_people = [p for p in self._people if p.sub.startswith("iin:")]
        self._issuer = issuer
        self._rng = random.Random(seed)
        self._kinds = [k for k, _ in self.MIX]
        self._weights = [w for _, w in self.MIX]
        self._n = 0

    def next(self, now: float) -> Presentation:
        """The next person's presentation at wall time ``now``."""
        rng = self._rng
        self._n += 1
        kind = rng.choices(self._kinds, self._weights)[0]
        person = rng.choice(self._people)
        iat = int(now) - rng.randint(0, 120)
        jti = f"sim{self._n:06d}{rng.randrange(16**6):06x}"
        if kind == "pass":
            return Presentation(
                self._issuer.mint(person.sub, person.st, iat=iat, jti=jti), kind, person
            )
        if kind == "expired_pass":
            old = int(now) - 3600
            return Presentation(
                self._issuer.mint(person.sub, person.st, iat=old, jti=jti), kind, person
            )
        if kind == "forged_pass":
            text = self._issuer.mint(person.sub, "green", iat=iat, jti=jti)
            head, claims, sig = text.split(".")
            # A "green" screenshot edited by hand: the signature no longer matches.
            return Presentation(f"{head}.{claims}.{sig[::-1]}", kind, person)
        if kind == "bare_iin":
            person = rng.choice(self._iin_people)
            return Presentation(person.sub[4:], kind, person)
        if kind == "unknown_iin":
            return Presentation("921029350851", kind, None)
        return Presentation(rng.choice(_GARBAGE), kind, None)


_GARBAGE = (
    "https://example.com/menu",
    "WIFI:S:gym-guest;T:WPA;P:12345678;;",
    "92102935085",
    "eyJhbGciOiJub25lIn0.e30.",
    "\x00\x01binary noise",
)
