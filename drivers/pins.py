"""Pin factories and library errors: what every GPIO driver here shares.

gpiozero's pin factory decides whether the pins are real (lgpio, RPi.GPIO) or gpiozero's
mock pins (tests, simulation). Library errors become ``DeviceError`` here, at the boundary
(DEVELOPERS.md).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gpiozero.exc import BadPinFactory, GPIOZeroError, PinFactoryFallback
from gpiozero.pins import Factory
from gpiozero.pins.mock import MockFactory

from kiosk.errors import DeviceError

# What gpiozero and the pin libraries under it raise for a bad pin, a pin in use, a missing
# /dev/gpiochip or a missing library (RPi.GPIO raises RuntimeError off a Pi).
_LIBRARY_ERRORS = (GPIOZeroError, OSError, RuntimeError, ValueError, ImportError)

_HINTS = {
    "lgpio": "on Raspberry Pi OS: apt-get install python3-lgpio",
    "rpigpio": "on Raspberry Pi OS: apt-get install python3-rpi.gpio",
}
_VENV_HINT = "a virtualenv needs --system-site-packages to see the system's GPIO library"

DEV_DIR = Path("/dev")
"""Where the kernel's GPIO devices appear (a module constant so tests can point it away)."""
_GPIO_DEVICES = ("gpiochip*", "gpiomem*")  # the character device (lgpio) and RPi.GPIO's


@contextmanager
def _device_errors(what: str, hint: str = "") -> Iterator[None]:
    """Turn gpiozero's (and its pin libraries') errors into ``DeviceError`` naming ``what``."""
    try:
        yield
    except DeviceError:
        raise
    except _LIBRARY_ERRORS as exc:
        if isinstance(exc, BadPinFactory) and not hint:
            # gpiozero found no GPIO library at all; lgpio is the one it prefers.
            hint = f"{_HINTS['lgpio']}; {_VENV_HINT}"
        detail = f"{type(exc).__name__}: {exc}"
        raise DeviceError(f"{what}: {detail}" + (f" ({hint})" if hint else "")) from exc


def make_pin_factory(name: str, *, mock_factory: Factory | None = None) -> Factory | None:
    """Build the gpiozero pin factory named in ``[gpio] pin_factory``.

    ``default`` gives ``None`` (gpiozero chooses when the first device is made), ``lgpio``
    and ``rpigpio`` the real pins, ``mock`` the simulator's ``mock_factory`` or a fresh
    ``MockFactory``. A missing library or absent GPIO chip raises ``DeviceError`` with a hint.
    """
    if name == "default":
        return None
    if name == "mock":
        return mock_factory if mock_factory is not None else MockFactory()
    if name not in _HINTS:
        raise DeviceError(f"unknown pin factory {name!r} (default, lgpio, rpigpio or mock)")
    hint = f"{_HINTS[name]}; {_VENV_HINT}"
    try:
        if name == "lgpio":
            from gpiozero.pins.lgpio import LGPIOFactory

            return LGPIOFactory()
        from gpiozero.pins.rpigpio import RPiGPIOFactory

        return RPiGPIOFactory()
    except Exception as exc:
        # The libraries raise their own error types (lgpio.error, RuntimeError off a Pi);
        # at this boundary they all mean "this pin factory cannot be used here".
        raise DeviceError(
            f"GPIO pin factory {name!r} unavailable: {type(exc).__name__}: {exc} ({hint})"
        ) from exc


def gpio_present() -> bool:
    """Whether this machine has any GPIO device a pin library could drive a line through.

    A machine without one (a laptop, a CI runner, a VM) cannot have an energised relay:
    there is no line for a daemon to have left driven.
    """
    return any(any(DEV_DIR.glob(pattern)) for pattern in _GPIO_DEVICES)


@contextmanager
def fallbacks_collected(into: list[str]) -> Iterator[None]:
    """Collect gpiozero's pin-factory fallback warnings into ``into`` instead of stderr.

    gpiozero warns once per library it tries (lgpio, rpigpio, pigpio, native) before it
    gives up; the reasons belong in one error line, not in four two-line warnings.
    """
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as recorded:
            warnings.simplefilter("always", PinFactoryFallback)
            try:
                yield
            finally:
                caught.extend(recorded)
    finally:
        # Outside the recording context, or the warnings re-emitted here would be recorded
        # again (into the list being read).
        for w in caught:
            if issubclass(w.category, PinFactoryFallback):
                into.append(str(w.message).removeprefix("Falling back from "))
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
