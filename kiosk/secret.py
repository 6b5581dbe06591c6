"""A secret value that never prints itself.

The venue secret, the status service's bearer token and the broker password travel inside the
configuration, which ends up in tracebacks, debug logs and ``kiosk config check --show``. A
:class:`Secret` prints ``***`` however it is formatted (repr, str, format, f-string,
``json.dumps(default=str)``); the value comes out only through :meth:`Secret.reveal`, called
at the few places that hand it to a library: the pseudonymizer's HMAC key, the HTTP bearer
header, the MQTT password and the simulated status service.
"""

from __future__ import annotations

import hmac
from typing import Any, NoReturn, final

MASK = "***"


@final
class Secret:
    """A string that prints as ``***``; :meth:`reveal` gives the value.

    Two secrets are equal when their values are (compared in constant time); a secret never
    equals a plain string, so ``secret == "guess"`` cannot be used to probe it. The hash is
    one constant for every secret: equal secrets hash alike, and the hash tells nothing.
    Copying gives the same object (it is immutable); pickling is refused, so a secret is not
    written to a file or sent to another process by accident.
    """

    __slots__ = ("_value",)
    _value: str

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError(f"a Secret holds a str, not {type(value).__name__}")
        object.__setattr__(self, "_value", value)

    def reveal(self) -> str:
        """The secret itself: only for handing it to the library that needs it."""
        return self._value

    def reveal_bytes(self) -> bytes:
        """The secret as UTF-8 bytes (an HMAC key)."""
        return self._value.encode()

    def __repr__(self) -> str:
        return MASK

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return format(MASK, spec)

    def __bool__(self) -> bool:
        # An empty value counts as not set, as the plain string it replaces did.
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(Secret)

    def __setattr__(self, name: str, value: Any) -> NoReturn:
        raise AttributeError("a Secret is immutable")

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Secret:
        return self

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        raise TypeError("a Secret is not pickled: it would leave the process in clear")


def reveal(secret: Secret | None) -> str | None:
    """``secret.reveal()``, or None when there is no secret."""
    return None if secret is None else secret.reveal()
