"""`kiosk release`: de-energise the turnstile relay and exit.

systemd runs this as the unit's ``ExecStopPost=`` after every exit of the daemon, a crash
or watchdog kill included: a process that dies leaves its GPIO line at the last level, so
a relay energised at the moment of the crash would stay energised (gate.md, Safety). It
builds the relay and nothing else (no camera, store or status link) so it is quick and has
as few ways to fail as possible. Like the daemon's wiring it imports the GPIO driver, so it
sits beside ``kiosk/wiring.py`` and ``kiosk/cli.py`` as a module that puts pieces together.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiosk.config import Config, load_config
from kiosk.config.merge import merge_files
from kiosk.config.schema import SECTIONS
from kiosk.errors import ConfigError, DeviceError, KioskError

EX_OK = 0
EX_GPIO = 1
EX_USAGE = 2


@dataclass(frozen=True)
class RelaySettings:
    """The four keys that say how to release the relay."""

    pin: int
    active_high: bool
    fail_safe: bool
    pin_factory: str

    @classmethod
    def from_config(cls, cfg: Config) -> RelaySettings:
        """From a validated configuration."""
        return cls(
            pin=cfg.gpio.relay,
            active_high=cfg.gpio.relay_active_high,
            fail_safe=cfg.gate.fail_safe,
            pin_factory=cfg.gpio.pin_factory,
        )


def release_relay(cfg: Config, *, mock_factory: Any = None) -> None:
    """Release the relay named in ``cfg`` and give the pin back.

    ``mock_factory`` is the gpiozero ``MockFactory`` used for ``pin_factory = "mock"`` (the
    simulator's or a test's, left open for the caller to inspect); by default a fresh one.
    Typed ``Any`` so that this module names gpiozero only where it builds the relay.
    Raises ``DeviceError`` when the pin factory or the pin cannot be used.
    """
    _release(RelaySettings.from_config(cfg), mock_factory=mock_factory)


class NoGpio(KioskError):
    """This machine has no GPIO at all: no relay line exists that could be energised."""


def _release(relay_cfg: RelaySettings, *, mock_factory: Any = None) -> None:
    from drivers.pins import fallbacks_collected, gpio_present

    fallbacks: list[str] = []
    try:
        # gpiozero warns once per pin library it falls back from; the reasons go into the
        # one error line instead (an ExecStopPost's output is read in the journal).
        with fallbacks_collected(fallbacks):
            _build_and_release(relay_cfg, mock_factory=mock_factory)
    except DeviceError as exc:
        if relay_cfg.pin_factory != "mock" and not gpio_present():
            cause = exc.__cause__ if exc.__cause__ is not None else exc
            raise NoGpio(f"no /dev/gpiochip* or /dev/gpiomem*; gpiozero: {cause}") from exc
        if fallbacks:
            raise DeviceError(f"{exc}; gpiozero tried {'; '.join(fallbacks)}") from exc
        raise


def _build_and_release(relay_cfg: RelaySettings, *, mock_factory: Any) -> None:
    # The relay driver alone, not drivers.gpio (lights, buzzer, sensors): the shortest path.
    from drivers.pins import make_pin_factory
    from drivers.relay import RelayTurnstile

    factory = make_pin_factory(relay_cfg.pin_factory, mock_factory=mock_factory)
    try:
        # Building it already drives the pin to the released level (gpiozero claims the
        # output at its inactive level); release and close say so explicitly.
        relay = RelayTurnstile(
            relay_cfg.pin,
            active_high=relay_cfg.active_high,
            fail_safe=relay_cfg.fail_safe,
            pin_factory=factory,
        )
        try:
            relay.release()
        finally:
            relay.close()
    finally:
        if factory is not None and factory is not mock_factory:
            # Frees the GPIO chip handle (lgpio); the caller's mock factory stays theirs.
            factory.close()


def relay_settings_despite_errors(path: str | Path) -> RelaySettings | None:
    """The relay keys of a file that fails validation elsewhere, or None if they are bad too.

    After a crash the relay must be released even when the file was since broken in some
    unrelated place (a missing token file, a typo in [policy]): only these four keys matter.
    """
    try:
        # Merged with kiosk.d as the daemon read it: a gate's own file may move its relay pin.
        raw = merge_files(Path(path)).data
    except ConfigError:  # any file unreadable: its relay keys are unknown
        return None
    gpio, gate = raw.get("gpio", {}), raw.get("gate", {})
    if not isinstance(gpio, dict) or not isinstance(gate, dict):
        return None

    def value(section: dict[str, Any], name: str, key: str, kind: type) -> Any:
        spec = SECTIONS[name][key]
        v = section.get(key, spec.default)
        # bool is an int in Python; a pin must not be `true`, a polarity must not be 1.
        if type(v) is not kind or (spec.choices and v not in spec.choices):
            raise ValueError(key)
        if kind is int:
            low, high = spec.min, spec.max
            if not isinstance(v, int) or low is None or high is None or not low <= v <= high:
                raise ValueError(key)
        return v

    try:
        return RelaySettings(
            pin=value(gpio, "gpio", "relay", int),
            active_high=value(gpio, "gpio", "relay_active_high", bool),
            fail_safe=value(gate, "gate", "fail_safe", bool),
            pin_factory=value(gpio, "gpio", "pin_factory", str),
        )
    except ValueError:
        return None


def cmd_release(args: argparse.Namespace, *, mock_factory: Any = None) -> int:
    """`kiosk release [--config FILE]`: 0 released, 2 configuration error, 1 GPIO failure.

    On a configuration error the problems are printed and the relay is still released if
    its own keys are readable; the exit status is 2 either way, so the error is not missed.
    A machine with no GPIO device at all (no /dev/gpiochip*, no /dev/gpiomem*: a laptop, a
    VM, a CI runner) gets one line and 0: no process there could have energised a relay,
    so the turnstile is as released as it can be, and a stopped daemon's unit is not
    marked failed for it. GPIO that exists but cannot be used is still 1.
    """
    config_error = False
    try:
        relay_cfg = RelaySettings.from_config(load_config(args.config))
    except ConfigError as exc:
        config_error = True
        for line in exc.problems:
            print(f"config error: {line}", file=sys.stderr)
        fallback = relay_settings_despite_errors(args.config)
        if fallback is None:
            keys = "[gpio] relay, relay_active_high, pin_factory or [gate] fail_safe"
            print(f"kiosk release: the relay was NOT released: bad {keys}", file=sys.stderr)
            return EX_USAGE
        relay_cfg = fallback
    try:
        _release(relay_cfg, mock_factory=mock_factory)
    except NoGpio as exc:
        print(
            f"kiosk release: no GPIO on this machine ({exc}); nothing to release", file=sys.stderr
        )
        return EX_USAGE if config_error else EX_OK
    except KioskError as exc:
        where = f"the turnstile relay on GPIO{relay_cfg.pin}"
        print(f"kiosk release: could not release {where}: {exc}", file=sys.stderr)
        return EX_GPIO
    what = "free (fail-safe site)" if relay_cfg.fail_safe else "locked"
    print(
        f"kiosk release: relay on GPIO{relay_cfg.pin} released; turnstile {what}",
        file=sys.stderr,
    )
    return EX_USAGE if config_error else EX_OK


def add_arguments(parser: argparse.ArgumentParser, *, default_config: str) -> None:
    """The options of `kiosk release [--config FILE]` (for kiosk/cli.py)."""
    parser.add_argument("--config", default=default_config, help="configuration file")
    parser.set_defaults(func=cmd_release)
